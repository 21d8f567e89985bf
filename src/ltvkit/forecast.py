"""Planning forecasts: orders and revenue per calendar month (or week) with intervals, plus new customers.

For the existing base, the expected purchases of customer ``i`` in period ``k`` is
``E[X_i(t_k)] - E[X_i(t_{k-1})]`` — the purchase model's conditional expectation given the
customer's history (Fader, Hardie & Lee 2005, eq. 10 for BG/NBD), with ``t`` counted from the
end of observation in the model's time unit. Revenue multiplies each customer's expected
purchases by their expected spend per order (Gamma-Gamma, Fader & Hardie 2013).

New customers follow an acquisition assumption of ``n`` customers a period, each cohort
acquired in the middle of its period: it places its first orders at once and then buys as
``expected_purchases_new`` (the unconditional expectation of a just-acquired customer). New
customers' orders are valued at the population mean spend.

Intervals reflect parameter uncertainty of the purchase model by the delta method on the
log scale: each period total ``F`` is re-evaluated with each log-parameter moved by a small
step, giving the gradient ``g`` of ``log F``; its variance is ``g' Σ g`` with ``Σ`` the
covariance of the log-parameters (the Laplace approximation the models report), and the
interval is ``F · exp(± z sd)``. All customers move together under a parameter change, so this
is the interval of the total, not a sum of per-customer intervals; it costs ``k + 1``
evaluations instead of hundreds of parameter draws. Customers with identical (frequency,
recency, T) are evaluated once, so the cost grows with distinct histories, not customers.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ltvkit.errors import InputError

_UNIT_DAYS = {"D": 1.0, "W": 7.0, "M": 365.25 / 12}
_PERIODS = {"M": pd.DateOffset(months=1), "W": pd.DateOffset(weeks=1)}


def period_bounds(start: Any, horizon: int, period: str = "M") -> pd.DatetimeIndex:
    """Start dates of ``horizon`` calendar periods from ``start``, plus the end of the last one.

    Examples
    --------
    >>> [str(d.date()) for d in period_bounds("1998-07-01", 3)]
    ['1998-07-01', '1998-08-01', '1998-09-01', '1998-10-01']
    """
    if period not in _PERIODS:
        raise InputError(f"forecast period must be 'M' (months) or 'W' (weeks), got {period!r}")
    if not (isinstance(horizon, int | np.integer) and horizon >= 1):
        raise InputError(f"horizon must be a whole number of periods >= 1, got {horizon!r}")
    first = pd.Timestamp(start)
    first = first.tz_localize("UTC") if first.tzinfo is None else first.tz_convert("UTC")
    return pd.DatetimeIndex([first.normalize() + k * _PERIODS[period] for k in range(horizon + 1)])


def forecast(
    purchase_model: Any,
    data: pd.DataFrame,
    spend: Any,
    start: Any,
    *,
    horizon: int = 12,
    period: str = "M",
    model_unit: str = "W",
    new_customers_per_period: float = 0.0,
    new_customer_spend: float | None = None,
    interval: float = 0.9,
) -> pd.DataFrame:
    """Expected repeat purchases, orders and revenue per period, with intervals.

    Parameters
    ----------
    purchase_model : fitted purchase model
        BG/NBD, Pareto/NBD or MBG/NBD (anything with ``expected_purchases``,
        ``expected_purchases_new``, ``sample_params`` and ``from_params``).
    data : DataFrame
        Summary of the existing customers (``frequency``, ``recency``, ``T`` in ``model_unit``).
    spend : array-like
        Expected spend per order of each customer (aligned with ``data``).
    start : date-like
        First day of the forecast (the day after the end of observation).
    horizon : int
        Number of periods.
    period : {"M", "W"}
        Calendar months or weeks.
    model_unit : {"D", "W", "M"}
        Time unit of ``data`` and the model.
    new_customers_per_period : float
        Acquisition assumption (0 = existing base only).
    new_customer_spend : float, optional
        Spend per order of new customers (default: the mean of ``spend``).
    interval : float
        Width of the intervals (0.9 = 5th to 95th percentile).

    Returns
    -------
    DataFrame
        One row per period: ``period_start``, ``period_end`` (exclusive), ``purchases``
        (existing base) and its ``_low``/``_high``, ``new_customers``, ``new_orders``,
        ``orders`` (+ ``_low``/``_high``), ``revenue_existing``, ``revenue_new``, ``revenue``
        (+ ``_low``/``_high``). ``attrs["uncertainty"]`` says what the intervals cover.

    Examples
    --------
    >>> import ltvkit
    >>> m = ltvkit.BGNBD.from_params(r=0.243, alpha=4.414, a=0.793, b=2.426,
    ...                              covariance=np.diag([1e-4, 1e-2, 1e-3, 1e-2]))
    >>> d = pd.DataFrame({"frequency": [0, 2, 5], "recency": [0.0, 20.0, 35.0], "T": [39.0] * 3})
    >>> fc = forecast(m, d, [30.0, 30.0, 30.0], "1997-10-01", horizon=3)
    >>> fc[["purchases", "orders", "revenue"]].round(3).iloc[0].tolist()  # October: t = 31/7 weeks
    [0.577, 0.577, 17.296]
    >>> round(float(m.expected_purchases(31 / 7, d).sum()), 3)
    0.577
    >>> bool((fc["purchases_low"] <= fc["purchases"]).all() and (fc["purchases"] <= fc["purchases_high"]).all())
    True
    """
    if model_unit not in _UNIT_DAYS:
        raise InputError(f"model_unit must be one of D, W, M, got {model_unit!r}")
    if not 0 < interval < 1:
        raise InputError(f"interval must be between 0 and 1 (e.g. 0.9), got {interval}")
    if new_customers_per_period < 0 or not np.isfinite(new_customers_per_period):
        raise InputError(f"new customers per period must be >= 0, got {new_customers_per_period}")
    spend = np.asarray(spend, dtype=float)
    if spend.shape != (len(data),) or not np.all(np.isfinite(spend)):
        raise InputError(f"spend must hold one finite value per customer ({len(data)}), got shape {spend.shape}")
    bounds = period_bounds(start, horizon, period)
    t = np.asarray((bounds - bounds[0]).days, dtype=float) / _UNIT_DAYS[model_unit]
    groups, counts, spend_sum = _distinct_histories(data, spend)
    new_spend = float(np.mean(spend)) if new_customer_spend is None else float(new_customer_spend)

    def evaluate(model: Any) -> np.ndarray:
        """(3, horizon) array: existing purchases, new orders, revenue."""
        existing = _period_purchases(model, groups, t)  # (n_groups, horizon)
        new = (new_customers_per_period * _new_orders_per_cohort(model, t)
               if new_customers_per_period > 0 else np.zeros(len(t) - 1))
        return np.stack([counts @ existing, new, spend_sum @ existing + new_spend * new])

    point = evaluate(purchase_model)
    shifted = np.stack([evaluate(m) for m in perturbed_models(purchase_model)])  # (k, 3, horizon)
    cov = log_covariance(purchase_model)
    orders = point[0] + point[1]
    orders_shifted = shifted[:, 0] + shifted[:, 1]
    low, high = {}, {}
    for name, base, moved in (("purchases", point[0], shifted[:, 0]), ("orders", orders, orders_shifted),
                              ("revenue", point[2], shifted[:, 2])):
        low[name], high[name] = delta_interval(base, moved, cov, interval)
    out = pd.DataFrame({
        "period_start": bounds[:-1].tz_localize(None),
        "period_end": bounds[1:].tz_localize(None),
        "purchases": point[0], "purchases_low": low["purchases"], "purchases_high": high["purchases"],
        "new_customers": np.full(horizon, float(new_customers_per_period)),
        "new_orders": point[1],
        "orders": point[0] + point[1], "orders_low": low["orders"], "orders_high": high["orders"],
        "revenue_existing": point[2] - new_spend * point[1],
        "revenue_new": new_spend * point[1],
        "revenue": point[2], "revenue_low": low["revenue"], "revenue_high": high["revenue"],
    })
    out.attrs["uncertainty"] = (f"parameter uncertainty of the purchase model ({interval:.0%} interval, "
                                "delta method on the log scale)")
    return out


#: relative step on the parameters for the numerical gradients of the delta method
DELTA_STEP = 1e-3


def perturbed_models(model: Any, step: float = DELTA_STEP) -> list[Any]:
    """Copies of a fitted model, each with one parameter multiplied by ``exp(step)``."""
    theta = np.array([model.params_[p] for p in model.param_names], dtype=float)
    out = []
    for j in range(len(theta)):
        moved = theta.copy()
        moved[j] *= np.exp(step)
        out.append(type(model).from_params(**dict(zip(model.param_names, moved.tolist()))))
    return out


def log_covariance(model: Any) -> np.ndarray:
    """Covariance of the log-parameters of a fitted model (from its ``covariance_``)."""
    theta = np.array([model.params_[p] for p in model.param_names], dtype=float)
    cov = getattr(model, "covariance_", None)
    if cov is None:
        raise InputError(
            f"this {type(model).__name__} has no parameter covariance (built with from_params "
            "without covariance=): fit it on data, or pass covariance= to from_params"
        )
    return np.asarray(cov, dtype=float) / np.outer(theta, theta)


def delta_log_sd(base: Any, shifted: Any, cov_log: np.ndarray, step: float = DELTA_STEP) -> np.ndarray:
    """Standard deviation of ``log F`` by the delta method (0 where ``F`` is not positive).

    ``base`` holds ``F`` at the fitted parameters, ``shifted[j]`` the same with log-parameter
    ``j`` moved by ``step`` (see :func:`perturbed_models`); ``cov_log`` is the covariance of
    the log-parameters. The gradient of ``log F`` is taken by forward differences.

    Examples
    --------
    >>> # F(theta) = theta**2 with sd(log theta) = 0.1: sd(log F) = 0.2
    >>> round(float(delta_log_sd(4.0, [4.0 * np.exp(2e-3)], np.array([[0.01]]))), 6)
    0.2
    """
    base = np.asarray(base, dtype=float)
    shifted = np.asarray(shifted, dtype=float)
    positive = base > 0
    safe = np.where(positive, base, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        grad = np.where(positive & (shifted > 0), (np.log(np.maximum(shifted, 1e-300)) - np.log(safe)) / step, 0.0)
    flat = grad.reshape(grad.shape[0], -1)
    return np.sqrt(np.maximum(np.sum((cov_log @ flat) * flat, axis=0), 0.0)).reshape(base.shape)


def delta_interval(base: Any, shifted: Any, cov_log: np.ndarray, interval: float = 0.9,
                   step: float = DELTA_STEP) -> tuple[np.ndarray, np.ndarray]:
    """Interval of positive quantities by the delta method on the log scale.

    Parameters
    ----------
    base : array (...)
        Values at the fitted parameters.
    shifted : array (k, ...)
        Values with log-parameter ``j`` moved by ``step`` (see :func:`perturbed_models`).
    cov_log : array (k, k)
        Covariance of the log-parameters.

    Returns
    -------
    low, high : arrays shaped like ``base``; equal to ``base`` where it is not positive.

    Examples
    --------
    >>> # F(theta) = theta**2 at theta = 2 with sd(log theta) = 0.1: sd(log F) = 0.2
    >>> low, high = delta_interval(4.0, [4.0 * np.exp(2e-3)], np.array([[0.01]]), 0.9, step=1e-3)
    >>> round(float(low), 3), round(float(high), 3)
    (2.879, 5.558)
    """
    return log_normal_interval(base, delta_log_sd(base, shifted, cov_log, step), interval)


def log_normal_interval(base: Any, sd: Any, interval: float = 0.9) -> tuple[np.ndarray, np.ndarray]:
    """``base · exp(∓ z · sd)``, the interval for a log-scale standard deviation ``sd``.

    Examples
    --------
    >>> low, high = log_normal_interval(4.0, 0.2, 0.9)
    >>> round(float(low), 3), round(float(high), 3)
    (2.879, 5.558)
    """
    from scipy.stats import norm

    base = np.asarray(base, dtype=float)
    z = float(norm.ppf(0.5 + interval / 2)) * np.asarray(sd, dtype=float)
    return base * np.exp(-z), base * np.exp(z)


def _distinct_histories(data: pd.DataFrame, spend: np.ndarray) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Distinct (frequency, recency, T) rows, how many customers share each, and their summed spend."""
    missing = [c for c in ("frequency", "recency", "T") if c not in data.columns]
    if missing:
        raise InputError(f"the summary lacks column(s) {missing}; build it with ltvkit.rfm_summary()")
    from ltvkit.models.base import _row_codes

    columns = {c: data[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T")}
    codes, first = _row_codes(columns)
    groups = pd.DataFrame({c: v[first] for c, v in columns.items()})
    return (groups, np.bincount(codes, minlength=len(first)).astype(float),
            np.bincount(codes, weights=spend, minlength=len(first)))


def _period_purchases(model: Any, groups: pd.DataFrame, t: np.ndarray) -> np.ndarray:
    """Expected purchases of each distinct history in each period: shape (n_groups, horizon)."""
    cumulative = np.zeros((len(groups), len(t)))
    for j in range(1, len(t)):  # one horizon per call: the model dedupes rows, not (row, t) pairs
        cumulative[:, j] = np.asarray(model.expected_purchases(float(t[j]), groups), dtype=float)
    return np.maximum(np.diff(cumulative, axis=1), 0.0)


def _new_orders_per_cohort(model: Any, t: np.ndarray) -> np.ndarray:
    """Orders per period from one customer acquired per period (acquired mid-period)."""
    k = len(t) - 1
    mid = (t[:-1] + t[1:]) / 2
    age_end = np.maximum(t[1:][:, None] - mid[None, :], 0.0)      # [period, cohort]
    age_start = np.maximum(t[:-1][:, None] - mid[None, :], 0.0)
    both = np.asarray(model.expected_purchases_new(np.concatenate([age_end.ravel(), age_start.ravel()])),
                      dtype=float)
    repeat = both[: k * k].reshape(k, k) - both[k * k:].reshape(k, k)
    return repeat.sum(axis=1) + 1.0  # + the first order of the period's own cohort
