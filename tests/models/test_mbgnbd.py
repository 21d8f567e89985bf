"""MBG/NBD: published CDNOW estimates; closed forms vs simulation and quadrature; properties."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, stats

from ltvkit import MBGNBD, InputError

CDNOW = {"r": 0.525, "alpha": 6.183, "a": 0.891, "b": 1.614}


def simulate(rng, n, T, r, alpha, a, b, horizon=0.0):
    """MBG/NBD customers observed for T, their purchases in (T, T+horizon] and next purchase time.

    M = number of repeat purchases before dropping out: 0 if the customer drops out at the first
    purchase, else Geometric(p) (the M-th repeat purchase is the last).
    """
    T = np.broadcast_to(np.asarray(T, dtype=float), (n,))
    lam, p = rng.gamma(r, 1 / alpha, n), rng.beta(a, b, n)
    m = np.where(rng.random(n) < p, 0, rng.geometric(p))
    n_total = rng.poisson(lam * (T + horizon))
    n_T = rng.binomial(n_total, T / (T + horizon))
    x = np.minimum(m, n_T)
    tx = np.where(x > 0, T * rng.beta(np.maximum(x, 1), n_T - x + 1), 0.0)
    future = np.minimum(m, n_total) - x
    alive = m > n_T
    next_time = np.where(alive, rng.exponential(1 / lam), np.inf)
    data = pd.DataFrame({"frequency": x, "recency": tx, "T": T})
    return data, future, alive, next_time


@pytest.fixture(scope="module")
def fitted(cdnow_summary):
    return MBGNBD().fit(cdnow_summary)


@pytest.fixture
def model():
    return MBGNBD.from_params(**CDNOW)


def test_cdnow_estimates_match_btydplus(fitted):
    """BTYDplus mbgcnbd (k=1) on CDNOW: r=0.525, alpha=6.183, a=0.891, b=1.614."""
    for name, value in CDNOW.items():
        assert round(fitted.params_[name], 3) == value
    assert fitted.converged_ and fitted.n_customers_ == 2357
    # the dropout at the first purchase fits CDNOW better than BG/NBD (LL -9,582.4, FHL 2005)
    assert fitted.log_likelihood_ > -9582.4
    assert fitted.log_likelihood_ == pytest.approx(-9582.1, abs=0.05)


def test_gradient_matches_finite_differences(cdnow_summary, model):
    d = model._columns(cdnow_summary)
    theta = model._params * np.array([1.3, 0.8, 1.7, 0.6])
    analytic = model._gradient(theta, d).sum(axis=0)
    numeric = [
        (model._log_likelihood(theta + e, d).sum() - model._log_likelihood(theta - e, d).sum())
        / 2e-6
        for e in np.eye(4) * 1e-6
    ]
    np.testing.assert_allclose(analytic, numeric, rtol=1e-5)


def test_reference_values_of_lifetimes(model):
    """lifetimes 0.11 ModifiedBetaGeoFitter at r=0.524838, alpha=6.182992, a=0.891356, b=1.613999."""
    m = MBGNBD.from_params(r=0.524838, alpha=6.182992, a=0.891356, b=1.613999)
    data = pd.DataFrame({"frequency": [0, 2, 5, 30], "recency": [0, 30.0, 10, 37], "T": [38.0] * 4})
    np.testing.assert_allclose(
        m.p_alive(data), [0.3921253, 0.71002141, 0.02806319, 0.94633319], rtol=1e-6
    )
    np.testing.assert_allclose(
        m.expected_purchases(39, data), [0.15755632, 1.2901686, 0.10768967, 19.18765114], rtol=1e-6
    )
    assert m.expected_purchases_new(200.0) == pytest.approx(2.932948076955, rel=1e-9)
    np.testing.assert_allclose(
        m.purchase_probability_new(np.arange(3), 39.0),
        [0.58260555, 0.18276339, 0.0868706],
        rtol=1e-6,
    )


def test_integer_parameter_differences_do_not_break_the_hypergeometric():
    """r = 1, a = 2 makes c-a-b an integer, where scipy's hyp2f1 returns nan/inf near z = 1."""
    m = MBGNBD.from_params(r=1.0, alpha=2.0, a=2.0, b=1.0)
    data = pd.DataFrame({"frequency": [100], "recency": [30.0], "T": [39.0]})
    r, alpha, a, b, x, T, t = 1.0, 2.0, 2.0, 1.0, 100, 39.0, 1000.0
    shape, rate = r + x, alpha + T
    integrand = lambda p: (
        -np.expm1(-shape * np.log1p(p * t / rate)) / p * stats.beta.pdf(p, a, b + x + 1)
    )
    given_alive = integrate.quad(integrand, 0, 1, limit=200, epsrel=1e-11)[0]
    expected = m.p_alive(data).iloc[0] * given_alive
    assert m.expected_purchases(t, data).iloc[0] == pytest.approx(expected, rel=1e-7)


