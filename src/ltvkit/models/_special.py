"""Numerically stable special functions for the models: a log-space Gauss hypergeometric 2F1.

The Pareto/NBD likelihood and several predictions need ``log 2F1(a, b; c; z)`` for ``z`` in
[0, 1) with parameters that grow with a customer's frequency (into the tens of thousands), and
its partial derivatives for an analytic likelihood gradient. SciPy's ``hyp2f1`` overflows or
fails in parts of that range (e.g. it returns ``inf`` for ``2F1(1, 1; 101; 0.99)``), so this
module evaluates the function itself, in log space:

* Euler's transformation ``2F1(a, b; c; z) = (1-z)^(c-a-b) 2F1(c-a, c-b; c; z)`` (Abramowitz &
  Stegun 15.3.3) when it makes the series parameters smaller, e.g. the Pareto/NBD case
  ``2F1(m, b; m+1; z)`` becomes ``(1-z)^(1-b) 2F1(1, m+1-b; m+1; z)`` whose terms never exceed ``z^n``;
* the power series (all terms positive, so no cancellation) for ``z <= 0.95``, or for larger
  ``z`` when it converges within a hundred terms anyway; it is summed with a
  running scale so that large intermediate terms cannot overflow, the derivatives with respect
  to ``a, b, c, z`` being accumulated term by term (forward-mode differentiation of the series);
* otherwise (``z`` near 1, slow series), Euler's integral (A&S 15.3.1)
  ``2F1(a, b; c; z) = 1/B(b, c-b) * int_0^1 t^(b-1) (1-t)^(c-b-1) (1-zt)^(-a) dt``
  by a trapezoidal rule in ``v = logit(t)`` centred on the integrand's mode (found in closed
  form) and stretched by ``sinh`` so that slowly decaying tails are covered (a Laplace-scaled
  double-exponential rule); all node values are kept as logarithms (``logsumexp``).

All functions are vectorised (arguments broadcast). Against mpmath (``tests/models/test_special.py``)
the log is within 1e-9 relative (usually 1e-12) for parameters up to 1e4 and z up to 1 - 1e-6;
closer to z = 1 with ``a`` far above ``c`` it degrades to about 1e-6.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy.special import betainc, betaln, digamma, gammaln, hyp2f1, logsumexp, xlogy

__all__ = [
    "BGRows",
    "across_one",
    "beta_average",
    "bg_expected_given_alive",
    "bg_pmf_given_alive",
    "bg_survive_given_alive",
    "bg_two_term_likelihood",
    "log1mexp",
    "log_hyp2f1",
    "log_tail_integral",
    "lomax_quantiles",
]

Array = np.ndarray

#: above this z the power series gets only ``_FAST_TERMS`` terms before quadrature takes over
Z_SERIES = 0.95
_FAST_TERMS = 100
#: relative size of the neglected series tail
_SERIES_TOL = 1e-16
_MAX_TERMS = 3000
_CHECK_EVERY = 8
# quadrature nodes: v = mode + scale * sinh(s), s = k * _Q_STEP, |s| <= _Q_RANGE
_Q_STEP = 1.0 / 32.0
_Q_RANGE = 7.5
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
    out = np.empty_like(x)
    near = x > -np.log(2.0)
    with np.errstate(divide="ignore"):
        out[near] = np.log(-np.expm1(x[near]))
    out[~near] = np.log1p(-np.exp(x[~near]))
    return out


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
    1.38629436112
    >>> round(float(log_hyp2f1(1.0, 1.0, 101.0, 0.99)), 12)  # scipy.special.hyp2f1 returns inf
    0.009948310866
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
    budget = np.where(z <= Z_SERIES, _MAX_TERMS, _FAST_TERMS)
    _series(ea, eb, c, z, budget, value, d)
    quad = ~np.isfinite(value)
    if np.any(quad):
        _laplace_sinh(ea, eb, c, z, quad, value, d)
    value = value + np.where(euler, (c - a - b) * log1mz, 0.0)
    if not grad:
        return value.reshape(shape)
    da, db, dc, dz = d
    # chain rule through Euler's transformation: a' = c - a, b' = c - b
    da_, db_ = np.where(euler, -log1mz - da, da), np.where(euler, -log1mz - db, db)
    dc_ = np.where(euler, log1mz + da + db + dc, dc)
    dz_ = np.where(euler, dz - (c - a - b) / (1.0 - z), dz)
    da_, db_ = np.where(swap, db_, da_), np.where(swap, da_, db_)
    return value.reshape(shape), tuple(v.reshape(shape) for v in (da_, db_, dc_, dz_))


def _series(a: Array, b: Array, c: Array, z: Array, budget: Array, value: Array,
            d: list[Array] | None) -> None:
    """Power series (positive terms); writes ``value`` and ``d`` in place.

    Rows not converged within their ``budget`` of terms get ``nan`` (then quadrature). The
    state of all rows is one 2-D array so that dropping converged rows (every
    ``_CHECK_EVERY`` terms) is a single indexing operation.
    """
    grad = d is not None
    # rows of the state: idx a b c z budget | scale term total | ha hb hc sa sb sc sz
    state = np.zeros((16 if grad else 9, z.size))
    state[0], state[1], state[2], state[3], state[4], state[5] = np.arange(z.size), a, b, c, z, budget
    state[7] = state[8] = 1.0
    k = 0
    while state.shape[1] and k < _MAX_TERMS:
        a_, b_, c_, z_ = state[1], state[2], state[3], state[4]
        for _ in range(_CHECK_EVERY):
            state[7] *= (a_ + k) * (b_ + k) / ((c_ + k) * (k + 1.0)) * z_
            state[8] += state[7]
            if grad:
                state[9] += 1.0 / (a_ + k)
                state[10] += 1.0 / (b_ + k)
                state[11] += 1.0 / (c_ + k)
                state[12:15] += state[7] * state[9:12]
                state[15] += state[7] * (k + 1.0)
            k += 1
        big = state[7] > 1e150
        if np.any(big):
            f = np.where(big, state[7], 1.0)
            state[6] += np.log(f)
            state[7:9] /= f
            if grad:
                state[12:16] /= f
        rho = np.maximum((a_ + k) * (b_ + k) / ((c_ + k) * (k + 1.0)) * z_, z_)
        with np.errstate(over="ignore"):
            tail = state[7] * rho / np.maximum(1.0 - rho, 1e-300)
        done = (rho < 1.0) & (tail <= _SERIES_TOL * state[8])
        over = ~done & (state[5] <= k)
        if np.any(over):
            value[state[0, over].astype(np.intp)] = np.nan
        if np.any(done):
            st = state[:, done]
            i = st[0].astype(np.intp)
            value[i] = st[6] + np.log(st[8])
            if grad:
                d[0][i] = st[12] / st[8]
                d[1][i] = st[13] / st[8]
                d[2][i] = -st[14] / st[8]
                zd = np.where(st[4] > 0, st[4], 1.0)
                d[3][i] = np.where(st[4] > 0, st[15] / (st[8] * zd), st[1] * st[2] / st[3])
        if np.any(done | over):
            state = state[:, ~(done | over)]
    value[state[0].astype(np.intp)] = np.nan  # not converged: left to quadrature


def _laplace_sinh(a: Array, b: Array, c: Array, z: Array, mask: Array, value: Array,
                  d: list[Array] | None) -> None:
    """Euler's integral on the rows in ``mask`` (needs c > b > 0), by quadrature in logit space.

    With ``t = 1 / (1 + exp(-v))`` the integrand ``t^b (1-t)^(c-b) (1-zt)^(-a)`` (Jacobian
    included) is unimodal in ``v``: its log-derivative vanishes where
    ``z(c-a) t^2 - (c + z(b-a)) t + b = 0``, which has exactly one root in (0, 1). The nodes are
    ``v = mode + scale * sinh(s)`` on an even grid in ``s`` (trapezoidal rule, exponentially
    convergent for such integrands), ``scale`` = 1 / sqrt(-second log-derivative at the mode);
    the sinh stretch reaches tails that decay slowly (small ``b`` or ``c - b``).
    """
    rows = np.flatnonzero(mask)
    for start in range(0, rows.size, _CHUNK):
        i = rows[start:start + _CHUNK]
        ai, bi, ci, zi = a[i], b[i], c[i], z[i]
        half = ci + zi * (bi - ai)
        t0 = 2.0 * bi / (half + np.sqrt(np.maximum(half**2 - 4.0 * zi * (ci - ai) * bi, 0.0)))
        t0 = np.clip(t0, 1e-300, 1.0 - 1e-16)
        v0 = np.log(t0) - np.log1p(-t0)
        curv = t0 * (1.0 - t0) * (ci - ai * zi * (1.0 - 2.0 * t0 + zi * t0**2) / (1.0 - zi * t0) ** 2)
        scale = 1.0 / np.sqrt(np.clip(curv, 1e-12, None))
        v = v0[:, None] + scale[:, None] * _SINH
        log_t = -np.logaddexp(0.0, -v)
        log_1mt = -np.logaddexp(0.0, v)
        with np.errstate(divide="ignore"):
            log_z = np.log(zi)[:, None]
        # log(1 - z t) = log((1 - z) + z (1 - t)), accurate when z and t are both near 1
        log_1mzt = np.logaddexp(np.log1p(-zi)[:, None], log_z + log_1mt)
        log_f = (bi[:, None] * log_t + (ci - bi)[:, None] * log_1mt - ai[:, None] * log_1mzt
                 + np.log(scale)[:, None] + _LOG_COSH_STEP)
        total = logsumexp(log_f, axis=1)
        value[i] = total - betaln(bi, ci - bi)
        if d is not None:
            w = np.exp(log_f - total[:, None])
            d[0][i] = -np.sum(w * log_1mzt, axis=1)
            d[1][i] = np.sum(w * (log_t - log_1mt), axis=1) - digamma(bi) + digamma(ci - bi)
            d[2][i] = np.sum(w * log_1mt, axis=1) - digamma(ci - bi) + digamma(ci)
            d[3][i] = ai * np.sum(w * np.exp(log_t - log_1mzt), axis=1)


_S = np.arange(-_Q_RANGE, _Q_RANGE + _Q_STEP / 2, _Q_STEP)
_SINH = np.sinh(_S)
_LOG_COSH_STEP = np.log(np.cosh(_S) * _Q_STEP)


def log_tail_integral(p: Array, q: Array, alpha: Array, beta: Array, u: Array, grad: bool = False
                      ) -> Array | tuple[Array, tuple[Array, Array, Array, Array]]:
    """``log J`` with ``J = int_u^inf (alpha + tau)^(-p) (beta + tau)^(-q) dtau`` (p, q > 0, p + q > 1).

    Substituting as in Fader & Hardie's note 009 ("A note on deriving the Pareto/NBD model and
    related expressions"), with ``P = max(alpha, beta)``, ``m = p + q - 1``::

        J = (P + u)^(-m) / m * 2F1(m, b; m + 1; |alpha - beta| / (P + u)),
        b = q if alpha >= beta else p,

    so that the argument of 2F1 is in [0, 1); evaluated by :func:`log_hyp2f1`. Arguments
    broadcast; with ``grad`` also returns the derivatives of ``log J`` wrt ``p, q, alpha, beta``.

    Examples
    --------
    >>> round(float(np.exp(log_tail_integral(1.5, 1.0, 2.0, 2.0, 0.0))), 12)  # int (2+t)^-2.5
    0.235702260396
    """
    p, q, alpha, beta, u = (np.asarray(v, dtype=float) for v in np.broadcast_arrays(p, q, alpha, beta, u))
    a_big = alpha >= beta
    big, small = np.where(a_big, alpha, beta), np.where(a_big, beta, alpha)
    m = p + q - 1.0
    b = np.where(a_big, q, p)
    log_pu = np.log(big + u)
    z = (big - small) / (big + u)
    out = log_hyp2f1(m, b, m + 1.0, z, grad=grad)
    if not grad:
        return -m * log_pu - np.log(m) + out
    lg, (ga, gb, gc, gz) = out
    value = -m * log_pu - np.log(m) + lg
    dm = -log_pu - 1.0 / m + ga + gc
    d_big = -m / (big + u) + gz * (small + u) / (big + u) ** 2
    d_small = -gz / (big + u)
    dp = dm + np.where(a_big, 0.0, gb)
    dq = dm + np.where(a_big, gb, 0.0)
    return value, (dp, dq, np.where(a_big, d_big, d_small), np.where(a_big, d_small, d_big))


def lomax_quantiles(qs: Array, shape: Array, rate: Array, mass: Array) -> Array:
    """Quantiles of a wait that is finite with probability ``mass`` and then Lomax(shape, rate).

    An exponential wait whose rate is ``Gamma(shape, rate)`` has CDF ``1 - (rate/(rate+tau))^shape``
    (a Lomax, or Pareto II, distribution): the next purchase of an alive BG/NBD or MBG/NBD
    customer, who cannot drop out before buying again. With ``mass`` = P(alive) the CDF is
    ``mass * (1 - (rate/(rate+tau))^shape)``, inverted in closed form; levels ``q >= mass`` are never
    reached and give ``+inf``. Returns shape (rows, len(qs)).

    Examples
    --------
    >>> lomax_quantiles(np.array([0.5, 0.9]), np.array([1.0]), np.array([2.0]), np.array([0.8])).round(3).tolist()
    [[3.333, inf]]
    """
    with np.errstate(divide="ignore", invalid="ignore"):  # mass 0: share inf; share 1: tau inf
        share = np.asarray(qs, dtype=float)[None, :] / np.asarray(mass, dtype=float)[:, None]
        tau = rate[:, None] * np.expm1(-np.log1p(-np.minimum(share, 1.0)) / shape[:, None])
    return np.where(share < 1.0, tau, np.inf)


# ----------------------------------------------------------------------------------------------
# an alive BG/NBD-type customer: purchase rate Gamma(A, rate), dropout after each purchase
# Beta(a, bx) (a new BG/NBD customer: the priors; a known one: the posteriors, FHL 2005 section 4;
# an alive MBG/NBD customer is the same with b + 1 for b)
# ----------------------------------------------------------------------------------------------
def bg_expected_given_alive(t: Array, A: Array, rate: Array, bx: Array, a: float, r: float, b: float) -> Array:
    """E[purchases in the next t | alive now], posterior Gamma(A, rate) x Beta(a, bx).

    Given (lambda, p) an alive customer makes ``(1 - exp(-lambda p t)) / p`` purchases on average;
    averaging over the posterior gives FHL 2005 eq. 10, with z = t / (rate + t)::

        c/(a-1) * [1 - (1-z)^A 2F1(A, bx; c; z)],   c = a + bx - 1.

    Euler's transformation 2F1(A, B; c; z) = (1-z)^(c-A-B) 2F1(c-A, c-B; c; z) turns the bracket
    into ``1 - (1-z)^(a-1) 2F1(a+b-1-r, a-1; c; z)``, where only c grows with the frequency, and
    SciPy's ``hyp2f1`` evaluates it fast. Rows where that is not finite, breaks the no-dropout
    bound ``0 <= E <= A t / rate``, or loses more than 8 digits to cancellation (t tiny, or
    a close to 1 where the ratio is 0/0) are recomputed by :func:`beta_average` (quadrature).
    """
    t, A, rate, bx = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (t, A, rate, bx)))
    z = t / (rate + t)
    c = a + bx - 1.0
    bound = A * t / rate
    with np.errstate(all="ignore"):
        h = np.exp((a - 1.0) * np.log1p(-z)) * hyp2f1(a + b - 1.0 - r, a - 1.0, c, z)
        value = c / (a - 1.0) * (1.0 - h)
    bad = (~np.isfinite(value) | (value < 0.0) | (value > bound * (1 + 1e-9))
           | (np.abs(1.0 - h) < 1e-8) | (abs(a - 1.0) < 1e-6)) & (t > 0)
    if np.any(bad):
        value = np.array(value)
        value[bad] = beta_average(_log_expected_given_p, a, bx[bad], A[bad], t[bad] / rate[bad])
    return np.clip(np.where(t > 0, value, 0.0), 0.0, bound)


def _log_expected_given_p(log_p: Array, A: Array, u: Array) -> Array:
    """log E[purchases in t | alive, p] = log[(1 - (1 + p u)^-A) / p], u = t / rate (gamma-averaged).

    With ``y = A log(1 + p u)``, ``log(1 - e^-y) = log y + log((1 - e^-y) / y)``; both parts are
    taken in log space so that nodes where ``p u`` underflows (far left tail) keep the limit
    ``log(A u)`` instead of ``log 0``.
    """
    with np.errstate(divide="ignore"):  # u = t / rate may underflow to 0: log 0 = -inf, E = 0
        log_w = log_p + np.log(u)  # w = p u
    w = np.exp(log_w)
    small = w < 1e-8
    log_log1p_w = np.where(small, log_w - 0.5 * w, np.log(np.where(small, 1.0, np.log1p(w))))
    y = A * np.log1p(w)
    tiny = y < 1e-8
    log_ratio = np.where(tiny, -0.5 * y, log1mexp(-np.where(tiny, 1.0, y)) - np.log(np.where(tiny, 1.0, y)))
    return np.log(A) + log_log1p_w + log_ratio - log_p


def beta_average(log_g: Any, a: float, bx: Array, *args: Array, step: float = 0.25) -> Array:
    """``E[g(p)]`` for ``p ~ Beta(a, bx)`` (one ``bx`` per row) by the trapezoid rule in logit(p).

    In s = logit(p) the density ``p^a (1-p)^bx / B(a, bx)`` is smooth, log-concave and analytic in
    the strip |Im s| < pi, so the trapezoid rule converges geometrically (error about
    exp(-2 pi^2 / step) for smooth g). The grid spans the mode +- 8 standard deviations plus the
    exponential tails (rate a to the left, bx to the right) down to ~1e-17; weights are normalised
    on the grid. ``log_g(log_p, *args)`` gets (rows, nodes) ``log_p`` and (rows, 1) ``args``.
    Slow (hundreds of nodes a row): used only where the closed forms lose accuracy.
    """
    mode = np.log(a) - np.log(bx)
    sd = np.sqrt((a + bx) / (a * bx))
    lo = mode - 8.0 * sd - 40.0 / a
    h = np.minimum(step, sd / 4.0)
    n = int(np.ceil(np.max((16.0 * sd + 40.0 / a + 40.0 / bx) / h))) + 1
    out = np.empty(bx.shape)
    chunk = max(1, 4_000_000 // n)
    for i in range(0, bx.size, chunk):
        sl = slice(i, i + chunk)
        s = lo[sl, None] + h[sl, None] * np.arange(n)[None, :]
        log_p = -np.logaddexp(0.0, -s)
        log_w = a * log_p - bx[sl, None] * np.logaddexp(0.0, s)
        w = np.exp(log_w - log_w.max(axis=1, keepdims=True))
        g = np.exp(log_g(log_p, *(v[sl, None] for v in args)))
        out[sl] = np.sum(w * g, axis=1) / np.sum(w, axis=1)
    return out


def bg_survive_given_alive(t: Array, A: Array, rate: Array, bx: Array, a: float, r: float, b: float) -> Array:
    """P(still alive after t more | alive now) = E[exp(-lambda p t)] = E_p[(1 + p t/rate)^-A].

    Dropout happens only right after a purchase, so given (lambda, p) surviving t more has
    probability exp(-lambda p t). Averaging over the posterior gives 2F1(A, a; a + bx; -t/rate),
    which Pfaff's transformation turns into ``(1-z)^a 2F1(a, a+b-r; a+bx; z)``, z = t/(rate + t),
    where only the third parameter grows with the frequency (SciPy's ``hyp2f1``). Rows where that
    is not a probability, or is below 1e-8 (relative accuracy lost), use :func:`beta_average`.
    """
    t, A, rate, bx = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (t, A, rate, bx)))
    z = t / (rate + t)
    with np.errstate(all="ignore"):
        value = np.exp(a * np.log1p(-z)) * hyp2f1(a, a + b - r, a + bx, z)
    bad = ~((value >= 1e-8) & (value <= 1.0 + 1e-12))
    if np.any(bad):
        value = np.array(value)
        value[bad] = beta_average(_log_survive_given_p, a, bx[bad], A[bad], t[bad] / rate[bad])
    return np.clip(value, 0.0, 1.0)


def _log_survive_given_p(log_p: Array, A: Array, u: Array) -> Array:
    """log P(no dropout in t | alive, p) = -A log(1 + p u), u = t / rate (gamma-averaged)."""
    return -A * np.log1p(np.exp(log_p) * u)


def bg_pmf_given_alive(n: Array, t: Array, A: Array, rate: Array, a: float, bx: Array) -> Array:
    """P(n purchases in the next t | alive now); FHL 2005 eq. 8 with posterior parameters.

    P = B(a, bx+n)/B(a, bx) * NB(n; A, rate/(rate+t))
        + [n > 0] B(a+1, bx+n-1)/B(a, bx) * P(NB(A, rate/(rate+t)) >= n),
    the negative-binomial tail being the regularized incomplete beta I_{t/(rate+t)}(n, A).
    """
    q = t / (rate + t)
    log_nb = (gammaln(A + n) - gammaln(A) - gammaln(n + 1)
              + A * (np.log(rate) - np.log(rate + t)) + xlogy(n, q))
    first = np.exp(betaln(a, bx + n) - betaln(a, bx) + log_nb)
    pos = n > 0
    ns = np.where(pos, n, 1.0)
    second = np.exp(betaln(a + 1.0, bx + ns - 1.0) - betaln(a, bx)) * betainc(ns, A, q)
    return first + np.where(pos, second, 0.0)


def across_one(fn: Any, value: float, gap: float = 1e-4) -> Array:
    """``fn(value)`` for a function analytic in ``value`` but written with a ``1/(value-1)``.

    Closer than ``gap`` to 1 the closed form cancels catastrophically, so the value is linearly
    interpolated between ``fn(1 - gap)`` and ``fn(1 + gap)`` (error of order gap^2 = 1e-8).

    Examples
    --------
    >>> round(float(across_one(lambda v: (v**2 - 1.0) / (v - 1.0), 1.0)), 9)  # v + 1 at v = 1
    2.0
    """
    if abs(value - 1.0) >= gap:
        return fn(value)
    share = (value - (1.0 - gap)) / (2 * gap)
    return (1.0 - share) * fn(1.0 - gap) + share * fn(1.0 + gap)


# ----------------------------------------------------------------------------------------------
# BG/NBD-type likelihoods: L = e^c1(x) (alpha+T)^-(r+x) + e^c2(x) (alpha+t_x)^-(r+x)
# ----------------------------------------------------------------------------------------------
class BGRows:
    """(frequency, recency, T) data with each column's distinct values and codes.

    Special functions then run once per distinct value (a frequency takes ~100 values, T and t_x
    a few hundred in day-granular data) instead of once per row; the per-row work left is a few
    gathers and one ``logaddexp``.
    """

    def __init__(self, x: Array, tx: Array, T: Array) -> None:
        self.x = x
        (self.ix, self.ux), (self.itx, self.utx), (self.iT, self.uT) = (
            pd.factorize(v) for v in (x, tx, T))


def bg_two_term_likelihood(rows: BGRows, r: float, alpha: float, c1: Array, c2: Array,
                           dc1: Array | None = None, dc2: Array | None = None
                           ) -> tuple[Array, Array | None]:
    """Per-row ``log L`` and gradient for ``L = e^c1 (alpha+T)^-(r+x) + e^c2 (alpha+t_x)^-(r+x)``.

    The BG/NBD (Fader, Hardie & Lee 2005, eq. 6) and MBG/NBD likelihoods have this form, with
    ``c1``, ``c2`` depending on the parameters and the frequency only (given per distinct
    frequency, ``rows.ux``; ``c2 = -inf`` drops the second term). The sum is taken in log space
    (``logaddexp``, Hardie note 027). With ``dc1``, ``dc2`` (distinct frequencies x 4: derivatives
    of c1, c2 wrt (r, alpha, a, b)) the gradient is, with ``w1`` the first term's share::

        d log L = w1 d(c1 - (r+x) log(alpha+T)) + (1 - w1) d(c2 - (r+x) log(alpha+t_x))
    """
    ix, take = rows.ix, np.take  # take: the fastest gather (2-D fancy indexing is ~10x slower)
    rx = r + rows.x
    log_T, log_tx = take(np.log(alpha + rows.uT), rows.iT), take(np.log(alpha + rows.utx), rows.itx)
    log_t1 = take(c1, ix) - rx * log_T
    # log(e^t1 + e^t2) = max + log1p(u), u = e^-|t1 - t2|: one exp also gives the share w1
    delta = take(c2, ix) - rx * log_tx - log_t1  # -inf without second term
    u = np.exp(-np.abs(delta))
    log_l = log_t1 + np.maximum(delta, 0.0) + np.log1p(u)
    if dc1 is None:
        return log_l, None
    w1 = np.where(delta <= 0.0, 1.0, u) / (1.0 + u)
    inv_T, inv_tx = take(1.0 / (alpha + rows.uT), rows.iT), take(1.0 / (alpha + rows.utx), rows.itx)
    dc2 = np.where(np.isfinite(c2)[:, None], dc2, 0.0)  # no second term: its share is 0
    g = take(dc2, ix, axis=0)
    g += w1[:, None] * take(dc1 - dc2, ix, axis=0)
    g[:, 0] -= log_tx + w1 * (log_T - log_tx)
    g[:, 1] -= rx * (inv_tx + w1 * (inv_T - inv_tx))
    return log_l, g
