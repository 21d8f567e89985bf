"""Customer segments: RFM scores, named segments with recommended actions, value tiers and concentration.

RFM scores rank customers on recency, frequency and monetary value into ``bins`` quantile
classes (5 = best). Named segments come from a *rule table* on the recency and frequency
scores (the widely used 11-segment R×F grid), evaluated in order, first match wins; users can
pass their own table. Each segment carries a stable ``key`` and an action drawn from the three
levers of customer value — frequency, recency and monetary value — so the report can translate
both. Value tiers, value shares, Lorenz curve and Gini show how predicted value is concentrated
and what the middle of the base contributes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ltvkit._io import atomic_path
from ltvkit.errors import InputError

__all__ = [
    "AUDIENCE_COLUMNS",
    "DEFAULT_SEGMENT_RULES",
    "DEFAULT_TIERS",
    "SEGMENT_LABELS",
    "TIER_LABELS",
    "gini",
    "gini_of_curve",
    "lorenz_curve",
    "rfm_scores",
    "rfm_segments",
    "value_deciles",
    "value_flags",
    "value_shares",
    "value_tiers",
    "write_audiences",
]

# key -> English name, lever and recommended action. The report translates by key.
SEGMENT_LABELS: dict[str, dict[str, str]] = {
    "champions": {
        "segment": "Champions",
        "lever": "monetary",
        "action": "Reward them and raise the basket: early access, premium upsell and bundles; "
        "ask for reviews and referrals.",
    },
    "loyal": {
        "segment": "Loyal",
        "lever": "monetary",
        "action": "Raise the average basket with bundles and upsell; offer a loyalty tier.",
    },
    "potential_loyalists": {
        "segment": "Potential loyalists",
        "lever": "frequency",
        "action": "Build the habit: cross-sell related products and invite them to the "
        "referral or membership programme.",
    },
    "new": {
        "segment": "New",
        "lever": "frequency",
        "action": "Onboard them: welcome series and a cross-sell for the second purchase "
        "within their expected repeat window.",
    },
    "promising": {
        "segment": "Promising",
        "lever": "frequency",
        "action": "Encourage a first repeat: cross-sell with a small incentive and a "
        "referral invitation.",
    },
    "need_attention": {
        "segment": "Need attention",
        "lever": "recency",
        "action": "Send a time-limited offer based on their past purchases before they drift.",
    },
    "about_to_sleep": {
        "segment": "About to sleep",
        "lever": "recency",
        "action": "Send a reminder with popular products and a time-limited discount.",
    },
    "at_risk": {
        "segment": "At risk",
        "lever": "recency",
        "action": "Run a personal win-back campaign with a time-limited offer on their "
        "usual products.",
    },
    "cannot_lose": {
        "segment": "Cannot lose",
        "lever": "recency",
        "action": "Win them back now: personal outreach and the strongest win-back offer; "
        "find out what went wrong.",
    },
    "hibernating": {
        "segment": "Hibernating",
        "lever": "recency",
        "action": "Send a low-cost reminder of relevant products; stop if they do not respond.",
    },
    "lost": {
        "segment": "Lost",
        "lever": "recency",
        "action": "At most one low-cost win-back attempt; otherwise stop spending on them.",
    },
    "unassigned": {
        "segment": "Unassigned",
        "lever": "",
        "action": "No rule matched these scores; extend the rule table.",
    },
}

# (key, r_min, r_max, f_min, f_max): the R×F grid, evaluated top to bottom, first match wins.
_GRID = [
    ("champions", 5, 5, 4, 5),
    ("loyal", 3, 4, 4, 5),
    ("cannot_lose", 1, 2, 5, 5),
    ("at_risk", 1, 2, 3, 4),
    ("potential_loyalists", 4, 5, 2, 3),
    ("new", 5, 5, 1, 1),
    ("promising", 4, 4, 1, 1),
    ("need_attention", 3, 3, 3, 3),
    ("about_to_sleep", 3, 3, 1, 2),
    ("hibernating", 2, 2, 1, 2),
    ("lost", 1, 1, 1, 2),
]
DEFAULT_SEGMENT_RULES: pd.DataFrame = pd.DataFrame(
    [
        {
            "key": key,
            "segment": SEGMENT_LABELS[key]["segment"],
            "r_min": r0,
            "r_max": r1,
            "f_min": f0,
            "f_max": f1,
            "lever": SEGMENT_LABELS[key]["lever"],
            "action": SEGMENT_LABELS[key]["action"],
        }
        for key, r0, r1, f0, f1 in _GRID
    ]
)
"""Default segment rules on 1–5 scores; optional ``m_min``/``m_max`` columns are also honoured."""

# (key, cumulative share of customers from the top): tiers are disjoint slices of the ranking.
DEFAULT_TIERS: tuple[tuple[str, float], ...] = (
    ("top_1", 0.01),
    ("top_10", 0.10),
    ("next_40", 0.50),
    ("bottom_50", 1.0),
)
TIER_LABELS: dict[str, str] = {
    "top_1": "Top 1%",
    "top_10": "Top 10% (after the top 1%)",
    "next_40": "Next 40%",
    "bottom_50": "Bottom 50%",
}


def _column(summary: pd.DataFrame, name: str) -> np.ndarray:
    if name not in summary.columns:
        raise InputError(
            f"the summary has no {name!r} column (columns: {list(summary.columns)}); "
            "build it with ltvkit.rfm_summary(transactions)"
        )
    values = pd.to_numeric(summary[name], errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(values)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InputError(
            f"column {name!r} has {int(bad.sum())} missing or non-numeric values, first for "
            f"customer {summary.index[i]!r} ({summary[name].iloc[i]!r}); fix or drop those customers"
        )
    return values


def _quantile_score(values: np.ndarray, bins: int) -> np.ndarray:
    """1 + floor(bins × share of customers with a strictly lower value): ties share a score."""
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    below = (np.cumsum(counts) - counts)[inverse]  # customers with a strictly lower value
    return (1 + np.floor(bins * below / len(values))).astype(np.int64)


def rfm_scores(summary: pd.DataFrame, bins: int = 5) -> pd.DataFrame:
    """Score each customer 1..``bins`` on recency, frequency and monetary value.

    A customer's score is ``1 + floor(bins × s)`` where ``s`` is the share of customers with a
    strictly worse value, so equal customers always get equal scores, the order of rows does
    not matter, and a large block of ties (the one-time buyers of CDNOW, say) all get the score
    of the block's lowest position instead of being split at random across classes. Some
    scores may then be unused.

    - recency: scored on the time since the last purchase, ``T - recency`` (lower is better,
      so the most recent buyers get ``bins``);
    - frequency: ``frequency`` (repeat purchases);
    - monetary: the mean order value ``total_revenue / n_orders`` when the summary has those
      columns (so one-time buyers are scored on their order), else ``monetary_value``.

    Parameters
    ----------
    summary : DataFrame
        Per-customer summary indexed by customer id (``ltvkit.rfm_summary``), with at least
        ``frequency``, ``recency``, ``T`` and either ``total_revenue`` + ``n_orders`` or
        ``monetary_value``.
    bins : int, default 5
        Number of score classes.

    Returns
    -------
    DataFrame
        Same index; columns ``r_score``, ``f_score``, ``m_score`` (int) and ``rfm_code`` (str).

    Examples
    --------
    >>> s = pd.DataFrame({"frequency": [0, 0, 2, 5], "recency": [0, 0, 10, 30],
    ...                   "T": [30, 5, 30, 30], "monetary_value": [0, 0, 20.0, 35.0]},
    ...                  index=["a", "b", "c", "d"])
    >>> rfm_scores(s, bins=4)
       r_score  f_score  m_score rfm_code
    a        1        1        1      111
    b        3        1        1      311
    c        2        3        3      233
    d        4        4        4      444
    """
    if not isinstance(bins, (int, np.integer)) or not 2 <= bins <= 9:
        raise InputError(f"bins must be an integer from 2 to 9 (one digit per score), got {bins!r}")
    if len(summary) == 0:
        raise InputError("the summary has no customers; nothing to score")
    since_last = _column(summary, "T") - _column(summary, "recency")
    if "total_revenue" in summary.columns and "n_orders" in summary.columns:
        monetary = _column(summary, "total_revenue") / np.maximum(_column(summary, "n_orders"), 1)
    else:
        monetary = _column(summary, "monetary_value")
    out = pd.DataFrame(
        {
            "r_score": _quantile_score(-since_last, bins),
            "f_score": _quantile_score(_column(summary, "frequency"), bins),
            "m_score": _quantile_score(monetary, bins),
        },
        index=summary.index,
    )
    digits = (out["r_score"] * 100 + out["f_score"] * 10 + out["m_score"]).to_numpy()
    codes, inverse = np.unique(digits, return_inverse=True)
    out["rfm_code"] = _text([str(c) for c in codes], inverse, out.index)
    return out


def _text(labels: Sequence[str], codes: np.ndarray, index: pd.Index) -> pd.Series:
    """``labels[codes]`` as a text Series, gathered in Arrow (no Python object per row)."""
    import pyarrow as pa

    return pd.Series(pa.array(list(labels), type=pa.string()).take(pa.array(codes)), index=index,
                     dtype="str")


def _rules_frame(rules: pd.DataFrame | Sequence[Mapping[str, Any]], bins: int) -> pd.DataFrame:
    table = pd.DataFrame(rules).reset_index(drop=True)
    if "key" not in table.columns or table["key"].isna().any():
        raise InputError(
            f"every segment rule needs a 'key' (found columns {list(table.columns)}); a rule is "
            "key plus optional r_min, r_max, f_min, f_max, m_min, m_max (missing bounds mean "
            "the full 1..bins range), segment, action, lever — see DEFAULT_SEGMENT_RULES"
        )
    for axis in "rfm":
        for bound, default in (("min", 1), ("max", bins)):
            col = f"{axis}_{bound}"
            raw = table[col] if col in table.columns else pd.Series(np.nan, index=table.index)
            numeric = pd.to_numeric(raw, errors="coerce")
            bad = numeric.isna() & raw.notna()
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise InputError(
                    f"segment rule {table['key'].iloc[i]!r}: {col} must be a score number, "
                    f"got {raw.iloc[i]!r}"
                )
            table[col] = numeric.fillna(default)
    for col in ("segment", "action", "lever"):
        known = table["key"].map(lambda k, c=col: SEGMENT_LABELS.get(k, {}).get(c))
        table[col] = table[col].fillna(known) if col in table.columns else known
    table["segment"] = table["segment"].fillna(table["key"])
    return table.fillna({"action": "", "lever": ""})


def rfm_segments(
    summary: pd.DataFrame,
    rules: pd.DataFrame | Sequence[Mapping[str, Any]] | None = None,
    bins: int = 5,
) -> pd.DataFrame:
    """RFM scores plus a named segment and its recommended action for each customer.

    Parameters
    ----------
    summary : DataFrame
        Per-customer summary (see :func:`rfm_scores`). If it already holds ``r_score``,
        ``f_score`` and ``m_score`` those scores are used as they are.
    rules : DataFrame or list of dicts, optional
        Rule table evaluated in order, first match wins: ``key`` and inclusive score ranges
        ``r_min``/``r_max``, ``f_min``/``f_max``, ``m_min``/``m_max`` (a missing bound means
        the full range); columns
        ``segment``, ``action`` and ``lever`` default to :data:`SEGMENT_LABELS` for known keys.
        Default :data:`DEFAULT_SEGMENT_RULES`. Customers no rule matches get key
        ``"unassigned"``.
    bins : int, default 5
        Number of score classes (missing rule bounds default to 1..``bins``).

    Returns
    -------
    DataFrame
        The scores plus ``segment_key``, ``segment``, ``lever`` and ``action``.

    Examples
    --------
    >>> s = pd.DataFrame({"r_score": [5, 1, 3], "f_score": [5, 5, 3], "m_score": [4, 2, 3]})
    >>> rfm_segments(s)[["segment_key", "segment"]]
          segment_key         segment
    0       champions       Champions
    1     cannot_lose     Cannot lose
    2  need_attention  Need attention
    """
    score_cols = ["r_score", "f_score", "m_score"]
    if all(c in summary.columns for c in score_cols):
        out = summary.copy()
    else:
        out = rfm_scores(summary, bins=bins)
    table = _rules_frame(DEFAULT_SEGMENT_RULES if rules is None else rules, bins)
    from ltvkit.models.base import _row_codes

    # rules are evaluated once per distinct (r, f, m) combination, then mapped back
    codes, rows = _row_codes({c: out[c].to_numpy() for c in score_cols})
    scores = {c[0]: out[c].to_numpy()[rows][:, None] for c in score_cols}
    match = np.ones((len(rows), len(table)), dtype=bool)
    for axis in "rfm":
        lo = table[f"{axis}_min"].to_numpy(dtype=float)[None, :]
        hi = table[f"{axis}_max"].to_numpy(dtype=float)[None, :]
        match &= (scores[axis] >= lo) & (scores[axis] <= hi)
    labels = pd.concat(
        [
            table[["key", "segment", "lever", "action"]],
            pd.DataFrame([{"key": "unassigned", **SEGMENT_LABELS["unassigned"]}]),
        ],
        ignore_index=True,
    )
    first = np.where(match.any(axis=1), match.argmax(axis=1), len(table))[codes]
    for col, name in (("key", "segment_key"), ("segment", "segment"), ("lever", "lever"),
                      ("action", "action")):
        out[name] = _text(labels[col].astype(str).tolist(), first, out.index)
    return out


def _values(clv: Any, name: str = "clv") -> pd.Series:
    series = clv.copy() if isinstance(clv, pd.Series) else pd.Series(np.asarray(clv))
    series = pd.to_numeric(series, errors="coerce").astype(float)
    bad = ~np.isfinite(series.to_numpy()) | (series.to_numpy() < 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InputError(
            f"{name} must be finite and >= 0; {int(bad.sum())} value(s) are not, first for "
            f"customer {series.index[i]!r} ({series.iloc[i]!r})"
        )
    if len(series) == 0:
        raise InputError(f"{name} is empty; there are no customers to rank")
    return series


def _aligned(data: Any, values: pd.Series, name: str, allow_nan: bool = False) -> np.ndarray:
    """``data`` as floats in the order of ``values``: aligned on the index when both are Series."""
    if isinstance(data, pd.Series) and not isinstance(values.index, pd.RangeIndex):
        data = data.reindex(values.index)
    array = np.asarray(data, dtype=float)
    if array.shape != (len(values),):
        raise InputError(f"{name} has {array.size} values for {len(values)} customers")
    bad = ~np.isfinite(array) & ~(allow_nan & np.isnan(array))
    if bad.any() or (array[~np.isnan(array)] < 0).any():
        i = int(np.flatnonzero(bad | (np.nan_to_num(array) < 0))[0])
        raise InputError(
            f"{name} must be finite and >= 0; customer {values.index[i]!r} has {array[i]}"
        )
    return array


def _share_from_top(values: pd.Series) -> np.ndarray:
    """Share of customers with a strictly higher value (ties share a position)."""
    _, inverse, counts = np.unique(values.to_numpy(), return_inverse=True, return_counts=True)
    higher = len(values) - np.cumsum(counts)[inverse]
    return higher / len(values)


def value_tiers(clv: Any, tiers: Sequence[tuple[str, float]] = DEFAULT_TIERS) -> pd.Series:
    """Assign each customer to a value tier by rank of predicted CLV.

    Tiers are disjoint slices of the ranking from the top, given as ``(key, cumulative share)``
    pairs in increasing order ending at 1.0: the defaults are the top 1%, the rest of the top
    10%, the next 40% and the bottom 50%. A customer's position is the share of customers with
    a strictly higher CLV, so ties fall in the same tier.

    Parameters
    ----------
    clv : array-like or Series
        Predicted CLV per customer (finite, >= 0).
    tiers : sequence of (str, float), default :data:`DEFAULT_TIERS`

    Returns
    -------
    Series
        Ordered categorical of tier keys, same index as ``clv``.

    Examples
    --------
    >>> value_tiers([5.0, 1.0, 3.0, 0.0], tiers=[("top", 0.25), ("rest", 1.0)]).tolist()
    ['top', 'rest', 'rest', 'rest']
    """
    values = _values(clv)
    keys = [k for k, _ in tiers]
    bounds = np.array([b for _, b in tiers], dtype=float)
    if len(keys) == 0 or np.any(np.diff(bounds) <= 0) or bounds[0] <= 0 or bounds[-1] != 1.0:
        raise InputError(
            f"tiers must be (name, cumulative share) pairs with shares increasing in (0, 1] and "
            f"the last equal to 1.0, got {list(tiers)!r}"
        )
    index = np.searchsorted(bounds, _share_from_top(values), side="right")
    return pd.Series(
        pd.Categorical.from_codes(index, categories=keys, ordered=True),
        index=values.index,
        name="tier",
    )


def value_deciles(clv: Any) -> pd.Series:
    """Decile of predicted CLV, 1 = the top 10% of customers, 10 = the bottom 10%.

    Examples
    --------
    >>> value_deciles(np.arange(20.0)).head(3).tolist()
    [10, 10, 9]
    """
    values = _values(clv)
    decile = np.floor(_share_from_top(values) * 10).astype(np.int64) + 1
    return pd.Series(decile, index=values.index, name="decile")


def value_shares(clv: Any, groups: Any) -> pd.DataFrame:
    """Customers and predicted value held by each group (tier, decile, segment, channel…).

    Parameters
    ----------
    clv : array-like or Series
        Predicted CLV per customer (finite, >= 0).
    groups : array-like or Series
        Group label per customer, aligned with ``clv``. Categorical groups keep their order
        (empty categories are shown with zeros); others are sorted by value held.

    Returns
    -------
    DataFrame
        Indexed by group: ``customers``, ``customer_share``, ``value``, ``value_share``,
        ``mean_value``. Both share columns sum to 1.

    Examples
    --------
    >>> value_shares([6.0, 2.0, 2.0], ["a", "b", "b"])
       customers  customer_share  value  value_share  mean_value
    a          1        0.333333    6.0          0.6         6.0
    b          2        0.666667    4.0          0.4         2.0
    """
    values = _values(clv)
    if isinstance(groups, pd.Series) and isinstance(clv, pd.Series):
        labels = groups.reindex(values.index)  # align on customer ids
    elif len(groups) == len(values):
        labels = pd.Series(groups).set_axis(values.index)
    else:
        raise InputError(f"groups has {len(groups)} labels for {len(values)} CLV values")
    if labels.isna().any():
        raise InputError(
            f"{int(labels.isna().sum())} customers have no group label, first "
            f"{labels.index[labels.isna().to_numpy()][0]!r}; label them before computing shares"
        )
    grouped = values.groupby(labels, observed=False, sort=True)
    out = pd.DataFrame({"customers": grouped.size(), "value": grouped.sum()})
    if not isinstance(labels.dtype, pd.CategoricalDtype):
        out = out.sort_values("value", ascending=False, kind="stable")
    total = float(values.sum())
    out.insert(1, "customer_share", out["customers"] / len(values))
    out["value_share"] = out["value"] / total if total > 0 else 0.0
    out["mean_value"] = (out["value"] / out["customers"].where(out["customers"] > 0)).fillna(0.0)
    out.index.name = labels.name
    return out


def lorenz_curve(clv: Any) -> pd.DataFrame:
    """Points of the Lorenz curve of predicted value, from (0, 0) to (1, 1).

    Customers are sorted from lowest to highest CLV; row ``k`` gives the share of customers
    among the ``k`` lowest and the share of total value they hold.

    Examples
    --------
    >>> lorenz_curve([1.0, 3.0])
       customer_share  value_share
    0             0.0         0.00
    1             0.5         0.25
    2             1.0         1.00
    """
    values = np.sort(_values(clv).to_numpy())
    cum = np.concatenate([[0.0], np.cumsum(values)])
    total = cum[-1]
    share = cum / total if total > 0 else np.linspace(0.0, 1.0, len(cum))
    return pd.DataFrame({"customer_share": np.arange(len(cum)) / len(values), "value_share": share})


def gini(clv: Any) -> float:
    """Gini coefficient of predicted value: 0 = everyone worth the same, → 1 = one holds all.

    Computed as one minus twice the area under the Lorenz curve (trapezoids), i.e. the
    mean absolute difference between two customers divided by twice the mean.

    Examples
    --------
    >>> gini([1.0, 1.0, 1.0])
    0.0
    >>> round(gini([0.0, 0.0, 0.0, 4.0]), 2)
    0.75
    """
    return gini_of_curve(lorenz_curve(clv))


def gini_of_curve(curve: pd.DataFrame) -> float:
    """Gini coefficient from a :func:`lorenz_curve` already computed (no second sort).

    Examples
    --------
    >>> round(gini_of_curve(lorenz_curve([0.0, 0.0, 0.0, 4.0])), 2)
    0.75
    """
    x, y = curve["customer_share"].to_numpy(), curve["value_share"].to_numpy()
    area = float(np.sum(np.diff(x) * (y[1:] + y[:-1]) / 2.0))
    return max(0.0, 1.0 - 2.0 * area)


def value_flags(
    clv: Any,
    p_alive: Any,
    *,
    p_alive_before: Any = None,
    rate_recent: Any = None,
    rate_before: Any = None,
    top_share: float = 0.10,
    at_risk_below: float = 0.5,
    min_drop: float = 0.10,
) -> pd.DataFrame:
    """Flags combining predicted value with the model's view of risk.

    - ``high_value_at_risk``: CLV in the top ``top_share`` of customers and either
      P(alive) below ``at_risk_below`` or, when ``p_alive_before`` (P(alive) at an earlier
      date, e.g. from the model applied to an earlier summary) is given, P(alive) fallen by
      at least ``min_drop`` since then.
    - ``rising`` (only when ``rate_recent`` and ``rate_before`` are given, e.g. from
      :func:`ltvkit.timing.purchase_rates`): bought recently and buys more often lately than
      before (``rate_recent > rate_before``, both in orders per day).

    Examples
    --------
    >>> value_flags([100.0, 90.0, 1.0, 2.0], [0.2, 0.9, 0.1, 0.9], top_share=0.5,
    ...             rate_recent=[0, 0, 0, 0.1], rate_before=[0.1, 0.1, 0, 0.01])
       high_value_at_risk  rising
    0                True   False
    1               False   False
    2               False   False
    3               False    True
    """
    values = _values(clv)
    alive = _aligned(p_alive, values, "p_alive")
    top = _share_from_top(values) < top_share
    risky = alive < at_risk_below
    if p_alive_before is not None:
        risky |= _aligned(p_alive_before, values, "p_alive_before") - alive >= min_drop - 1e-12
    out = pd.DataFrame({"high_value_at_risk": top & risky}, index=values.index)
    if rate_recent is not None and rate_before is not None:
        recent = _aligned(rate_recent, values, "rate_recent", allow_nan=True)
        before = _aligned(rate_before, values, "rate_before", allow_nan=True)
        out["rising"] = (recent > 0) & (recent > before)  # NaN (no history before) -> False
    return out


AUDIENCE_COLUMNS: tuple[str, ...] = (
    "segment", "tier", "clv", "p_alive", "next_contact_date", "rfm_code",
)  # fmt: skip
"""Columns :func:`write_audiences` copies, when present, after the customer id."""


def write_audiences(customers: pd.DataFrame, out_dir: Any, force: bool = False) -> list[Path]:
    """Write one CSV per segment and one per value tier, ready to upload to an e-mail or ads tool.

    Files are ``segment_<key>.csv`` (by ``segment_key``) and ``tier_<key>.csv`` (by ``tier``),
    each with ``customer_id`` and the :data:`AUDIENCE_COLUMNS` the table has, customers in
    the table's order; dates are written as ``YYYY-MM-DD``, CLV to the cent and P(alive) to
    4 decimals, text values in double quotes. The table is converted to Arrow once and split
    by one stable sort per grouping column, so the cost is a few passes over the customers
    whatever the number of files. Every file is written atomically; nothing is written when
    one of them exists and ``force`` is false.

    Parameters
    ----------
    customers : DataFrame
        One row per customer, indexed by customer id (or with a ``customer_id`` column),
        with ``segment_key`` and/or ``tier``.
    out_dir : path
        Folder to write into (created if needed).
    force : bool, default False
        Overwrite existing files.

    Returns
    -------
    list of Path
        The files written: segments first, then tiers.

    Examples
    --------
    >>> import tempfile
    >>> c = pd.DataFrame({"segment_key": ["new", "lost", "new"], "segment": ["New", "Lost", "New"],
    ...                   "clv": [10.0, 1.0, 7.456]}, index=pd.Index(["a", "b", "c"], name="id"))
    >>> paths = write_audiences(c, tempfile.mkdtemp())
    >>> [p.name for p in paths]
    ['segment_lost.csv', 'segment_new.csv']
    >>> print(paths[1].read_text().strip())
    customer_id,segment,clv
    "a","New",10
    "c","New",7.46
    """
    import pyarrow.csv as pacsv

    splits = [
        (prefix, col)
        for prefix, col in (("segment", "segment_key"), ("tier", "tier"))
        if col in customers.columns
    ]
    if not splits:
        raise InputError(
            "the customers table needs a 'segment_key' (from rfm_segments) or a 'tier' column "
            "(from value_tiers) to split into audiences"
        )
    jobs = [
        (Path(out_dir) / f"{prefix}_{key}.csv", rows)
        for prefix, col in splits
        for key, rows in _partition(customers[col])
    ]
    existing = [str(path) for path, _ in jobs if path.exists()]
    if existing and not force:
        raise InputError(
            f"{len(existing)} audience file(s) already exist, e.g. {existing[0]}; pass --force "
            "(force=True) to overwrite them or choose another folder"
        )
    export = _audience_table(customers)
    header = (",".join(export.column_names) + "\n").encode("utf-8")
    options = pacsv.WriteOptions(include_header=False, quoting_style="needed")
    for path, rows in jobs:
        with atomic_path(path, force=True) as tmp, open(tmp, "wb") as sink:
            sink.write(header)
            pacsv.write_csv(export.take(rows), sink, options)
    return [path for path, _ in jobs]


def _partition(labels: pd.Series) -> list[tuple[str, np.ndarray]]:
    """(label, row positions in table order) for each distinct non-missing label, sorted by label."""
    codes, uniques = pd.factorize(labels, sort=False)
    keys = [str(u) for u in np.asarray(uniques, dtype=object)]
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(keys) + 1))
    groups = {keys[k]: order[bounds[k]:bounds[k + 1]] for k in range(len(keys))}
    return [(key, groups[key]) for key in sorted(groups)]


def _audience_table(customers: pd.DataFrame) -> Any:
    """The audience columns as a pyarrow Table (dates as dates, CLV and P(alive) rounded)."""
    import pyarrow as pa

    ids = customers["customer_id"] if "customer_id" in customers.columns else customers.index
    columns = {"customer_id": pa.Array.from_pandas(ids)}
    for col in AUDIENCE_COLUMNS:
        if col not in customers.columns:
            continue
        values = customers[col]
        if pd.api.types.is_datetime64_any_dtype(values):
            if values.dt.tz is not None:
                values = values.dt.tz_localize(None)  # the local calendar day
            columns[col] = pa.array(values.to_numpy(dtype="datetime64[D]"), type=pa.date32(),
                                    from_pandas=True)
        elif col in ("clv", "p_alive"):
            columns[col] = pa.array(np.round(values.to_numpy(dtype=float), 2 if col == "clv" else 4))
        else:  # text, or categorical (written through its dictionary)
            columns[col] = pa.Array.from_pandas(values)
    return pa.table(columns)
