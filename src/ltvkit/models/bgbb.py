"""BG/BB model of repeat purchases when customers can buy only at discrete opportunities.

Fader, Hardie & Shang (2010), "Customer-base analysis in a discrete-time noncontractual
setting", Marketing Science 29(6), 1086-1108 (FHS below); derivations in Bruce Hardie's
note 010. Typical data: yearly donations, annual events, issues of a publication.

Assumptions: at the start of each opportunity a living customer drops out for good with
probability ``theta``; a customer alive at an opportunity buys with probability ``p``;
``p ~ Beta(alpha, beta)`` and ``theta ~ Beta(gamma, delta)`` across customers, independently.
Data per customer: ``frequency`` x (repeat purchases), ``recency`` t_x (opportunity of the last
one, 0 if none) and ``T`` = n (opportunities observed after the first purchase).

Likelihood (FHS eq. 5):

.. math::

    L = \\frac{B(\\alpha+x, \\beta+n-x)}{B(\\alpha, \\beta)}
        \\frac{B(\\gamma, \\delta+n)}{B(\\gamma, \\delta)}
      + \\sum_{i=0}^{n-t_x-1} \\frac{B(\\alpha+x, \\beta+t_x-x+i)}{B(\\alpha, \\beta)}
        \\frac{B(\\gamma+1, \\delta+t_x+i)}{B(\\gamma, \\delta)}

The first term is "still alive at opportunity n", the others "dropped out at the start of
opportunity t_x+i+1". Given alive at n, ``p ~ Beta(alpha+x, beta+n-x)`` and
``theta ~ Beta(gamma, delta+n)``, and the future is that of a new customer with these
parameters — every conditional expression below follows from that.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy.special import betaln, digamma, gammaln, logsumexp

from ltvkit.errors import InputError
from ltvkit.models._special import across_one
from ltvkit.models.base import Columns, PurchaseModel, _check_rows

#: opportunities summed exactly by next_purchase_time; farther ones are integrated on a grid
_HORIZON = 2000
_GRID = 1000


# ---------------------------------------------------------------------- formulas (params, columns)
def _log_terms(params: np.ndarray, d: Columns) -> tuple[np.ndarray, ...]:
    """The likelihood's terms in log space, shape (rows, 1 + max(n - t_x)).

    Column 0 is "alive at n"; column 1+i is "dropped out at the start of opportunity
    t_x+i+1" (-inf past n - t_x). Also returns the integer arrays that index the gradient's
    tables: ``x``, the opportunities survived ``j`` and whether a term is a dropout (``dead``).
    All arguments of the Beta functions are a parameter plus a whole number, so each log-Gamma
    is looked up in a table over 0..max(n) instead of being evaluated per term.
    """
    al, be, ga, de = params
    x, tx, n = (d[c].astype(np.intp)[:, None] for c in ("frequency", "recency", "T"))
    i = np.arange(int(np.max(n - tx, initial=0)))[None, :]
    valid = np.concatenate([np.ones_like(n, dtype=bool), i < n - tx], axis=1)
    j = np.where(valid, np.concatenate([n, tx + i], axis=1), n)
    dead = np.concatenate([[0], np.ones(i.shape[1], dtype=np.intp)])[None, :]
    m = np.arange(int(np.max(n, initial=0)) + 2.0)
    log_terms = (
        gammaln(al + m)[x] + gammaln(be + m)[j - x] - gammaln(al + be + m)[j]
        + np.where(dead, gammaln(ga + 1.0), gammaln(ga))
        + gammaln(de + m)[j] - gammaln(ga + de + m)[j + dead]
        - betaln(al, be) - betaln(ga, de)
    )  # fmt: skip
    return np.where(valid, log_terms, -np.inf), x, j, dead


def _log_alive_at_n(params: np.ndarray, d: Columns) -> np.ndarray:
    """log P(alive at opportunity n | data)."""
    log_terms = _log_terms(params, d)[0]
    return log_terms[:, 0] - logsumexp(log_terms, axis=1)


def _posterior(params: np.ndarray, d: Columns) -> tuple[np.ndarray, np.ndarray, float, np.ndarray]:
    """(alpha', beta', gamma, delta') of a customer alive at opportunity n."""
    al, be, ga, de = params
    x, n = d["frequency"], d["T"]
    return al + x, be + n - x, ga, de + n


def _p_alive(params: np.ndarray, d: Columns) -> np.ndarray:
    """Probability that each customer is alive at the next opportunity, ``n + 1``.

    The paper's definition (FHS eq. 11): ``B(alpha+x, beta+n-x)/B(alpha, beta)
    B(gamma, delta+n+1)/B(gamma, delta) / L``. Same as ``p_alive_at(1)``; ``p_alive_at(0)``
    is the (larger) probability of having been alive at the last observed opportunity ``n``.
    """
    return _p_alive_at(params, d, np.asarray(1.0))


def _p_alive_at(params: np.ndarray, d: Columns, t: np.ndarray) -> np.ndarray:
    """Probability that each customer is alive at opportunity ``n + t`` (FHS eq. A10)."""
    _, _, ga, dn = _posterior(params, d)
    return np.exp(_log_alive_at_n(params, d) + betaln(ga, dn + t) - betaln(ga, dn))


def _expected_purchases(params: np.ndarray, d: Columns, t: np.ndarray) -> np.ndarray:
    """Expected purchases of each customer over the next ``t`` opportunities (FHS eq. 13).

    ``P(alive at n) (alpha+x)/(alpha+beta+n) sum_{k=1..t} B(gamma, d+k)/B(gamma, d)``,
    the sum in the closed form ``delta'/(gamma-1) [1 - Gamma(gamma+delta')Gamma(1+delta'+t) /
    (Gamma(gamma+delta'+t)Gamma(1+delta'))]`` with ``delta' = delta+n``.
    """
    return np.exp(_log_alive_at_n(params, d)) * _expected_new(*_posterior(params, d), t)


def _purchase_probability(
    params: np.ndarray, d: Columns, n: np.ndarray, t: np.ndarray
) -> np.ndarray:
    """Probability of exactly ``n`` purchases in each customer's next ``t`` opportunities.

    ``P(alive at n) P_new(n; t | alpha+x, beta+n-x, gamma, delta+n)
    + [n = 0] (1 - P(alive at n))``
    where ``P_new`` is FHS eq. 7 (see :meth:`purchase_probability_new`).
    """
    alive = np.exp(_log_alive_at_n(params, d))
    return alive * _pmf_new(n, t, *_posterior(params, d)) + (1.0 - alive) * (n == 0)


def _expected_purchases_new(params: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Expected purchases of a just-acquired customer over ``t`` opportunities (FHS eq. 9).

    ``alpha/(alpha+beta) delta/(gamma-1) [1 - Gamma(gamma+delta)Gamma(1+delta+t) /
    (Gamma(gamma+delta+t)Gamma(1+delta))]``.
    """
    return _expected_new(*params, t)


# ---------------------------------------------------------------------- a customer alive at 0
def _expected_new(al: Any, be: Any, ga: float, de: Any, t: Any) -> np.ndarray:
    """Expected purchases over t opportunities: E[p] sum_{k=1..t} E[(1-theta)^k]."""
    return al / (al + be) * across_one(lambda g: _survival_sum(g, de, t), ga)


def _survival_sum(ga: float, de: Any, t: Any) -> np.ndarray:
    """sum_{k=1..t} B(ga, de+k)/B(ga, de), telescoped: de/(ga-1) [1 - G(1+de+t)/G(1+de)]
    with G(u) = Gamma(u)/Gamma(ga-1+u)."""
    log_ratio = (gammaln(1 + de + t) - gammaln(ga + de + t)) - (gammaln(1 + de) - gammaln(ga + de))
    return -de * np.expm1(log_ratio) / (ga - 1.0)


def _pmf_new(k: np.ndarray, t: np.ndarray, al: Any, be: Any, ga: float, de: Any) -> np.ndarray:
    """P(k purchases in t opportunities | alive at 0), FHS eq. 7, vectorised over rows.

    The sum over i = k..t-1 ("dropped out at the start of opportunity i+1 after k purchases")
    runs over the columns of a (rows x max t) array, masked outside k <= i < t.
    """
    k, t, al, be, de = (
        np.asarray(v, dtype=float).ravel() for v in np.broadcast_arrays(k, t, al, be, de)
    )
    k, t, al, be, de = (v[:, None] for v in (k, t, al, be, de))
    base = -betaln(al, be) - betaln(ga, de)
    alive = (
        _log_choose(t, np.minimum(k, t))
        + betaln(al + k, be + np.maximum(t - k, 0))
        + betaln(ga, de + t)
        + base
    )
    i = np.arange(int(np.max(t, initial=0)))[None, :]
    valid = (i >= k) & (i < t)
    ii = np.where(valid, i, k)
    dropped = _log_choose(ii, k) + betaln(al + k, be + ii - k) + betaln(ga + 1.0, de + ii) + base
    terms = np.concatenate(
        [np.where(k <= t, alive, -np.inf), np.where(valid, dropped, -np.inf)], axis=1
    )
    return np.exp(logsumexp(terms, axis=1))


def _log_choose(m: np.ndarray, k: np.ndarray) -> np.ndarray:
    return gammaln(m + 1) - gammaln(k + 1) - gammaln(m - k + 1)


def _next_purchase_quantiles(params: np.ndarray, d: Columns, qs: np.ndarray,
                             alive: np.ndarray) -> np.ndarray:
    """Smallest k with P(purchase within k opportunities | data) >= q, shape (rows, len(qs)).

    ``F(k) = alive sum_{j<=k} f(j)`` (``alive`` = P(alive at n), shape (rows, 1)) with ``f(j) = E[p (1-p)^(j-1) (1-theta)^j]`` over the
    posterior. The first ``_HORIZON`` terms are summed exactly. Beyond, for the rows that need
    it, ``f`` (smooth in j) is integrated on a log-spaced grid up to
    ``S = 1000 max(_HORIZON, beta', delta')``, where it has reached its power law
    ``f(s) ~ C s^-(alpha'+gamma+1)``, whose tail integral closes ``P(ever buys again) = F(inf)``.
    """
    within = alive * np.cumsum(_first_purchase_exact(params, d), axis=1)
    out = np.empty((len(alive), len(qs)))
    for col, q in enumerate(qs):  # a handful of quantile levels, not customers
        out[:, col] = np.where(within[:, -1] >= q, np.argmax(within >= q, axis=1) + 1.0, np.inf)
    far_rows = np.flatnonzero(within[:, -1] < qs.max())
    if far_rows.size:
        sub = {c: v[far_rows] for c, v in d.items()}
        exact_sum = within[far_rows, -1:]
        far = _far_quantiles(params, sub, alive[far_rows], exact_sum, qs)
        out[far_rows] = np.where(exact_sum >= qs[None, :], out[far_rows], far)
    return out


def _first_purchase_exact(params: np.ndarray, d: Columns) -> np.ndarray:
    """f(j) for j = 1.._HORIZON, shape (rows, _HORIZON), from log-Gamma tables over whole numbers."""
    al, be, ga, de = params
    x, n = d["frequency"].astype(np.intp), d["T"].astype(np.intp)
    m = np.arange(int(np.max(n, initial=0)) + _HORIZON + 1.0)
    j = np.arange(1, _HORIZON + 1)[None, :]
    a1, b1, d1 = al + x, be + n - x, de + n  # the posterior of a customer alive at n
    row = (np.log(a1) - gammaln(b1) + gammaln(a1 + b1) - gammaln(d1) + gammaln(ga + d1))[:, None]
    log_f = (
        row + gammaln(be + m)[(n - x - 1)[:, None] + j] - gammaln(al + be + m)[n[:, None] + j]
        + gammaln(de + m)[n[:, None] + j] - gammaln(ga + de + m)[n[:, None] + j]
    )  # fmt: skip
    return np.exp(log_f)


def _far_quantiles(
    params: np.ndarray, d: Columns, alive: np.ndarray, exact_sum: np.ndarray, qs: np.ndarray
) -> np.ndarray:
    """Quantiles past the exact horizon: grid integral of f, then its power-law tail."""
    al, be, ga, de = _posterior(params, d)
    al, be, de = al[:, None], be[:, None], de[:, None]

    def first_at(j: np.ndarray) -> np.ndarray:  # f(j) = P(first purchase at j | alive at 0)
        log_f = (
            betaln(al + 1.0, be + j - 1.0) - betaln(al, be) + betaln(ga, de + j) - betaln(ga, de)
        )
        return np.exp(log_f)

    start = _HORIZON + 0.5
    end = 1000.0 * np.maximum(start, np.maximum(be, de))
    s = start * np.exp(np.linspace(0.0, 1.0, _GRID)[None, :] * np.log(end / start))
    f_ds = first_at(s) * s  # integrand over log(s)
    steps = 0.5 * (f_ds[:, 1:] + f_ds[:, :-1]) * np.diff(np.log(s), axis=1)
    far = exact_sum + alive * np.concatenate([np.zeros_like(end), np.cumsum(steps, axis=1)], axis=1)
    power = al + ga
    tail = alive * first_at(end) * end / power
    ever = far[:, -1:] + tail
    out = np.empty((len(alive), len(qs)))
    for col, q in enumerate(qs):
        g = np.clip(np.argmax(far >= q, axis=1), 1, _GRID - 1)[:, None]
        s0, s1 = np.take_along_axis(s, g - 1, axis=1), np.take_along_axis(s, g, axis=1)
        f0, f1 = np.take_along_axis(far, g - 1, axis=1), np.take_along_axis(far, g, axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            on_grid = np.ceil(s0 + (s1 - s0) * (q - f0) / (f1 - f0) - 0.5)
            beyond = np.ceil(end * (tail / (ever - q)) ** (1 / power) - 0.5)
        out[:, col] = np.select(
            [far[:, -1] >= q, ever[:, 0] > q], [on_grid[:, 0], beyond[:, 0]], np.inf
        )
    return out


# ---------------------------------------------------------------------- argument checks
def _opportunities(t: Any, name: str = "t") -> np.ndarray:
    arr = np.asarray(t, dtype=float)
    if not np.all(np.isfinite(arr)) or np.any(arr < 0) or np.any(arr != np.round(arr)):
        raise InputError(
            f"{name} must be a whole number >= 0 (of opportunities or purchases), got {t!r}"
        )
    return arr


class BGBB(PurchaseModel):
    """BG/BB model of discrete-time repeat purchases (Fader, Hardie & Shang 2010).

    Parameters ``alpha, beta`` (Beta purchase probability per opportunity) and
    ``gamma, delta`` (Beta dropout probability per opportunity). Time is counted in
    opportunities: ``T`` is the number of opportunities after the first purchase and every
    ``t`` below is a whole number of future opportunities.

    Parameters
    ----------
    penalizer : float, default 0
        L2 penalty on the parameters (see :class:`ltvkit.models.base.BaseModel`).

    Notes
    -----
    Arguments shared by the prediction methods: ``data`` is a DataFrame with ``frequency``,
    ``recency`` and ``T`` as whole numbers of opportunities (None = the training data); ``t``
    is a whole number of future opportunities, a scalar or an array broadcastable to the
    customers; ``n`` a whole number of purchases; ``interval`` (e.g. 0.9) returns
    ``mean``/``low``/``high`` over parameter draws instead of the point value. Per-customer
    methods return a Series indexed like ``data``. Fitting and the PMFs build arrays of
    (distinct rows x opportunities), fine for the few distinct patterns of discrete-time data.

    Examples
    --------
    >>> import pandas as pd
    >>> m = BGBB.from_params(alpha=1.204, beta=0.750, gamma=0.657, delta=2.783)
    >>> data = pd.DataFrame({"frequency": [0, 3, 6], "recency": [0, 3, 6], "T": [6, 6, 6]})
    >>> m.p_alive(data).round(3).tolist()
    [0.108, 0.095, 0.93]
    >>> m.expected_purchases(5, data).round(2).tolist()
    [0.07, 0.22, 3.75]
    """

    param_names = ("alpha", "beta", "gamma", "delta")

    # ------------------------------------------------------------------ likelihood
    def _log_likelihood(self, params: np.ndarray, d: Columns) -> np.ndarray:
        return logsumexp(_log_terms(params, d)[0], axis=1)

    def _log_likelihood_and_gradient(self, params: np.ndarray, d: Columns
                                     ) -> tuple[np.ndarray, np.ndarray]:
        al, be, ga, de = params
        log_terms, x, j, dead = _log_terms(params, d)
        ll = logsumexp(log_terms, axis=1)
        share = np.exp(log_terms - ll[:, None])
        m = np.arange(int(np.max(d["T"], initial=0)) + 2.0)
        psi_albe, psi_gade = digamma(al + be + m)[j], digamma(ga + de + m)[j + dead]
        ab, gd = digamma(al + be), digamma(ga + de)
        per_term = (
            digamma(al + m)[x] - psi_albe - digamma(al) + ab,
            digamma(be + m)[j - x] - psi_albe - digamma(be) + ab,
            np.where(dead, digamma(ga + 1.0), digamma(ga)) - psi_gade - digamma(ga) + gd,
            digamma(de + m)[j] - psi_gade - digamma(de) + gd,
        )
        return ll, np.column_stack([np.sum(share * g, axis=1) for g in per_term])

    def _validate(self, d: Columns, index: pd.Index) -> None:
        super()._validate(d, index)
        x, tx, n = d["frequency"], d["recency"], d["T"]
        for col, v in (("recency", tx), ("T", n)):
            _check_rows(
                v != np.round(v), index, f"{col} is not a whole number of opportunities", d, col
            )
        _check_rows(
            x > tx,
            index,
            "frequency > recency (at most one purchase per opportunity)",
            d,
            "frequency",
        )

    # ------------------------------------------------------------------ per-customer predictions
    # formulas of the predictions (module functions above; public methods in PurchaseModel)
    _p_alive = staticmethod(_p_alive)
    _p_alive_at = staticmethod(_p_alive_at)
    _expected_purchases = staticmethod(_expected_purchases)
    _purchase_probability = staticmethod(_purchase_probability)
    _expected_purchases_new = staticmethod(_expected_purchases_new)

    @staticmethod
    def _time_arg(t: Any) -> np.ndarray:
        return _opportunities(t)

    @staticmethod
    def _count_arg(n: Any) -> np.ndarray:
        return _opportunities(n, "n")

    def _alive_now(self, params: np.ndarray, d: Columns) -> np.ndarray:
        return np.exp(_log_alive_at_n(params, d))

    def _wait_quantiles(self, params: np.ndarray, d: Columns, qs: np.ndarray,
                        alive: np.ndarray) -> np.ndarray:
        """Quantiles of the opportunities until the next purchase (see :meth:`next_purchase_time`).

        For each ``q`` the smallest ``k`` with ``P(a purchase within the next k opportunities)
        >= q``, where ``P(first purchase at n+j | alive at n) = E[p (1-p)^(j-1) (1-theta)^j]``
        over the posterior, times P(alive at n). The value is ``+inf`` when ``q`` exceeds the
        probability of ever buying again (with ``given_alive``, an alive customer may still drop
        out first). The first 2,000 opportunities are summed exactly; beyond them the sum is
        approximated by an integral (relative error about 1e-4), so quantiles past 2,000
        opportunities may be off by one or so.
        """
        return _next_purchase_quantiles(params, d, qs, alive[:, None])

    # ------------------------------------------------------------------ a new customer
    def purchase_probability_new(self, n: Any, t: Any) -> Any:
        """``P(X(t) = n)`` for a just-acquired customer, ``t`` opportunities ahead (FHS eq. 7).

        ``C(t, n) B(alpha+n, beta+t-n)/B(alpha, beta) B(gamma, delta+t)/B(gamma, delta) +
        sum_{i=n}^{t-1} C(i, n) B(alpha+n, beta+i-n)/B(alpha, beta)
        B(gamma+1, delta+i)/B(gamma, delta)``.
        """
        al, be, ga, de = self._params
        k, t_arr = np.broadcast_arrays(_opportunities(n, "n"), _opportunities(t))
        out = _pmf_new(k.ravel(), t_arr.ravel(), al, be, ga, de).reshape(k.shape)
        return float(out) if out.ndim == 0 else out
