"""Backtesting: how far to trust a model — fit on a calibration period, score the holdout, pick a model.

The log is split in time (Fader, Hardie & Lee 2005, "Counting your customers the easy way",
use the same design on CDNOW: calibration to 1997-09-30, holdout of 39 weeks). Each candidate
purchase model is fitted on the calibration summary and scored on the purchases each customer
actually made in the holdout:

* per-customer MAE and RMSE of repeat purchases, and the aggregate error;
* a calibration table — mean predicted vs actual holdout purchases by number of calibration
  purchases (the conditional-expectation check of Fader, Hardie & Lee 2005, figure 4);
* predicted vs actual holdout value by decile of predicted value, and the normalized Gini
  (how well the model ranks customers by value; 1 = perfect order, 0 = random);
* a cumulative tracking curve of repeat purchases, actual vs model, over the whole span.

The model with the lowest per-customer RMSE wins: the models predict conditional *means*, and
the mean is what minimises squared error. RMSEs within 1% of each other count as a tie, won by
the smaller aggregate error.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from ltvkit.errors import ConvergenceWarning, FitError, InputError
from ltvkit.notes import Note, tag

#: candidate purchase models, in the order they are tried: key -> (public class name, label)
PURCHASE_MODELS: dict[str, tuple[str, str]] = {
    "bgnbd": ("BGNBD", "BG/NBD"),
    "paretonbd": ("ParetoNBD", "Pareto/NBD"),
    "mbgnbd": ("MBGNBD", "MBG/NBD"),
}

#: relative RMSE difference under which two models count as equally accurate
RMSE_TIE = 0.01

_DAYS = {"D": 1.0, "W": 7.0, "M": 365.25 / 12}


# ---------------------------------------------------------------------- metrics on arrays
def error_metrics(predicted: Any, actual: Any) -> dict[str, float]:
    """Per-customer and aggregate error of predicted vs actual holdout purchases.

    Parameters
    ----------
    predicted, actual : array-like
        One value per customer.

    Returns
    -------
    dict
        ``mae``, ``rmse`` (per customer), ``predicted`` and ``actual`` totals, and
        ``aggregate_error`` = (predicted − actual) / actual (NaN when nothing happened).

    Examples
    --------
    >>> m = error_metrics([1.0, 2.0, 0.0], [1, 4, 0])
    >>> round(m["mae"], 4), round(m["rmse"], 4), m["predicted"], m["actual"], round(m["aggregate_error"], 2)
    (0.6667, 1.1547, 3.0, 5.0, -0.4)
    """
    p, a = _pair(predicted, actual)
    diff = p - a
    total_p, total_a = float(p.sum()), float(a.sum())
    return {
        "mae": float(np.mean(np.abs(diff))),
        "rmse": float(np.sqrt(np.mean(diff**2))),
        "predicted": total_p,
        "actual": total_a,
        "aggregate_error": (total_p - total_a) / total_a if total_a > 0 else float("nan"),
    }


def calibration_table(frequency: Any, predicted: Any, actual: Any, max_frequency: int = 7) -> pd.DataFrame:
    """Mean predicted vs actual holdout purchases by number of calibration repeat purchases.

    Customers with ``max_frequency`` or more calibration purchases share the last row
    (labelled ``"7+"`` by default).

    Examples
    --------
    >>> t = calibration_table([0, 0, 1, 9], [0.1, 0.3, 1.0, 5.0], [0, 1, 2, 4], max_frequency=2)
    >>> t.index.tolist(), t["customers"].tolist(), t["predicted"].round(3).tolist(), t["actual"].tolist()
    (['0', '1', '2+'], [2, 1, 1], [0.2, 1.0, 5.0], [0.5, 2.0, 4.0])
    """
    f = np.asarray(frequency, dtype=float)
    p, a = _pair(predicted, actual)
    if f.shape != p.shape:
        raise InputError(f"frequency has {f.size} values but predictions have {p.size}")
    group = np.minimum(f, max_frequency).astype(int)
    labels = [str(k) for k in range(max_frequency)] + [f"{max_frequency}+"]
    n = np.bincount(group, minlength=max_frequency + 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        pred = np.bincount(group, weights=p, minlength=max_frequency + 1) / n
        act = np.bincount(group, weights=a, minlength=max_frequency + 1) / n
    table = pd.DataFrame(
        {"customers": n, "predicted": pred, "actual": act},
        index=pd.Index(labels, name="frequency_group"),
    )
    return table[table["customers"] > 0]


def decile_table(predicted_value: Any, actual_value: Any, n_groups: int = 10) -> pd.DataFrame:
    """Predicted vs actual holdout value by decile of predicted value (decile 1 = highest).

    Ties are broken by position, so every decile has (almost) the same number of customers.

    Examples
    --------
    >>> t = decile_table(np.arange(10.0), np.arange(10.0) * 2, n_groups=5)
    >>> t[["customers", "predicted", "actual"]].to_dict("list")
    {'customers': [2, 2, 2, 2, 2], 'predicted': [17.0, 13.0, 9.0, 5.0, 1.0], 'actual': [34.0, 26.0, 18.0, 10.0, 2.0]}
    """
    p, a = _pair(predicted_value, actual_value)
    if p.size < n_groups:
        raise InputError(f"need at least {n_groups} customers for {n_groups} groups, got {p.size}")
    order = np.argsort(-p, kind="stable")
    group = np.empty(p.size, dtype=int)
    group[order] = (np.arange(p.size) * n_groups) // p.size
    n = np.bincount(group, minlength=n_groups)
    pred = np.bincount(group, weights=p, minlength=n_groups)
    act = np.bincount(group, weights=a, minlength=n_groups)
    total_a = a.sum()
    return pd.DataFrame(
        {
            "customers": n,
            "predicted": pred,
            "actual": act,
            "actual_share": act / total_a if total_a > 0 else np.full(n_groups, np.nan),
        },
        index=pd.Index(np.arange(1, n_groups + 1), name="decile"),
    )


def normalized_gini(actual: Any, predicted: Any) -> float:
    """Gini of ``actual`` ordered by ``predicted``, divided by the Gini of the perfect order.

    1 means the model ranks customers exactly by their realised value, 0 is no better than
    chance; negative is worse than chance.

    Examples
    --------
    >>> normalized_gini([0, 0, 1, 3], [0.1, 0.2, 0.5, 0.9])
    1.0
    >>> round(normalized_gini([0, 0, 1, 3], [0.9, 0.5, 0.2, 0.1]), 4)
    -1.0
    """
    p, a = _pair(predicted, actual)
    return _normalized(a, p, _gini(a, a))


def _normalized(actual: np.ndarray, predicted: np.ndarray, perfect: float) -> float:
    return float(_gini(actual, predicted) / perfect) if perfect > 0 else float("nan")


def _gini(actual: np.ndarray, order_by: np.ndarray) -> float:
    # cumulative share of actual value captured, customers sorted by descending score;
    # average rank of ties is not needed: the stable sort keeps input order for equal scores
    n = actual.size
    order = np.argsort(-order_by, kind="stable")
    captured = np.cumsum(actual[order]) / actual.sum()
    return float(np.sum(captured - np.arange(1, n + 1) / n) / n)


def _pair(predicted: Any, actual: Any) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(predicted, dtype=float).ravel()
    a = np.asarray(actual, dtype=float).ravel()
    if p.shape != a.shape:
        raise InputError(f"predicted has {p.size} values but actual has {a.size}")
    if p.size == 0:
        raise InputError("no customers to score")
    if not (np.all(np.isfinite(p)) and np.all(np.isfinite(a))):
        raise InputError("predicted and actual values must be finite")
    return p, a


# ---------------------------------------------------------------------- holdout split
def resolve_holdout(start: pd.Timestamp, end: pd.Timestamp, holdout: Any = None) -> pd.Timestamp:
    """Calibration end date from a holdout given as a duration, a date, or None.

    ``None`` holds out the last quarter of the time span; a duration (``"39W"``, ``"6M"``,
    ``"90D"`` or a ``Timedelta``) is counted back from ``end``; a date is the calibration end
    itself (the holdout starts the next day). The result is a day (midnight UTC).

    Examples
    --------
    >>> s, e = pd.Timestamp("1997-01-01", tz="UTC"), pd.Timestamp("1998-06-30", tz="UTC")
    >>> str(resolve_holdout(s, e, "1997-09-30").date()), str(resolve_holdout(s, e, "39W").date())
    ('1997-09-30', '1997-09-30')
    >>> str(resolve_holdout(s, e).date())  # 545 days × 3/4 ≈ 409 days after the start
    '1998-02-14'
    """
    start, end = _utc_day(start), _utc_day(end)
    if holdout is None:
        cal_end = start + pd.Timedelta(days=round((end - start).days * 0.75))
    elif isinstance(holdout, pd.Timedelta):
        cal_end = end - pd.Timedelta(days=holdout.days)
    else:
        text = str(holdout).strip()
        match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([DWMdwm])", text)
        if match:
            days = float(match.group(1)) * _DAYS[match.group(2).upper()]
            cal_end = end - pd.Timedelta(days=round(days))
        else:
            try:
                cal_end = _utc_day(pd.Timestamp(text))
            except ValueError:
                raise InputError(
                    f"holdout {holdout!r} is neither a duration (e.g. '39W', '6M', '90D') nor a "
                    "date (e.g. '1997-09-30')"
                ) from None
    if not start < cal_end < end:
        raise tag(InputError(
            f"the calibration period would end on {cal_end.date()}, outside the log's span "
            f"({start.date()} to {end.date()}); choose a shorter holdout or a date inside the span"
        ), "skip.span", start=start, end=end)
    return cal_end


def log_span(transactions: Any) -> tuple[pd.Timestamp, pd.Timestamp]:
    """First and last day of a log (the last is its ``observation_end`` when set)."""
    import pyarrow.compute as pc

    bounds = pc.min_max(transactions.table.column("ts"))
    start = _utc_day(bounds["min"].as_py())
    end = getattr(transactions, "observation_end", None)
    return start, _utc_day(bounds["max"].as_py() if end is None else end)


def _utc_day(ts: Any) -> pd.Timestamp:
    ts = pd.Timestamp(ts)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return ts.normalize()


# ---------------------------------------------------------------------- the backtest
@dataclass
class Backtest:
    """Result of :func:`backtest`: scores of every candidate and details of the chosen one.

    Attributes
    ----------
    calibration_end, observation_end : Timestamp
        Last day of the calibration period and of the log.
    holdout_length : float
        Length of the holdout in model time units (``unit``).
    unit : str
        Model time unit ("W" weeks, "D" days, "M" months).
    scores : DataFrame
        One row per candidate model (index = key): label, mae, rmse, predicted, actual,
        aggregate_error, log_likelihood, converged, gini, note.
    chosen : str
        Key of the chosen model.
    calibration : DataFrame
        :func:`calibration_table` of the chosen model.
    deciles : DataFrame
        :func:`decile_table` of the chosen model's predicted holdout value.
    tracking : DataFrame
        Cumulative repeat purchases per period: ``period_end``, ``actual``, ``predicted``.
    n_customers : int
        Customers in the calibration period.
    """

    calibration_end: pd.Timestamp
    observation_end: pd.Timestamp
    holdout_length: float
    unit: str
    scores: pd.DataFrame
    chosen: str
    calibration: pd.DataFrame
    deciles: pd.DataFrame
    tracking: pd.DataFrame
    n_customers: int
    notes: list[str] = field(default_factory=list)

    @property
    def chosen_scores(self) -> pd.Series:
        """The score row of the chosen model."""
        return self.scores.loc[self.chosen]

    @property
    def label(self) -> str:
        """Readable name of the chosen model, e.g. ``"BG/NBD"``."""
        return str(self.chosen_scores["label"])

    def to_dict(self) -> dict[str, Any]:
        """Headline numbers as plain Python values (JSON-ready)."""
        row = self.chosen_scores
        return {
            "model": self.chosen,
            "calibration_end": str(self.calibration_end.date()),
            "observation_end": str(self.observation_end.date()),
            "holdout_length": round(float(self.holdout_length), 2),
            "unit": self.unit,
            "predicted_repeat_purchases": round(float(row["predicted"]), 1),
            "actual_repeat_purchases": round(float(row["actual"])),
            "aggregate_error": _finite(row["aggregate_error"]),
            "mae": _finite(row["mae"]),
            "rmse": _finite(row["rmse"]),
            "gini": _finite(row["gini"]),
            "scores": {
                k: {c: _finite(v) if isinstance(v, float) else v for c, v in r.items()}
                for k, r in self.scores.to_dict("index").items()
            },
        }


def _finite(v: Any) -> float | None:
    v = float(v)
    return round(v, 6) if np.isfinite(v) else None


def fit_quietly(model: Any, data: pd.DataFrame) -> tuple[Any, str | None]:
    """Fit ``model`` on ``data``; return it and a note when it did not converge or failed.

    A :class:`ConvergenceWarning` is caught and turned into the note (the model is kept,
    flagged ``converged_ = False``); a :class:`FitError` returns ``(None, note)``.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        try:
            model.fit(data)
        except FitError as exc:
            return None, str(exc)
    notes = [str(w.message) for w in caught if issubclass(w.category, ConvergenceWarning)]
    return model, (notes[0] if notes else None)


