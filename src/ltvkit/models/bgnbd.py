"""BG/NBD purchase model (Fader, Hardie & Lee 2005): who is still buying, and how much they will buy.

Model (Fader, Hardie & Lee 2005, "Counting your customers the easy way: an alternative to the
Pareto/NBD model", Marketing Science 24(2), 275-284):

* while alive, a customer buys at Poisson rate ``lambda``, ``lambda ~ Gamma(r, alpha)`` across customers;
* right after each purchase the customer drops out with probability ``p``, ``p ~ Beta(a, b)``
  across customers. A customer therefore never drops out between purchases, and a customer
  with no repeat purchase (``frequency == 0``) is alive for sure.

Given a history ``(x, t_x, T)`` = (frequency, recency, T) and being alive at ``T``, the posterior
is ``lambda ~ Gamma(r + x, alpha + T)`` and ``p ~ Beta(a, b + x)``, independent; the future of an alive
customer is that of a new customer with these posterior parameters. Every conditional
prediction below is built on that fact (FHL 2005, section 4 and appendix).

Numerics: the likelihood is written in log space as in Hardie's note 027 ("Overcoming the
BG/NBD model's #NUM! error problem"), with an analytic gradient, and its special functions are
evaluated once per distinct frequency, T and t_x. The Gauss hypergeometric terms of the
predictions are evaluated after an Euler or Pfaff transformation that leaves only one large
parameter, with SciPy's ``hyp2f1``; rows where that fails or loses accuracy (extreme ages and
horizons, a = 1) fall back to a quadrature over the dropout probability; these functions of an
alive BG/NBD-type customer live in :mod:`ltvkit.models._special` (MBG/NBD uses them too).
Both routes agree to 1e-8 over frequencies 0-10,000, T and horizons up to 1e5 (tests).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from scipy.special import betaln, digamma, expit, gammaln

from ltvkit.models._special import (
    BGRows,
    bg_expected_given_alive,
    bg_pmf_given_alive,
    bg_survive_given_alive,
    bg_two_term_likelihood,
    lomax_quantiles,
)
from ltvkit.models.base import PurchaseModel, per_distinct

__all__ = ["BGNBD"]

Array = np.ndarray


# ----------------------------------------------------------------------------------------------
# likelihood (FHL 2005 eq. 6; log space as in Hardie note 027)
# ----------------------------------------------------------------------------------------------
def _log_likelihood(params: Array, rows: BGRows) -> Array:
    return _log_likelihood_and_gradient(params, rows, grad=False)[0]


def _log_likelihood_and_gradient(params: Array, rows: BGRows, grad: bool = True
                                 ) -> tuple[Array, Array | None]:
    """Per-row log-likelihood and (optionally) its gradient wrt (r, alpha, a, b), shape (n, 4).

    FHL 2005 eq. 6: ``L = c1 (alpha+T)^-(r+x) + c2 (alpha+t_x)^-(r+x)`` with, per frequency,
    c1 = G(r+x) alpha^r / G(r) B(a, b+x)/B(a, b) and c2 = [x > 0] G(r+x) alpha^r / G(r)
    B(a+1, b+x-1)/B(a, b), by :func:`~ltvkit.models._special.bg_two_term_likelihood`::

        d log c1 = (psi(r+x) - psi(r) + log alpha, r/alpha, psi(a+b) - psi(a+b+x),
                    psi(a+b) - psi(b) - psi(a+b+x) + psi(b+x))
        d log c2 = d log c1 + (0, 0, 1/a, psi(b+x-1) - psi(b+x))
    """
    r, alpha, a, b = params
    ux = rows.ux
    uxs = np.where(ux > 0, ux, 1.0)  # x = 0 has no second term; 1 keeps b + x - 1 > 0 there
    log_a = gammaln(r + ux) - gammaln(r) + r * np.log(alpha)
    c1 = log_a + betaln(a, b + ux) - betaln(a, b)
    c2 = np.where(ux > 0, log_a + betaln(a + 1, b + uxs - 1) - betaln(a, b), -np.inf)
    if not grad:
        return bg_two_term_likelihood(rows, r, alpha, c1, c2)
    psi_ab, psi_abx = digamma(a + b), digamma(a + b + ux)
    dc1 = np.column_stack([digamma(r + ux) - digamma(r) + np.log(alpha), np.full(ux.shape, r / alpha),
                           psi_ab - psi_abx, psi_ab - digamma(b) - psi_abx + digamma(b + ux)])
    dc2 = dc1 + np.column_stack([np.zeros((ux.size, 2)), np.full(ux.shape, 1.0 / a),
                                 digamma(b + uxs - 1) - digamma(b + ux)])
    return bg_two_term_likelihood(rows, r, alpha, c1, c2, dc1, dc2)


# ----------------------------------------------------------------------------------------------
# predictions. "Posterior" arguments: A = r + x, rate = alpha + T, bx = b + x (FHL 2005 section 4).
# ----------------------------------------------------------------------------------------------
def _log_odds_dead(params: Array, x: Array, tx: Array, T: Array) -> Array:
    """log[P(dead) / P(alive)] = log[a / (b + x - 1)] + (r + x) log[(alpha + T) / (alpha + t_x)], x > 0.

    FHL 2005 eq. 13 (and Hardie's note "Computing P(alive) using the BG/NBD model"); -inf when x = 0.
    """
    r, alpha, a, b = params
    repeat = x > 0
    xs = np.where(repeat, x, 1.0)
    lo = np.log(a / (b + xs - 1)) + (r + xs) * np.log1p((T - tx) / (alpha + tx))
    return np.where(repeat, lo, -np.inf)


def _p_alive(params: Array, x: Array, tx: Array, T: Array) -> Array:
    return expit(-_log_odds_dead(params, x, tx, T))


def _posterior(params: Array, d: dict[str, Array]) -> tuple[Array, Array, Array]:
    r, alpha, _, b = params
    x = d["frequency"]
    return r + x, alpha + d["T"], b + x


def _given_alive(fn: Any, params: Array, d: dict[str, Array], t: Any) -> Array:
    """``fn(t, r+x, alpha+T, b+x, a, r, b)`` for an alive customer, once per distinct (t, x, T).

    Expectations given alive do not depend on recency, so there are far fewer distinct
    arguments than customers (T counts whole days).
    """
    r, alpha, a, b = params
    return per_distinct(lambda t_, x, T: fn(t_, r + x, alpha + T, b + x, a, r, b),
                        t, d["frequency"], d["T"])


class BGNBD(PurchaseModel):
    """Beta-geometric/NBD model of repeat purchasing (Fader, Hardie & Lee 2005).

    Parameters (learned by ``fit``): ``r``, ``alpha`` (gamma heterogeneity of the purchase rate,
    mean rate ``r/alpha`` per time unit) and ``a``, ``b`` (beta heterogeneity of the dropout
    probability after each purchase, mean ``a/(a+b)``).

    Likelihood of a history (x, t_x, T), FHL 2005 eq. 6::

        L = B(a, b+x)/B(a, b) * G(r+x)/G(r) * alpha^r / (alpha+T)^(r+x)
            + [x > 0] B(a+1, b+x-1)/B(a, b) * G(r+x)/G(r) * alpha^r / (alpha+t_x)^(r+x)

    evaluated in log space with ``logaddexp`` (Hardie note 027); the gradient is analytic.

    Parameters
    ----------
    penalizer : float
        L2 penalty ``penalizer * sum(params**2)`` on the parameters (0 = maximum likelihood).

    Examples
    --------
    >>> import pandas as pd
    >>> from ltvkit import BGNBD
    >>> m = BGNBD.from_params(r=0.243, alpha=4.414, a=0.793, b=2.426)
    >>> round(float(m.expected_purchases_new(78)), 2)
    1.86
    >>> d = pd.DataFrame({"frequency": [0, 5], "recency": [0.0, 10.0], "T": [30.0, 30.0]})
    >>> m.p_alive(d).round(3).tolist()
    [1.0, 0.078]
    >>> d = pd.DataFrame({"frequency": [6, 6], "recency": [38.0, 5.0], "T": [39.0, 39.0]})
    >>> m.next_purchase_time(d, q=(0.1, 0.5)).round(1)
       q10  q50
    0  0.8  6.1
    1  inf  inf
    >>> m.next_purchase_time(d, q=(0.1, 0.5), given_alive=True).round(1)
       q10  q50
    0  0.7  5.1
    1  0.7  5.1
    """

    param_names: ClassVar[tuple[str, ...]] = ("r", "alpha", "a", "b")

    # ---- hooks for the MLE base ----
    def _prepare(self, d: dict[str, Array]) -> BGRows:
        return BGRows(d["frequency"], d["recency"], d["T"])

    def _log_likelihood(self, params: Array, d: dict[str, Array]) -> Array:
        return _log_likelihood(params, self._prepared(d))

    def _log_likelihood_and_gradient(self, params: Array, d: dict[str, Array]) -> tuple[Array, Array]:
        return _log_likelihood_and_gradient(params, self._prepared(d))

    def _initial_params(self, d: dict[str, Array], weights: Array) -> Array:
        # rate: r/alpha = mean purchases per unit of time; dropout mean a/(a+b) ~ 0.25
        rate = np.average(d["frequency"] / np.maximum(d["T"], 1e-9), weights=weights)
        return np.array([1.0, 1.0 / max(rate, 1e-3), 1.0, 3.0])

    # ---- conditional predictions ----
    @staticmethod
    def _expected_purchases(params: Array, d: dict[str, Array], t: Any) -> Array:
        """Expected purchases in (T, T + t] given each customer's history (FHL 2005 eq. 10).

        ``E = P(alive) * E[purchases in t | alive]``; see ``bg_expected_given_alive`` for the
        stable evaluation. ``t`` is in the model's time unit (scalar or one value per customer).

        Examples
        --------
        >>> import pandas as pd
        >>> m = BGNBD.from_params(r=0.243, alpha=4.414, a=0.793, b=2.426)
        >>> d = pd.DataFrame({"frequency": [2], "recency": [30.43], "T": [38.86]})
        >>> m.expected_purchases(39, d).round(3).tolist()
        [1.226]
        """
        alive = _p_alive(params, d["frequency"], d["recency"], d["T"])
        return alive * _given_alive(bg_expected_given_alive, params, d, t)

    @staticmethod
    def _p_alive(params: Array, d: dict[str, Array]) -> Array:
        """P(alive at T | history) = 1 / (1 + [x>0] a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x)).

        FHL 2005 eq. 13. Customers without repeat purchase are alive for sure (dropout only
        happens after a purchase).

        Examples
        --------
        >>> import pandas as pd
        >>> m = BGNBD.from_params(r=0.243, alpha=4.414, a=0.793, b=2.426)
        >>> m.p_alive(pd.DataFrame({"frequency": [3], "recency": [5.0], "T": [39.0]})).round(3).tolist()
        [0.038]
        """
        return _p_alive(params, d["frequency"], d["recency"], d["T"])

    @staticmethod
    def _p_alive_at(params: Array, d: dict[str, Array], t: Any) -> Array:
        """P(still alive at T + t | history).

        Alive at T + t means alive at T and no dropout in (T, T + t]. Since a BG/NBD customer
        can only drop out right after a purchase, given (lambda, p) the survival over t is
        ``exp(-lambda p t)``; averaging over the posterior Gamma(r+x, alpha+T) x Beta(a, b+x)::

            P = P(alive) * (1-z)^a 2F1(a, a+b-r; a+b+x; z),   z = t / (alpha + T + t).

        Examples
        --------
        >>> import pandas as pd
        >>> m = BGNBD.from_params(r=0.243, alpha=4.414, a=0.793, b=2.426)
        >>> d = pd.DataFrame({"frequency": [2], "recency": [30.0], "T": [39.0]})
        >>> bool(m.p_alive_at(52, d)[0] < m.p_alive(d)[0])
        True
        """
        alive = _p_alive(params, d["frequency"], d["recency"], d["T"])
        return alive * _given_alive(bg_survive_given_alive, params, d, t)

    @staticmethod
    def _purchase_probability(params: Array, d: dict[str, Array], n: Any, t: Any) -> Array:
        """P(exactly n purchases in (T, T + t] | history).

        A customer dead at T makes none; an alive one behaves like a new customer with the
        posterior parameters (r+x, alpha+T, a, b+x), so FHL 2005 eq. 8 applies::

            P(n) = (1 - P(alive)) [n = 0] + P(alive) P_new(n; r+x, alpha+T, a, b+x, t)

        ``n`` and ``t`` broadcast against the customers.

        Examples
        --------
        >>> import pandas as pd
        >>> m = BGNBD.from_params(r=0.243, alpha=4.414, a=0.793, b=2.426)
        >>> d = pd.DataFrame({"frequency": [2], "recency": [30.0], "T": [39.0]})
        >>> p = sum(m.purchase_probability(k, 39, d) for k in range(200))
        >>> round(float(p[0]), 6)
        1.0
        """
        _, _, a, _ = params
        A, rate, bx = _posterior(params, d)
        n = np.broadcast_to(np.asarray(n, dtype=float), A.shape)
        t = np.broadcast_to(np.asarray(t, dtype=float), A.shape)
        alive = _p_alive(params, d["frequency"], d["recency"], d["T"])
        return alive * bg_pmf_given_alive(n, t, A, rate, a, bx) + (1.0 - alive) * (n == 0)

    def _wait_quantiles(self, params: Array, d: dict[str, Array], qs: Array, alive: Array) -> Array:
        """Quantiles of the wait to the next purchase (see :meth:`next_purchase_time`).

        An alive BG/NBD customer cannot drop out before buying again, so the wait is exponential
        with the posterior rate lambda ~ Gamma(r+x, alpha+T)::

            P(next purchase within tau) = P(alive) * (1 - ((alpha+T) / (alpha+T+tau))^(r+x))

        inverted in closed form (:func:`~ltvkit.models._special.lomax_quantiles`); levels
        ``q >= P(alive)`` are never reached (``+inf``).
        """
        A, rate, _ = _posterior(params, d)
        return lomax_quantiles(qs, A, rate, alive)

    # ---- new customers ----
    @staticmethod
    def _expected_purchases_new(params: Array, t: Any) -> Array:
        """Expected repeat purchases of a new customer in (0, t] (FHL 2005 eq. 9).

        Examples
        --------
        >>> m = BGNBD.from_params(r=0.243, alpha=4.414, a=0.793, b=2.426)
        >>> m.expected_purchases_new([39, 78]).round(3).tolist()
        [1.197, 1.861]
        """
        r, alpha, a, b = params
        t = np.asarray(t, dtype=float)
        return bg_expected_given_alive(t, r, alpha, np.asarray(b), a, r, b)

    def purchase_probability_new(self, n: Any, t: Any) -> Array:
        """P(X(t) = n) for a new customer (FHL 2005 eq. 8); ``n`` and ``t`` broadcast.

        Examples
        --------
        >>> m = BGNBD.from_params(r=0.243, alpha=4.414, a=0.793, b=2.426)
        >>> round(float(m.purchase_probability_new(0, 39)), 3)
        0.574
        """
        r, alpha, a, b = self._params
        n, t = np.broadcast_arrays(np.asarray(n, dtype=float), np.asarray(t, dtype=float))
        return bg_pmf_given_alive(n, t, r, alpha, a, np.full(n.shape, b))

