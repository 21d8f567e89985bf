"""MBG/NBD repeat-purchase model: BG/NBD where customers may drop out at the first purchase too.

Batislam, Denizel & Filiztekin (2007), "Empirical validation and comparison of models for
customer base analysis", International Journal of Research in Marketing 24(3), 201-209, with
the erratum of Wagner & Hoppe (2008), IJRM 25(3). The same model is ``mbgcnbd`` (k = 1) in the
R package BTYDplus and ``ModifiedBetaGeoFitter`` in lifetimes.

Assumptions: while alive, a customer buys as a Poisson process with rate ``lambda``; at the
first purchase (time 0) and after every repeat purchase the customer drops out with
probability ``p``; ``lambda ~ Gamma(r, alpha)`` and ``p ~ Beta(a, b)`` across customers,
independently. Unlike BG/NBD, customers with no repeat purchase may be dead, so
``P(alive)`` is below one for them too.

For a customer with ``x`` repeat purchases, the last at ``t_x``, observed for ``T``:

.. math::

    L = \\frac{\\Gamma(r+x)\\alpha^r}{\\Gamma(r)} \\frac{B(a, b+x+1)}{B(a, b)}
        \\left[(\\alpha+T)^{-(r+x)} + \\frac{a}{b+x}(\\alpha+t_x)^{-(r+x)}\\right]

Given that the customer is alive at ``T``, ``lambda ~ Gamma(r+x, alpha+T)`` and
``p ~ Beta(a, b+x+1)`` independently, and the future is a BG/NBD process without the
initial dropout; every conditional expression below follows from that.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import digamma, expit, gammaln

from ltvkit.models._special import (
    BGRows,
    bg_expected_given_alive,
    bg_pmf_given_alive,
    bg_survive_given_alive,
    bg_two_term_likelihood,
    lomax_quantiles,
)
from ltvkit.models.base import Columns, PurchaseModel, _counts, _times, per_distinct


# ---------------------------------------------------------------------- formulas (params, columns)
def _log_likelihood_and_gradient(params: np.ndarray, rows: BGRows, grad: bool = True
                                 ) -> tuple[np.ndarray, np.ndarray | None]:
    """Per-row log-likelihood (see the module docstring) and its gradient wrt (r, alpha, a, b).

    ``L = c1 (alpha+T)^-(r+x) + c2 (alpha+t_x)^-(r+x)`` with, per frequency,
    c1 = G(r+x) alpha^r / G(r) B(a, b+x+1)/B(a, b) and c2 = c1 a/(b+x), by
    :func:`~ltvkit.models._special.bg_two_term_likelihood`.
    """
    r, alpha, a, b = params
    ux = rows.ux
    c1 = (gammaln(r + ux) - gammaln(r) + r * np.log(alpha)
          + gammaln(b + ux + 1) - gammaln(a + b + ux + 1) + gammaln(a + b) - gammaln(b))
    c2 = c1 + np.log(a) - np.log(b + ux)
    if not grad:
        return bg_two_term_likelihood(rows, r, alpha, c1, c2)
    ab = digamma(a + b) - digamma(a + b + ux + 1)
    dc1 = np.column_stack([digamma(r + ux) - digamma(r) + np.log(alpha), np.full(ux.shape, r / alpha),
                           ab, ab + digamma(b + ux + 1) - digamma(b)])
    dc2 = dc1 + np.column_stack([np.zeros((ux.size, 2)), np.full(ux.shape, 1.0 / a), -1.0 / (b + ux)])
    return bg_two_term_likelihood(rows, r, alpha, c1, c2, dc1, dc2)


def _log_death_odds(
    params: np.ndarray, d: Columns, log_ratio: np.ndarray | None = None
) -> np.ndarray:
    """log of P(dead at T) / P(alive at T) given the customer's data.

    ``log_ratio`` is ``log((alpha+T)/(alpha+t_x))`` when the caller already has it.
    """
    r, alpha, a, b = params
    x, tx, T = d["frequency"], d["recency"], d["T"]
    if log_ratio is None:
        log_ratio = np.log1p((T - tx) / (alpha + tx))
    return np.log(a) - np.log(b + x) + (r + x) * log_ratio


def _p_alive(params: np.ndarray, d: Columns) -> np.ndarray:
    """Probability that each customer is still alive at the end of observation ``T``.

    ``1 / (1 + a / (b + x) * ((alpha + T) / (alpha + t_x)) ** (r + x))`` — below one even
    for customers without repeat purchases, who may have dropped out after the first.
    """
    return expit(-_log_death_odds(params, d))


def _posterior(params: np.ndarray, d: Columns) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Shape and rate of an alive customer's purchase rate, and the b of its dropout Beta."""
    r, alpha, _, b = params
    x = d["frequency"]
    return r + x, alpha + d["T"], b + x + 1.0


