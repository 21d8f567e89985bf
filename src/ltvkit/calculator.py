"""Top-down CLV/CAC calculator: customer value, payback and growth from a few business figures.

No transaction data is needed: give a monthly churn rate (or an average lifespan), what a
customer pays per month, the gross margin, the acquisition spend and the number of new
customers, and :func:`calculate` returns CLV (plain and discounted), CAC, the CLV:CAC ratio,
the payback time, the highest affordable CAC, a 24-month projection of the customer base and
the four levers that raise CLV (frequency, retention, order value, margin) ranked by effect.
:func:`calculator_inputs` estimates the same inputs from a transaction log, to compare the
quick estimate with the model-based one (:mod:`ltvkit.models`).

The period is a month throughout: churn, revenue, discount rate and spend are per month.

Model and conventions
---------------------
A customer pays ``margin * arpu * purchases_per_month`` every month she is active, the first
payment when she is acquired (month 0, undiscounted), and leaves at the end of each month with
probability ``churn`` (geometric retention: the number of months paid has mean
``1 / churn``). With discount rate ``d`` per month, writing ``m = margin * arpu *
purchases_per_month`` and ``c = churn``:

* ``clv = m / c`` (undiscounted);
* ``clv_discounted = sum_{t>=0} m (1 - c)^t / (1 + d)^t = m (1 + d) / (d + c)``.

The "annuity of the average lifetime" shortcut, ``m * sum_{t<L} (1 + d)^-t`` with ``L = 1/c``,
overstates value: the discounted value of a lifetime of ``T`` months,
``(1 - (1 + d)^-T) / (1 - 1/(1 + d))``, is concave in ``T``, so by Jensen's inequality its
expectation over the spread of lifetimes is below its value at the mean lifetime — long-lived
customers' extra months are discounted the most. For ``c = 0.05``, ``d = 0.01``:

>>> m, c, d = 1.0, 0.05, 0.01
>>> round(m * (1 + d) / (d + c), 2)                               # exact expectation
16.83
>>> round(sum(m / (1 + d) ** t for t in range(round(1 / c))), 2)  # shortcut: 8% too high
18.23
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.compute as pc

from ltvkit.errors import InputError
from ltvkit.notes import tag

__all__ = ["CalculatorInputs", "CalculatorResult", "Lever", "calculate", "calculator_inputs"]

#: relative change of each lever and the margin step (in share points)
LEVER_STEP = 0.10
MARGIN_STEP = 0.01


@dataclass(frozen=True)
class Lever:
    """Effect on the discounted CLV of improving one input, all else equal."""

    name: str
    label: str
    clv: float
    change: float
    change_pct: float


@dataclass(frozen=True)
class CalculatorResult:
    """Output of :func:`calculate` (all money in the currency of the inputs, per customer)."""

    churn: float
    revenue_per_month: float
    margin: float
    discount_rate: float
    clv: float
    clv_discounted: float
    cac: float
    clv_to_cac: float
    payback_months: float
    max_cac: float
    target_ratio: float
    levers: tuple[Lever, ...]
    projection: pd.DataFrame = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: levers and projection as lists of records, ``inf`` as ``None``.

        Examples
        --------
        >>> r = calculate(churn=0.5, arpu=10, margin=1, new_customers=1, spend=0, months=2)
        >>> d = r.to_dict()
        >>> d["clv"], d["clv_to_cac"], d["projection"][1]["active_customers"]
        (20.0, None, 1.5)
        """
        out = {
            k: _json_number(v) for k, v in asdict(self).items() if k not in ("levers", "projection")
        }
        out["levers"] = [{k: _json_number(v) for k, v in asdict(lv).items()} for lv in self.levers]
        out["projection"] = [
            {k: _json_number(v) for k, v in row.items()}
            for row in self.projection.to_dict("records")
        ]
        return out


