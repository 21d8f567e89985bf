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
BG/NBD model's #NUM! error problem"); the Gauss hypergeometric terms are evaluated after an
Euler transformation, which leaves only one large parameter (``c``) and keeps SciPy's
``hyp2f1`` accurate for frequencies and ages into the tens of thousands.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from scipy.special import betainc, betaln, digamma, expit, gammaln, hyp2f1, xlogy

from ltvkit.models.base import PurchaseModel

__all__ = ["BGNBD"]

Array = np.ndarray
# |a - 1| below this: E[1/p] terms are evaluated by interpolation across a = 1 (removable 0/0).
_A_NEAR_ONE = 1e-6


# ----------------------------------------------------------------------------------------------
# likelihood (FHL 2005 eq. 6; log space as in Hardie note 027)
# ----------------------------------------------------------------------------------------------
def _log_terms(params: Array, x: Array, tx: Array, T: Array) -> tuple[Array, Array, Array]:
    """Return ``(log A, log term1, log term2)`` with ``L = A * (term1 + term2)``; term2 = 0 when x = 0."""
    r, alpha, a, b = params
    log_a = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    log_t1 = betaln(a, b + x) - betaln(a, b) - (r + x) * np.log(alpha + T)
    repeat = x > 0
    xs = np.where(repeat, x, 1.0)  # keeps b + x - 1 > 0 on rows where term2 is masked out
    log_t2 = betaln(a + 1, b + xs - 1) - betaln(a, b) - (r + xs) * np.log(alpha + tx)
    return log_a, log_t1, np.where(repeat, log_t2, -np.inf)


def _log_likelihood(params: Array, x: Array, tx: Array, T: Array) -> Array:
    log_a, log_t1, log_t2 = _log_terms(params, x, tx, T)
    return log_a + np.logaddexp(log_t1, log_t2)


def _gradient(params: Array, x: Array, tx: Array, T: Array) -> Array:
    """Per-row gradient of the log-likelihood wrt (r, alpha, a, b), shape (n, 4)."""
    r, alpha, a, b = params
    _, log_t1, log_t2 = _log_terms(params, x, tx, T)
    w1 = np.exp(log_t1 - np.logaddexp(log_t1, log_t2))  # share of term1 in term1 + term2
    w2 = 1.0 - w1
    xs = np.where(x > 0, x, 1.0)
    psi_ab, psi_abx = digamma(a + b), digamma(a + b + x)
    g = np.empty((x.shape[0], 4))
    g[:, 0] = (digamma(r + x) - digamma(r) + np.log(alpha)
               - w1 * np.log(alpha + T) - w2 * np.log(alpha + tx))
    g[:, 1] = r / alpha - w1 * (r + x) / (alpha + T) - w2 * (r + x) / (alpha + tx)
    g[:, 2] = psi_ab - psi_abx + w2 / a
    g[:, 3] = (psi_ab - digamma(b) - psi_abx
               + w1 * digamma(b + x) + w2 * digamma(b + xs - 1))
    return g


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
    lo = np.log(a) - np.log(b + xs - 1) + (r + xs) * (np.log(alpha + T) - np.log(alpha + tx))
    return np.where(repeat, lo, -np.inf)


def _p_alive(params: Array, x: Array, tx: Array, T: Array) -> Array:
    return expit(-_log_odds_dead(params, x, tx, T))


def _expected_given_alive(t: Array, A: Array, rate: Array, a: float, bx: Array, r: float, b: float) -> Array:
    """E[purchases in the next t | alive now], posterior Gamma(A, rate) x Beta(a, bx).

    With z = t / (rate + t), FHL 2005 eq. 10 reads ``c/(a-1) * [1 - (1-z)^A 2F1(A, bx; c; z)]``,
    c = a + bx - 1. Euler's transformation 2F1(A, B; c; z) = (1-z)^(c-A-B) 2F1(c-A, c-B; c; z)
    turns it into ``c/(a-1) * [1 - (1-z)^(a-1) 2F1(a+b-1-r, a-1; c; z)]`` where only c grows with
    the frequency (c - A = a + b - 1 - r for every customer). At a = 1 the ratio is a removable
    0/0: values are interpolated between a = 1 -+ 1e-6. The result is clipped to the no-dropout
    bound [0, A t / rate].
    """
    def one(a_: float) -> Array:
        c = a_ + bx - 1.0
        z = t / (rate + t)
        h = np.exp((a_ - 1.0) * np.log1p(-z)) * hyp2f1(a_ + b - 1.0 - r, a_ - 1.0, c, z)
        return c / (a_ - 1.0) * (1.0 - h)

    if abs(a - 1.0) >= _A_NEAR_ONE:
        value = one(a)
    else:
        lo, hi = one(1.0 - _A_NEAR_ONE), one(1.0 + _A_NEAR_ONE)
        value = lo + (hi - lo) * (a - 1.0 + _A_NEAR_ONE) / (2 * _A_NEAR_ONE)
    return np.clip(value, 0.0, A * t / rate)