def make_purchase_model(key: str, penalizer: float = 0.0) -> Any:
    """A new, unfitted purchase model from its key (``"bgnbd"``, ``"paretonbd"``, ``"mbgnbd"``)."""
    import ltvkit

    if key not in PURCHASE_MODELS:
        raise InputError(
            f"unknown model {key!r}; choose one of {', '.join(PURCHASE_MODELS)}"
        )
    return getattr(ltvkit, PURCHASE_MODELS[key][0])(penalizer=penalizer)


def backtest(
    transactions: Any,
    holdout: Any = None,
    *,
    models: tuple[str, ...] | None = None,
    model: str | None = None,
    freq: str = "W",
) -> Backtest:
    """Fit each purchase model (with Gamma-Gamma) on the calibration period and score the holdout.

    Parameters
    ----------
    transactions : Transactions
        The log, from :func:`ltvkit.read_transactions`.
    holdout : str, Timedelta or None
        Duration (``"39W"``, ``"6M"``) counted back from the end of the log, or the last
        calibration date (``"1997-09-30"``); default the last quarter of the span.
    models : tuple of str, optional
        Candidate purchase models (keys of :data:`PURCHASE_MODELS`); default all of them.
    model : str, optional
        Use this model whatever the scores say (it is still scored).
    freq : {"W", "D", "M"}
        Time unit of the summaries and models.

    Returns
    -------
    Backtest

    Examples
    --------
    >>> import ltvkit
    >>> bt = backtest(ltvkit.datasets.load_cdnow(sample=True), "1997-09-30", models=("bgnbd",))
    >>> bt.holdout_length, int(bt.chosen_scores["actual"])
    (39.0, 1882)
    """
    from ltvkit.data.summary import calibration_holdout

    models = tuple(PURCHASE_MODELS) if models is None else tuple(models)
    if model is not None:
        make_purchase_model(model)  # validates the key
        models = tuple(dict.fromkeys((model, *models)))
    start, end = log_span(transactions)
    cal_end = resolve_holdout(start, end, holdout)
    data = calibration_holdout(transactions, calibration_end=cal_end, observation_end=end, freq=freq)
    cal = data[["frequency", "recency", "T"]]
    actual = data["frequency_holdout"].to_numpy(dtype=float)
    duration = data["duration_holdout"].to_numpy(dtype=float)
    if (cal["frequency"] > 0).sum() == 0:
        raise tag(InputError(
            f"no customer made a repeat purchase before {cal_end.date()}: the models cannot learn "
            "repeat behaviour; use a later calibration end (--holdout) or a longer log"
        ), "skip.no_repeat", date=cal_end)
    actual_value = actual * data["monetary_value_holdout"].to_numpy(dtype=float)
    spend = _spend_per_order(data)

    perfect = _gini(actual_value, actual_value) if actual_value.sum() > 0 else 0.0  # once for all
    rows, fitted, notes = {}, {}, []
    for key in models:
        fit, note = fit_quietly(make_purchase_model(key), cal)
        label = PURCHASE_MODELS[key][1]
        if fit is None:
            notes.append(Note(f"{label}: {note}", "note.fit_failed", label=label))
            rows[key] = {"label": label, "converged": False, "note": note}
            continue
        pred = fit.expected_purchases(duration, cal).to_numpy(dtype=float)
        scores = error_metrics(pred, actual)
        gini = _normalized(actual_value, pred * spend, perfect)
        rows[key] = {"label": label, **scores, "log_likelihood": fit.log_likelihood_,
                     "converged": bool(fit.converged_), "gini": gini, "note": note}
        fitted[key] = (fit, pred)
        if note:
            notes.append(Note(f"{label}: {note}", "note.not_converged", label=label))
    if not fitted:
        raise tag(FitError("no purchase model could be fitted on the calibration period: "
                           + "; ".join(notes)), "skip.no_fit")
    scores = pd.DataFrame.from_dict(rows, orient="index")
    chosen = model if model in fitted else _choose(scores.loc[list(fitted)])
    fit, pred = fitted[chosen]
    tracking = tracking_curve(transactions, fit, cal["T"].to_numpy(dtype=float), cal_end, end, freq)
    return Backtest(
        calibration_end=cal_end,
        observation_end=end,
        holdout_length=float(np.max(duration)),
        unit=freq,
        scores=scores,
        chosen=chosen,
        calibration=calibration_table(cal["frequency"], pred, actual),
        deciles=decile_table(pred * spend, actual_value) if len(pred) >= 10 else pd.DataFrame(),
        tracking=tracking,
        n_customers=len(cal),
        notes=notes,
    )


