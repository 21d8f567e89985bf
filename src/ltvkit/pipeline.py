"""The one analysis pipeline behind the library, the CLI and the report: transaction log → Analysis.

:func:`analyze` runs the chain of the design document in order — read and validate the log,
backtest the candidate purchase models on a calibration/holdout split and choose one, refit
it (with Gamma-Gamma for spend) on the whole log, predict per customer (P(alive), expected
purchases, CLV with intervals, next purchase and contact dates), segment and tier the base,
value cohorts and channels, forecast orders and revenue, and fill the top-down calculator —
and returns an :class:`Analysis`. Front ends use only the Analysis; they never reach into
the models.

Per-customer predictions are computed once per distinct history (frequency, recency, T) and
broadcast back, so the cost grows with distinct histories rather than with customers.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ltvkit.errors import FitError, InputError
from ltvkit.notes import Note, note_of

STAGES: tuple[str, ...] = (
    "read", "backtest", "fit", "predict", "segments", "cohorts", "forecast", "calculator",
)  # fmt: skip
"""Stage names passed to the ``progress`` callback of :func:`analyze`, in order."""

CUSTOMER_COLUMNS: tuple[str, ...] = (
    "frequency", "recency", "T", "monetary_value", "r_score", "f_score", "m_score", "segment",
    "tier", "p_alive", "expected_purchases", "clv", "clv_low", "clv_high", "next_purchase_date",
    "next_contact_date", "action",
)  # fmt: skip
"""Columns of :attr:`Analysis.customers` (indexed by ``customer_id``); ``cohort`` and
``channel`` follow when known, then ``segment_key``, ``n_orders``, ``total_revenue``,
``first_purchase`` and ``last_purchase``.