# An alive MBG/NBD customer, posterior (r+x, alpha+T) x Beta(a, b+x+1), has the future of an
# alive BG/NBD customer whose posterior is (r+x, alpha+T) x Beta(a, b'+x) with b' = b+1, so the
# helpers of ltvkit.models._special (closed forms, with a quadrature fallback where scipy's hyp2f1 fails or a is
# near 1) are called with b+1 -- once per distinct (x, T, t), on which they depend.
def _given_alive(fn: Any, params: np.ndarray, d: Columns, t: np.ndarray) -> np.ndarray:
    r, alpha, a, b = params
    return per_distinct(lambda t_, x, T: fn(t_, r + x, alpha + T, b + x + 1.0, a, r, b + 1.0),
                        t, d["frequency"], d["T"])


def _p_alive_at(params: np.ndarray, d: Columns, t: np.ndarray) -> np.ndarray:
    """Probability that each customer is alive ``t`` time units after the end of observation.

    Dropout only happens at purchases, so ``P(alive at T+t) = P(alive at T) *
    E[(alpha'/(alpha' + p t))^r']`` over the alive customer's posterior
    ``p ~ Beta(a, b+x+1)``, ``r' = r+x``, ``alpha' = alpha+T`` (a Gauss hypergeometric).
    """
    return _p_alive(params, d) * _given_alive(bg_survive_given_alive, params, d, t)


def _expected_purchases(params: np.ndarray, d: Columns, t: np.ndarray) -> np.ndarray:
    """Expected number of purchases of each customer in ``(T, T + t]``.

    ``P(alive) * (a+b+x)/(a-1) * [1 - ((alpha+T)/(alpha+T+t))^(r+x)
    2F1(r+x, b+x+1; a+b+x; t/(alpha+T+t))]`` (Batislam et al. 2007 with the erratum of
    Wagner & Hoppe 2008): the BG/NBD expression with b+1 for b, evaluated by the BG/NBD
    module (an Euler-transformed hypergeometric, quadrature where that is inaccurate).
    """
    return _p_alive(params, d) * _given_alive(bg_expected_given_alive, params, d, t)


def _purchase_probability(
    params: np.ndarray, d: Columns, n: np.ndarray, t: np.ndarray
) -> np.ndarray:
    """Probability that each customer makes exactly ``n`` purchases in ``(T, T + t]``.

    A mixture of "dead at T" (no purchase) and an alive customer whose future is a BG/NBD
    process with parameters ``(r+x, alpha+T, a, b+x+1)`` and no dropout at time T.
    """
    return _pmf(n, t, *_posterior(params, d), params[2], _p_alive(params, d))


