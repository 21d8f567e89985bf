"""Acquisition cohorts and channels: value per cohort and channel, retention curves, CAC and affordable CPA.

A customer's acquisition cohort is the calendar month of their first purchase; their
acquisition channel (or campaign) is the ``channel`` (``campaign``) of their first
transaction. Retention and cumulative value per customer over tenure months are computed in
DuckDB SQL, counting at each tenure month only the customers observed that long (so young
cohorts do not drag curves down). With acquisition spend per channel, :func:`channel_economics`
gives CAC, CLV:CAC, payback and the highest cost per acquisition each channel can afford at a
target CLV:CAC ratio.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ltvkit.engines import duckdb as engine
from ltvkit.errors import InputError
from ltvkit.timing import _date, _log_table

UNKNOWN = "(unknown)"
"""Label of a missing channel or campaign on a customer's first transaction."""

__all__ = [
    "UNKNOWN",
    "acquisition",
    "channel_economics",
    "cohort_value",
    "read_spend",
    "retention_curves",
]


def acquisition(
    transactions: Any, columns: tuple[str, ...] = ("channel", "campaign")
) -> pd.DataFrame:
    """First purchase, acquisition cohort and acquisition channel/campaign of each customer.

    Parameters
    ----------
    transactions : Transactions, DataFrame or pyarrow Table
        Transaction log (``customer_id``, ``ts`` and optionally the ``columns``).
    columns : tuple of str
        Columns of the first transaction to carry over when the log has them. Several
        transactions at the same first timestamp are ordered by these values (smallest
        first) so the result is deterministic.

    Returns
    -------
    DataFrame
        Indexed by ``customer_id``: ``first_purchase`` (timestamp), ``cohort`` (``"YYYY-MM"``)
        and the available ``columns``.

    Examples
    --------
    >>> log = pd.DataFrame({"customer_id": [1, 1, 2],
    ...     "ts": pd.to_datetime(["2024-02-03", "2024-01-30", "2024-03-01"]),
    ...     "channel": ["ads", "email", "seo"]})
    >>> acquisition(log)[["cohort", "channel"]]  # doctest: +NORMALIZE_WHITESPACE
                  cohort channel
    customer_id
    1            2024-01   email
    2            2024-03     seo
    """
    table = _log_table(transactions, extra=columns)
    present = [c for c in columns if c in table.column_names]
    # the first transaction by (ts, labels...): one hash aggregation, no window sort
    first = "(" + ", ".join(["ts", *(_label(c) for c in present)]) + ")"
    carry = "".join(f", arg_min({_label(c)}, {first}) AS {_ident(c)}" for c in present)
    sql = f"""
        SELECT customer_id, min(ts) AS first_purchase,
               strftime(min(ts)::TIMESTAMP, '%Y-%m') AS cohort{carry}
        FROM tx GROUP BY customer_id ORDER BY customer_id"""
    with engine.session() as con:
        engine.register(con, "tx", table)
        out = engine.query_df(con, sql, context="finding each customer's first purchase")
    return out.set_index("customer_id")


def _ident(name: str) -> str:
    """A column name quoted for DuckDB SQL."""
    return '"' + name.replace('"', '""') + '"'


def _label(name: str) -> str:
    """SQL for a channel-like column as text, missing values shown as ``(unknown)``."""
    return f"coalesce(CAST({_ident(name)} AS VARCHAR), '{UNKNOWN}')"