def calculate(
    *,
    arpu: float,
    new_customers: float,
    spend: float,
    churn: float | None = None,
    lifespan: float | None = None,
    purchases_per_month: float = 1.0,
    margin: float = 1.0,
    discount_rate: float = 0.0,
    target_ratio: float = 3.0,
    months: int = 24,
    acquisition_multiplier: float = 1.0,
    customers_at_start: float = 0.0,
) -> CalculatorResult:
    """Customer value, acquisition cost, payback and a growth projection from business figures.

    Parameters
    ----------
    arpu : float
        Average (or median) invoice: revenue per customer per month, or per purchase when
        ``purchases_per_month`` is given. ``> 0``.
    new_customers : float
        New customers acquired per month, ``> 0``.
    spend : float
        Marketing + sales spend per month, ``>= 0``.
    churn : float, optional
        Share of active customers lost each month, in ``(0, 1]``. Give this or ``lifespan``.
    lifespan : float, optional
        Average customer lifespan in months, ``>= 1``; ``churn = 1 / lifespan``.
    purchases_per_month : float, default 1
        Purchases per active customer per month (``> 0``).
    margin : float, default 1
        Gross margin, in ``(0, 1]``; 1 gives revenue CLV.
    discount_rate : float, default 0
        Per month, in ``[0, 1)`` (e.g. 0.01 ≈ 12.7% a year).
    target_ratio : float, default 3
        Target CLV:CAC ratio, ``> 0``; ``max_cac = clv_discounted / target_ratio``.
    months : int, default 24
        Length of the projection, 1 to 600.
    acquisition_multiplier : float, default 1
        "What if" for the projection: new customers per month (and spend, at the same CAC)
        are multiplied by it, e.g. 10. ``>= 0``.
    customers_at_start : float, default 0
        Active customers before the projection starts, ``>= 0``.

    Returns
    -------
    CalculatorResult
        ``clv`` and ``clv_discounted`` (see the module docstring for the convention), ``cac`` =
        spend / new customers, ``clv_to_cac`` (discounted CLV over CAC, ``inf`` when CAC is 0),
        ``payback_months`` (smallest number of monthly payments whose expected, discounted
        margin — churn included — covers CAC; ``inf`` if never), ``max_cac``, ``levers``
        (effect on ``clv_discounted`` of +10% purchase frequency, -10% churn, +10% order value
        and +1 point of margin, largest first; frequency and order value move CLV alike here,
        as CLV depends on their product — they differ in what they cost) and ``projection``
        (per month: new, active and lost customers, revenue,
        margin, acquisition spend, cumulative net margin; new customers join at the start of a
        month and pay for it, the others renew with probability ``1 - churn``).

    Raises
    ------
    InputError
        When an input is out of range; the message says what is allowed.

    Examples
    --------
    >>> r = calculate(churn=0.05, arpu=49, margin=0.7, new_customers=200, spend=15000)
    >>> round(r.clv, 2), r.cac, round(r.clv_to_cac, 2), r.payback_months
    (686.0, 75.0, 9.15, 3.0)
    >>> [lv.name for lv in r.levers]
    ['churn', 'purchase_frequency', 'order_value', 'margin']
    """
    if (churn is None) == (lifespan is None):
        raise InputError(
            "give either churn (share of customers lost per month, in (0, 1]) or lifespan "
            f"(average months a customer stays, >= 1), "
            f"not {'both' if churn is not None else 'neither'}"
        )
    if lifespan is not None:
        _check(
            "lifespan",
            lifespan,
            1,
            math.inf,
            "average months a customer stays, at least 1 (the first month is always paid), e.g. 20",
        )
        churn = 1.0 / lifespan
    _check(
        "churn", churn, 0, 1, "share of active customers lost per month, e.g. 0.05", low_open=True
    )
    _check(
        "arpu",
        arpu,
        0,
        math.inf,
        "revenue per customer per month (or per purchase), e.g. 49",
        low_open=True,
    )
    _check("purchases_per_month", purchases_per_month, 0, math.inf, "e.g. 1.5", low_open=True)
    _check("margin", margin, 0, 1, "gross margin as a share, e.g. 0.7 for 70%", low_open=True)
    _check("discount_rate", discount_rate, 0, 1, "per month, e.g. 0.01", high_open=True)
    _check(
        "new_customers",
        new_customers,
        0,
        math.inf,
        "new customers per month, e.g. 200",
        low_open=True,
    )
    _check("spend", spend, 0, math.inf, "marketing + sales spend per month, e.g. 15000")
    _check("target_ratio", target_ratio, 0, math.inf, "target CLV:CAC, e.g. 3", low_open=True)
    _check("acquisition_multiplier", acquisition_multiplier, 0, math.inf, "e.g. 10 for 10x")
    _check("customers_at_start", customers_at_start, 0, math.inf, "active customers today")
    if not (isinstance(months, int | np.integer) and 1 <= months <= 600):
        raise InputError(f"months must be a whole number from 1 to 600, got {months!r}")

    revenue = arpu * purchases_per_month
    value = _clv(margin * revenue, churn, discount_rate)
    cac = spend / new_customers
    return CalculatorResult(
        churn=churn,
        revenue_per_month=revenue,
        margin=margin,
        discount_rate=discount_rate,
        clv=margin * revenue / churn,
        clv_discounted=value,
        cac=cac,
        clv_to_cac=value / cac if cac > 0 else math.inf,
        payback_months=_payback_months(cac, margin * revenue, churn, discount_rate),
        max_cac=value / target_ratio,
        target_ratio=target_ratio,
        levers=_levers(arpu, purchases_per_month, churn, margin, discount_rate),
        projection=_projection(
            months,
            new_customers * acquisition_multiplier,
            spend * acquisition_multiplier,
            customers_at_start,
            churn,
            revenue,
            margin,
        ),
    )


