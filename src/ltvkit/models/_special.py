"""Numerically stable special functions for the models: a log-space Gauss hypergeometric 2F1.

The Pareto/NBD likelihood and several predictions need ``log 2F1(a, b; c; z)`` for ``z`` in
[0, 1) with parameters that grow with a customer's frequency (into the tens of thousands), and
its partial derivatives for an analytic likelihood gradient. SciPy's ``hyp2f1`` overflows or
fails in parts of that range (e.g. it returns ``inf`` for ``2F1(1, 1; 101; 0.99)``), so this
module evaluates the function itself, in log space:

* Euler's transformation ``2F1(a, b; c; z) = (1-z)^(c-a-b) 2F1(c-a, c-b; c; z)`` (Abramowitz &
  Stegun 15.3.3) when it makes the series parameters smaller, e.g. the Pareto/NBD case
  ``2F1(m, b; m+1; z)`` becomes ``(1-z)^(1-b) 2F1(1, m+1-b; m+1; z)`` whose terms never exceed ``z^n``;
* for ``z <= 0.75`` the power series (all terms positive, so no cancellation), summed with a
  running scale so that large intermediate terms cannot overflow, the derivatives with respect
  to ``a, b, c, z`` being accumulated term by term (forward-mode differentiation of the series);
* for ``z`` closer to 1 (where the series converges slowly), Euler's integral (A&S 15.3.1)
  ``2F1(a, b; c; z) = 1/B(b, c-b) * int_0^1 t^(b-1) (1-t)^(c-b-1) (1-zt)^(-a) dt``
  by tanh-sinh (double-exponential) quadrature, which is insensitive to the endpoint
  singularities of the integrand; all node values are kept as logarithms (``logsumexp``).

All functions are vectorised (arguments broadcast) and accurate to about 1e-12 relative in the
tested range (checked against mpmath in ``tests/models/test_special.py``).
"""

from __future__ import annotations

import numpy as np
from scipy.special import betaln, digamma, logsumexp

__all__ = ["log1mexp", "log_hyp2f1"]

Array = np.ndarray

#: above this |z| the power series is replaced by quadrature of Euler's integral
Z_SERIES = 0.75
#: relative size of the neglected series tail
_SERIES_TOL = 1e-17
_MAX_TERMS = 4000
# tanh-sinh nodes s = k h, |s| <= _TS_RANGE (covers t down to exp(-pi sinh 8) ~ exp(-4690))
_TS_STEP = 1.0 / 16.0
_TS_RANGE = 8.0
_CHUNK = 20_000


def log1mexp(x: Array) -> Array:
    """``log(1 - exp(x))`` for ``x <= 0``, accurate for ``x`` near 0 and very negative ``x``.

    Uses ``log(-expm1(x))`` for ``x > -log 2`` and ``log1p(-exp(x))`` otherwise
    (Maechler 2012, "Accurately computing log(1 - exp(-|a|))").

    Examples
    --------
    >>> float(log1mexp(np.log(0.25)))  # log(0.75)
    -0.2876820724517809
    >>> float(log1mexp(-1e-20))
    -46.051701859880914
    """
    x = np.asarray(x, dtype=float)
    with np.errstate(divide="ignore"):
        return np.where(x > -np.log(2.0), np.log(-np.expm1(np.minimum(x, 0.0))),
                        np.log1p(-np.exp(np.minimum(x, -np.log(2.0)))))