def cohort_value(
    customers: pd.DataFrame,
    by: str = "cohort",
    clv: str = "clv",
    revenue: str = "total_revenue",
) -> pd.DataFrame:
    """Customers, historic revenue and predicted CLV per cohort, channel or any grouping column.

    Parameters
    ----------
    customers : DataFrame
        One row per customer with the ``by`` column, ``revenue`` (historic) and ``clv``;
        optional ``clv_low``/``clv_high`` (per-customer interval bounds of ``clv``).
    by, clv, revenue : str
        Column names.

    Returns
    -------
    DataFrame
        Indexed by group: ``customers``, ``revenue``, ``revenue_per_customer``, ``clv_total``,
        ``clv_mean``, ``clv_median`` and, when the interval columns exist, ``clv_mean_low``
        and ``clv_mean_high`` (means of the bounds: the interval of the group mean under
        parameter uncertainty, which moves all customers together).

    Examples
    --------
    >>> c = pd.DataFrame({"cohort": ["2024-01", "2024-01", "2024-02"],
    ...                   "total_revenue": [10.0, 30.0, 5.0], "clv": [20.0, 40.0, 8.0]})
    >>> cohort_value(c)[["customers", "revenue_per_customer", "clv_mean"]]
    ... # doctest: +NORMALIZE_WHITESPACE
             customers  revenue_per_customer  clv_mean
    cohort
    2024-01          2                  20.0      30.0
    2024-02          1                   5.0       8.0
    """
    need = [by, clv, revenue]
    missing = [c for c in need if c not in customers.columns]
    if missing:
        raise InputError(
            f"the customers table lacks column(s) {missing} (found {list(customers.columns)})"
        )
    grouped = customers.groupby(by, sort=True, observed=True, dropna=False)
    out = pd.DataFrame(
        {
            "customers": grouped.size(),
            "revenue": grouped[revenue].sum().astype(float),
            "clv_total": grouped[clv].sum().astype(float),
            "clv_mean": grouped[clv].mean(),
            "clv_median": grouped[clv].median(),
        }
    )
    out.insert(2, "revenue_per_customer", out["revenue"] / out["customers"])
    if {"clv_low", "clv_high"} <= set(customers.columns):
        out["clv_mean_low"] = grouped["clv_low"].mean()
        out["clv_mean_high"] = grouped["clv_high"].mean()
    return out