def _clv(margin_per_month: float, churn: float, discount_rate: float) -> float:
    """``m (1 + d) / (d + c)``: geometric retention, first payment undiscounted."""
    return margin_per_month * (1 + discount_rate) / (discount_rate + churn)


def _payback_months(
    cac: float, margin_per_month: float, churn: float, discount_rate: float
) -> float:
    """Smallest k with ``sum_{t<k} m q^t >= cac``, ``q = (1 - c) / (1 + d)``; inf if never."""
    if cac <= 0:
        return 0.0
    q = (1 - churn) / (1 + discount_rate)
    if q == 0:  # churn 1: one payment only
        return 1.0 if cac <= margin_per_month else math.inf
    share = cac * (1 - q) / margin_per_month  # CAC as a share of clv_discounted
    k = math.log1p(-share) / math.log(q) if share < 1 else math.inf  # the limit is never reached
    return float(max(1, math.ceil(k - 1e-9))) if math.isfinite(k) else math.inf


def _levers(arpu: float, ppm: float, churn: float, margin: float, d: float) -> tuple[Lever, ...]:
    base = _clv(margin * arpu * ppm, churn, d)
    new_margin = min(margin + MARGIN_STEP, 1.0)
    options = [
        (
            "purchase_frequency",
            f"+{LEVER_STEP:.0%} purchase frequency",
            _clv(margin * arpu * ppm * (1 + LEVER_STEP), churn, d),
        ),
        (
            "churn",
            f"-{LEVER_STEP:.0%} churn (better retention)",
            _clv(margin * arpu * ppm, churn * (1 - LEVER_STEP), d),
        ),
        (
            "order_value",
            f"+{LEVER_STEP:.0%} order value",
            _clv(margin * arpu * ppm * (1 + LEVER_STEP), churn, d),
        ),
        (
            "margin",
            f"+{(new_margin - margin) * 100:.3g} point of margin"
            + (" (capped at 100%)" if new_margin < margin + MARGIN_STEP else ""),
            _clv(new_margin * arpu * ppm, churn, d),
        ),
    ]
    levers = [Lever(n, label, v, v - base, (v - base) / base) for n, label, v in options]
    return tuple(sorted(levers, key=lambda lv: -lv.change))  # stable: ties keep this order


def _projection(
    months: int, new: float, spend: float, start: float, churn: float, revenue: float, margin: float
) -> pd.DataFrame:
    t = np.arange(1, months + 1)
    log_keep = t * np.log1p(-churn) if churn < 1 else np.full(months, -np.inf)
    # A_t = (1 - c) A_{t-1} + N with A_0 = start, i.e. A_t = start (1-c)^t + N (1 - (1-c)^t) / c
    active = start * np.exp(log_keep) - new * np.expm1(log_keep) / churn
    previous = np.concatenate([[start], active[:-1]])
    gross = active * revenue * margin
    return pd.DataFrame(
        {
            "month": t,
            "new_customers": np.full(months, float(new)),
            "active_customers": active,
            "lost_customers": previous * churn,
            "revenue": active * revenue,
            "margin": gross,
            "acquisition_spend": np.full(months, float(spend)),
            "cumulative_net_margin": np.cumsum(gross - spend),
        }
    )