def log_hyp2f1(a: Array, b: Array, c: Array, z: Array, grad: bool = False
               ) -> Array | tuple[Array, tuple[Array, Array, Array, Array]]:
    """Natural logarithm of the Gauss hypergeometric function ``2F1(a, b; c; z)``.

    Valid for ``a > 0``, ``b > 0``, ``c > min(a, b)`` and ``0 <= z < 1`` (then every series term
    is positive and Euler's integral exists); arguments broadcast.

    Parameters
    ----------
    a, b, c : array_like
        Parameters.
    z : array_like
        Argument in [0, 1).
    grad : bool
        Also return the partial derivatives of ``log 2F1`` with respect to ``a, b, c, z``.

    Returns
    -------
    ndarray, or (ndarray, (d_a, d_b, d_c, d_z)) when ``grad``.

    Examples
    --------
    >>> round(float(np.exp(log_hyp2f1(1.0, 1.0, 2.0, 0.5))), 12)  # -log(1-z)/z
    1.386294361120
    >>> float(log_hyp2f1(1.0, 1.0, 101.0, 0.99))  # scipy.special.hyp2f1 returns inf here
    0.009950330853168
    >>> bool(np.isfinite(log_hyp2f1(10_000.5, 1.6, 10_001.5, 0.999_999)))
    True
    """
    a, b, c, z = (np.asarray(v, dtype=float) for v in np.broadcast_arrays(a, b, c, z))
    shape = a.shape
    a, b, c, z = (v.ravel() for v in (a, b, c, z))
    bad = ~((a > 0) & (b > 0) & (c > np.minimum(a, b)) & (z >= 0) & (z < 1))
    if np.any(bad):
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(
            "log_hyp2f1 needs a > 0, b > 0, c > min(a, b) and 0 <= z < 1; got "
            f"a={a[i]!r}, b={b[i]!r}, c={c[i]!r}, z={z[i]!r} at position {i}"
        )
    # make b the parameter below c (Euler's integral needs c > b > 0)
    swap = b >= c
    a, b = np.where(swap, b, a), np.where(swap, a, b)
    # Euler's transformation when both new parameters are positive and smaller in total
    euler = (c > a) & (2 * c - a - b < a + b)
    ea, eb = np.where(euler, c - a, a), np.where(euler, c - b, b)
    log1mz = np.log1p(-z)
    value = np.empty_like(z)
    d = [np.empty_like(z) for _ in range(4)] if grad else None
    series = z <= Z_SERIES
    _series(ea, eb, c, z, series, value, d)
    quad = ~series | ~np.isfinite(value)
    if np.any(quad):
        _tanh_sinh(ea, eb, c, z, quad, value, d)
    value = value + np.where(euler, (c - a - b) * log1mz, 0.0)
    if not grad:
        return value.reshape(shape)
    da, db, dc, dz = d
    # chain rule through Euler's transformation: a' = c - a, b' = c - b
    da_, db_ = np.where(euler, -log1mz - db, da), np.where(euler, -log1mz - da, db)
    dc_ = np.where(euler, log1mz + da + db + dc, dc)
    dz_ = np.where(euler, dz - (c - a - b) / (1.0 - z), dz)
    da_, db_ = np.where(swap, db_, da_), np.where(swap, da_, db_)
    return value.reshape(shape), tuple(v.reshape(shape) for v in (da_, db_, dc_, dz_))