def retention_curves(
    transactions: Any,
    by: str = "cohort",
    observation_end: Any = None,
    margin: float = 1.0,
) -> pd.DataFrame:
    """Retention and cumulative value per customer over tenure months, per cohort or channel.

    Tenure month 0 is the calendar month of the first purchase, month ``k`` the ``k``-th
    calendar month after it. At tenure ``k`` a group counts only the customers observed for
    ``k`` months (their first-purchase month plus ``k`` is not after the observation-end
    month), so curves of mixed-age groups are not biased down; the last month may be partial.

    Parameters
    ----------
    transactions : Transactions, DataFrame or pyarrow Table
    by : str
        ``"cohort"`` (month of first purchase) or a column of the first transaction such as
        ``"channel"`` or ``"campaign"``.
    observation_end : date-like, optional
        Default: the day of the last transaction.
    margin : float, default 1.0
        Share of revenue that is profit (1.0 = revenue).

    Returns
    -------
    DataFrame
        Long table: ``by``, ``tenure`` (months), ``customers`` (observed at that tenure),
        ``active`` (who bought that month), ``retention`` (= active / customers),
        ``revenue`` (that month, times margin) and ``value_per_customer`` (cumulative revenue
        × margin per observed customer up to and including that month); the last two only
        when the log has amounts.

    Examples
    --------
    >>> log = pd.DataFrame({"customer_id": [1, 1, 2, 3],
    ...     "ts": pd.to_datetime(["2024-01-05", "2024-02-10", "2024-01-20", "2024-02-02"]),
    ...     "amount": [10.0, 20.0, 30.0, 5.0]})
    >>> retention_curves(log)[["cohort", "tenure", "customers", "retention",
    ...                        "value_per_customer"]]
        cohort  tenure  customers  retention  value_per_customer
    0  2024-01       0          2        1.0                20.0
    1  2024-01       1          2        0.5                30.0
    2  2024-02       0          1        1.0                 5.0
    """
    table = _log_table(transactions, extra=() if by == "cohort" else (by,))
    if by != "cohort" and by not in table.column_names:
        raise InputError(
            f"the transactions have no {by!r} column (found {table.column_names}); group by "
            "'cohort' or read the log with that column"
        )
    if not 0 <= margin <= 1 or not math.isfinite(margin):
        raise InputError(f"margin must be between 0 and 1, got {margin!r}")
    amount = "amount" if "amount" in table.column_names else "0.0"
    col = _ident(by)
    group = "strftime(month0, '%Y-%m')" if by == "cohort" else "first_group"
    label = _label(by)
    first_col = "" if by == "cohort" else f", arg_min({label}, (ts, {label})) AS first_group"
    end = (
        f"DATE '{_date(observation_end, 'observation_end').date()}'"
        if observation_end is not None
        else "(SELECT max(ts::DATE) FROM tx)"
    )
    sql = f"""
        WITH tx2 AS (SELECT * FROM tx WHERE ts::DATE <= {end}),
        firsts AS (SELECT customer_id, date_trunc('month', min(ts::DATE)) AS month0{first_col}
                   FROM tx2 GROUP BY customer_id),
        custs AS (SELECT customer_id, month0, {group} AS grp,
                         datediff('month', month0, {end}) AS last_tenure FROM firsts),
        -- (group, months observed, tenure) cells: small whatever the number of customers
        cells AS (SELECT grp, last_tenure, datediff('month', month0, ts::DATE) AS tenure,
                         count(DISTINCT customer_id) AS active, sum({amount}) * {margin} AS revenue
                  FROM tx2 JOIN custs USING (customer_id) GROUP BY ALL),
        sizes AS (SELECT grp, last_tenure, count(*) AS n FROM custs GROUP BY ALL),
        grid AS (SELECT grp, unnest(range(0, max(last_tenure) + 1)) AS tenure
                 FROM sizes GROUP BY grp),
        observed AS (SELECT grid.grp, grid.tenure, sum(sizes.n) AS customers FROM grid
                     JOIN sizes ON sizes.grp = grid.grp AND sizes.last_tenure >= grid.tenure
                     GROUP BY ALL),
        flows AS (SELECT grid.grp, grid.tenure,
                         coalesce(sum(cells.active) FILTER (WHERE cells.tenure = grid.tenure), 0)
                             AS active,
                         coalesce(sum(cells.revenue) FILTER (WHERE cells.tenure = grid.tenure), 0)
                             AS revenue,
                         coalesce(sum(cells.revenue), 0) AS cum_revenue
                  FROM grid LEFT JOIN cells ON cells.grp = grid.grp
                       AND cells.last_tenure >= grid.tenure AND cells.tenure <= grid.tenure
                  GROUP BY ALL)
        SELECT grp AS {col}, tenure, customers, active, active / customers AS retention,
               revenue::DOUBLE AS revenue, cum_revenue / customers AS value_per_customer
        FROM observed JOIN flows USING (grp, tenure) ORDER BY grp, tenure"""
    with engine.session() as con:
        engine.register(con, "tx", table)
        out = engine.query_df(con, sql, context=f"computing retention curves by {by}")
    out = out.astype({"tenure": "int64", "customers": "int64", "active": "int64"})
    return out if amount == "amount" else out.drop(columns=["revenue", "value_per_customer"])


def read_spend(source: Any) -> pd.DataFrame:
    """Acquisition spend per channel (and optionally per month) from a dict, DataFrame or CSV.

    The CSV has a header with ``channel`` and ``spend`` and optionally ``month`` (``YYYY-MM``);
    spends must be finite numbers >= 0. A bad file raises :class:`InputError` naming the
    file, line and column.

    Returns
    -------
    DataFrame
        Columns ``channel`` (str), ``spend`` (float) and, when given, ``month`` (str
        ``YYYY-MM``); rows repeated for the same key are summed.

    Examples
    --------
    >>> read_spend({"ads": 1000, "email": 200.0})
      channel   spend
    0     ads  1000.0
    1   email   200.0
    """
    if isinstance(source, Mapping):
        frame = pd.DataFrame({"channel": list(source), "spend": list(source.values())})
        return _check_spend(frame, "the spend dict")
    if isinstance(source, pd.DataFrame):
        return _check_spend(source.copy(), "the spend table")
    if isinstance(source, (str, os.PathLike)):
        return _read_spend_csv(Path(source))
    raise InputError(
        f"spend must be a dict {{channel: spend}}, a DataFrame or a CSV path, "
        f"got {type(source).__name__}"
    )


