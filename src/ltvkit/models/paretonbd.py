"""Pareto/NBD purchase model (Schmittlein, Morrison & Colombo 1987): who is still buying, and how much.

Model (Schmittlein, Morrison & Colombo 1987, "Counting your customers: who are they and what
will they do next?", Management Science 33(1), 1-24):

* while alive, a customer buys at Poisson rate ``lambda``, ``lambda ~ Gamma(r, alpha)``;
* the lifetime is exponential with rate ``mu``, ``mu ~ Gamma(s, beta)``, independent of ``lambda``
  (dropout can happen at any time, unlike the BG/NBD).

Given a history ``(x, t_x, T)`` and being alive at ``T``, the posterior is
``lambda ~ Gamma(r + x, alpha + T)`` and ``mu ~ Gamma(s, beta + T)``, independent; by the memoryless
lifetime, the future of an alive customer is that of a new customer with parameters
``(r + x, alpha + T, s, beta + T)``. The conditional predictions below rest on that fact.

Likelihood (Fader & Hardie, note 009, "A note on deriving the Pareto/NBD model and related
expressions", in its integral form)::

    L = G(r+x)/G(r) alpha^r beta^s [ (alpha+T)^-(r+x) (beta+T)^-s
                                     + s int_{t_x}^T (alpha+tau)^-(r+x) (beta+tau)^-(s+1) dtau ]

The integral is ``J(t_x) - J(T)`` with ``J(u) = int_u^inf ...``, which note 009 writes with the
Gauss hypergeometric function (split on alpha >= beta vs alpha < beta); both ``J`` are evaluated
in log space by :func:`ltvkit.models._special.log_tail_integral`, and the difference as
``log J(t_x) + log(1 - J(T)/J(t_x))`` (when t_x is close to T the difference loses relative
precision, but the term is then negligible next to the first one). The gradient is analytic
(derivatives of the log-2F1 carried through its series or quadrature).

Speed: ``J`` depends on a row only through (x, u), so it is computed once per distinct pair
(far fewer than rows); on more than 20,000 distinct rows the fit starts from a fit to 20,000
sampled customers (``BaseModel._warm_start``). A million customers (about 200,000 distinct rows)
fit in under 2 s.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd
from scipy.special import digamma, expit, gammaln, roots_legendre

from ltvkit.models._special import log1mexp, log_tail_integral
from ltvkit.models.base import PurchaseModel

__all__ = ["ParetoNBD"]

Array = np.ndarray
_GL_X, _GL_W = roots_legendre(128)
_NEWTON_STEPS = 60  # safeguarded Newton steps (typically 5-8 are needed)


# ----------------------------------------------------------------------------------------------
# likelihood (note 009, integral form)
# ----------------------------------------------------------------------------------------------
def _limit_pairs(x: Array, tx: Array, T: Array) -> tuple[Array, Array, Array]:
    """Distinct (x, u) pairs among the integral limits u = t_x and u = T of all rows, and the map back.

    The integrals depend on a row only through (x, u); in customer data there are far fewer
    distinct pairs than rows, so they are evaluated once per pair.
    """
    code_x, uniq_x = pd.factorize(np.concatenate([x, x]))
    code_u, uniq_u = pd.factorize(np.concatenate([tx, T]))
    inverse, uniq = pd.factorize(code_x.astype(np.int64) * len(uniq_u) + code_u)
    return uniq_x[uniq // len(uniq_u)], uniq_u[uniq % len(uniq_u)], inverse


def _per_distinct(fn: Any, v: Array) -> Array:
    """``fn(v)`` computed once per distinct value of ``v`` (e.g. gammaln of r + frequency)."""
    code, uniq = pd.factorize(v)
    return fn(uniq)[code]


def _log_parts(params: Array, x: Array, tx: Array, T: Array, grad: bool = False,
               pairs: tuple[Array, Array, Array] | None = None) -> tuple:
    """``log_pre, t1, t2`` with ``L = exp(log_pre) (exp(t1) + exp(t2))``; optionally gradient pieces.

    ``t1`` = log of the "alive at T" term, ``t2`` = log of the "died in (t_x, T]" term (-inf when
    t_x = T). ``pairs`` = :func:`_limit_pairs` of the data, when already known.
    """
    r, alpha, s, beta = params
    n = x.shape[0]
    log_pre = _per_distinct(gammaln, r + x) - gammaln(r) + r * np.log(alpha) + s * np.log(beta)
    t1 = -(r + x) * np.log(alpha + T) - s * np.log(beta + T)
    xu, uu, inverse = _limit_pairs(x, tx, T) if pairs is None else pairs
    out = log_tail_integral(r + xu, s + 1.0, alpha, beta, uu, grad=grad)
    log_j = (out[0] if grad else out)[inverse]
    log_jtx, log_jT = log_j[:n], log_j[n:]
    diff = np.minimum(log_jT - log_jtx, 0.0)
    with np.errstate(divide="ignore"):
        t2 = np.log(s) + log_jtx + log1mexp(diff)
    if not grad:
        return log_pre, t1, t2
    return log_pre, t1, t2, log_jtx, diff, tuple(v[inverse] for v in out[1])


def _log_likelihood(params: Array, x: Array, tx: Array, T: Array) -> Array:
    log_pre, t1, t2 = _log_parts(params, x, tx, T)
    return log_pre + np.logaddexp(t1, t2)


def _log_likelihood_and_gradient(params: Array, x: Array, tx: Array, T: Array,
                                 pairs: tuple[Array, Array, Array] | None = None) -> tuple[Array, Array]:
    """Per-row log-likelihood and its gradient wrt (r, alpha, s, beta), shapes (n,) and (n, 4)."""
    r, alpha, s, beta = params
    n = x.shape[0]
    log_pre, t1, t2, log_jtx, diff, dj = _log_parts(params, x, tx, T, grad=True, pairs=pairs)
    total = np.logaddexp(t1, t2)
    w1 = np.exp(t1 - total)
    # d t2 = [dJ(tx) - dJ(T)] / (J(tx) - J(T)); its weight exp(t2 - total) times that is
    # k * (dlogJ(tx) - rho dlogJ(T)) with k = s J(tx) / (e^t1 + e^t2), rho = J(T) / J(tx)
    k = np.exp(np.log(s) + log_jtx - total)
    rho = np.exp(diff)
    dp, dq, da, db = (v[:n] - rho * v[n:] for v in dj)
    g = np.empty((n, 4))
    g[:, 0] = _per_distinct(digamma, r + x) - digamma(r) + np.log(alpha) - w1 * np.log(alpha + T) + k * dp
    g[:, 1] = r / alpha - w1 * (r + x) / (alpha + T) + k * da
    g[:, 2] = np.log(beta) - w1 * np.log(beta + T) + (1.0 - w1) / s + k * dq
    g[:, 3] = s / beta - w1 * s / (beta + T) + k * db
    return log_pre + total, g


def _p_alive(params: Array, x: Array, tx: Array, T: Array) -> Array:
    """P(alive at T | x, t_x, T) = e^t1 / (e^t1 + e^t2) (note 009, eq. for P(alive))."""
    _, t1, t2 = _log_parts(params, x, tx, T)
    return expit(t1 - t2)


# ----------------------------------------------------------------------------------------------
# a customer with parameters (r, alpha, s, beta), alive now (new: the priors; known: posteriors)
# ----------------------------------------------------------------------------------------------
def _expm1_ratio(e: Array, length: Array) -> Array:
    """``(1 - exp(-e L)) / e``, with its limit ``L`` at ``e = 0``."""
    e, length = np.broadcast_arrays(np.asarray(e, dtype=float), np.asarray(length, dtype=float))
    small = np.abs(e * length) < 1e-8
    safe = np.where(small, 1.0, e)
    return np.where(small, length * (1.0 - 0.5 * e * length), -np.expm1(-safe * length) / safe)


def _expected_alive(t: Array, r: Array, alpha: Array, s: float, beta: Array) -> Array:
    """E[X(t)] = r beta / (alpha (s-1)) [1 - (beta/(beta+t))^(s-1)] (SMC 1987; note 009)."""
    return r / alpha * beta * _expm1_ratio(s - 1.0, np.log1p(t / beta))


def _pmf_alive(n: Array, t: Array, r: Array, alpha: Array, s: float, beta: Array) -> Array:
    """P(X(t) = n) for a customer alive at 0 with parameters (r, alpha, s, beta).

    Conditioning on the death time (Fader, Hardie & Lee note 012, "Deriving an expression for
    P(X(t) = x) under the Pareto/NBD model")::

        P(n) = NB(n; r, alpha/(alpha+t)) (beta/(beta+t))^s
               + int_0^t s beta^s (beta+tau)^-(s+1) NB(n; r, alpha/(alpha+tau)) dtau

    where NB is the negative-binomial pmf (Poisson-gamma count over an exposure). The integral is
    computed with 128-point Gauss-Legendre in ``w = log(1 + tau/alpha)`` (a smooth, positive
    integrand), instead of note 012's difference of hypergeometric sums, which cancels badly.
    """
    n, t, r, alpha, beta = np.broadcast_arrays(*(np.asarray(v, dtype=float)
                                                 for v in (n, t, r, alpha, beta)))
    log_c = gammaln(r + n) - gammaln(r) - gammaln(n + 1.0)

    def log_nb(w: Array) -> Array:  # log NB(n; r, e^-w), exposure w = log(1 + tau/alpha)
        with np.errstate(divide="ignore", invalid="ignore"):
            tail = np.where(n[..., None] > 0, n[..., None] * log1mexp(-w), 0.0)
        return log_c[..., None] - r[..., None] * w + tail

    w_end = np.log1p(t / alpha)
    alive_through = np.exp(log_nb(w_end[..., None])[..., 0] - s * np.log1p(t / beta))
    w = 0.5 * w_end[..., None] * (_GL_X + 1.0)
    tau = alpha[..., None] * np.expm1(w)
    log_f = (log_nb(w) + np.log(s) + s * np.log(beta[..., None]) - (s + 1.0) * np.log(beta[..., None] + tau)
             + np.log(alpha[..., None]) + w)
    died = 0.5 * w_end * np.sum(_GL_W * np.exp(log_f), axis=-1)
    return alive_through + died


def _posterior(params: Array, d: dict[str, Array]) -> tuple[Array, Array, Array]:
    r, alpha, _, beta = params
    return r + d["frequency"], alpha + d["T"], beta + d["T"]


class ParetoNBD(PurchaseModel):
    """Pareto/NBD model of repeat purchasing (Schmittlein, Morrison & Colombo 1987).

    Parameters (learned by ``fit``): ``r``, ``alpha`` (gamma heterogeneity of the purchase rate,
    mean ``r/alpha`` per time unit) and ``s``, ``beta`` (gamma heterogeneity of the dropout rate,
    mean ``s/beta``; mean lifetime ``beta/(s-1)`` when s > 1).

    The likelihood (Fader & Hardie note 009) is evaluated in log space with a stable log-2F1
    (see the module docstring) for frequencies and ages into the tens of thousands; its gradient
    is analytic, so fits take seconds on a million customers (identical rows are collapsed).

    Conditional predictions use the posterior of an alive customer, ``Gamma(r+x, alpha+T)`` for
    the purchase rate and ``Gamma(s, beta+T)`` for the dropout rate; ``next_purchase_time``
    returns ``+inf`` for quantiles never reached because the customer may have dropped out.

    Parameters
    ----------
    penalizer : float
        L2 penalty on the parameters (0 = maximum likelihood).

    Examples
    --------
    >>> import pandas as pd
    >>> from ltvkit import ParetoNBD
    >>> m = ParetoNBD.from_params(r=0.553, alpha=10.578, s=0.606, beta=11.669)
    >>> d = pd.DataFrame({"frequency": [0, 2, 2], "recency": [0.0, 5.0, 35.0], "T": [39.0, 39.0, 39.0]})
    >>> m.p_alive(d).round(3).tolist()
    [0.294, 0.129, 0.946]
    >>> m.next_purchase_time(d, q=(0.1, 0.5)).round(2).to_numpy().tolist()
    [[94.15, inf], [83.16, inf], [2.25, 19.73]]
    """

    param_names: ClassVar[tuple[str, ...]] = ("r", "alpha", "s", "beta")

    # ---- hooks for the MLE base ----
    def _prepare(self, d: dict[str, Array]) -> tuple[tuple[Array, Array, Array], tuple[Array, Array, Array]]:
        """The data columns and their distinct integral limits (found once per data set)."""
        cols = (d["frequency"], d["recency"], d["T"])
        return cols, _limit_pairs(*cols)

    def _log_likelihood(self, params: Array, d: dict[str, Array]) -> Array:
        cols, pairs = self._prepared(d)
        log_pre, t1, t2 = _log_parts(params, *cols, pairs=pairs)
        return log_pre + np.logaddexp(t1, t2)

    def _log_likelihood_and_gradient(self, params: Array, d: dict[str, Array]) -> tuple[Array, Array]:
        cols, pairs = self._prepared(d)
        return _log_likelihood_and_gradient(params, *cols, pairs=pairs)

    def _initial_params(self, d: dict[str, Array], weights: Array) -> Array:
        rate = np.average(d["frequency"] / np.maximum(d["T"], 1e-9), weights=weights)
        return np.array([1.0, 1.0 / max(rate, 1e-3), 1.0, 1.0 / max(rate, 1e-3)])

    # ---- conditional predictions ----
    @staticmethod
    def _expected_purchases(params: Array, d: dict[str, Array], t: Any) -> Array:
        """Expected purchases in (T, T + t] given each customer's history.

        ``E = P(alive) * (r+x)(beta+T) / ((alpha+T)(s-1)) * [1 - ((beta+T)/(beta+T+t))^(s-1)]``
        (Schmittlein, Morrison & Colombo 1987; note 009), with the s = 1 limit handled.

        Examples
        --------
        >>> import pandas as pd
        >>> m = ParetoNBD.from_params(r=0.553, alpha=10.578, s=0.606, beta=11.669)
        >>> d = pd.DataFrame({"frequency": [2], "recency": [30.43], "T": [38.86]})
        >>> m.expected_purchases(39, d).round(3).tolist()
        [1.455]
        """
        A, R, S = _posterior(params, d)
        t = np.broadcast_to(np.asarray(t, dtype=float), A.shape)
        alive = _p_alive(params, d["frequency"], d["recency"], d["T"])
        return alive * _expected_alive(t, A, R, params[2], S)

    @staticmethod
    def _p_alive(params: Array, d: dict[str, Array]) -> Array:
        """P(alive at T | history) (note 009): the share of the likelihood from "alive at T".

        Examples
        --------
        >>> import pandas as pd
        >>> m = ParetoNBD.from_params(r=0.553, alpha=10.578, s=0.606, beta=11.669)
        >>> m.p_alive(pd.DataFrame({"frequency": [3], "recency": [5.0], "T": [39.0]})).round(3).tolist()
        [0.057]
        """
        return _p_alive(params, d["frequency"], d["recency"], d["T"])

    @staticmethod
    def _p_alive_at(params: Array, d: dict[str, Array], t: Any) -> Array:
        """P(still alive at T + t | history) = P(alive) * ((beta+T) / (beta+T+t))^s.

        Given alive at T the dropout rate is ``mu ~ Gamma(s, beta+T)``, and surviving t more has
        probability ``E[exp(-mu t)]``.

        Examples
        --------
        >>> import pandas as pd
        >>> m = ParetoNBD.from_params(r=0.553, alpha=10.578, s=0.606, beta=11.669)
        >>> d = pd.DataFrame({"frequency": [2], "recency": [30.0], "T": [39.0]})
        >>> round(float(m.p_alive_at(52, d)[0] / m.p_alive(d)[0]), 4)  # (50.669/102.669)^0.606
        0.6518
        """
        _, _, S = _posterior(params, d)
        t = np.broadcast_to(np.asarray(t, dtype=float), S.shape)
        alive = _p_alive(params, d["frequency"], d["recency"], d["T"])
        return alive * np.exp(-params[2] * np.log1p(t / S))

    @staticmethod
    def _purchase_probability(params: Array, d: dict[str, Array], n: Any, t: Any) -> Array:
        """P(exactly n purchases in (T, T + t] | history) (the conditional PMF of note 028).

        ``P(n) = (1 - P(alive)) [n = 0] + P(alive) P_new(n, t; r+x, alpha+T, s, beta+T)``: a
        customer dead at T buys nothing; an alive one is a new customer with the posterior
        parameters. ``n`` and ``t`` broadcast against the customers.

        Examples
        --------
        >>> import pandas as pd
        >>> m = ParetoNBD.from_params(r=0.553, alpha=10.578, s=0.606, beta=11.669)
        >>> d = pd.DataFrame({"frequency": [2], "recency": [30.0], "T": [39.0]})
        >>> p = sum(m.purchase_probability(k, 39, d) for k in range(200))
        >>> round(float(p[0]), 6)
        1.0
        """
        A, R, S = _posterior(params, d)
        n = np.broadcast_to(np.asarray(n, dtype=float), A.shape)
        t = np.broadcast_to(np.asarray(t, dtype=float), A.shape)
        alive = _p_alive(params, d["frequency"], d["recency"], d["T"])
        return alive * _pmf_alive(n, t, A, R, params[2], S) + (1.0 - alive) * (n == 0)

    def _wait_quantiles(self, params: Array, d: dict[str, Array], qs: Array, alive: Array) -> Array:
        """Quantiles of the wait to the next purchase (see :meth:`next_purchase_time`).

        An alive customer buys next before dropping out and within tau with probability
        ``lambda/(lambda+mu) (1 - exp(-(lambda+mu) tau))``; averaged over the posterior
        ``Gamma(r+x, alpha+T) x Gamma(s, beta+T)`` (A = r+x, R = alpha+T, S = beta+T)::

            P(next purchase within tau) = P(alive) * A R^A S^s (J(0) - J(tau)),
            J(u) = int_u^inf (R+v)^-(A+1) (S+v)^-s dv

        (``J`` by :func:`~ltvkit.models._special.log_tail_integral`). It tends to
        ``P(alive) E[lambda/(lambda+mu)] < 1``: a level above that is never reached (``+inf``).
        ``log J(tau) = log J(0) + log(1 - q / reach)`` is solved by Newton's method in
        ``v = log(1 + tau/R)``, where ``log J`` is nearly linear (slope -(A+s) far out; exactly so
        when R = S, which gives the starting point) and its derivative is the closed-form density;
        steps leaving the bracket known so far bisect it.
        """
        A, R, S = _posterior(params, d)
        s = params[2]
        log_j0 = log_tail_integral(A + 1.0, s, R, S, 0.0)
        reach = alive * np.exp(np.log(A) + A * np.log(R) + s * np.log(S) + log_j0)
        n, k = A.size, qs.size
        ok = qs[None, :] < reach[:, None]
        share = qs[None, :] / np.maximum(reach, np.finfo(float).tiny)[:, None]  # < 1 where ok
        log_keep = np.log1p(-np.where(ok, share, 0.5))  # log J(tau) / J(0) at the quantile
        goal = (log_j0[:, None] + log_keep).ravel()
        rows = np.repeat(np.arange(n), k)
        v = (-log_keep / (A + s)[:, None]).ravel()  # exact when alpha = beta (J a pure power)
        lo, hi = np.zeros(n * k), np.full(n * k, np.inf)
        todo = np.flatnonzero(ok.ravel())
        for _ in range(_NEWTON_STEPS):
            if not todo.size:
                break
            i = rows[todo]
            tau = R[i] * np.expm1(v[todo])
            log_j = log_tail_integral(A[i] + 1.0, s, R[i], S[i], tau)
            gap = log_j - goal[todo]  # decreasing in v: > 0 means the root lies further out
            lo[todo] = np.where(gap > 0, v[todo], lo[todo])
            hi[todo] = np.where(gap > 0, hi[todo], v[todo])
            # d log J / dv = -(R + tau) (R + tau)^-(A+1) (S + tau)^-s / J(tau)
            slope = -np.exp(-A[i] * np.log(R[i] + tau) - s * np.log(S[i] + tau) - log_j)
            with np.errstate(divide="ignore", invalid="ignore"):  # density underflow: bisect
                step = v[todo] - gap / slope
            done = np.abs(step - v[todo]) <= 1e-10 * np.maximum(1.0, v[todo])
            inside = done | ((step > lo[todo]) & (step < hi[todo]))
            bisect = np.where(np.isfinite(hi[todo]), 0.5 * (lo[todo] + hi[todo]), 2.0 * v[todo] + 1.0)
            v[todo] = np.where(inside, step, bisect)
            todo = todo[~done]
        with np.errstate(over="ignore"):
            tau = (R[rows] * np.expm1(v)).reshape(n, k)
        return np.where(ok, tau, np.inf)

    # ---- new customers ----
    @staticmethod
    def _expected_purchases_new(params: Array, t: Any) -> Array:
        """Expected repeat purchases of a new customer in (0, t]: r beta/(alpha (s-1)) [1 - (beta/(beta+t))^(s-1)].

        Examples
        --------
        >>> m = ParetoNBD.from_params(r=0.553, alpha=10.578, s=0.606, beta=11.669)
        >>> m.expected_purchases_new([39, 78]).round(3).tolist()
        [1.213, 1.909]
        """
        r, alpha, s, beta = params
        return _expected_alive(np.asarray(t, dtype=float), r, alpha, s, beta)

    def purchase_probability_new(self, n: Any, t: Any) -> Array:
        """P(X(t) = n) for a new customer (note 012); ``n`` and ``t`` broadcast.

        Examples
        --------
        >>> m = ParetoNBD.from_params(r=0.553, alpha=10.578, s=0.606, beta=11.669)
        >>> round(float(sum(m.purchase_probability_new(k, 39) for k in range(300))), 6)
        1.0
        """
        r, alpha, s, beta = self._params
        n, t = np.broadcast_arrays(np.asarray(n, dtype=float), np.asarray(t, dtype=float))
        return _pmf_alive(n, t, np.full(n.shape, r), np.full(n.shape, alpha), s, np.full(n.shape, beta))