def _series(a: Array, b: Array, c: Array, z: Array, mask: Array, value: Array,
            d: list[Array] | None) -> None:
    """Power series on the rows in ``mask`` (positive terms); writes ``value`` and ``d`` in place.

    Rows that fail to converge within ``_MAX_TERMS`` terms get ``nan`` (then quadrature).
    """
    idx = np.flatnonzero(mask)
    a, b, c, z = a[idx], b[idx], c[idx], z[idx]
    n = idx.size
    scale = np.zeros(n)           # log of the running scale
    term = np.ones(n)             # current term / exp(scale)
    total = np.ones(n)
    grad = d is not None
    if grad:
        ha, hb, hc = np.zeros(n), np.zeros(n), np.zeros(n)   # d log(term) / d a, b, c
        sa, sb, sc, sz = np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n)
    k = 0
    while idx.size and k < _MAX_TERMS:
        ratio = (a + k) * (b + k) / ((c + k) * (k + 1.0)) * z
        term = term * ratio
        total = total + term
        if grad:
            ha, hb, hc = ha + 1.0 / (a + k), hb + 1.0 / (b + k), hc + 1.0 / (c + k)
            sa, sb, sc = sa + term * ha, sb + term * hb, sc + term * hc
            sz = sz + term * (k + 1.0)
        k += 1
        big = term > 1e200
        if np.any(big):
            f = np.where(big, term, 1.0)
            scale, term, total = scale + np.log(f), term / f, total / f
            if grad:
                sa, sb, sc, sz = sa / f, sb / f, sc / f, sz / f
        nxt = (a + k) * (b + k) / ((c + k) * (k + 1.0)) * z
        rho = np.maximum(nxt, z)
        with np.errstate(divide="ignore"):
            tail = term * (k + 2.0) * rho / (1.0 - rho)
        done = (rho < 1.0) & (tail <= _SERIES_TOL * total)
        if np.any(done):
            i = idx[done]
            value[i] = scale[done] + np.log(total[done])
            if grad:
                t = total[done]
                zd = z[done]
                d[0][i] = sa[done] / t
                d[1][i] = sb[done] / t
                d[2][i] = -sc[done] / t
                with np.errstate(divide="ignore", invalid="ignore"):
                    d[3][i] = np.where(zd > 0, sz[done] / (t * zd), a[done] * b[done] / c[done])
            keep = ~done
            idx, a, b, c, z, scale, term, total = (
                v[keep] for v in (idx, a, b, c, z, scale, term, total))
            if grad:
                ha, hb, hc, sa, sb, sc, sz = (v[keep] for v in (ha, hb, hc, sa, sb, sc, sz))
    value[idx] = np.nan


def _ts_nodes() -> tuple[Array, Array, Array]:
    """tanh-sinh nodes: ``log t``, ``log(1-t)`` and ``log(h dt/ds)``, t = 1 / (1 + exp(-pi sinh s))."""
    s = np.arange(-_TS_RANGE, _TS_RANGE + _TS_STEP / 2, _TS_STEP)
    u = np.pi * np.sinh(s)
    log_t = -np.logaddexp(0.0, -u)
    log_1mt = -np.logaddexp(0.0, u)
    log_w = np.log(_TS_STEP) + log_t + log_1mt + np.log(np.pi * np.cosh(s))
    return log_t, log_1mt, log_w


_LOG_T, _LOG_1MT, _LOG_W = _ts_nodes()


def _tanh_sinh(a: Array, b: Array, c: Array, z: Array, mask: Array, value: Array,
               d: list[Array] | None) -> None:
    """Euler's integral by tanh-sinh quadrature on the rows in ``mask`` (needs c > b > 0)."""
    rows = np.flatnonzero(mask)
    for start in range(0, rows.size, _CHUNK):
        i = rows[start:start + _CHUNK]
        ai, bi, ci, zi = (v[i, None] for v in (a, b, c, z))
        with np.errstate(divide="ignore"):
            log_z = np.log(zi)
        # log(1 - z t) = log((1 - z) + z (1 - t)), accurate when z and t are both near 1
        log_1mzt = np.logaddexp(np.log1p(-zi), log_z + _LOG_1MT)
        log_f = (bi - 1.0) * _LOG_T + (ci - bi - 1.0) * _LOG_1MT - ai * log_1mzt + _LOG_W
        total = logsumexp(log_f, axis=1)
        beta = betaln(bi[:, 0], ci[:, 0] - bi[:, 0])
        value[i] = total - beta
        if d is not None:
            w = np.exp(log_f - total[:, None])
            bb, cc = bi[:, 0], ci[:, 0]
            d[0][i] = -np.sum(w * log_1mzt, axis=1)
            d[1][i] = (np.sum(w * (_LOG_T - _LOG_1MT), axis=1)
                       - digamma(bb) + digamma(cc - bb))
            d[2][i] = np.sum(w * _LOG_1MT, axis=1) - digamma(cc - bb) + digamma(cc)
            d[3][i] = ai[:, 0] * np.sum(w * np.exp(_LOG_T - log_1mzt), axis=1)
