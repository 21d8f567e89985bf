"""When to reach out: next-purchase windows in calendar dates, purchase habits, contact dates, seasonality.

The purchase model gives quantiles of each customer's waiting time to the next purchase in
its own time unit (``next_purchase_time``); :func:`next_purchase_dates` turns them into
calendar dates. Habits (days between orders, preferred weekday and hour) and the base-wide
weekday/hour/month profile are computed in DuckDB SQL from the transaction log.
:func:`next_contact_dates` proposes a contact date per customer that never comes sooner than
a minimum gap after the previous contact.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from ltvkit.engines import duckdb as engine
from ltvkit.errors import InputError

__all__ = [
    "UNIT_DAYS",
    "WEEKDAYS",
    "next_contact_dates",
    "next_purchase_dates",
    "next_purchase_window",
    "purchase_habits",
    "purchase_rates",
    "purchase_seasonality",
]

UNIT_DAYS: dict[str, float] = {"D": 1.0, "W": 7.0, "M": 365.25 / 12}
"""Days in one model time unit (a month is 365.25/12 days), as in ``ltvkit.rfm_summary``."""

WEEKDAYS: tuple[str, ...] = (
    "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday",
)  # fmt: skip
_MONTHS = (
    "January", "February", "March", "April", "May", "June", "July", "August", "September",
    "October", "November", "December",
)  # fmt: skip
_US_PER_DAY = 86_400_000_000


def _date(value: Any, name: str) -> pd.Timestamp:
    try:
        stamp = pd.Timestamp(value)
    except (TypeError, ValueError):
        stamp = pd.NaT
    if pd.isna(stamp):
        raise InputError(f"{name}={value!r} is not a date; use a date such as 2024-06-30")
    return (stamp.tz_convert("UTC").tz_localize(None) if stamp.tzinfo else stamp).normalize()


def _day_series(values: Any) -> pd.Series:
    """Dates as naive UTC days (time zones converted to UTC, times dropped); NaT kept."""
    series = values if isinstance(values, pd.Series) else pd.Series(values)
    stamps = pd.to_datetime(series, errors="coerce", utc=True)
    return stamps.dt.tz_localize(None).dt.normalize()


def _unit_days(unit: str) -> float:
    if unit not in UNIT_DAYS:
        raise InputError(f"unit must be 'D' (days), 'W' (weeks) or 'M' (months), got {unit!r}")
    return UNIT_DAYS[unit]


def next_purchase_dates(
    quantiles: pd.DataFrame, observation_end: Any, unit: str = "W"
) -> pd.DataFrame:
    """Turn next-purchase-time quantiles (model time units) into calendar dates.

    The date of quantile ``tau`` is ``observation_end + tau × unit`` (floored to the day):
    the model measures waiting times from the end of observation. A quantile that is never
    reached (``+inf``: the customer may have dropped out) becomes ``NaT``.

    Parameters
    ----------
    quantiles : DataFrame
        Output of a purchase model's ``next_purchase_time`` (columns such as ``q10``,
        ``q50``, ``q90``), indexed by customer.
    observation_end : date-like
        The end of observation of the summary the model predicted from.
    unit : {"D", "W", "M"}
        The model's time unit (the ``freq`` of the summary).

    Returns
    -------
    DataFrame
        Same index; one datetime column per quantile, named ``next_purchase_<q>``.

    Examples
    --------
    >>> q = pd.DataFrame({"q10": [0.5, 1.0], "q90": [3.0, np.inf]}, index=["a", "b"])
    >>> next_purchase_dates(q, "2024-01-01", unit="W")
      next_purchase_q10 next_purchase_q90
    a        2024-01-04        2024-01-22
    b        2024-01-08               NaT
    """
    start = _date(observation_end, "observation_end")
    days = quantiles.astype(float).to_numpy() * _unit_days(unit)
    if np.isnan(days).any() or (days < 0).any():
        raise InputError("next-purchase quantiles must be >= 0 (or +inf); found negative or NaN")
    finite = np.isfinite(days)
    offsets = np.where(finite, np.floor(np.where(finite, days, 0.0)), 0).astype("int64")
    out = {}
    for j, col in enumerate(quantiles.columns):
        dates = start + pd.to_timedelta(offsets[:, j], unit="D")
        out[f"next_purchase_{col}"] = pd.Series(dates, index=quantiles.index).where(finite[:, j])
    return pd.DataFrame(out, index=quantiles.index)


def next_purchase_window(
    model: Any,
    data: pd.DataFrame,
    q: tuple[float, ...] = (0.1, 0.5, 0.9),
    observation_end: Any = None,
    unit: str | None = None,
) -> pd.DataFrame:
    """Calendar window of each customer's next purchase from a fitted purchase model.

    Thin wrapper: ``next_purchase_dates(model.next_purchase_time(data, q), ...)``, with the
    observation end and unit read from ``data.attrs`` (set by ``ltvkit.rfm_summary``) unless
    given.

    Examples
    --------
    >>> from ltvkit import BGNBD
    >>> m = BGNBD.from_params(r=0.243, alpha=4.414, a=0.793, b=2.426)
    >>> d = pd.DataFrame({"frequency": [6], "recency": [38.0], "T": [39.0]})
    >>> next_purchase_window(m, d, q=(0.5,), observation_end="1997-09-30", unit="W")
      next_purchase_q50
    0        1997-11-11
    """
    end = observation_end if observation_end is not None else data.attrs.get("observation_end")
    unit = unit or data.attrs.get("freq")
    if end is None or unit is None:
        raise InputError(
            "pass observation_end= and unit= (or a summary from ltvkit.rfm_summary, which "
            "records them)"
        )
    return next_purchase_dates(model.next_purchase_time(data, q=q), end, unit)


def next_contact_dates(
    target: Any,
    as_of: Any,
    last_contacted: Any = None,
    min_gap_days: int = 14,
    lead_days: int = 0,
) -> pd.Series:
    """Suggested next contact date per customer, never sooner than ``min_gap_days`` after the last.

    The contact date is ``target - lead_days`` (e.g. the start of the next-purchase window),
    moved forward to ``as_of`` when that is in the past or unknown (``NaT``: no expected
    purchase, so contact now), and to ``last_contacted + min_gap_days`` when the customer was
    contacted too recently.

    Parameters
    ----------
    target : Series of dates
        Desired contact dates (``NaT`` allowed), indexed by customer.
    as_of : date-like
        Today: no contact is suggested before it.
    last_contacted : Series of dates, optional
        Date of each customer's last contact (``NaT`` or absent: never contacted), aligned
        on the index of ``target``.
    min_gap_days : int, default 14
        Minimum number of days between two contacts of the same customer.
    lead_days : int, default 0
        Contact this many days before the target.

    Examples
    --------
    >>> t = pd.Series(pd.to_datetime(["2024-03-20", "2024-02-01", None]), index=["a", "b", "c"])
    >>> last = pd.Series(pd.to_datetime(["2024-03-15"]), index=["a"])
    >>> next_contact_dates(t, "2024-03-01", last, min_gap_days=14).dt.strftime("%m-%d").tolist()
    ['03-29', '03-01', '03-01']
    """
    if min_gap_days < 0 or lead_days < 0:
        raise InputError(
            f"min_gap_days and lead_days must be >= 0, got {min_gap_days} and {lead_days}"
        )
    today = _date(as_of, "as_of")
    dates = _day_series(target)
    proposed = (dates - pd.Timedelta(days=lead_days)).fillna(today).clip(lower=today)
    if last_contacted is not None:
        last = _day_series(last_contacted).reindex(dates.index)
        earliest = last + pd.Timedelta(days=min_gap_days)
        proposed = proposed.where(earliest.isna() | (proposed >= earliest), earliest)
    return proposed.rename("next_contact_date")


# ---------------------------------------------------------------- transaction-log side


def _log_table(transactions: Any, extra: tuple[str, ...] = ()) -> pa.Table:
    """Arrow table with customer_id, ts (timestamp), amount if present, and ``extra`` if present."""
    table = getattr(transactions, "table", transactions)
    if isinstance(table, pd.DataFrame):
        table = pa.Table.from_pandas(table, preserve_index=False)
    if not isinstance(table, pa.Table):
        raise InputError(
            f"expected a Transactions object (ltvkit.read_transactions), a pandas DataFrame or "
            f"a pyarrow Table, got {type(transactions).__name__}"
        )
    missing = {"customer_id", "ts"} - set(table.column_names)
    if missing:
        raise InputError(
            f"the transactions lack column(s) {sorted(missing)} (found {table.column_names}); "
            "read them with ltvkit.read_transactions(..., customer=, date=, amount=)"
        )
    kind = table.schema.field("ts").type
    if not (pa.types.is_timestamp(kind) or pa.types.is_date(kind)):
        raise InputError(f"column 'ts' must hold dates or timestamps, found {kind}")
    keep = ["customer_id", "ts"] + [c for c in ("amount", *extra) if c in table.column_names]
    table = table.select(keep)
    if table.num_rows == 0:
        raise InputError("the transaction log is empty")
    return table


def _has_times(con: Any) -> bool:
    row = engine.query_arrow(
        con, f"SELECT bool_or(epoch_us(ts::TIMESTAMP) % {_US_PER_DAY} <> 0) AS t FROM tx"
    )
    return bool(row.column("t")[0].as_py())


def purchase_habits(transactions: Any) -> pd.DataFrame:
    """Per-customer purchase habits from the transaction log (DuckDB SQL).

    Returns
    -------
    DataFrame
        Indexed by ``customer_id``: ``n_orders`` (rows), ``avg_days_between`` (days from the
        first to the last purchase day divided by the number of gaps between distinct purchase
        days; NaN for customers who bought on a single day), ``preferred_weekday`` (most
        frequent weekday name, ties to the earliest in the week) and ``preferred_hour``
        (most frequent UTC hour 0–23, ties to the earliest; missing for everyone when the log
        has dates only).

    Examples
    --------
    >>> log = pd.DataFrame({"customer_id": ["a", "a", "a", "b"],
    ...     "ts": pd.to_datetime(["2024-01-01 09:30", "2024-01-08 09:10", "2024-01-15 18:00",
    ...                           "2024-01-06 12:00"])})
    >>> purchase_habits(log)  # doctest: +NORMALIZE_WHITESPACE
                 n_orders  avg_days_between preferred_weekday  preferred_hour
    customer_id
    a                   3               7.0            Monday               9
    b                   1               NaN          Saturday              12
    """
    with engine.session() as con:
        engine.register(con, "tx", _log_table(transactions))
        hour = "hour(ts::TIMESTAMP)" if _has_times(con) else "NULL::INTEGER"
        sql = f"""
            WITH t AS (SELECT customer_id, isodow(ts::TIMESTAMP) AS dow, {hour} AS hr,
                              ts::DATE AS day FROM tx),
            base AS (SELECT customer_id, count(*) AS n_orders,
                            CASE WHEN count(DISTINCT day) > 1
                                 THEN datediff('day', min(day), max(day))
                                      / (count(DISTINCT day) - 1) END AS avg_days_between
                     FROM t GROUP BY customer_id),
            dow AS (SELECT customer_id, dow, row_number() OVER (PARTITION BY customer_id
                           ORDER BY count(*) DESC, dow) AS k FROM t GROUP BY customer_id, dow),
            hr AS (SELECT customer_id, hr, row_number() OVER (PARTITION BY customer_id
                          ORDER BY count(*) DESC, hr) AS k FROM t GROUP BY customer_id, hr)
            SELECT base.*, dow.dow, hr.hr AS preferred_hour FROM base
            JOIN dow ON dow.customer_id = base.customer_id AND dow.k = 1
            JOIN hr ON hr.customer_id = base.customer_id AND hr.k = 1
            ORDER BY base.customer_id"""
        out = engine.query_df(con, sql, context="computing purchase habits")
    weekday = np.asarray(WEEKDAYS, dtype=object)[out.pop("dow").to_numpy() - 1]
    out.insert(3, "preferred_weekday", pd.Series(weekday, index=out.index, dtype="str"))
    out["preferred_hour"] = out["preferred_hour"].astype("Int64")
    out["avg_days_between"] = out["avg_days_between"].astype(float)
    return out.set_index("customer_id")


def purchase_rates(
    transactions: Any, window_days: int = 90, observation_end: Any = None
) -> pd.DataFrame:
    """Orders per day in the last ``window_days`` versus before, per customer (DuckDB SQL).

    ``rate_recent`` = orders in the window / ``window_days``; ``rate_before`` = orders before
    the window / days from the first purchase to the window start, NaN for customers whose
    first purchase is inside the window (no history to compare). Feed both to
    :func:`ltvkit.value_flags` to flag rising customers.

    Examples
    --------
    >>> log = pd.DataFrame({"customer_id": ["a"] * 4,
    ...     "ts": pd.to_datetime(["2024-01-01", "2024-03-20", "2024-03-25", "2024-03-30"])})
    >>> rates = purchase_rates(log, window_days=30, observation_end="2024-03-31")
    >>> rates.round(3)  # doctest: +NORMALIZE_WHITESPACE
                 rate_recent  rate_before
    customer_id
    a                    0.1        0.016
    """
    if window_days < 1:
        raise InputError(f"window_days must be at least 1, got {window_days}")
    with engine.session() as con:
        engine.register(con, "tx", _log_table(transactions))
        end = (
            f"DATE '{_date(observation_end, 'observation_end').date()}'"
            if observation_end is not None
            else "(SELECT max(ts::DATE) FROM tx)"
        )
        sql = f"""
            WITH t AS (SELECT customer_id, ts::DATE AS day, {end} - {window_days - 1} AS start
                       FROM tx WHERE ts::DATE <= {end})
            SELECT customer_id,
                   count(*) FILTER (WHERE day >= start) / {window_days} AS rate_recent,
                   CASE WHEN min(day) < any_value(start)
                        THEN count(*) FILTER (WHERE day < start)
                             / datediff('day', min(day), any_value(start)) END AS rate_before
            FROM t GROUP BY customer_id ORDER BY customer_id"""
        out = engine.query_df(con, sql, context="computing purchase rates")
    return out.set_index("customer_id").astype(float)


def purchase_seasonality(transactions: Any, by: str = "weekday") -> pd.DataFrame:
    """Orders, revenue and buyers across the base by weekday, hour of day or month (DuckDB SQL).

    Parameters
    ----------
    transactions : Transactions, DataFrame or pyarrow Table
    by : {"weekday", "hour", "month"}
        Weekday names Monday–Sunday, UTC hours 0–23 or month names; every level is listed,
        with zeros where nothing was bought.

    Returns
    -------
    DataFrame
        Indexed by the level: ``orders``, ``customers`` (distinct buyers), ``order_share``
        and, when the log has amounts, ``revenue`` and ``revenue_share``.

    Examples
    --------
    >>> log = pd.DataFrame({"customer_id": [1, 2, 2],
    ...     "ts": pd.to_datetime(["2024-01-01", "2024-01-08", "2024-01-09"]),
    ...     "amount": [10.0, 30.0, 60.0]})
    >>> purchase_seasonality(log).head(2)  # doctest: +NORMALIZE_WHITESPACE
             orders  customers  order_share  revenue  revenue_share
    weekday
    Monday        2          2     0.666667     40.0            0.4
    Tuesday       1          1     0.333333     60.0            0.6
    """
    levels = {
        "weekday": ("isodow(ts::TIMESTAMP)", range(1, 8), WEEKDAYS),
        "hour": ("hour(ts::TIMESTAMP)", range(24), tuple(range(24))),
        "month": ("month(ts::TIMESTAMP)", range(1, 13), _MONTHS),
    }
    if by not in levels:
        raise InputError(f"by must be 'weekday', 'hour' or 'month', got {by!r}")
    expr, codes, names = levels[by]
    table = _log_table(transactions)
    money = ", sum(amount) AS revenue" if "amount" in table.column_names else ""
    with engine.session() as con:
        engine.register(con, "tx", table)
        if by == "hour" and not _has_times(con):
            raise InputError(
                "the timestamps have no time of day (all at midnight); an hourly profile needs "
                "purchase times — use by='weekday' or by='month'"
            )
        sql = f"""SELECT {expr} AS level, count(*) AS orders,
                         count(DISTINCT customer_id) AS customers{money}
                  FROM tx GROUP BY level"""
        raw = engine.query_df(con, sql, context=f"profiling purchases by {by}")
    out = raw.set_index("level").reindex(list(codes), fill_value=0)
    out.index = pd.Index(list(names), name=by)
    out.insert(2, "order_share", out["orders"] / out["orders"].sum())
    if money:
        out["revenue"] = out["revenue"].astype(float)
        out["revenue_share"] = out["revenue"] / out["revenue"].sum()
    return out
