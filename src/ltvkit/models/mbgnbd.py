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
import pandas as pd
from scipy.special import digamma, expit, gammaln

from ltvkit.models._special import (bg_expected_given_alive, bg_pmf_given_alive, bg_survive_given_alive,
                                     lomax_quantiles)
from ltvkit.models.base import Columns, PurchaseModel, _counts, _times, per_distinct


class MBGNBD(PurchaseModel):
    """MBG/NBD model of repeat purchases (Batislam, Denizel & Filiztekin 2007).

    Parameters ``r, alpha`` (Gamma purchase rates, ``alpha`` in the data's time unit) and
    ``a, b`` (Beta dropout probability at each purchase, including the first).

    Parameters
    ----------
    penalizer : float, default 0
        L2 penalty on the parameters (see :class:`ltvkit.models.base.BaseModel`).

    Notes
    -----
    Arguments shared by the prediction methods: ``data`` is a DataFrame with ``frequency``,
    ``recency`` and ``T`` (None = the training data); ``t`` is a time span in the data's unit,
    a scalar or an array broadcastable to the customers; ``n`` a whole number of purchases;
    ``interval`` (e.g. 0.9) returns ``mean``/``low``/``high`` over parameter draws instead of
    the point value. Per-customer methods return a Series indexed like ``data``.

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
    def _log_likelihood(self, params: np.ndarray, d: Columns) -> np.ndarray:
        r, alpha, a, b = params
        x, T = d["frequency"], d["T"]
        # log[Gamma(r+x)/Gamma(r) B(a, b+x+1)/B(a, b)], once per distinct frequency
        counts = _per_count(
            lambda v: gammaln(r + v) + gammaln(b + v + 1) - gammaln(a + b + v + 1), x
        )
        constant = -gammaln(r) + r * np.log(alpha) + gammaln(a + b) - gammaln(b)
        alive_or_dead = np.logaddexp(0.0, _log_death_odds(params, d))
        return counts + constant - (r + x) * np.log(alpha + T) + alive_or_dead

    def _gradient(self, params: np.ndarray, d: Columns) -> np.ndarray:
        r, alpha, a, b = params
        x, tx, T = d["frequency"], d["recency"], d["T"]
        log_ratio = np.log1p((T - tx) / (alpha + tx))
        s = expit(_log_death_odds(params, d, log_ratio))  # likelihood share of "died at t_x"
        psi_r, psi_abx, psi_bx = (
            _per_count(lambda v, c=c: digamma(c + v), x) for c in (r, a + b + 1, b + 1)
        )
        ab = digamma(a + b) - psi_abx
        return np.column_stack(
            [
                psi_r - digamma(r) + np.log(alpha) - np.log(alpha + T) + s * log_ratio,
                r / alpha
                - (r + x) / (alpha + T)
                + s * (r + x) * (1 / (alpha + T) - 1 / (alpha + tx)),
                ab + s / a,
                ab + psi_bx - digamma(b) - s / (b + x),
            ]
        )

    def _initial_params(self, d: Columns, weights: np.ndarray) -> np.ndarray:
        return np.array([1.0, float(np.average(d["T"], weights=weights)) / 4, 1.0, 1.0])

    # ------------------------------------------------------------------ per-customer predictions
    def p_alive(self, data: Any = None, interval: float | None = None) -> pd.Series | pd.DataFrame:
        """Probability that each customer is still alive at the end of observation ``T``.

        ``1 / (1 + a / (b + x) * ((alpha + T) / (alpha + t_x)) ** (r + x))`` — below one even
        for customers without repeat purchases, who may have dropped out after the first.
        """
        return self._predict(_p_alive, data, interval)

    def p_alive_at(
        self, t: Any, data: Any = None, interval: float | None = None
    ) -> pd.Series | pd.DataFrame:
        """Probability that each customer is alive ``t`` time units after the end of observation.

        Dropout only happens at purchases, so ``P(alive at T+t) = P(alive at T) *
        E[(alpha'/(alpha' + p t))^r']`` over the alive customer's posterior
        ``p ~ Beta(a, b+x+1)``, ``r' = r+x``, ``alpha' = alpha+T`` (a Gauss hypergeometric).
        """
        return self._predict(_p_alive_at, data, interval, t=_times(t))

    def expected_purchases(
        self, t: Any, data: Any = None, interval: float | None = None
    ) -> pd.Series | pd.DataFrame:
        """Expected number of purchases of each customer in ``(T, T + t]``.

        ``P(alive) * (a+b+x)/(a-1) * [1 - ((alpha+T)/(alpha+T+t))^(r+x)
        2F1(r+x, b+x+1; a+b+x; t/(alpha+T+t))]`` (Batislam et al. 2007 with the erratum of
        Wagner & Hoppe 2008): the BG/NBD expression with b+1 for b, evaluated by the BG/NBD
        module (an Euler-transformed hypergeometric, quadrature where that is inaccurate).
        """
        return self._predict(_expected_purchases, data, interval, t=_times(t))

    def purchase_probability(self, n: Any, t: Any, data: Any = None) -> pd.Series:
        """Probability that each customer makes exactly ``n`` purchases in ``(T, T + t]``.

        A mixture of "dead at T" (no purchase) and an alive customer whose future is a BG/NBD
        process with parameters ``(r+x, alpha+T, a, b+x+1)`` and no dropout at time T.
        """
        return self._predict(_purchase_probability, data, None, n=_counts(n), t=_times(t))

    def _alive_now(self, params: np.ndarray, d: Columns) -> np.ndarray:
        return _p_alive(params, d)

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
    def expected_purchases_new(self, t: Any, interval: float | None = None) -> Any:
        """Expected repeat purchases of a just-acquired customer in ``(0, t]``.

        ``b/(a-1) * [1 - (alpha/(alpha+t))^r 2F1(r, b+1; a+b; t/(alpha+t))]``.
        """
        return self._predict_new(_expected_purchases_new, _times(t), interval)

    def purchase_probability_new(self, n: Any, t: Any) -> Any:
        """``P(X(t) = n)`` for a just-acquired customer (repeat purchases in ``(0, t]``).

        ``B(a, b+n+1)/B(a, b) NB(n) + B(a+1, b+n)/B(a, b) P(NB >= n)`` with
        ``NB ~ NegBin(r, alpha/(alpha+t))`` — the customer either is alive after ``n``
        purchases or dropped out right after the ``n``-th (or at the first, when ``n = 0``).
        """
        r, alpha, a, b = self._params
        out = _pmf(_counts(n), _times(t), r, alpha, b + 1.0, a, b / (a + b))
        return float(out) if np.ndim(out) == 0 else out


# ---------------------------------------------------------------------- formulas (params, columns)
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
    return expit(-_log_death_odds(params, d))


def _posterior(params: np.ndarray, d: Columns) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Shape and rate of an alive customer's purchase rate, and the b of its dropout Beta."""
    r, alpha, _, b = params
    x = d["frequency"]
    return r + x, alpha + d["T"], b + x + 1.0


