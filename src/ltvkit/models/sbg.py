"""Shifted-beta-geometric (sBG) model of subscriber retention in a contractual setting.

Fader & Hardie (2007), "How to project customer retention", Journal of Interactive
Marketing 21(1): each subscriber renews at the end of every period with her own
probability ``1 - theta``; ``theta`` varies across subscribers as Beta(alpha, beta).
With ``T`` the period in which a new subscriber leaves (``T = 1`` when she does not make
the first renewal):

* ``P(T = t) = B(alpha + 1, beta + t - 1) / B(alpha, beta)``, t = 1, 2, ...
* survival ``S(t) = P(T > t) = B(alpha, beta + t) / B(alpha, beta)``
* retention rate ``r(t) = S(t) / S(t - 1) = (beta + t - 1) / (alpha + beta + t - 1)``,
  which rises with ``t``: the cohort is sorted, the likelier leavers go first.

Value of a subscriber (Fader & Hardie 2010, "Customer-base valuation in a contractual
setting: the perils of ignoring heterogeneity", Marketing Science 29(1)), with one payment
at the start of every period and discount rate ``d`` per period:

* ``DEL = sum_{t>=0} S(t) / (1 + d)^t = 2F1(1, beta; alpha + beta; 1 / (1 + d))``, the
  expected discounted lifetime (number of payments) of a new subscriber, the first one
  (at signing) undiscounted;
* ``DERL(n) = (beta + n - 1) / (alpha + beta + n - 1) * 2F1(1, beta + n; alpha + beta + n;
  1 / (1 + d))``, for a subscriber who has just completed period ``n`` (made ``n - 1``
  renewals): the expected discounted number of payments still to come, the next one (her
  ``n``-th renewal, which she makes with probability ``r(n)``) undiscounted.

Both series converge for ``d > 0``; at ``d = 0`` they are finite only when ``alpha > 1``
(mean lifetime ``(alpha + beta - 1) / (alpha - 1)`` periods) and are ``inf`` otherwise.
``2F1`` comes from ``scipy.special.hyp2f1``, checked against bounds and a contiguous relation;
where scipy is unreliable (long tenures, tiny discount rates, integer ``alpha``) the series
is summed exactly instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd
from scipy.special import betaln, digamma, hyp2f1

from ltvkit.errors import InputError
from ltvkit.models.base import BaseModel, Columns, _check_rows

__all__ = ["SBG"]


class SBG(BaseModel):
    """Shifted-beta-geometric retention model (Fader & Hardie 2007).

    Parameters
    ----------
    penalizer : float, default 0
        L2 penalty on the parameters (see :class:`~ltvkit.models.base.BaseModel`).

    Notes
    -----
    The data are one row per subscriber (or per pattern, with ``weights``): ``tenure`` =
    number of periods paid for (1 = left at the first renewal) and ``churned`` = 1 if she
    has left (after period ``tenure``), 0 if she is still active (censored). A churned row
    contributes ``log P(T = tenure)``, an active row ``log S(tenure)``.

    Examples
    --------
    Fader & Hardie (2007), "regular" cohort, years 0-7:

    >>> m = SBG().fit([1000, 631, 468, 382, 326, 289, 262, 241])
    >>> round(m.params_["alpha"], 3), round(m.params_["beta"], 3)
    (0.704, 1.182)
    >>> round(m.survival(12) * 100, 1)   # % still active after 12 years (actual: 17.3)
    17.0
    >>> round(m.expected_lifetime(discount_rate=0.1), 2)
    3.69
    """

    param_names: ClassVar[tuple[str, ...]] = ("alpha", "beta")
    data_columns: ClassVar[tuple[str, ...]] = ("tenure", "churned")

    # ------------------------------------------------------------------ fitting
    def fit(  # type: ignore[override]
        self,
        survivors: Sequence[float] | np.ndarray,
        *,
        uncertainty: str = "laplace",
        n_boot: int = 100,
        seed: int | None = None,
    ) -> Self:
        """Fit on a cohort's survivor curve.

        Parameters
        ----------
        survivors : sequence of numbers
            How many subscribers of one cohort are still active at the start of each period,
            beginning with the cohort size, e.g. ``[1000, 631, 468, 382]``. Must not increase.
        uncertainty, n_boot, seed
            As in :meth:`BaseModel.fit` (``"bootstrap"`` resamples subscribers).

        Returns
        -------
        self

        Examples
        --------
        >>> SBG().fit([1000, 869, 743, 653, 593, 551, 517, 491]).params_["beta"] > 3
        True
        """
        return super().fit(
            _survivor_rows(survivors), "weights", uncertainty=uncertainty, n_boot=n_boot, seed=seed
        )

    def fit_subscribers(
        self,
        tenure: Sequence[float] | np.ndarray | pd.Series,
        churned: Sequence[bool] | np.ndarray | pd.Series,
        weights: Sequence[float] | np.ndarray | None = None,
        *,
        uncertainty: str = "laplace",
        n_boot: int = 100,
        seed: int | None = None,
    ) -> Self:
        """Fit on per-subscriber data.

        Parameters
        ----------
        tenure : array of int
            Periods each subscriber has paid for (``>= 1`` for those who left).
        churned : array of bool
            True if the subscriber has left after period ``tenure``, False if still active.
        weights : array, optional
            Number of subscribers each row stands for.

        Returns
        -------
        self

        Examples
        --------
        >>> m = SBG().fit_subscribers([1, 1, 2, 3, 4, 4], [True, True, True, False, True, False])
        >>> sorted(m.params_)
        ['alpha', 'beta']
        """
        tenure_a = np.asarray(tenure, dtype=float)
        churned_a = np.asarray(churned)
        if tenure_a.shape != churned_a.shape or tenure_a.ndim != 1:
            raise InputError(
                f"tenure and churned must be 1-D and of the same length; got shapes "
                f"{tenure_a.shape} and {churned_a.shape}"
            )
        try:
            churned_f = churned_a.astype(float)
        except (TypeError, ValueError):
            raise InputError("churned must hold booleans or 0/1 values") from None
        frame = pd.DataFrame({"tenure": tenure_a, "churned": churned_f})
        return super().fit(frame, weights, uncertainty=uncertainty, n_boot=n_boot, seed=seed)

    def _validate(self, d: Columns, index: pd.Index) -> None:
        tenure, churned = d["tenure"], d["churned"]
        _check_rows(
            tenure != np.round(tenure),
            index,
            "tenure is not a whole number of periods",
            d,
            "tenure",
        )
        _check_rows(
            (churned != 0) & (churned != 1), index, "churned is not 0/1 (False/True)", d, "churned"
        )
        _check_rows(
            (churned == 1) & (tenure < 1),
            index,
            "churned with tenure 0 (a subscriber pays for at least one period)",
            d,
            "tenure",
        )

    def _initial_params(self, d: Columns, weights: np.ndarray) -> np.ndarray:
        return np.array([1.0, 1.0])

    def _log_likelihood(self, params: np.ndarray, d: Columns) -> np.ndarray:
        alpha, beta = params
        t, churned = d["tenure"], d["churned"]
        lost = betaln(alpha + 1, beta + t - 1)  # log P(T = t) + log B(alpha, beta)
        alive = betaln(alpha, beta + t)  # log S(t) + log B(alpha, beta)
        return np.where(churned == 1, lost, alive) - betaln(alpha, beta)

    def _gradient(self, params: np.ndarray, d: Columns) -> np.ndarray:
        alpha, beta = params
        t, churned = d["tenure"], d["churned"]
        # d/da log B(a, b) = psi(a) - psi(a + b); d/db log B(a, b) = psi(b) - psi(a + b)
        base_a = digamma(alpha) - digamma(alpha + beta)
        base_b = digamma(beta) - digamma(alpha + beta)
        lost_ab = digamma(alpha + beta + t)
        g_alpha = np.where(churned == 1, digamma(alpha + 1), digamma(alpha)) - lost_ab - base_a
        g_beta = np.where(churned == 1, digamma(beta + t - 1), digamma(beta + t)) - lost_ab - base_b
        return np.column_stack([g_alpha, g_beta])

    # ------------------------------------------------------------------ retention curves
    def survival(self, t: Any, interval: float | None = None) -> Any:
        """Share of a new cohort still active after ``t`` periods, ``S(t)``.

        Parameters
        ----------
        t : int or array of int
            Periods since acquisition (``S(0) = 1``).
        interval : float, optional
            E.g. 0.9: return a DataFrame (index ``t``; ``mean``, ``low``, ``high``) over
            parameter draws — parameter uncertainty only, labelled in ``.attrs``.

        Returns
        -------
        float, ndarray or DataFrame

        Examples
        --------
        >>> m = SBG.from_params(alpha=1.0, beta=1.0)
        >>> m.survival([0, 1, 3])   # B(1, 1 + t) / B(1, 1) = 1 / (1 + t)
        array([1.  , 0.5 , 0.25])
        """
        return self._predict_new(_survival, _periods(t, "t", 0), interval)

    def retention_rate(self, t: Any, interval: float | None = None) -> Any:
        """Probability that a subscriber active in period ``t - 1`` renews for period ``t``.

        ``r(t) = (beta + t - 1) / (alpha + beta + t - 1)`` for ``t >= 1``.

        Examples
        --------
        >>> SBG.from_params(alpha=1.0, beta=1.0).retention_rate([1, 2])
        array([0.5       , 0.66666667])
        """
        return self._predict_new(_retention_rate, _periods(t, "t", 1), interval)

    def churn_probability(self, t: Any, interval: float | None = None) -> Any:
        """Probability that a new subscriber leaves at the ``t``-th renewal, ``P(T = t)``.

        This is the share of the whole cohort lost between periods ``t - 1`` and ``t``; the
        conditional churn rate of those still active is ``1 - retention_rate(t)``.

        Examples
        --------
        >>> SBG.from_params(alpha=1.0, beta=1.0).churn_probability([1, 2])
        array([0.5       , 0.16666667])
        """
        return self._predict_new(_churn_probability, _periods(t, "t", 1), interval)

    # ------------------------------------------------------------------ value
    def expected_lifetime(self, discount_rate: float = 0.0, interval: float | None = None) -> Any:
        """Discounted expected lifetime (DEL) of a new subscriber, in payments.

        ``DEL = 2F1(1, beta; alpha + beta; 1 / (1 + d))`` (Fader & Hardie 2010); the payment at
        signing counts 1, undiscounted. ``inf`` when ``d = 0`` and ``alpha <= 1``.

        Examples
        --------
        >>> round(SBG.from_params(alpha=3.0, beta=2.0).expected_lifetime(), 6)  # (a+b-1)/(a-1)
        2.0
        """
        d = _discount(discount_rate)
        return self._predict_new(_residual_lifetime, np.asarray(0.0), interval, d=d)

    def expected_residual_lifetime(
        self, n: int, discount_rate: float = 0.0, interval: float | None = None
    ) -> Any:
        """Discounted expected residual lifetime (DERL) of a subscriber who completed period ``n``.

        She has made ``n - 1`` renewals; the result counts the payments still to come, the
        next one (the ``n``-th renewal, made with probability ``r(n)``) undiscounted:
        ``DERL(n) = sum_{t>=n} S(t) / S(n - 1) / (1 + d)^(t - n)``
        ``= (beta + n - 1) / (alpha + beta + n - 1) * 2F1(1, beta + n; alpha + beta + n;
        1 / (1 + d))`` (Fader & Hardie 2010).

        Parameters
        ----------
        n : int or array of int
            Periods completed (``>= 1``).
        discount_rate : float
            Per period, ``>= 0``.

        Examples
        --------
        >>> m = SBG.from_params(alpha=0.704, beta=1.182)
        >>> round(m.expected_residual_lifetime(1, discount_rate=0.1), 3)  # (DEL - 1) * 1.1
        2.965
        """
        d = _discount(discount_rate)
        return self._predict_new(_residual_lifetime, _periods(n, "n", 1), interval, d=d)

    def subscriber_value(
        self,
        margin_per_period: float,
        n: int,
        discount_rate: float = 0.0,
        interval: float | None = None,
    ) -> Any:
        """Expected discounted margin still to come from a subscriber who completed period ``n``.

        ``margin_per_period * DERL(n)``; see :meth:`expected_residual_lifetime`.

        Examples
        --------
        >>> m = SBG.from_params(alpha=0.704, beta=1.182)
        >>> round(m.subscriber_value(100.0, 1, discount_rate=0.1), 1)
        296.5
        """
        if not np.isfinite(margin_per_period):
            raise InputError(f"margin_per_period must be a finite number, got {margin_per_period}")
        value = self.expected_residual_lifetime(n, discount_rate, interval)
        return value * margin_per_period


# ---------------------------------------------------------------------- closed forms
def _survival(p: np.ndarray, t: np.ndarray) -> np.ndarray:
    alpha, beta = p
    return np.exp(betaln(alpha, beta + t) - betaln(alpha, beta))


def _retention_rate(p: np.ndarray, t: np.ndarray) -> np.ndarray:
    alpha, beta = p
    return (beta + t - 1) / (alpha + beta + t - 1)


def _churn_probability(p: np.ndarray, t: np.ndarray) -> np.ndarray:
    alpha, beta = p
    return np.exp(betaln(alpha + 1, beta + t - 1) - betaln(alpha, beta))


def _residual_lifetime(p: np.ndarray, n: np.ndarray, d: float) -> np.ndarray:
    """DERL(n) for n >= 1; n = 0 gives DEL (the leading factor is then 1: S(0) = 1)."""
    alpha, beta = p
    lead = np.where(n == 0, 1.0, (beta + n - 1) / (alpha + beta + n - 1))
    b = beta + n
    if d == 0:  # Gauss: 2F1(1, b; c; 1) = (c - 1) / (c - 1 - b) when c - 1 - b = alpha - 1 > 0
        tail = (alpha + b - 1) / (alpha - 1) if alpha > 1 else np.full(np.shape(b), np.inf)
    else:
        tail = _hyp2f1_one(np.asarray(b, dtype=float), alpha, 1.0 / (1.0 + d))
    return np.where(n == 0, tail, lead * tail)


def _hyp2f1_one(b: np.ndarray, alpha: float, z: float) -> np.ndarray:
    """``2F1(1, b; b + alpha; z)`` for ``0 < z < 1``: scipy's ``hyp2f1``, checked, else the series.

    scipy's value is accepted when it lies in ``[1, 1 / (1 - z)]`` (the series has positive
    terms ``<= z^k`` starting at 1) and satisfies the contiguous relation
    ``F(b) = 1 + z b / (b + alpha) F(b + 1)`` to 1e-10 — a relative error ``e`` common to both
    values leaves a residual of about ``e``. scipy fails this for large ``b`` (long-tenured
    subscribers, ``n`` in the hundreds), near integer ``alpha`` and for tiny discount rates,
    where it returns NaN, negative or slightly-off values; those points are summed exactly.
    """
    shape, b = np.shape(b), np.ravel(b)
    with np.errstate(all="ignore"):
        f0 = hyp2f1(1.0, b, b + alpha, z)
        f1 = hyp2f1(1.0, b + 1, b + 1 + alpha, z)
        residual = np.abs(f0 - 1 - z * b / (b + alpha) * f1)
    ok = (f0 >= 1) & (f0 <= 1 / (1 - z)) & np.isfinite(f1) & (residual <= 1e-10 * f0)
    out = np.where(ok, f0, np.nan)
    for i in np.flatnonzero(~ok):
        out[i] = _hyp2f1_one_series(float(b[i]), alpha, z)
    return out.reshape(shape)


def _hyp2f1_one_series(b: float, alpha: float, z: float, chunk: int = 1 << 16) -> float:
    """Sum ``sum_k (b)_k / (b + alpha)_k z^k`` in log space, chunk by chunk, to ~1e-15.

    Term ratios ``z (b + k) / (b + alpha + k)`` are below ``z``, so the tail after a term
    ``T`` is below ``T / (1 - z)``: the loop stops when that bound is negligible.
    """
    total, log_t, k0 = 0.0, 0.0, 0
    while True:
        k = k0 + np.arange(chunk, dtype=float)
        log_ratio = np.log1p(-alpha / (b + alpha + k)) + np.log(z)
        logs = log_t + np.concatenate(([0.0], np.cumsum(log_ratio[:-1])))
        total += float(np.sum(np.exp(logs)))
        log_t = float(logs[-1] + log_ratio[-1])
        if np.exp(log_t) / (1 - z) <= 1e-16 * total:
            return total
        k0 += chunk


def _periods(t: Any, name: str, low: int) -> np.ndarray:
    arr = np.asarray(t, dtype=float)
    if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)) or np.any(arr < low):
        raise InputError(f"{name} must be whole numbers of periods >= {low}, got {t!r}")
    return arr


def _discount(rate: float) -> float:
    if not (np.isfinite(rate) and rate >= 0):
        raise InputError(f"discount_rate must be >= 0 per period (e.g. 0.1), got {rate}")
    return float(rate)


def _survivor_rows(survivors: Sequence[float] | np.ndarray) -> pd.DataFrame:
    """Survivor curve -> rows (tenure, churned, weights): lost at each renewal, then the active."""
    try:
        s = np.asarray(survivors, dtype=float)
    except (TypeError, ValueError):
        s = np.array([])
    if s.ndim != 1 or len(s) < 2:
        raise InputError(
            "survivors must list the active subscribers at the start of each period, beginning "
            "with the cohort size: at least two numbers (e.g. [1000, 631, 468]); got "
            f"{survivors!r}. For one row per subscriber use fit_subscribers(tenure, churned)."
        )
    if not np.all(np.isfinite(s)) or np.any(s < 0) or s[0] <= 0:
        raise InputError(
            "survivors must be finite, non-negative counts with a positive cohort size; "
            f"got {s.tolist()}"
        )
    rises = np.flatnonzero(np.diff(s) > 0)
    if rises.size:
        i = int(rises[0]) + 1
        raise InputError(
            f"survivors must not increase (a cohort only loses members): period {i} has "
            f"{s[i]:g} > {s[i - 1]:g} in period {i - 1}. Pass one cohort's counts."
        )
    periods = np.arange(1, len(s))
    return pd.DataFrame(
        {
            "tenure": np.append(periods, periods[-1]).astype(float),
            "churned": np.append(np.ones(len(periods)), 0.0),
            "weights": np.append(-np.diff(s), s[-1]),
        }
    )