def _choose(scores: pd.DataFrame) -> str:
    """Lowest per-customer RMSE among converged models (all models if none converged).

    Models whose RMSE is within :data:`RMSE_TIE` (relative) of the best are treated as tied
    — such differences are noise — and the tie goes to the smallest aggregate error.

    Examples
    --------
    >>> s = pd.DataFrame({"rmse": [1.6080, 1.6072, 1.9], "aggregate_error": [-0.12, -0.16, 0.01],
    ...                   "converged": [True, True, True]}, index=["bgnbd", "mbgnbd", "paretonbd"])
    >>> _choose(s)
    'bgnbd'
    """
    ok = scores[scores["converged"].astype(bool)]
    pool = ok if len(ok) else scores
    rmse = pool["rmse"].astype(float)
    tied = pool[rmse <= rmse.min() * (1 + RMSE_TIE)]
    return str(tied["aggregate_error"].astype(float).abs().fillna(np.inf).idxmin())


def _spend_per_order(data: pd.DataFrame) -> np.ndarray:
    """Expected spend per order from a Gamma-Gamma fit on the calibration repeat buyers.

    Falls back to the mean calibration spend when Gamma-Gamma cannot be fitted (too few
    repeat buyers); only the ranking of customers by value depends on it.
    """
    import ltvkit

    m = data["monetary_value"].to_numpy(dtype=float)
    f = data["frequency"].to_numpy(dtype=float)
    buyers = (f > 0) & (m > 0)
    fallback = np.full(len(data), float(np.mean(m[buyers])) if buyers.any() else 1.0)
    if buyers.sum() < 20:
        return fallback
    gg, _ = fit_quietly(ltvkit.GammaGamma(), data.loc[buyers, ["frequency", "monetary_value"]])
    if gg is None:
        return fallback
    spend_data = pd.DataFrame({"frequency": np.where(buyers, f, 0.0), "monetary_value": np.where(buyers, m, 0.0)})
    return gg.expected_spend(spend_data).to_numpy(dtype=float)


