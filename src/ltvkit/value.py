"""Customer lifetime value: discounted expected margin over a calendar horizon, with parameter intervals.

For customer i, with the purchase model's conditional expectation ``E_i[X(t)]`` (purchases in
(T, T + t]), the spend model's expected order value ``S_i`` and a horizon of H calendar periods
of length Delta (in the purchase model's time unit)::

    CLV_i = margin * S_i * sum_{k=1..H} (E_i[X(k Delta)] - E_i[X((k-1) Delta)]) / (1 + d)^k

Purchases are counted per calendar period (incremental, not cumulative) and each period is
discounted at the end of the period with the per-period rate ``d``. This is the discrete version
of the discounted expected transactions of Fader, Hardie & Lee (2005), "RFM and CLV: using
iso-value curves for customer base analysis", Journal of Marketing Research 42(4).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ltvkit.errors import InputError
from ltvkit.models.base import _row_codes

__all__ = ["UNIT_DAYS", "lifetime_value"]

#: length of a calendar unit in days (a month is a twelfth of a Julian year)
UNIT_DAYS: dict[str, float] = {"D": 1.0, "W": 7.0, "M": 365.25 / 12, "Q": 365.25 / 4, "Y": 365.25}


def lifetime_value(
    purchase_model: Any,
    spend_model: Any,
    data: pd.DataFrame,
    horizon: int = 12,
    unit: str = "M",
    discount_rate: float = 0.01,
    margin: float = 1.0,
    interval: float | None = None,
    n_draws: int = 200,
    seed: int | None = 0,
    model_unit: str = "W",
) -> pd.Series | pd.DataFrame:
    """Discounted expected margin of each customer over the next ``horizon`` calendar periods.

    ::

        CLV_i = margin * S_i * sum_{k=1..H} (E_i[X(k D)] - E_i[X((k-1) D)]) / (1 + discount_rate)^k

    with ``E_i[X(t)]`` = ``purchase_model.expected_purchases(t, data)`` (expected purchases in
    (T, T + t]), ``S_i`` = ``spend_model.expected_spend(data)`` and ``D`` = one ``unit`` expressed
    in the purchase model's time unit ``model_unit`` (e.g. unit="M", model_unit="W": D = 4.35).
    Any purchase model with ``expected_purchases(t, data)`` works (BG/NBD, Pareto/NBD, MBG/NBD).
    For BG/BB, whose time is counted in purchase opportunities, set ``model_unit`` to the length
    of one opportunity (e.g. "Y" for yearly) and ``unit`` to the same, so D = 1 opportunity.

    Parameters
    ----------
    purchase_model : fitted purchase model
        Exposes ``expected_purchases(t, data)``; for intervals also ``sample_params`` and
        ``from_params``.
    spend_model : fitted spend model
        Exposes ``expected_spend(data)`` (e.g. :class:`ltvkit.GammaGamma`).
    data : DataFrame
        One row a customer, with the columns both models need (frequency, recency, T,
        monetary_value).
    horizon : int
        Number of calendar periods ``unit`` to value (12 with unit="M": one year).
    unit : {"D", "W", "M", "Q", "Y"}
        Calendar period of the horizon and of ``discount_rate``.
    discount_rate : float
        Discount rate per period ``unit`` (0.01 a month is about 12.7% a year); >= 0.
    margin : float
        Share of revenue that is profit; 1.0 (default) gives a revenue CLV.
    interval : float, optional
        E.g. 0.9: return ``mean``, ``low``, ``high`` over ``n_draws`` joint draws of both
        models' parameters (parameter uncertainty only, labelled in ``.attrs["uncertainty"]``).
    n_draws, seed : int
        Number of parameter draws and their seed (with ``interval``).
    model_unit : {"D", "W", "M", "Q", "Y"}
        Time unit the purchase model was fitted in (the unit of recency and T), default weeks.

    Returns
    -------
    Series (named "clv") indexed like ``data``, or a DataFrame with ``mean``/``low``/``high``.

    Examples
    --------
    >>> import pandas as pd
    >>> from ltvkit import BGNBD, GammaGamma, lifetime_value
    >>> bg = BGNBD.from_params(r=0.243, alpha=4.414, a=0.793, b=2.426)
    >>> gg = GammaGamma.from_params(p=6.25, q=3.74, gamma=15.44)
    >>> d = pd.DataFrame({"frequency": [0, 2], "recency": [0.0, 30.0], "T": [39.0, 39.0],
    ...                   "monetary_value": [0.0, 20.0]})
    >>> lifetime_value(bg, gg, d, horizon=12, unit="M").round(2).tolist()
    [8.35, 33.06]
    """
    step, discount = _schedule(horizon, unit, discount_rate, margin, model_unit)
    if not isinstance(data, pd.DataFrame):
        raise InputError(f"lifetime_value expects a DataFrame of customers, got {type(data).__name__}")
    rows = (_distinct_rows(purchase_model, data), _distinct_rows(spend_model, data))
    if interval is None:
        return pd.Series(_clv(purchase_model, spend_model, rows, step, discount) * margin,
                         index=data.index, name="clv")
    if not 0 < interval < 1:
        raise InputError(f"interval must be between 0 and 1 (e.g. 0.9), got {interval}")
    rng = np.random.default_rng(seed)
    draws_p = purchase_model.sample_params(n_draws, seed=int(rng.integers(2**31)))
    draws_s = spend_model.sample_params(n_draws, seed=int(rng.integers(2**31)))
    values = np.stack([
        _clv(_with_params(purchase_model, pp), _with_params(spend_model, ps), rows, step, discount)
        for pp, ps in zip(draws_p, draws_s)
    ]) * margin
    tail = (1 - interval) / 2
    low, high = np.quantile(values, [tail, 1 - tail], axis=0)
    out = pd.DataFrame({"mean": values.mean(axis=0), "low": low, "high": high}, index=data.index)
    out.attrs["uncertainty"] = (
        f"parameter uncertainty ({interval:.0%} interval) of the purchase and spend models, "
        f"{n_draws} joint draws"
    )
    return out


def _schedule(horizon: int, unit: str, discount_rate: float, margin: float,
              model_unit: str) -> tuple[float, np.ndarray]:
    """Validate the arguments; return the period length in model units and discount factors."""
    for name, u in (("unit", unit), ("model_unit", model_unit)):
        if u not in UNIT_DAYS:
            raise InputError(f"{name} must be one of {', '.join(UNIT_DAYS)}, got {u!r}")
    if isinstance(horizon, bool) or not float(horizon).is_integer() or horizon < 1:
        raise InputError(f"horizon must be a whole number of periods >= 1, got {horizon!r}")
    if not (np.isfinite(discount_rate) and discount_rate >= 0):
        raise InputError(f"discount_rate must be >= 0 per {unit} period, got {discount_rate!r}")
    if not (np.isfinite(margin) and margin >= 0):
        raise InputError(f"margin must be a share of revenue >= 0 (1.0 = revenue), got {margin!r}")
    step = UNIT_DAYS[unit] / UNIT_DAYS[model_unit]
    discount = (1.0 + discount_rate) ** -np.arange(1, int(horizon) + 1)
    return step, discount


def _distinct_rows(model: Any, data: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """The distinct rows of ``data`` in the columns ``model`` uses (its ``data_columns``) and each
    customer's position among them: every model is evaluated once per distinct row."""
    columns = [c for c in getattr(model, "data_columns", ()) if c in data.columns]
    if not columns:
        return data, np.arange(len(data))
    codes, first = _row_codes({c: data[c].to_numpy() for c in columns})
    return data.iloc[first], codes


def _clv(purchase_model: Any, spend_model: Any, rows: tuple, step: float,
         discount: np.ndarray) -> np.ndarray:
    """Discounted expected revenue per customer (before margin); ``rows`` = the
    :func:`_distinct_rows` of the data for the purchase model and for the spend model."""
    (histories, codes), (spend_rows, spend_codes) = rows
    spend = np.asarray(spend_model.expected_spend(spend_rows), dtype=float)[spend_codes]
    total = np.zeros(len(histories))
    previous = np.zeros(len(histories))
    for k, factor in enumerate(discount, start=1):
        cumulative = np.asarray(purchase_model.expected_purchases(k * step, histories), dtype=float)
        total += (cumulative - previous) * factor
        previous = cumulative
    return total[codes] * spend


def _with_params(model: Any, params: np.ndarray) -> Any:
    """A copy of ``model`` with other parameter values (one draw of its uncertainty)."""
    return type(model).from_params(**dict(zip(model.param_names, params.tolist())))