def _expected_purchases_new(params: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Expected repeat purchases of a just-acquired customer in ``(0, t]``.

    ``b/(a-1) * [1 - (alpha/(alpha+t))^r 2F1(r, b+1; a+b; t/(alpha+t))]``.
    """
    # alive after the first purchase with probability b/(a+b), then posterior (r, alpha, a, b+1)
    r, alpha, a, b = params
    t, shape, rate, bx = np.broadcast_arrays(t, r, alpha, b + 1.0)
    return b / (a + b) * bg_expected_given_alive(t, shape, rate, bx, a, r, b + 1.0)


def _pmf(n: Any, t: Any, shape: Any, rate: Any, bx: Any, a: float, alive: Any) -> np.ndarray:
    """P(n purchases in the next t) when alive now with probability ``alive`` (else none)."""
    n, t, shape, rate, bx, alive = np.broadcast_arrays(n, t, shape, rate, bx, alive)
    given_alive = bg_pmf_given_alive(n, t, shape, rate, a, bx)
    return alive * given_alive + (1.0 - alive) * (n == 0)


class MBGNBD(PurchaseModel):
    """MBG/NBD model of repeat purchases (Batislam, Denizel & Filiztekin 2007).

    Parameters ``r, alpha`` (Gamma purchase rates, ``alpha`` in the data's time unit) and
    ``a, b`` (Beta dropout probability at each purchase, including the first).

    Parameters
    ----------
    penalizer : float, default 0
        L2 penalty on the parameters (see :class:`ltvkit.models.base.BaseModel`).

    The prediction methods are those of :class:`ltvkit.models.base.PurchaseModel`; the formulas
    are in the module functions they call (``_p_alive``, ``_expected_purchases``, ...).

    Examples
    --------
    >>> import pandas as pd
    >>> m = MBGNBD.from_params(r=0.525, alpha=6.183, a=0.891, b=1.614)
    >>> data = pd.DataFrame({"frequency": [0, 2], "recency": [0.0, 30.0], "T": [38.0, 38.0]})
    >>> m.p_alive(data).round(3).tolist()
    [0.392, 0.71]
    >>> round(m.expected_purchases_new(39.0), 3)
    1.183
    """

    param_names = ("r", "alpha", "a", "b")

    # ------------------------------------------------------------------ likelihood
    def _prepare(self, d: Columns) -> BGRows:
        return BGRows(d["frequency"], d["recency"], d["T"])

    def _log_likelihood(self, params: np.ndarray, d: Columns) -> np.ndarray:
        return _log_likelihood_and_gradient(params, self._prepared(d), grad=False)[0]

    def _log_likelihood_and_gradient(self, params: np.ndarray, d: Columns
                                     ) -> tuple[np.ndarray, np.ndarray | None]:
        return _log_likelihood_and_gradient(params, self._prepared(d))

    def _initial_params(self, d: Columns, weights: np.ndarray) -> np.ndarray:
        return np.array([1.0, float(np.average(d["T"], weights=weights)) / 4, 1.0, 1.0])

    # ------------------------------------------------------------------ per-customer predictions
    # formulas of the predictions (module functions above; public methods in PurchaseModel)
    _p_alive = staticmethod(_p_alive)
    _p_alive_at = staticmethod(_p_alive_at)
    _expected_purchases = staticmethod(_expected_purchases)
    _purchase_probability = staticmethod(_purchase_probability)
    _expected_purchases_new = staticmethod(_expected_purchases_new)

    def _wait_quantiles(self, params: np.ndarray, d: Columns, qs: np.ndarray,
                        alive: np.ndarray) -> np.ndarray:
        """Quantiles of the wait to the next purchase (see :meth:`next_purchase_time`).

        An alive customer drops out only at purchases, so
        ``P(next purchase within tau) = P(alive) * (1 - ((alpha+T)/(alpha+T+tau))^(r+x))``,
        inverted in closed form (:func:`~ltvkit.models._special.lomax_quantiles`); ``+inf`` when
        ``q >= P(alive)``: the customer has probably dropped out already.
        """
        shape, rate, _ = _posterior(params, d)
        return lomax_quantiles(qs, shape, rate, alive)

    # ------------------------------------------------------------------ a new customer
    def purchase_probability_new(self, n: Any, t: Any) -> Any:
        """``P(X(t) = n)`` for a just-acquired customer (repeat purchases in ``(0, t]``).

        ``B(a, b+n+1)/B(a, b) NB(n) + B(a+1, b+n)/B(a, b) P(NB >= n)`` with
        ``NB ~ NegBin(r, alpha/(alpha+t))`` — the customer either is alive after ``n``
        purchases or dropped out right after the ``n``-th (or at the first, when ``n = 0``).
        """
        r, alpha, a, b = self._params
        out = _pmf(_counts(n), _times(t), r, alpha, b + 1.0, a, b / (a + b))
        return float(out) if np.ndim(out) == 0 else out