def test_pmf_is_consistent_with_expectation(model):
    data = pd.DataFrame({"frequency": [0, 3, 12], "recency": [0, 20.0, 35], "T": [38.0] * 3})
    n = np.arange(400)[:, None]
    rows = {c: np.broadcast_to(data[c].to_numpy(), (400, 3)).ravel() for c in data}
    pmf = model.purchase_probability(np.broadcast_to(n, (400, 3)).ravel(), 20.0, pd.DataFrame(rows))
    pmf = pmf.to_numpy().reshape(400, 3)
    np.testing.assert_allclose(pmf.sum(axis=0), 1.0, atol=1e-6)
    np.testing.assert_allclose(
        (n * pmf).sum(axis=0), model.expected_purchases(20.0, data), rtol=1e-4
    )
    new = model.purchase_probability_new(np.arange(400), 20.0)
    assert new.sum() == pytest.approx(1.0, abs=1e-6)
    assert (np.arange(400) * new).sum() == pytest.approx(
        model.expected_purchases_new(20.0), rel=1e-4
    )


def test_new_customer_pmf_matches_simulation(model):
    data, *_ = simulate(np.random.default_rng(1), 200_000, 39.0, *CDNOW.values())
    counts = np.bincount(data["frequency"], minlength=5)[:5] / len(data)
    np.testing.assert_allclose(
        counts, model.purchase_probability_new(np.arange(5), 39.0), atol=4e-3
    )


def test_conditional_predictions_match_simulation(model):
    """Zero-repeaters at T=39 (conditioning is exact): future counts, P(alive), next purchase."""
    rng = np.random.default_rng(2)
    data, future, alive, next_time = simulate(rng, 400_000, 39.0, *CDNOW.values(), horizon=26.0)
    zero = (data["frequency"] == 0).to_numpy()
    one = data[zero].iloc[:1]
    assert model.p_alive(one).iloc[0] == pytest.approx(alive[zero].mean(), abs=5e-3)
    counts = np.bincount(future[zero], minlength=4)[:4] / zero.sum()
    np.testing.assert_allclose(
        counts, [model.purchase_probability(k, 26.0, one).iloc[0] for k in range(4)], atol=4e-3
    )
    assert model.expected_purchases(26.0, one).iloc[0] == pytest.approx(
        future[zero].mean(), rel=0.05
    )
    quantiles = model.next_purchase_time(one, q=(0.1, 0.2, 0.5)).iloc[0]
    empirical = np.quantile(next_time[zero], [0.1, 0.2])
    np.testing.assert_allclose(quantiles.iloc[:2], empirical, rtol=0.06)
    assert quantiles.iloc[2] == np.inf and np.mean(np.isfinite(next_time[zero])) < 0.5
    # supposing the customer alive at T: the wait of the simulated zero-repeaters still alive
    given = model.next_purchase_time(one, q=(0.1, 0.5, 0.9), given_alive=True).iloc[0]
    empirical = np.quantile(next_time[zero & alive], [0.1, 0.5, 0.9])
    np.testing.assert_allclose(given, empirical, rtol=0.06)