``expected_purchases`` and ``clv`` cover the ``horizon`` months after the end of observation
(``clv_low``/``clv_high``: interval under parameter uncertainty); ``next_purchase_date`` is the
median of the model's next-purchase time (NaT when the customer is more likely than not never
to buy again); ``next_contact_date`` is the start of the next-purchase window (its 10% quantile),
or the first forecast day when that has passed."""

OUTPUT_FILES: tuple[str, ...] = ("customers.parquet", "report.html")
"""Files :meth:`Analysis.write` always writes (plus audiences, and on request CSVs)."""

_MONTH_DAYS = 365.25 / 12
_RECENT_MONTHS = 3
_MIN_BUYERS_FOR_SPEND = 10
_FALLBACK_PENALIZER = 0.01


@dataclass
class Analysis:
    """Everything :func:`analyze` found, ready for a report, a file or a JSON answer.

    Attributes
    ----------
    customers : DataFrame
        One row per customer (index ``customer_id``), columns :data:`CUSTOMER_COLUMNS` and more.
    segments : DataFrame
        Per segment key: ``customers``, ``customer_share``, ``value``, ``value_share``,
        ``mean_value``, ``segment`` (English name), ``action``.
    tiers : DataFrame
        The same per value tier (``top_1``, ``top_10``, ``next_40``, ``bottom_50``).
    lorenz : DataFrame
        Lorenz curve of predicted value (``customer_share``, ``value_share``).
    gini : float
        Gini coefficient of predicted value.
    forecast : DataFrame
        Orders and revenue per month with intervals (:func:`ltvkit.forecast.forecast`).
    backtest : Backtest or None
        Holdout scores of the candidate models (None when the log was too short).
    cohorts, channels : DataFrame or None
        Value by acquisition month and by acquisition channel (with spend: CAC, CLV:CAC).
    model_summaries : dict
        ``"purchase"`` and ``"spend"`` parameter tables (``summary()`` of the fitted models).
    models : dict
        The fitted models themselves (``"purchase"``, ``"spend"``), for library users.
    calculator : dict
        Top-down calculator figures from the log: key → (value, kind).
    read_messages : list of str
        What the reader kept and excluded (bad rows, duplicates, returns).
    settings : dict
        Inputs and facts of the run (source, dates, horizon, discount rate, margin, ...).
    notes : list of str
        Plain-language notes about fitting (non-convergence, skipped steps); each is a
        :class:`ltvkit.notes.Note` (English text plus the report's locale key).
    timings : dict
        Seconds spent in each stage.
    read_report : ReadReport or None
        The reader's counts (rows read, kept, bad, duplicates, returns, after the end), from
        which the report writes its data notes in the report's language.
    """

    customers: pd.DataFrame
    segments: pd.DataFrame
    tiers: pd.DataFrame
    lorenz: pd.DataFrame
    gini: float
    forecast: pd.DataFrame
    backtest: Any
    cohorts: pd.DataFrame | None
    channels: pd.DataFrame | None
    model_summaries: dict[str, pd.DataFrame | None]
    models: dict[str, Any]
    calculator: dict[str, tuple[float, str]]
    read_messages: list[str]
    settings: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    read_report: Any = None

    def headline(self) -> dict[str, Any]:
        """Headline results as plain Python values (what ``ltv analyze --json`` prints)."""
        c, s = self.customers, self.settings
        n = len(c)
        active = int((c["p_alive"] >= 0.5).sum())
        total = float(c["clv"].sum())
        out: dict[str, Any] = {
            "customers": n,
            "active_customers": active,
            "active_share": active / n,
            "total_clv": total,
            "total_clv_low": float(c["clv_low"].sum()),
            "total_clv_high": float(c["clv_high"].sum()),
            "mean_clv": total / n,
            "mean_clv_low": float(c["clv_low"].mean()),
            "mean_clv_high": float(c["clv_high"].mean()),
            "expected_orders": float(c["expected_purchases"].sum()),
            "expected_revenue": float(self.forecast["revenue_existing"].sum()),
            "horizon_months": s["horizon_months"],
            "currency": s["currency"],
            "model": s["model"],
            "bad_rows": s["bad_rows"],
            "gini": self.gini,
            "clv_cac": s.get("clv_cac"),
            "cac": s.get("cac"),
            "backtest": self.backtest.to_dict() if self.backtest is not None else None,
        }
        return {k: _plain(v) for k, v in out.items()}

    def to_html(self, path: str | os.PathLike[str] | None = None, lang: str = "en",
                currency: str | None = None, force: bool = False) -> str:
        """The report as HTML; also written (atomically) to ``path`` when given."""
        from ltvkit.report.render import render_html, write_html

        if path is None:
            return render_html(self, lang=lang, currency=currency)
        return write_html(self, path, lang=lang, currency=currency, force=force).read_text("utf-8")

    def write(self, out_dir: str | os.PathLike[str], *, force: bool = False, csv: bool = False,
              lang: str = "en", currency: str | None = None) -> list[Path]:
        """Write ``customers.parquet`` (``customers.csv``), ``report.html``, audiences, ``channels.csv``.

        Nothing is overwritten without ``force``: existing outputs are detected before any
        file is written. Every file is written atomically.
        """
        from ltvkit._io import atomic_path
        from ltvkit.report.render import render_html
        from ltvkit.segments import write_audiences

        out = Path(out_dir)
        if out.exists() and not out.is_dir():
            raise InputError(f"--out {out} exists and is not a folder; choose a folder path")
        targets = {"customers.parquet": self._write_parquet, "report.html": None}
        if csv:
            targets["customers.csv"] = self._write_csv
        if self.channels is not None and "cac" in self.channels:
            targets["channels.csv"] = self._write_channels
        existing = [str(out / name) for name in targets if (out / name).exists()]
        if existing and not force:
            raise InputError(
                f"{existing[0]} already exists ({len(existing)} output file(s) in the way); pass "
                "--force (force=True) to overwrite, or choose another --out folder"
            )
        html = render_html(self, lang=lang, currency=currency)  # render first: fail before writing
        written = write_audiences(self.customers, out, force=force)
        for name, writer in targets.items():
            with atomic_path(out / name, force=force) as tmp:
                if writer is None:
                    tmp.write_text(html, encoding="utf-8")
                else:
                    writer(tmp)
            written.append(out / name)
        return written

    def _write_parquet(self, path: Path) -> None:
        self.customers.reset_index().to_parquet(path, index=False)

    def _write_csv(self, path: Path) -> None:
        table = self.customers.reset_index()
        for col in table.columns:
            if pd.api.types.is_datetime64_any_dtype(table[col]):
                table[col] = table[col].dt.strftime("%Y-%m-%d")
        table.to_csv(path, index=False)

    def _write_channels(self, path: Path) -> None:
        assert self.channels is not None
        self.channels.to_csv(path, index=False)

    def __repr__(self) -> str:
        h = self.headline()
        return (f"<Analysis {h['customers']:,} customers · model {h['model']} · "
                f"total CLV {h['total_clv']:,.0f} {h['currency']} over {h['horizon_months']} months>")


def _plain(v: Any) -> Any:
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


# ---------------------------------------------------------------------- the pipeline
def analyze(
    source: Any,
    customer: str | int | None = None,
    date: str | int | None = None,
    amount: str | int | None = None,
    *,
    channel: str | None = None,
    on_bad_rows: str = "raise",
    observation_end: Any = None,
    holdout: Any = None,
    model: str | None = None,
    freq: str = "W",
    horizon: int = 12,
    discount_rate: float = 0.01,
    margin: float = 1.0,
    new_customers_per_month: float | None = None,
    spend: Any = None,
    currency: str = "USD",
    interval: float = 0.9,
    forecast_period: str = "M",
    run_backtest: bool = True,
    progress: Callable[[str], None] | None = None,
    **read_options: Any,
) -> Analysis:
    """Analyse a transaction log end to end: backtest, CLV per customer, segments, forecasts.

    Parameters
    ----------
    source : path, DataFrame, Table, query or Transactions
        Anything :func:`ltvkit.read_transactions` reads.
    customer, date, amount : str or int, optional
        Column names (or positions) of the customer id, purchase date and order amount.
    channel : str, optional
        Column holding each order's acquisition channel (default: a column named ``channel``,
        if any). The channel of a customer's first order is their acquisition channel.
    on_bad_rows : {"raise", "skip"}
        Stop at the first unusable row (with file, line, column) or skip and report them.
    observation_end : date-like, optional
        Last day observed (default: the last purchase day).
    holdout : str, optional
        Backtest holdout: a duration (``"39W"``, ``"6M"``) or the calibration end date
        (``"1997-09-30"``); default the last quarter of the log's span.
    model : {"bgnbd", "paretonbd", "mbgnbd"}, optional
        Use this purchase model instead of the backtest's choice.
    freq : {"W", "D", "M"}
        Model time unit.
    horizon : int
        CLV and forecast horizon in months.
    discount_rate : float
        Discount rate per month.
    margin : float
        Share of revenue that is profit (1.0 = revenue CLV).
    new_customers_per_month : float, optional
        Acquisition assumption for the forecast (default: the average of the last 3 months).
    spend : dict, DataFrame or CSV path, optional
        Acquisition spend per channel (and month) for CAC and CLV:CAC.
    currency : str
        ISO code used in the report and the JSON headline.
    interval : float
        Width of the intervals.
    forecast_period : {"M", "W"}
        Forecast per calendar month or per week (over the same ``horizon`` months).
    run_backtest : bool
        Set False to skip the backtest (then ``model`` or BG/NBD is used).
    progress : callable, optional
        Called with each stage name of :data:`STAGES` as it starts.
    **read_options
        Passed to :func:`ltvkit.read_transactions` (``sep``, ``date_format``, ...).

    Returns
    -------
    Analysis

    Examples
    --------
    >>> import ltvkit
    >>> a = ltvkit.analyze(ltvkit.datasets.load_cdnow(), holdout="1997-09-30", model="bgnbd")
    >>> len(a.customers), a.backtest.to_dict()["actual_repeat_purchases"]
    (2357, 1882)
    """
    from ltvkit.data.transactions import read_transactions

    if not (isinstance(horizon, int | np.integer) and 1 <= horizon <= 600):
        raise InputError(f"horizon must be a whole number of months from 1 to 600, got {horizon!r}")
    if not 0 <= discount_rate < 1:
        raise InputError(f"discount_rate is per month and must be in [0, 1), got {discount_rate}")
    if not 0 < margin <= 1:
        raise InputError(f"margin must be in (0, 1] (share of revenue kept), got {margin}")
    if forecast_period not in ("M", "W"):
        raise InputError(f"forecast_period must be 'M' (months) or 'W' (weeks), got {forecast_period!r}")
    timings: dict[str, float] = {}
    clock = _Clock(progress, timings)

    clock("read")
    tx = read_transactions(source, customer, date, amount, on_bad_rows=on_bad_rows,
                           observation_end=observation_end, **read_options)
    if not tx.has_amount:
        raise InputError("analyze needs order amounts: name the amount column (amount=..., --amount COL)")
    if channel is not None:
        tx = _with_channel(tx, channel)
    if spend is not None and "channel" not in tx.columns:
        raise InputError(
            "a spend file was given but the log has no 'channel' column to match it with; "
            f"the log's columns are {', '.join(tx.columns)} — name the acquisition channel column "
            "with channel=... (--channel COL)"
        )
    notes: list[str] = []

    clock("backtest")
    bt, chosen, skipped = _run_backtest(tx, holdout, model, freq, run_backtest, notes)

    clock("fit")
    from ltvkit.data.summary import rfm_summary

    summary = rfm_summary(tx, freq=freq)
    purchase = _fit_purchase(chosen, summary, notes)
    spend_model, spend_data = _fit_spend(summary, notes)

    clock("predict")
    end = pd.Timestamp(summary.attrs["observation_end"])
    start = end + pd.Timedelta(days=1)
    customers = _predict(purchase, spend_model, summary, spend_data, start, horizon, freq,
                         discount_rate, margin, interval)

    clock("segments")
    from ltvkit import segments as seg

    rfm = seg.rfm_segments(summary)
    for col in ("r_score", "f_score", "m_score", "segment", "action", "segment_key"):
        customers[col] = rfm[col]
    customers["tier"] = seg.value_tiers(customers["clv"])
    segments = _segment_table(customers)
    tiers = seg.value_shares(customers["clv"], customers["tier"])
    lorenz = seg.lorenz_curve(customers["clv"])
    gini = seg.gini_of_curve(lorenz)

    clock("cohorts")
    cohorts, channels, economics = _cohorts(tx, customers, spend, notes)

    clock("forecast")
    rate, rate_source = _acquisition_rate(summary, end, new_customers_per_month)
    fc = _forecast(purchase, summary, customers["spend_per_order"].to_numpy(), start, horizon, freq,
                   rate, interval, forecast_period)

    clock("calculator")
    calculator = _calculator(tx, discount_rate, margin, economics.get("cac"), notes)
    clock(None)

    order = [*CUSTOMER_COLUMNS, *(c for c in ("cohort", "channel") if c in customers),
             "segment_key", "n_orders", "total_revenue", "first_purchase", "last_purchase"]
    import ltvkit

    settings = {
        "source": tx.source, "version": ltvkit.__version__,
        "n_transactions": len(tx), "start": pd.Timestamp(summary["first_purchase"].min()),
        "observation_end": end, "freq": freq, "horizon_months": int(horizon),
        "discount_rate": float(discount_rate), "margin": float(margin), "currency": currency.upper(),
        "interval": interval, "model": chosen, "model_label": _label(chosen),
        "n_fit_customers": len(summary), "n_repeat_buyers": int(spend_data["buyers"].sum()),
        "bad_rows": int(tx.report.n_bad), "new_customers_per_month": rate,
        "new_customers_source": rate_source, "forecast_period": forecast_period,
        "backtest_skipped": skipped,
        **economics,
    }
    return Analysis(
        customers=customers[order], segments=segments, tiers=tiers, lorenz=lorenz, gini=gini,
        forecast=fc, backtest=bt, cohorts=cohorts, channels=channels,
        model_summaries={"purchase": purchase.summary(), "spend": spend_model.summary()},
        models={"purchase": purchase, "spend": spend_model}, calculator=calculator,
        read_messages=tx.report.messages()[1:], settings=settings, notes=notes, timings=timings,
        read_report=tx.report,
    )


class _Clock:
    """Calls the progress callback at each stage and records the time spent in each."""

    def __init__(self, progress: Callable[[str], None] | None, timings: dict[str, float]) -> None:
        self.progress, self.timings = progress, timings
        self.stage: str | None = None
        self.t0 = time.perf_counter()

    def __call__(self, stage: str | None) -> None:
        now = time.perf_counter()
        if self.stage is not None:
            self.timings[self.stage] = now - self.t0
        self.stage, self.t0 = stage, now
        if stage is not None and self.progress is not None:
            self.progress(stage)


def _label(key: str) -> str:
    from ltvkit.evaluate import PURCHASE_MODELS

    return PURCHASE_MODELS[key][1]


def _with_channel(tx: Any, channel: str) -> Any:
    """The log with the user's acquisition-channel column renamed ``channel`` (a column already
    called ``channel`` becomes ``channel_original``)."""
    from ltvkit.data.transactions import Transactions

    names = tx.columns
    extra = [n for n in names if n not in ("customer_id", "ts", "amount")]
    if channel not in extra:
        raise InputError(f"channel column {channel!r} is not in the log; its other columns are "
                         f"{', '.join(extra) or '(none)'} — pass the name of the acquisition "
                         "channel column")
    renamed = ["channel_original" if n == "channel" else "channel" if n == channel else n
               for n in names]
    return Transactions(tx.table.rename_columns(renamed), tx.report, tx.observation_end)


def _run_backtest(tx: Any, holdout: Any, model: str | None, freq: str, run: bool,
                  notes: list[str]) -> tuple[Any, str, str | None]:
    """The backtest, the chosen model key, and why the backtest was skipped (None if it ran)."""
    from ltvkit.evaluate import backtest, make_purchase_model

    if model is not None:
        make_purchase_model(model)  # unknown names fail fast
    if not run:
        return None, model or "bgnbd", Note("it was switched off (run_backtest=False)", "skip.off")
    try:
        bt = backtest(tx, holdout, model=model, freq=freq)
    except (InputError, FitError) as exc:
        if holdout is not None:  # the user asked for this split: say what is wrong
            raise
        reason = note_of(exc, "skip.other")
        notes.append(Note(f"The backtest was skipped: {exc}", "note.backtest_skipped",
                          reason=reason))
        return None, model or "bgnbd", reason
    notes.extend(bt.notes)
    return bt, bt.chosen, None


def _fit_purchase(key: str, summary: pd.DataFrame, notes: list[str]) -> Any:
    from ltvkit.evaluate import make_purchase_model

    data = summary[["frequency", "recency", "T"]]
    if int((data["frequency"] > 0).sum()) == 0:
        raise InputError(
            "no customer made a repeat purchase (a purchase on a later day than their first): "
            "the models cannot learn repeat behaviour from this log"
        )
    return _fit_with_fallback(lambda pen: make_purchase_model(key, penalizer=pen), data,
                              f"{_label(key)} (whole log)", notes)


def _fit_with_fallback(make: Callable[[float], Any], data: pd.DataFrame, label: str,
                       notes: list[str]) -> Any:
    """Fit ``make(0.0)``; if a parameter is not identified (e.g. a short log), refit with a small
    L2 penalty (lifetimes' convention) and say so in ``notes``."""
    from ltvkit.evaluate import fit_quietly

    fitted, note = fit_quietly(make(0.0), data)
    if fitted is None:
        fitted, retry = fit_quietly(make(_FALLBACK_PENALIZER), data)
        if fitted is None:
            raise FitError(f"{label} could not be fitted: {note}")
        notes.append(Note(f"{label} was fitted with a small penalty ({_FALLBACK_PENALIZER}) because "
                          f"the plain fit failed ({note}); treat its estimates with extra caution.",
                          "note.penalized", label=label, penalty=_FALLBACK_PENALIZER))
        note = retry
    if note:
        notes.append(Note(f"{label}: {note}", "note.not_converged", label=label))
    return fitted


def _fit_spend(summary: pd.DataFrame, notes: list[str]) -> tuple[Any, pd.DataFrame]:
    """Gamma-Gamma fitted on the repeat buyers with a positive mean repeat spend.

    Returns the model and every customer's spend data (``frequency``, ``monetary_value``,
    ``buyers``). Repeat buyers whose repeat purchases net to zero or less (returns) get a
    mean spend of one cent, so Gamma-Gamma shrinks them towards zero rather than treating
    them as unknown.
    """
    import ltvkit

    f = summary["frequency"].to_numpy(dtype=float)
    m = summary["monetary_value"].to_numpy(dtype=float)
    buyers = (f > 0) & (m > 0)
    data = pd.DataFrame({"frequency": f, "monetary_value": np.where(f > 0, np.maximum(m, 0.01), 0.0),
                         "buyers": buyers}, index=summary.index)
    if buyers.sum() < _MIN_BUYERS_FOR_SPEND:
        raise InputError(
            f"only {int(buyers.sum())} customer(s) made a repeat purchase with a positive amount; "
            f"at least {_MIN_BUYERS_FOR_SPEND} are needed to model spend per order"
        )
    gg = _fit_with_fallback(lambda pen: ltvkit.GammaGamma(penalizer=pen),
                            data.loc[buyers, ["frequency", "monetary_value"]], "Gamma-Gamma", notes)
    if gg.params_["q"] <= 1:
        raise FitError(
            f"the spend model (Gamma-Gamma) gives an infinite mean order value (q = "
            f"{gg.params_['q']:.3g} <= 1): the order values are too heavy-tailed or there are too "
            f"few repeat buyers ({int(buyers.sum())}). Check the amounts for outliers, or use a "
            "longer log"
        )
    return gg, data


def _distinct(frame: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """Distinct rows of ``frame`` and, for each original row, the position of its distinct row."""
    from ltvkit.models.base import _row_codes

    codes, first = _row_codes({c: frame[c].to_numpy() for c in frame.columns})
    return frame.iloc[first].reset_index(drop=True), codes


class _PerOrder:
    """A spend model worth 1 per order: ``lifetime_value`` then gives discounted expected purchases."""

    @staticmethod
    def expected_spend(data: pd.DataFrame) -> np.ndarray:
        return np.ones(len(data))


def _clv_with_interval(purchase: Any, spend_model: Any, hist: pd.DataFrame, codes: np.ndarray,
                       spend_rows: pd.DataFrame, spend_codes: np.ndarray, horizon: int, freq: str,
                       discount_rate: float, margin: float,
                       interval: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CLV per customer (plug-in estimate) and its interval under parameter uncertainty.

    CLV factorises into discounted expected purchases (which depend on frequency, recency, T
    only) times expected spend per order (frequency, mean spend only), so each factor is
    computed once per distinct row. The interval is the delta method on the log scale over
    both models' log-parameters — to first order the same as
    ``lifetime_value(interval=...)``'s parameter draws, at the cost of ``k + 1`` evaluations
    instead of hundreds. The fits are independent (block-diagonal covariance) and
    ``log CLV = log margin + log purchases + log spend``, so the variance of ``log CLV`` is the
    sum of the two factors' variances, each computed per distinct row.
    """
    import ltvkit
    from ltvkit.forecast import delta_log_sd, log_covariance, log_normal_interval, perturbed_models

    def discounted_purchases(model: Any) -> np.ndarray:
        return np.asarray(ltvkit.lifetime_value(model, _PerOrder(), hist, horizon=horizon, unit="M",
                                                discount_rate=discount_rate, margin=1.0,
                                                model_unit=freq), dtype=float)

    def spend(model: Any) -> np.ndarray:
        return np.asarray(model.expected_spend(spend_rows), dtype=float)

    det, per_order = np.maximum(discounted_purchases(purchase), 0.0), spend(spend_model)
    moved = np.stack([discounted_purchases(m) for m in perturbed_models(purchase)])
    sd_p = delta_log_sd(det, np.maximum(moved, 0.0), log_covariance(purchase))
    sd_s = delta_log_sd(per_order, np.stack([spend(m) for m in perturbed_models(spend_model)]),
                        log_covariance(spend_model))
    value = np.maximum(margin * det[codes] * per_order[spend_codes], 0.0)
    low, high = log_normal_interval(value, np.hypot(sd_p[codes], sd_s[spend_codes]), interval)
    return low, value, high


def _predict(purchase: Any, spend_model: Any, summary: pd.DataFrame, spend_data: pd.DataFrame,
             start: pd.Timestamp, horizon: int, freq: str, discount_rate: float, margin: float,
             interval: float) -> pd.DataFrame:
    """Per-customer predictions: P(alive), expected purchases, CLV with interval, timing."""
    from ltvkit import timing

    hist, codes = _distinct(summary[["frequency", "recency", "T"]])
    unit_days = timing.UNIT_DAYS[freq]
    t_h = ((start + pd.DateOffset(months=horizon)) - start).days / unit_days
    out = pd.DataFrame(index=summary.index)
    for col in ("frequency", "recency", "T", "monetary_value"):
        out[col] = summary[col]
    out["p_alive"] = purchase.p_alive(hist).to_numpy(dtype=float)[codes]
    out["expected_purchases"] = np.asarray(purchase.expected_purchases(t_h, hist), dtype=float)[codes]
    spend_rows, spend_codes = _distinct(spend_data[["frequency", "monetary_value"]])
    out["spend_per_order"] = spend_model.expected_spend(spend_rows).to_numpy(dtype=float)[spend_codes]
    low, value, high = _clv_with_interval(purchase, spend_model, hist, codes, spend_rows, spend_codes,
                                          horizon, freq, discount_rate, margin, interval)
    out["clv"], out["clv_low"], out["clv_high"] = value, low, high
    q = purchase.next_purchase_time(hist, q=(0.1, 0.5))
    dates = timing.next_purchase_dates(q.set_axis(range(len(hist))), start - pd.Timedelta(days=1), freq)
    out["next_purchase_date"] = dates["next_purchase_q50"].to_numpy()[codes]
    window_start = pd.Series(dates["next_purchase_q10"].to_numpy()[codes], index=out.index)
    out["next_contact_date"] = timing.next_contact_dates(window_start, as_of=start).to_numpy()
    for col in ("n_orders", "total_revenue", "first_purchase", "last_purchase"):
        out[col] = summary[col]
    return out


def _segment_table(customers: pd.DataFrame) -> pd.DataFrame:
    from ltvkit.segments import value_shares

    table = value_shares(customers["clv"], customers["segment_key"].rename("segment_key"))
    names = customers.groupby("segment_key", sort=False)[["segment", "action"]].first()
    return table.join(names)


def _cohorts(tx: Any, customers: pd.DataFrame, spend: Any,
             notes: list[str]) -> tuple[pd.DataFrame | None, pd.DataFrame | None, dict[str, Any]]:
    """Acquisition cohort and channel per customer (added to ``customers``); value tables."""
    from ltvkit import cohorts as co

    acq = co.acquisition(tx, columns=("channel",)).reindex(customers.index)
    customers["cohort"] = acq["cohort"]
    cohorts = _value_by(customers, "cohort")
    if "channel" not in acq.columns:
        return cohorts, None, {}
    customers["channel"] = acq["channel"].astype(str)
    channels = _value_by(customers, "channel")
    if spend is None:
        return cohorts, channels, {}
    per_channel = co.read_spend(spend).groupby("channel", as_index=False)["spend"].sum()
    econ = co.channel_economics(customers, per_channel).reset_index()
    unmatched = sorted(set(per_channel["channel"]) - set(customers["channel"].unique()))
    if unmatched:
        notes.append(Note(f"Spend was given for channel(s) with no customers: {', '.join(unmatched)}.",
                          "note.spend_unmatched", channels=", ".join(unmatched)))
    channels = channels.merge(econ[["channel", "spend", "cac", "clv_to_cac", "affordable_cpa"]],
                              on="channel", how="outer")
    channels = channels.rename(columns={"clv_to_cac": "clv_cac"})
    channels["customers"] = channels["customers"].fillna(0).astype("int64")
    paid = customers["channel"].isin(per_channel["channel"])
    total_spend = float(per_channel["spend"].sum())
    n_paid = int(paid.sum())
    economics: dict[str, Any] = {"total_spend": total_spend}
    if n_paid and total_spend > 0:
        cac = total_spend / n_paid
        economics.update(cac=cac, clv_cac=float(customers.loc[paid, "clv"].mean()) / cac)
    return cohorts, channels, economics


def _value_by(customers: pd.DataFrame, by: str) -> pd.DataFrame:
    from ltvkit.cohorts import cohort_value

    table = cohort_value(customers, by=by).reset_index()
    return table.rename(columns={"clv_mean": "mean_clv", "clv_total": "total_clv",
                                 "clv_mean_low": "mean_clv_low", "clv_mean_high": "mean_clv_high"})


def _acquisition_rate(summary: pd.DataFrame, end: pd.Timestamp,
                      user_rate: float | None) -> tuple[float, str]:
    """New customers per month: the user's assumption, or the average of the last 3 months."""
    if user_rate is not None:
        if not (math.isfinite(user_rate) and user_rate >= 0):
            raise InputError(f"new customers per month must be a number >= 0, got {user_rate!r}")
        return float(user_rate), "user"
    first = pd.to_datetime(summary["first_purchase"], utc=True)
    since = end.tz_localize("UTC") + pd.Timedelta(days=1) - pd.Timedelta(days=_RECENT_MONTHS * _MONTH_DAYS)
    return float((first >= since).sum()) / _RECENT_MONTHS, "recent"


def _forecast(purchase: Any, summary: pd.DataFrame, spend: np.ndarray, start: pd.Timestamp,
              horizon: int, freq: str, rate: float, interval: float, period: str) -> pd.DataFrame:
    """Monthly forecast over ``horizon`` months, or weekly over as many whole weeks."""
    from ltvkit.forecast import forecast

    if period == "W":
        weeks = round(horizon * _MONTH_DAYS / 7)
        return forecast(purchase, summary, spend, start, horizon=weeks, period="W", model_unit=freq,
                        new_customers_per_period=rate * 7 / _MONTH_DAYS, interval=interval)
    return forecast(purchase, summary, spend, start, horizon=horizon, period=period, model_unit=freq,
                    new_customers_per_period=rate, interval=interval)


def _calculator(tx: Any, discount_rate: float, margin: float, cac: float | None,
                notes: list[str]) -> dict[str, tuple[float, str]]:
    """The top-down calculator filled from the log's recent months (key → (value, kind))."""
    from ltvkit.calculator import calculate, calculator_inputs

    try:
        inputs = calculator_inputs(tx)
        new = inputs.new_customers if inputs.new_customers > 0 else 1.0
        result = calculate(arpu=inputs.average_invoice, purchases_per_month=inputs.purchases_per_month,
                           churn=inputs.churn, new_customers=new, spend=(cac or 0.0) * new,
                           margin=margin, discount_rate=discount_rate)
    except InputError as exc:
        reason = note_of(exc, "calc.other")
        notes.append(Note(f"The top-down calculator was left out: {exc}", "note.calculator_left_out",
                          reason=reason))
        return {}
    rows: dict[str, tuple[float, str]] = {
        "window": (inputs.n_months, "number"),
        "churn": (inputs.churn, "percent"),
        "average_invoice": (inputs.average_invoice, "money"),
        "purchases_per_month": (inputs.purchases_per_month, "number"),
        "arpu": (inputs.arpu, "money"),
        "new_customers": (inputs.new_customers, "number"),
        "clv": (result.clv, "money"),
        "clv_discounted": (result.clv_discounted, "money"),
        "max_cac": (result.max_cac, "money"),
    }
    if cac:
        rows.update(cac=(result.cac, "money"), clv_to_cac=(result.clv_to_cac, "number"),
                    payback_months=(result.payback_months, "number"))
    return rows