def tracking_curve(
    transactions: Any, model: Any, T_cal: np.ndarray, calibration_end: pd.Timestamp,
    observation_end: pd.Timestamp, freq: str = "W",
) -> pd.DataFrame:
    """Cumulative repeat purchases per period, actual vs the model's unconditional expectation.

    The expectation for a customer acquired at time ``b`` is ``E[X(t - b)]`` of a new customer
    (``expected_purchases_new``), summed over the customers of the calibration period — the
    tracking plot of Fader, Hardie & Lee (2005), figure 2. Times are in ``freq`` units
    counted from the end of the calibration day; ``T_cal`` are the calibration ``T`` values.
    """
    unit_days = _DAYS[freq]
    cal_day = _day_index(calibration_end)
    horizon = (_day_index(observation_end) - cal_day) / unit_days
    births = -np.asarray(T_cal, dtype=float)
    steps = np.arange(int(np.floor(horizon - births.min())) + 1, dtype=float)
    grid = (horizon - steps)[::-1]
    grid = grid[grid > births.min()]
    uniq, counts = np.unique(births, return_counts=True)
    age = np.maximum(grid[:, None] - uniq[None, :], 0.0)
    expected = np.asarray(model.expected_purchases_new(age.ravel()), dtype=float).reshape(age.shape)
    times = np.sort((repeat_purchase_days(transactions, cal_day) - cal_day) / unit_days)
    actual = np.searchsorted(times, grid + 1e-9, side="right").astype(float)
    ends = calibration_end + pd.to_timedelta(np.round(grid * unit_days), unit="D")
    return pd.DataFrame({"period_end": ends, "t": grid, "actual": actual,
                         "predicted": expected @ counts})