def test_p_alive_at_matches_simulation(model):
    """P(alive at T+t) for zero-repeaters: alive at T, no dropout at the purchases in (T, T+t]."""
    rng = np.random.default_rng(4)
    n, T, t = 400_000, 39.0, 30.0
    r, alpha, a, b = CDNOW.values()
    lam, p = rng.gamma(r, 1 / alpha, n), rng.beta(a, b, n)
    m = np.where(rng.random(n) < p, 0, rng.geometric(p))
    n_T = rng.poisson(lam * T)
    n_later = n_T + rng.poisson(lam * t)
    zero = np.minimum(m, n_T) == 0
    one = pd.DataFrame({"frequency": [0], "recency": [0.0], "T": [T]})
    assert model.p_alive_at(t, one).iloc[0] == pytest.approx(
        np.mean(m[zero] > n_later[zero]), abs=5e-3
    )
    assert model.p_alive_at(0.0, one).iloc[0] == pytest.approx(
        model.p_alive(one).iloc[0], rel=1e-12
    )


def test_next_purchase_time_inverts_the_pmf(model):
    """The q-quantile tau satisfies 1 - P(no purchase in (T, T+tau]) = q."""
    data = pd.DataFrame({"frequency": [1, 4, 20], "recency": [5.0, 30.0, 37.0], "T": [38.0] * 3})
    qs = (0.05, 0.3, 0.6)
    table = model.next_purchase_time(data, q=qs)
    assert list(table.columns) == ["q5", "q30", "q60"]
    for col, q in zip(table.columns, qs):
        tau = table[col].to_numpy()
        finite = np.isfinite(tau)
        assert np.all(finite == (q < model.p_alive(data).to_numpy()))
        for i in np.flatnonzero(finite):
            row = data.iloc[[i]]
            assert 1 - model.purchase_probability(0, tau[i], row).iloc[0] == pytest.approx(
                q, rel=1e-9
            )


def _new_customer_by_quadrature(r, alpha, a, b, t):
    """E[X(t)] of a new customer = E_p[(1-p)(1 - (alpha/(alpha+p t))^r)/p], p ~ Beta(a, b)."""
    integrand = lambda p: (
        (1 - p) * -np.expm1(-r * np.log1p(p * t / alpha)) / p * stats.beta.pdf(p, a, b)
    )
    return integrate.quad(integrand, 0, 1, limit=200, epsabs=0, epsrel=1e-11)[0]


def test_expectations_match_quadrature(model):
    for t in (1.0, 39.0, 500.0):
        assert model.expected_purchases_new(t) == pytest.approx(
            _new_customer_by_quadrature(*CDNOW.values(), t), rel=1e-8
        )


@pytest.mark.parametrize("a", [1.0, 1 + 3e-5, 1 - 7e-5, 1 + 2e-4])
def test_a_near_one_is_accurate(a):
    """The closed form has a removable singularity at a = 1 (a (a-1) denominator)."""
    m = MBGNBD.from_params(r=0.5, alpha=6.0, a=a, b=1.6)
    assert m.expected_purchases_new(52.0) == pytest.approx(
        _new_customer_by_quadrature(0.5, 6.0, a, 1.6, 52.0), rel=1e-7
    )


def test_extreme_customers_are_finite(model):
    x = np.array([0, 1, 10, 100, 1000, 10_000.0])
    T = np.array([1e-3, 1, 100, 10_000.0])
    xx, TT = (v.ravel() for v in np.meshgrid(x, T))
    frames = [
        pd.DataFrame({"frequency": xx, "recency": np.where(xx > 0, TT * f, 0.0), "T": TT})
        for f in (0.5, 1.0)
    ]
    data = pd.concat(frames, ignore_index=True)
    data.loc[(data["frequency"] > 0) & (data["recency"] == 0), "recency"] = 1e-3
    d = model._columns(data)
    for values in (
        model._log_likelihood(model._params, d),
        model._gradient(model._params, d),
        model.p_alive(data),
        model.p_alive_at(10_000.0, data),
        model.expected_purchases(10_000.0, data),
        model.expected_purchases(0.01, data),
        model.purchase_probability(3, 100.0, data),
    ):
        assert np.all(np.isfinite(values))
    pa = model.p_alive(data)
    assert pa.between(0, 1).all() and model.expected_purchases(50.0, data).ge(0).all()
    assert not model.next_purchase_time(data).isna().any().any()