def _read_spend_csv(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise InputError(f"spend file {path} does not exist; give a CSV with channel,spend[,month]")
    with path.open(newline="", encoding="utf-8-sig") as handle:
        rows = list(csv.reader(handle))
    if not rows:
        raise InputError(f"{path}: the file is empty; expected a header channel,spend[,month]")
    header = [h.strip().lower() for h in rows[0]]
    missing = [c for c in ("channel", "spend") if c not in header]
    unknown = [h for h in header if h not in ("channel", "spend", "month")]
    if missing or unknown:
        raise InputError(
            f"{path}, line 1: the header {rows[0]} must be channel,spend[,month]"
            + (f" (missing {missing})" if missing else f" (unknown {unknown})")
        )
    records = []
    for line, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            raise InputError(
                f"{path}, line {line}: {len(row)} fields where the header has {len(header)} "
                f"({row!r})"
            )
        rec = dict(zip(header, (cell.strip() for cell in row), strict=True))
        where = f"{path}, line {line}, column"
        if not rec["channel"]:
            raise InputError(f"{where} 'channel': empty channel name")
        try:
            spend = float(rec["spend"].replace(",", "").replace("_", ""))
        except ValueError:
            spend = math.nan
        if not math.isfinite(spend) or spend < 0:
            raise InputError(
                f"{where} 'spend': {rec['spend']!r} is not an amount >= 0; write a plain "
                "number such as 1250.50"
            )
        rec["spend"] = spend
        if "month" in rec and _month(rec["month"]) is None:
            raise InputError(f"{where} 'month': {rec['month']!r} is not a month; use YYYY-MM")
        records.append(rec)
    if not records:
        raise InputError(f"{path}: no spend rows after the header")
    return _check_spend(pd.DataFrame(records), str(path))


def _month(value: Any) -> str | None:
    try:
        stamp = pd.Timestamp(str(value))
    except (TypeError, ValueError):
        return None
    return None if pd.isna(stamp) else stamp.strftime("%Y-%m")


def _check_spend(frame: pd.DataFrame, where: str) -> pd.DataFrame:
    if not {"channel", "spend"} <= set(frame.columns):
        raise InputError(f"{where} needs columns channel and spend, found {list(frame.columns)}")
    spend = pd.to_numeric(frame["spend"], errors="coerce").astype(float)
    bad = ~np.isfinite(spend.to_numpy()) | (spend.to_numpy() < 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InputError(
            f"{where}: spend of channel {frame['channel'].iloc[i]!r} is {frame['spend'].iloc[i]!r}; "
            "spends must be numbers >= 0"
        )
    keys = ["channel"]
    out = pd.DataFrame({"channel": frame["channel"].astype(str), "spend": spend})
    if "month" in frame.columns:
        months = frame["month"].map(_month)
        if months.isna().any():
            value = frame["month"][months.isna()].iloc[0]
            raise InputError(f"{where}: month {value!r} is not a month; use YYYY-MM")
        out["month"], keys = months, ["channel", "month"]
    return out.groupby(keys, as_index=False, sort=True)["spend"].sum()


def channel_economics(
    customers: pd.DataFrame,
    spend: Any,
    target_ratio: float = 3.0,
    curves: pd.DataFrame | None = None,
    by: str = "channel",
    clv: str = "clv",
) -> pd.DataFrame:
    """CAC, CLV:CAC, payback and affordable CPA per acquisition channel (or channel × month).

    For each channel: ``cac`` = spend / customers acquired; ``clv_to_cac`` = mean CLV / CAC;
    ``affordable_cpa`` = mean CLV / ``target_ratio`` — the highest cost per acquisition that
    keeps CLV:CAC at the target; ``spend_limit`` = affordable CPA × customers acquired — the
    spend at which the same acquisitions would just meet the target. When the spend has a
    ``month`` column, rows are per channel and acquisition month (the ``cohort``).

    Parameters
    ----------
    customers : DataFrame
        One row per customer with the ``by`` column (e.g. from :func:`acquisition`), ``clv``
        and, for monthly spend, ``cohort``.
    spend : dict, DataFrame or CSV path
        See :func:`read_spend`.
    target_ratio : float, default 3.0
        Target CLV:CAC.
    curves : DataFrame, optional
        :func:`retention_curves` by the same column; gives ``payback_months``, the first
        tenure month at which cumulative value per customer reaches the CAC (0 = within the
        acquisition month; NaN if not reached in the observed history).

    Returns
    -------
    DataFrame
        Indexed by channel (or channel and month): ``customers``, ``spend``, ``cac``,
        ``clv_mean``, ``clv_to_cac``, ``affordable_cpa``, ``spend_limit`` and, with curves,
        ``payback_months``. Channels with spend but no customers have ``cac`` = inf; customers
        whose channel has no spend have NaN spend and CAC.

    Examples
    --------
    >>> c = pd.DataFrame({"channel": ["ads", "ads", "email"], "clv": [90.0, 30.0, 12.0]})
    >>> channel_economics(c, {"ads": 40.0, "email": 10.0})[["cac", "clv_to_cac", "affordable_cpa"]]
    ... # doctest: +NORMALIZE_WHITESPACE
              cac  clv_to_cac  affordable_cpa
    channel
    ads      20.0         3.0            20.0
    email    10.0         1.2             4.0
    """
    if not (target_ratio > 0 and math.isfinite(target_ratio)):
        raise InputError(f"target_ratio must be a positive number, got {target_ratio!r}")
    table = read_spend(spend)
    keys = [by] + (["cohort"] if "month" in table.columns else [])
    missing = [c for c in [*keys, clv] if c not in customers.columns]
    if missing:
        raise InputError(
            f"the customers table lacks column(s) {missing} (found {list(customers.columns)}); "
            "add the acquisition channel and cohort with ltvkit.acquisition(transactions)"
        )
    acquired = customers.groupby(keys, observed=True, dropna=False).agg(
        customers=(clv, "size"), clv_mean=(clv, "mean")
    )
    table = table.rename(columns={"channel": by, "month": "cohort"}).set_index(keys)
    out = acquired.join(table, how="outer")
    out["customers"] = out["customers"].fillna(0).astype("int64")
    with np.errstate(divide="ignore", invalid="ignore"):
        out["cac"] = out["spend"] / out["customers"]
        out["clv_to_cac"] = out["clv_mean"] / out["cac"]
    out["affordable_cpa"] = out["clv_mean"] / target_ratio
    out["spend_limit"] = out["affordable_cpa"] * out["customers"]
    if curves is not None:
        out["payback_months"] = _payback(out, curves, by)
    return out[
        [
            "customers",
            "spend",
            "cac",
            "clv_mean",
            "clv_to_cac",
            "affordable_cpa",
            "spend_limit",
            *(["payback_months"] if curves is not None else []),
        ]
    ]


def _payback(table: pd.DataFrame, curves: pd.DataFrame, by: str) -> pd.Series:
    """First tenure month where the group's cumulative value per customer reaches its CAC."""
    if not {by, "tenure", "value_per_customer"} <= set(curves.columns):
        raise InputError(f"curves must come from retention_curves(transactions, by={by!r})")
    cac = table["cac"].rename("cac").reset_index()
    merged = curves[[by, "tenure", "value_per_customer"]].merge(cac, on=by)
    reached = merged[merged["value_per_customer"] >= merged["cac"]]
    first = reached.groupby(list(table.index.names), observed=True)["tenure"].min()
    return first.reindex(table.index).astype(float)