def _survive_given_alive(t: Array, A: Array, rate: Array, a: float, bx: Array, r: float, b: float) -> Array:
    """P(still alive after t more | alive now) = E[exp(-lambda p t)] = E_p[(1 + p t/rate)^-A].

    = 2F1(A, a; a + bx; -t/rate) = (1-z)^a 2F1(a, a + b - r; a + bx; z), z = t/(rate + t) (Pfaff).
    Dropout happens only right after a purchase, so surviving t more means every purchase made in
    that window was followed by "stay": given lambda and p, exp(-lambda p t).
    """
    z = t / (rate + t)
    value = np.exp(a * np.log1p(-z)) * hyp2f1(a, a + b - r, a + bx, z)
    return np.clip(value, 0.0, 1.0)


def _pmf_given_alive(n: Array, t: Array, A: Array, rate: Array, a: float, bx: Array) -> Array:
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


def _posterior(params: Array, d: dict[str, Array]) -> tuple[Array, Array, Array]:
    r, alpha, _, b = params
    x = d["frequency"]
    return r + x, alpha + d["T"], b + x


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
        L2 penalty on the log-parameters (0 = maximum likelihood).

    Examples
    --------
    >>> import pandas as pd
    >>> from ltvkit import BGNBD
    >>> m = BGNBD.from_params(r=0.243, alpha=4.414, a=0.793, b=2.426)
    >>> round(float(m.expected_purchases_new(78)), 3)
    1.858
    >>> d = pd.DataFrame({"frequency": [0, 5], "recency": [0.0, 10.0], "T": [30.0, 30.0]})
    >>> m.p_alive(d).round(3).tolist()
    [1.0, 0.274]
    """

    param_names: ClassVar[tuple[str, ...]] = ("r", "alpha", "a", "b")

    # ---- hooks for the MLE base ----
    def _log_likelihood(self, params: Array, d: dict[str, Array]) -> Array:
        return _log_likelihood(params, d["frequency"], d["recency"], d["T"])

    def _gradient(self, params: Array, d: dict[str, Array]) -> Array:
        return _gradient(params, d["frequency"], d["recency"], d["T"])

    def _initial_params(self, d: dict[str, Array], weights: Array) -> Array:
        # rate: r/alpha = mean purchases per unit of time; dropout mean a/(a+b) ~ 0.25
        rate = np.average(d["frequency"] / np.maximum(d["T"], 1e-9), weights=weights)
        return np.array([1.0, 1.0 / max(rate, 1e-3), 1.0, 3.0])

    # ---- conditional predictions ----
    def expected_purchases(self, t: Any, data: Any = None, interval: float | None = None) -> Any:
        """Expected purchases in (T, T + t] given each customer's history (FHL 2005 eq. 10).

        ``E = P(alive) * E[purchases in t | alive]``; see ``_expected_given_alive`` for the
        stable evaluation. ``t`` is in the model's time unit (scalar or one value per customer).

        Examples
        --------
        >>> import pandas as pd
        >>> m = BGNBD.from_params(r=0.243, alpha=4.414, a=0.793, b=2.426)
        >>> d = pd.DataFrame({"frequency": [2], "recency": [30.43], "T": [38.86]})
        >>> m.expected_purchases(39, d).round(3).tolist()
        [1.226]
        """
        return self._predict(self._expected_purchases, data, interval, t=t)

    @staticmethod
    def _expected_purchases(params: Array, d: dict[str, Array], t: Any) -> Array:
        r, _, a, b = params
        A, rate, bx = _posterior(params, d)
        t = np.broadcast_to(np.asarray(t, dtype=float), A.shape)
        alive = _p_alive(params, d["frequency"], d["recency"], d["T"])
        return alive * _expected_given_alive(t, A, rate, a, bx, r, b)

    def p_alive(self, data: Any = None, interval: float | None = None) -> Any:
        """P(alive at T | history) = 1 / (1 + [x>0] a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x)).

        FHL 2005 eq. 13. Customers without repeat purchase are alive for sure (dropout only
        happens after a purchase).

        Examples
        --------
        >>> import pandas as pd
        >>> m = BGNBD.from_params(r=0.243, alpha=4.414, a=0.793, b=2.426)
        >>> m.p_alive(pd.DataFrame({"frequency": [3], "recency": [5.0], "T": [39.0]})).round(3).tolist()
        [0.121]
        """
        return self._predict(self._p_alive, data, interval)

    @staticmethod
    def _p_alive(params: Array, d: dict[str, Array]) -> Array:
        return _p_alive(params, d["frequency"], d["recency"], d["T"])

    def p_alive_at(self, t: Any, data: Any = None, interval: float | None = None) -> Any:
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
        return self._predict(self._p_alive_at, data, interval, t=t)

    @staticmethod
    def _p_alive_at(params: Array, d: dict[str, Array], t: Any) -> Array:
        r, _, a, b = params
        A, rate, bx = _posterior(params, d)
        t = np.broadcast_to(np.asarray(t, dtype=float), A.shape)
        alive = _p_alive(params, d["frequency"], d["recency"], d["T"])
        return alive * _survive_given_alive(t, A, rate, a, bx, r, b)

    def purchase_probability(self, n: Any, t: Any, data: Any = None) -> Array:
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
        return self._predict(self._purchase_probability, data, None, n=n, t=t)

    @staticmethod
    def _purchase_probability(params: Array, d: dict[str, Array], n: Any, t: Any) -> Array:
        _, _, a, _ = params
        A, rate, bx = _posterior(params, d)
        n = np.broadcast_to(np.asarray(n, dtype=float), A.shape)
        t = np.broadcast_to(np.asarray(t, dtype=float), A.shape)
        alive = _p_alive(params, d["frequency"], d["recency"], d["T"])
        return alive * _pmf_given_alive(n, t, A, rate, a, bx) + (1.0 - alive) * (n == 0)

    def next_purchase_time(self, data: Any = None, q: Sequence[float] = (0.1, 0.5, 0.9)) -> pd.DataFrame:
        """Quantiles of the waiting time from T to the next purchase, in the model's time unit.

        An alive BG/NBD customer cannot drop out before buying again, so the wait is exponential
        with the posterior rate lambda ~ Gamma(r+x, alpha+T)::

            P(next purchase within tau) = P(alive) * (1 - ((alpha+T) / (alpha+T+tau))^(r+x))

        which is inverted in closed form. The CDF never exceeds P(alive): quantiles
        ``q >= P(alive)`` are never reached and are ``+inf``. Columns "q10", "q50", ...

        Examples
        --------
        >>> import pandas as pd
        >>> m = BGNBD.from_params(r=0.243, alpha=4.414, a=0.793, b=2.426)
        >>> d = pd.DataFrame({"frequency": [0, 6], "recency": [0.0, 5.0], "T": [39.0, 39.0]})
        >>> m.next_purchase_time(d, q=(0.5,)).round(1)["q50"].tolist()
        [inf, inf]
        """
        cols = self._columns(data)
        params = self._params
        r, alpha, _, _ = params
        A, rate, _ = _posterior(params, cols)
        alive = _p_alive(params, cols["frequency"], cols["recency"], cols["T"])
        out = {}
        for qq in q:
            if not 0.0 < qq < 1.0:
                raise _bad_quantile(qq)
            frac = qq / alive
            with np.errstate(divide="ignore", invalid="ignore"):
                tau = rate * np.expm1(-np.log1p(-np.minimum(frac, 1.0)) / A)
            out[_quantile_name(qq)] = np.where(frac < 1.0, tau, np.inf)
        index = data.index if isinstance(data, pd.DataFrame) else None
        if data is None:
            index = getattr(self, "_train_index", None)
        return pd.DataFrame(out, index=index)

    # ---- new customers ----
    def expected_purchases_new(self, t: Any, interval: float | None = None) -> Any:
        """Expected repeat purchases of a new customer in (0, t] (FHL 2005 eq. 9).

        Examples
        --------
        >>> m = BGNBD.from_params(r=0.243, alpha=4.414, a=0.793, b=2.426)
        >>> m.expected_purchases_new([39, 78]).round(3).tolist()
        [1.267, 1.858]
        """
        return self._predict_new(self._expected_purchases_new, interval, t=t)

    @staticmethod
    def _expected_purchases_new(params: Array, t: Any) -> Array:
        r, alpha, a, b = params
        t = np.asarray(t, dtype=float)
        return _expected_given_alive(t, r, alpha, a, np.asarray(b), r, b)

    def purchase_probability_new(self, n: Any, t: Any) -> Array:
        """P(X(t) = n) for a new customer (FHL 2005 eq. 8); ``n`` and ``t`` broadcast.

        Examples
        --------
        >>> m = BGNBD.from_params(r=0.243, alpha=4.414, a=0.793, b=2.426)
        >>> round(float(m.purchase_probability_new(0, 39)), 3)
        0.623
        """
        r, alpha, a, b = self._params
        n, t = np.broadcast_arrays(np.asarray(n, dtype=float), np.asarray(t, dtype=float))
        return _pmf_given_alive(n, t, r, alpha, a, np.full(n.shape, b))


def _quantile_name(q: float) -> str:
    return f"q{100 * q:g}".replace(".", "_")


def _bad_quantile(q: float) -> Exception:
    from ltvkit.errors import InputError

    return InputError(f"quantile q={q!r} must be strictly between 0 and 1, e.g. q=(0.1, 0.5, 0.9)")