def _check(
    name: str,
    value: Any,
    low: float,
    high: float,
    hint: str,
    *,
    low_open: bool = False,
    high_open: bool = False,
) -> None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        v = math.nan
    too_low = v <= low if low_open else v < low
    too_high = v >= high if high_open else v > high
    if math.isnan(v) or too_low or too_high or (math.isinf(v) and high == math.inf):
        left, right = "(" if low_open else "[", ")" if high_open or high == math.inf else "]"
        allowed = (
            (f"> {low:g}" if low_open else f">= {low:g}")
            if high == math.inf
            else f"in {left}{low:g}, {high:g}{right}"
        )
        raise InputError(f"{name} must be {allowed} ({hint}); got {value!r}")


def _json_number(v: Any) -> Any:
    if isinstance(v, float | np.floating):
        return float(v) if math.isfinite(v) else None
    if isinstance(v, np.integer):
        return int(v)
    return v


# ---------------------------------------------------------------------- inputs from a log
@dataclass(frozen=True)
class CalculatorInputs:
    """Calculator inputs estimated from a transaction log by :func:`calculator_inputs`.

    ``churn`` is a monthly churn proxy (see :func:`calculator_inputs`), ``arpu`` the revenue
    per active customer per month, ``average_invoice``/``median_invoice`` per purchase,
    ``purchases_per_month`` per active customer, ``new_customers`` per month, all over the
    calendar months ``first_month``..``last_month`` (``n_months`` of them).
    """

    churn: float
    arpu: float
    average_invoice: float
    median_invoice: float
    purchases_per_month: float
    new_customers: float
    first_month: str
    last_month: str
    n_months: int
    active_customer_months: int

    def calculator_kwargs(self) -> dict[str, float]:
        """Keyword arguments for :func:`calculate` (the average invoice per purchase)."""
        return {
            "churn": self.churn,
            "arpu": self.average_invoice,
            "purchases_per_month": self.purchases_per_month,
            "new_customers": self.new_customers,
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of the fields."""
        return {k: _json_number(v) for k, v in asdict(self).items()}


_MONTHLY_SQL = """
WITH tx AS (
    SELECT customer_id, CAST(date_trunc('month', ts) AS DATE) AS month, amount FROM log
), cm AS (
    SELECT customer_id, month, sum(amount) AS revenue, count(*) FILTER (WHERE amount > 0) AS orders
    FROM tx GROUP BY customer_id, month
), firsts AS (
    SELECT customer_id, min(month) AS first_month FROM cm GROUP BY customer_id
)
SELECT cm.month,
       count(*) AS active,
       sum(cm.revenue) AS revenue,
       sum(cm.orders) AS orders,
       count(*) FILTER (WHERE f.first_month = cm.month) AS new,
       count(p.customer_id) AS retained
FROM cm
JOIN firsts f USING (customer_id)
LEFT JOIN cm p ON p.customer_id = cm.customer_id
              AND p.month = CAST(cm.month - INTERVAL 1 MONTH AS DATE)
GROUP BY cm.month
ORDER BY cm.month
"""

_MEDIAN_SQL = """
SELECT median(amount) FROM log
WHERE amount > 0 AND CAST(date_trunc('month', ts) AS DATE) BETWEEN ? AND ?
"""


def calculator_inputs(transactions: Any, months: int = 6) -> CalculatorInputs:
    """Estimate the calculator's inputs from a transaction log.

    Parameters
    ----------
    transactions : Transactions or DataFrame
        From :func:`ltvkit.read_transactions`, or a pandas DataFrame with columns
        ``customer_id``, ``ts`` and ``amount``.
    months : int, default 6
        Number of recent complete calendar months to average over (fewer if the log is
        shorter). The last month counts as complete when the log reaches its last day (or
        the ``observation_end`` given to ``read_transactions`` does).

    Returns
    -------
    CalculatorInputs

    Notes
    -----
    A customer is *active* in a calendar month when she has a transaction in it. The churn
    proxy is the usual subscription definition, customers lost over customers at the start:
    among the customers active in month ``m - 1``, the share not active in month ``m``,
    pooled over the window (total lost / total at risk — the maximum-likelihood estimate of a
    constant monthly churn probability under the calculator's geometric model). It is exact
    for monthly-billed subscriptions; for customers who buy less often than monthly it
    counts a skipped month as churn, so it overstates churn and the quick CLV is then a lower
    bound — compare with a purchase model (e.g. :class:`ltvkit.BGNBD`) in that case.
    ``arpu`` is net revenue (returns included) per active customer-month; invoices are the
    rows with a positive amount; ``new_customers`` counts customers whose first transaction
    in the log falls in the month (the log's first month is never in the window, since it
    would count every existing customer as new).

    Raises
    ------
    InputError
        When the log has no amount column or covers fewer than two complete months.

    Examples
    --------
    >>> import pandas as pd
    >>> log = pd.DataFrame({
    ...     "customer_id": ["a", "a", "b", "a", "c"],
    ...     "ts": pd.to_datetime(["2025-01-03", "2025-02-03", "2025-02-10", "2025-03-03",
    ...                           "2025-03-31"], utc=True),
    ...     "amount": [10.0, 10.0, 30.0, 10.0, 20.0]})
    >>> est = calculator_inputs(log)
    >>> est.first_month, est.last_month   # January is the log's first month: left out
    ('2025-02', '2025-03')
    >>> est.churn, est.arpu, est.new_customers   # at risk: a (Feb), a and b (Mar); b lost
    (0.3333333333333333, 17.5, 1.0)
    """
    from ltvkit.data.transactions import read_transactions
    from ltvkit.engines.duckdb import query_df, register, session

    if not (isinstance(months, int | np.integer) and months >= 1):
        raise InputError(f"months must be a whole number >= 1, got {months!r}")
    if isinstance(transactions, pd.DataFrame):
        transactions = read_transactions(
            transactions, customer="customer_id", date="ts", amount="amount"
        )
    if not hasattr(transactions, "table") or not getattr(transactions, "has_amount", False):
        raise InputError(
            "calculator_inputs needs a transaction log with amounts: a Transactions from "
            "ltvkit.read_transactions(..., amount=...) or a DataFrame with customer_id, ts, amount"
        )
    with session() as con:
        register(con, "log", transactions.table)
        monthly = query_df(con, _MONTHLY_SQL, context="grouping the log by month")
        window = _window(monthly, transactions, months)
        lo, hi = window["month"].iloc[0], window["month"].iloc[-1]
        median = con.execute(_MEDIAN_SQL, [lo, hi]).fetchone()[0]
    at_risk = window["active_prev"].sum()
    lost = at_risk - window["retained"].sum()
    active = int(window["active"].sum())
    orders = float(window["orders"].sum())
    revenue = float(window["revenue"].sum())
    return CalculatorInputs(
        churn=float(lost / at_risk) if at_risk else math.nan,
        arpu=revenue / active,
        average_invoice=revenue / orders if orders else math.nan,
        median_invoice=float(median) if median is not None else math.nan,
        purchases_per_month=orders / active,
        new_customers=float(window["new"].mean()),
        first_month=f"{lo:%Y-%m}",
        last_month=f"{hi:%Y-%m}",
        n_months=len(window),
        active_customer_months=active,
    )


def _window(monthly: pd.DataFrame, transactions: Any, months: int) -> pd.DataFrame:
    """Complete months after the first, with every calendar month present (0 when idle)."""
    if monthly.empty:
        raise InputError("the transaction log is empty: no month to estimate from")
    monthly = monthly.assign(month=pd.to_datetime(monthly["month"])).set_index("month")
    span = pd.date_range(monthly.index.min(), monthly.index.max(), freq="MS")
    full = monthly.reindex(span, fill_value=0)
    full["active_prev"] = full["active"].shift(1)
    end = getattr(transactions, "observation_end", None)
    if end is None:
        end = pc.max(transactions.table.column("ts")).as_py()
    end = pd.Timestamp(end)
    end = end.tz_convert(None) if end.tzinfo else end
    month_is_complete = (end + pd.Timedelta(days=1)).month != end.month
    usable = full.iloc[1:]  # the first month has no previous month and inflates "new"
    if not month_is_complete:
        usable = usable.iloc[:-1]
    if usable.empty:
        raise tag(InputError(
            f"the log covers {span[0]:%Y-%m} to {end:%Y-%m-%d}: at least two complete calendar "
            "months are needed to estimate monthly churn and new customers; give the inputs "
            "directly instead"
        ), "calc.short")
    return usable.iloc[-months:].rename_axis("month").reset_index()