params = st.fixed_dictionaries(
    {
        "r": st.floats(0.05, 20),
        "alpha": st.floats(0.1, 100),
        "a": st.floats(0.05, 20),
        "b": st.floats(0.05, 20),
    }
)
customers = st.tuples(st.integers(0, 200), st.floats(0.01, 1.0), st.floats(0.5, 500))


def _row(c):
    x, share, T = c
    return pd.DataFrame({"frequency": [x], "recency": [T * share if x else 0.0], "T": [T]})


@settings(max_examples=60, deadline=None)
@given(params, customers, st.floats(0.01, 0.99))
def test_p_alive_in_unit_interval_and_increasing_in_recency(p, c, other):
    m = MBGNBD.from_params(**p)
    x, share, T = c
    lo, hi = sorted((share, other))
    a, b = m.p_alive(_row((max(x, 1), lo, T))).iloc[0], m.p_alive(_row((max(x, 1), hi, T))).iloc[0]
    assert 0 <= a <= b <= 1
    assert 0 <= m.p_alive(_row(c)).iloc[0] <= 1


@settings(max_examples=60, deadline=None)
@given(params, customers, st.floats(0.0, 200), st.floats(0.0, 200))
def test_expected_purchases_non_negative_and_non_decreasing(p, c, t1, t2):
    m = MBGNBD.from_params(**p)
    lo, hi = sorted((t1, t2))
    e_lo, e_hi = (
        m.expected_purchases(lo, _row(c)).iloc[0],
        m.expected_purchases(hi, _row(c)).iloc[0],
    )
    assert 0 <= e_lo <= e_hi * (1 + 1e-9) + 1e-12
    n_lo, n_hi = m.expected_purchases_new(lo), m.expected_purchases_new(hi)
    assert 0 <= n_lo <= n_hi * (1 + 1e-9) + 1e-12


@settings(max_examples=40, deadline=None)
@given(params, customers, st.floats(0.1, 50))
def test_pmf_sums_to_at_most_one(p, c, t):
    m = MBGNBD.from_params(**p)
    n = np.arange(3000)
    rows = _row(c).loc[[0] * len(n)]
    pmf = m.purchase_probability(n, t, rows).to_numpy()
    assert np.all(pmf >= 0)
    assert pmf[:5].sum() <= 1 + 1e-9
    mean = m.expected_purchases(t, _row(c)).iloc[0]
    if mean < 20:  # the tail beyond 3,000 purchases is then negligible
        assert pmf.sum() == pytest.approx(1.0, abs=1e-6)


def test_bad_arguments_raise_input_error(model):
    data = pd.DataFrame({"frequency": [1], "recency": [2.0], "T": [3.0]})
    with pytest.raises(InputError, match="t must be"):
        model.expected_purchases(-1.0, data)
    with pytest.raises(InputError, match="whole number"):
        model.purchase_probability(1.5, 2.0, data)
    with pytest.raises(InputError, match="q must be"):
        model.next_purchase_time(data, q=(0.5, 1.0))


@pytest.mark.slow
def test_parameter_recovery_on_simulated_data():
    """20,000 simulated customers, 10 seeds: each true value inside the 95% interval >= 9 times."""
    truth = {"r": 0.8, "alpha": 5.0, "a": 1.2, "b": 2.5}
    covered = np.zeros(4, dtype=int)
    for seed in range(10):
        rng = np.random.default_rng(seed)
        data, *_ = simulate(rng, 20_000, rng.uniform(20, 52, 20_000), *truth.values())
        table = MBGNBD().fit(data).summary()
        covered += (table["lower_95"] <= pd.Series(truth)) & (pd.Series(truth) <= table["upper_95"])
    assert np.all(covered >= 9), dict(zip(truth, covered))