def repeat_purchase_days(transactions: Any, last_birth_day: int) -> np.ndarray:
    """Day numbers (days since 1970-01-01, UTC) of every repeat purchase day.

    Purchases on the same day by the same customer count once (as in
    :func:`ltvkit.rfm_summary`); only customers whose first purchase day is on or before
    ``last_birth_day`` are included.
    """
    table = transactions.table
    ids = table.column("customer_id").combine_chunks().dictionary_encode().indices
    ids = np.asarray(ids.to_numpy(zero_copy_only=False), dtype=np.int64)
    micros = table.column("ts").cast(pa.timestamp("us", tz="UTC")).combine_chunks()
    days = np.floor_divide(np.asarray(micros.cast(pa.int64()).to_numpy(zero_copy_only=False)),
                           86_400_000_000)
    span = int(days.max() - days.min()) + 1
    key = np.sort(ids * span + (days - days.min()))
    key = key[np.concatenate(([True], key[1:] != key[:-1]))]  # distinct customer-days, in order
    cust, day = key // span, key % span + days.min()
    first = np.ones(key.size, dtype=bool)
    first[1:] = cust[1:] != cust[:-1]
    birth = np.maximum.accumulate(np.where(first, np.arange(key.size), 0))
    keep = ~first & (day[birth] <= last_birth_day)
    return day[keep]


def _day_index(ts: pd.Timestamp) -> int:
    return int((_utc_day(ts) - pd.Timestamp("1970-01-01", tz="UTC")).days)
