"""The log-space Gauss hypergeometric function and helpers, checked against mpmath (arbitrary precision)."""

import itertools

import mpmath as mp
import numpy as np
import pytest
from scipy import integrate

from ltvkit.models._special import log1mexp, log_hyp2f1, log_tail_integral

mp.mp.dps = 30


def _ref(a, b, c, z):
    return float(mp.log(mp.hyp2f1(a, b, c, z)))


# a grid over the regimes the models meet: small/large parameters, c = a + 1 (Pareto/NBD),
# z from 0 to within 1e-6 of 1 (series, and quadrature beyond z = 0.95)
GRID = [
    (a, b, c, z)
    for a, b, c, z in itertools.product(
        [0.3, 1.0, 2.5, 40.0, 900.0], [0.05, 1.0, 1.7, 30.0], [0.7, 2.2, 50.0, None],
        [0.0, 0.2, 0.6, 0.8, 0.97, 0.999, 0.999999],
    )
]
GRID = [(a, b, a + 1.0 if c is None else c, z) for a, b, c, z in GRID]
GRID = [g for g in GRID if g[2] > min(g[0], g[1])]


def test_log_hyp2f1_matches_mpmath_on_grid():
    a, b, c, z = (np.array(v) for v in zip(*GRID))
    ours = log_hyp2f1(a, b, c, z)
    ref = np.array([_ref(*g) for g in GRID])
    err = np.abs(ours - ref) / np.maximum(1.0, np.abs(ref))
    worst = int(np.argmax(err))
    assert err[worst] < 1e-9, (GRID[worst], ours[worst], ref[worst])


@pytest.mark.parametrize("m, b", [(m, b) for m in (5.5, 300.5, 10_000.5) for b in (0.6, 1.6, 10_000.3)
                                  if b < m + 1])
@pytest.mark.parametrize("z", [0.1, 0.6, 0.99999])
def test_pareto_nbd_shape_large_frequency(m, b, z):
    """2F1(m, b; m+1; z) with m, b up to 1e4 (frequency 10,000): finite and accurate."""
    ours = float(log_hyp2f1(m, b, m + 1.0, z))
    ref = _ref(m, b, m + 1.0, z)
    assert ours == pytest.approx(ref, rel=1e-9, abs=1e-9)


def test_scipy_failure_case_is_handled():
    """scipy.special.hyp2f1 returns inf at 2F1(1, 1; 101; 0.99); the exact value is about 1.01."""
    assert float(np.exp(log_hyp2f1(1.0, 1.0, 101.0, 0.99))) == pytest.approx(
        float(mp.hyp2f1(1, 1, 101, 0.99)), rel=1e-12)


def test_gradient_matches_finite_differences():
    pts = np.array([[0.7, 1.6, 3.2, 0.3], [40.0, 1.6, 41.0, 0.9], [1.0, 300.0, 301.5, 0.99],
                    [2.5, 0.05, 50.0, 0.6], [900.0, 30.0, 901.0, 0.97]])
    value, grads = log_hyp2f1(*pts.T, grad=True)
    for j in range(4):
        h = 1e-6 * np.maximum(1.0, np.abs(pts[:, j]))
        if j == 3:
            h = np.minimum(h, (1 - pts[:, 3]) / 100)
        up, dn = pts.copy(), pts.copy()
        up[:, j] += h
        dn[:, j] -= h
        fd = (log_hyp2f1(*up.T) - log_hyp2f1(*dn.T)) / (2 * h)
        np.testing.assert_allclose(grads[j], fd, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(value, log_hyp2f1(*pts.T))


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="0 <= z < 1"):
        log_hyp2f1(1.0, 1.0, 2.0, 1.0)
    with pytest.raises(ValueError, match="position 1"):
        log_hyp2f1([1.0, -1.0], 1.0, 2.0, 0.5)


def test_log1mexp_is_accurate_at_both_ends():
    x = np.array([-1e-20, -1e-5, -0.5, -1.0, -30.0, -800.0])
    with mp.workdps(80):
        ref = [float(mp.log(1 - mp.exp(mp.mpf(v)))) for v in x]
    np.testing.assert_allclose(log1mexp(x), ref, rtol=1e-14)
    assert log1mexp(np.array([0.0]))[0] == -np.inf


@pytest.mark.parametrize("alpha, beta", [(10.0, 10.0), (10.0, 11.7), (3.0, 40.0), (40.0, 0.5)])
@pytest.mark.parametrize("p, q", [(0.55, 1.6), (12.55, 1.6), (3.0, 0.4)])
def test_tail_integral_matches_direct_quadrature(p, q, alpha, beta):
    u = 5.0
    value, grads = log_tail_integral(p, q, alpha, beta, u, grad=True)

    def log_j(pp, qq, aa, bb):
        f = lambda t: (aa + t) ** -pp * (bb + t) ** -qq
        return np.log(integrate.quad(f, u, np.inf, epsabs=0, epsrel=1e-13, limit=200)[0])

    assert float(value) == pytest.approx(log_j(p, q, alpha, beta), rel=1e-9)
    args = np.array([p, q, alpha, beta])
    for j in range(4):
        h = 1e-5 * args[j]
        up, dn = args.copy(), args.copy()
        up[j] += h
        dn[j] -= h
        assert float(grads[j]) == pytest.approx((log_j(*up) - log_j(*dn)) / (2 * h), rel=1e-5, abs=1e-8)