# An alive MBG/NBD customer, posterior (r+x, alpha+T) x Beta(a, b+x+1), has the future of an
# alive BG/NBD customer whose posterior is (r+x, alpha+T) x Beta(a, b'+x) with b' = b+1, so the
# BG/NBD helpers (closed forms, with a quadrature fallback where scipy's hyp2f1 fails or a is
# near 1) are called with b+1 -- once per distinct (x, T, t), on which they depend.
def _given_alive(fn: Any, params: np.ndarray, d: Columns, t: np.ndarray) -> np.ndarray:
    r, alpha, a, b = params
    return per_distinct(lambda t_, x, T: fn(t_, r + x, alpha + T, b + x + 1.0, a, r, b + 1.0),
                        t, d["frequency"], d["T"])


def _p_alive_at(params: np.ndarray, d: Columns, t: np.ndarray) -> np.ndarray:
    return _p_alive(params, d) * _given_alive(bg_survive_given_alive, params, d, t)


def _expected_purchases(params: np.ndarray, d: Columns, t: np.ndarray) -> np.ndarray:
    return _p_alive(params, d) * _given_alive(bg_expected_given_alive, params, d, t)


def _purchase_probability(
    params: np.ndarray, d: Columns, n: np.ndarray, t: np.ndarray
) -> np.ndarray:
    return _pmf(n, t, *_posterior(params, d), params[2], _p_alive(params, d))


def _expected_purchases_new(params: np.ndarray, t: np.ndarray) -> np.ndarray:
    # alive after the first purchase with probability b/(a+b), then posterior (r, alpha, a, b+1)
    r, alpha, a, b = params
    t, shape, rate, bx = np.broadcast_arrays(t, r, alpha, b + 1.0)
    return b / (a + b) * bg_expected_given_alive(t, shape, rate, bx, a, r, b + 1.0)


def _pmf(n: Any, t: Any, shape: Any, rate: Any, bx: Any, a: float, alive: Any) -> np.ndarray:
    """P(n purchases in the next t) when alive now with probability ``alive`` (else none)."""
    n, t, shape, rate, bx, alive = np.broadcast_arrays(n, t, shape, rate, bx, alive)
    given_alive = bg_pmf_given_alive(n, t, shape, rate, a, bx)
    return alive * given_alive + (1.0 - alive) * (n == 0)


def _per_count(fn: Any, x: np.ndarray) -> np.ndarray:
    """``fn(x)`` for whole-number ``x``, evaluated once per value 0..max(x) when that is fewer."""
    top = int(np.max(x, initial=0))
    if top >= x.size:
        return fn(x)
    return fn(np.arange(top + 1.0))[x.astype(np.intp)]
