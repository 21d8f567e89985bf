"""Render an Analysis into one self-contained, offline HTML report (jinja2 templates, en/fr locales).

plotly.js is inlined once (``plotly.offline.get_plotlyjs()``); every figure is embedded as
JSON and drawn by a small script that records, on ``<body>``, how many charts rendered
(``data-charts-expected`` / ``data-charts-rendered``) and any JavaScript error
(``data-js-errors``) — which is how the headless-browser test checks the page.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
from functools import cache, lru_cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2
import pandas as pd

from ltvkit._io import atomic_path
from ltvkit.errors import InputError
from ltvkit.report import charts
from ltvkit.report.format import Formatter

if TYPE_CHECKING:  # pragma: no cover
    from ltvkit.pipeline import Analysis

LANGUAGES = ("en", "fr")
CONTACT_ROWS = 20


@cache
def load_locale(lang: str) -> dict[str, str]:
    """The strings of a report language.

    Examples
    --------
    >>> load_locale("fr")["nav.forecast"]
    'Prévisions'
    """
    if lang not in LANGUAGES:
        raise InputError(f"report language must be one of {', '.join(LANGUAGES)}, got {lang!r}")
    text = resources.files("ltvkit.report").joinpath("locales", f"{lang}.json").read_text("utf-8")
    return json.loads(text)


class Translator:
    """Look up a locale string and fill its ``{placeholders}``.

    Examples
    --------
    >>> Translator("en")("headline.bad_rows", n="3")
    '3 unusable rows were skipped (see the data notes at the end).'
    """

    def __init__(self, lang: str) -> None:
        self.strings = load_locale(lang)

    def __call__(self, key: str, **values: Any) -> str:
        try:
            text = self.strings[key]
        except KeyError:
            raise KeyError(f"missing report string {key!r}") from None
        return text.format(**values) if values else text


@lru_cache(maxsize=1)
def _plotly_js() -> str:
    from plotly.offline import get_plotlyjs

    return get_plotlyjs()


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("ltvkit.report", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_html(analysis: Analysis, lang: str = "en", currency: str | None = None) -> str:
    """The report of ``analysis`` as an HTML string.

    Parameters
    ----------
    analysis : Analysis
        Result of :func:`ltvkit.analyze`.
    lang : {"en", "fr"}
        Report language (strings, number and date formats).
    currency : str, optional
        ISO currency code for amounts (default the analysis's currency, else USD).
    """
    t = Translator(lang)
    fmt = Formatter(lang, (currency or analysis.settings.get("currency") or "USD").upper())
    context = _context(analysis, t, fmt)
    figures = _figures(analysis, t, fmt)
    context["figures_json"] = _script_json({k: json.loads(v.to_json()) for k, v in figures.items()})
    context["chart_ids"] = list(figures)
    context["plotly_js"] = _plotly_js()
    context["plotly_locale"] = _script_json(fmt.plotly_locale())
    return _environment().get_template("report.html.j2").render(t=t, fmt=fmt, **context)


def write_html(analysis: Analysis, path: str | os.PathLike[str], lang: str = "en",
               currency: str | None = None, force: bool = False) -> Path:
    """Write the report atomically to ``path`` (never overwriting without ``force``)."""
    html = render_html(analysis, lang=lang, currency=currency)
    with atomic_path(path, force=force) as tmp:
        tmp.write_text(html, encoding="utf-8")
    return Path(path)


def _script_json(obj: Any) -> str:
    """JSON safe to place inside a <script> element."""
    return json.dumps(obj, separators=(",", ":"), allow_nan=False).replace("</", "<\\/")


# ---------------------------------------------------------------------- figures
def _figures(a: Analysis, t: Translator, fmt: Formatter) -> dict[str, Any]:
    figs: dict[str, Any] = {
        "chart-segments": charts.segment_value(_segment_rows(a, t), t, fmt),
        "chart-lorenz": charts.lorenz(a.lorenz, t, fmt),
    }
    if a.cohorts is not None and len(a.cohorts) > 1:
        figs["chart-cohorts"] = charts.cohort_value(a.cohorts, t, fmt)
    if a.channels is not None and len(a.channels):
        figs["chart-channels"] = charts.channel_value(a.channels, t, fmt)
    weekly = a.settings.get("forecast_period") == "W"
    figs["chart-orders"] = charts.forecast(a.forecast, "orders", t, fmt, weekly)
    figs["chart-revenue"] = charts.forecast(a.forecast, "revenue", t, fmt, weekly)
    bt = a.backtest
    if bt is not None:
        figs["chart-tracking"] = charts.tracking(bt.tracking, bt.calibration_end, t, fmt)
        figs["chart-calibration"] = charts.calibration(bt.calibration, t, fmt)
        if len(bt.deciles):
            figs["chart-deciles"] = charts.deciles(bt.deciles, t, fmt)
    return figs


# ---------------------------------------------------------------------- context
def _segment_rows(a: Analysis, t: Translator) -> pd.DataFrame:
    seg = a.segments.copy()
    keys = seg.index.astype(str)
    seg["label"] = [_translated(t, f"segment.{k}", name) for k, name in zip(keys, seg["segment"])]
    seg["action_text"] = [_translated(t, f"segment.{k}.action", act) for k, act in zip(keys, seg["action"])]
    return seg


def _translated(t: Translator, key: str, fallback: Any) -> str:
    """The locale string for ``key``, or ``fallback`` (e.g. a user-defined segment's own name)."""
    return t(key) if key in t.strings else str(fallback)


def _plural_unit(unit: str, n: float, t: Translator) -> str:
    return t(f"unit.{unit}" if abs(n - 1) < 1e-9 else f"unit.{unit}.plural")


def _context(a: Analysis, t: Translator, fmt: Formatter) -> dict[str, Any]:
    s, h = a.settings, a.headline()
    seg = _segment_rows(a, t)
    horizon = s["horizon_months"]
    months = s.get("forecast_period") != "W" and all(d.day == 1 for d in a.forecast["period_start"])
    period = fmt.month if months else fmt.date  # calendar months by name, other periods by first day
    ctx: dict[str, Any] = {
        "lang": fmt.lang,
        "subtitle": t("subtitle", source=s.get("source", ""), transactions=fmt.number(s["n_transactions"]),
                      customers=fmt.number(h["customers"]), start=fmt.date(s["start"]),
                      end=fmt.date(s["observation_end"])),
        "generated": t("generated", version=s.get("version", ""), date=fmt.date(dt.date.today())),
        "headline_intro": t(
            "headline.intro", horizon=horizon, discount=fmt.percent(s["discount_rate"], 1),
            margin_note=(t("headline.margin_revenue") if s["margin"] == 1
                         else t("headline.margin_profit", margin=fmt.percent(s["margin"]))),
        ),
        "cards": _cards(h, t, fmt, horizon),
        "bad_rows": fmt.number(h["bad_rows"]) if h["bad_rows"] else None,
        "segments": [
            {"label": r.label, "customers": fmt.number(r.customers), "share": fmt.percent(r.customer_share),
             "avg": fmt.money(r.mean_value), "total": fmt.money_short(r.value),
             "value_share": fmt.percent(r.value_share), "action": r.action_text}
            for r in seg.sort_values("value", ascending=False).itertuples()
        ],
        "actions_intro": t("actions.intro", horizon=horizon),
        "contact": _contact_rows(a, t, fmt),
        "tiers": [
            {"label": _translated(t, f"tier.{k}", k),
             "customers": fmt.number(r["customers"]), "share": fmt.percent(r["customer_share"]),
             "total": fmt.money_short(r["value"]), "value_share": fmt.percent(r["value_share"]),
             "avg": fmt.money(r["mean_value"])}
            for k, r in a.tiers.iterrows()
        ],
        "concentration_intro": t("concentration.intro", top10=fmt.percent(_top_share(a, 0.10)),
                                 top1=fmt.percent(_top_share(a, 0.01)), gini=fmt.number(a.gini, 2)),
        "cohorts": _cohort_rows(a, fmt),
        "channels": _channel_rows(a, fmt),
        "has_channel_column": "channel" in a.customers.columns,
        "forecast_intro": t(_by_period("forecast.intro", a), horizon=horizon),
        "forecast_new": _forecast_new_note(a, t, fmt),
        "forecast_rows": [
            {"period": period(r.period_start), "orders": fmt.number(r.orders),
             "orders_iv": f"{fmt.number(r.orders_low)} – {fmt.number(r.orders_high)}",
             "revenue": fmt.money_short(r.revenue),
             "revenue_iv": f"{fmt.money_short(r.revenue_low)} – {fmt.money_short(r.revenue_high)}",
             "new_customers": fmt.number(r.new_customers)}
            for r in a.forecast.itertuples()
        ],
        "trust": _trust(a, t, fmt),
        "model": _model(a, t, fmt),
        "assumptions": [t(f"model.a{i}") for i in range(1, 6)]
        + [t("model.a6", discount=fmt.percent(s["discount_rate"], 1), horizon=horizon)]
        + ([t("model.bgnbd")] if s["model"] == "bgnbd" else []),
        "notes": [note_text(n, t, fmt) for n in a.notes],
        "skipped": read_notes(a, t, fmt),
        "calculator": _calculator_rows(a, t, fmt),
    }
    return ctx


def _cards(h: dict[str, Any], t: Translator, fmt: Formatter, horizon: int) -> list[dict[str, str]]:
    cards = [
        {"label": t("headline.customers"), "value": fmt.number(h["customers"]),
         "note": t("headline.customers_note")},
        {"label": t("headline.active"), "value": fmt.number(h["active_customers"]),
         "note": t("headline.active_note", share=fmt.percent(h["active_share"]))},
        {"label": t("headline.total_clv"), "value": fmt.money_short(h["total_clv"]),
         "note": t("headline.total_clv_note", low=fmt.money_short(h["total_clv_low"]),
                   high=fmt.money_short(h["total_clv_high"]))},
        {"label": t("headline.avg_clv"), "value": fmt.money(h["mean_clv"]),
         "note": t("headline.total_clv_note", low=fmt.money(h["mean_clv_low"]),
                   high=fmt.money(h["mean_clv_high"]))},
        {"label": t("headline.orders"), "value": fmt.number(h["expected_orders"]),
         "note": t("headline.orders_note", horizon=horizon)},
    ]
    if h.get("clv_cac") is not None:
        cards.append({"label": t("headline.clv_cac"), "value": fmt.number(h["clv_cac"], 1) + "×",
                      "note": t("headline.clv_cac_note", clv=fmt.money(h["mean_clv"]), cac=fmt.money(h["cac"]))})
    return cards


def _top_share(a: Analysis, share: float) -> float:
    values = a.customers["clv"].to_numpy(dtype=float)
    total = values.sum()
    if total <= 0:
        return float("nan")
    k = max(1, math.ceil(share * len(values)))
    return float(pd.Series(values).nlargest(k).sum() / total)


def _contact_rows(a: Analysis, t: Translator, fmt: Formatter) -> list[dict[str, str]]:
    c = a.customers
    top = c.nlargest(CONTACT_ROWS, "clv").sort_values(["next_contact_date", "clv"], ascending=[True, False])
    return [
        {"customer": str(cid), "segment": _translated(t, f"segment.{r['segment_key']}", r["segment"]),
         "clv": fmt.money(r["clv"]), "interval": f"{fmt.money(r['clv_low'])} – {fmt.money(r['clv_high'])}",
         "p_alive": fmt.percent(r["p_alive"]),
         "contact": _date_or_dash(r["next_contact_date"], fmt),
         "purchase": _date_or_dash(r["next_purchase_date"], fmt)}
        for cid, r in top.iterrows()
    ]


def _by_period(key: str, a: Analysis) -> str:
    """Locale key of a forecast string for the analysis's forecast period (month or week)."""
    return key + ".W" if a.settings.get("forecast_period") == "W" else key


def _date_or_dash(value: Any, fmt: Formatter) -> str:
    return fmt.date(value) if pd.notna(value) else "–"


def _cohort_rows(a: Analysis, fmt: Formatter) -> list[dict[str, str]]:
    if a.cohorts is None:
        return []
    return [{"cohort": charts.cohort_label(r.cohort, fmt), "customers": fmt.number(r.customers),
             "avg": fmt.money(r.mean_clv), "total": fmt.money_short(r.total_clv)}
            for r in a.cohorts.itertuples()]


def _channel_rows(a: Analysis, fmt: Formatter) -> list[dict[str, str]]:
    if a.channels is None:
        return []
    rows = []
    for r in a.channels.to_dict("records"):
        rows.append({
            "channel": str(r["channel"]), "customers": fmt.number(r["customers"]),
            "avg": fmt.money(r["mean_clv"]),
            "spend": fmt.money_short(r.get("spend")) if _known(r.get("spend")) else "–",
            "cac": fmt.money(r.get("cac")) if _known(r.get("cac")) else "–",
            "ratio": fmt.number(r.get("clv_cac"), 2) if _known(r.get("clv_cac")) else "–",
        })
    return rows


def _known(v: Any) -> bool:
    return v is not None and not (isinstance(v, float) and not math.isfinite(v)) and not pd.isna(v)


def _forecast_new_note(a: Analysis, t: Translator, fmt: Formatter) -> str:
    rate = float(a.settings.get("new_customers_per_month") or 0.0)
    if rate <= 0:
        return t("forecast.none_new")
    source = t("forecast.source_user" if a.settings.get("new_customers_source") == "user"
               else "forecast.source_recent")
    return t("forecast.new_customers", n=fmt.number(rate), source=source)


def _holdout_length(bt: Any, t: Translator, fmt: Formatter) -> str:
    n = round(float(bt.holdout_length))
    return f"{fmt.number(n)} {_plural_unit(bt.unit, n, t)}"


def trust_sentence(a: Analysis, t: Translator, fmt: Formatter) -> str | None:
    """The backtest in one plain sentence, e.g. "Over the last 39 weeks the model predicted
    1,653 repeat purchases; 1,882 happened (−12%)." (None without a backtest)."""
    bt = a.backtest
    if bt is None:
        return None
    row = bt.chosen_scores
    return t("trust.sentence", length=_holdout_length(bt, t, fmt), predicted=fmt.number(row["predicted"]),
             actual=fmt.number(row["actual"]), error=fmt.signed_percent(row["aggregate_error"]))


def _trust(a: Analysis, t: Translator, fmt: Formatter) -> dict[str, Any]:
    bt = a.backtest
    if bt is None:
        reason = note_text(a.settings.get("backtest_skipped") or "", t, fmt)
        return {"ran": False, "reason": t("trust.not_run", reason=reason)}
    row = bt.chosen_scores
    length = _holdout_length(bt, t, fmt)
    scores = []
    for key, r in bt.scores.iterrows():
        fitted = pd.notna(r.get("rmse"))
        scores.append({
            "model": r["label"], "chosen": key == bt.chosen,
            "mae": fmt.number(r["mae"], 3) if fitted else "–",
            "rmse": fmt.number(r["rmse"], 3) if fitted else "–",
            "predicted": fmt.number(r["predicted"]) if fitted else "–",
            "actual": fmt.number(r["actual"]) if fitted else "–",
            "error": fmt.signed_percent(r["aggregate_error"]) if fitted else "–",
            "gini": fmt.number(r["gini"], 2) if fitted else "–",
        })
    return {
        "ran": True,
        "sentence": trust_sentence(a, t, fmt),
        "method": t("trust.method", cal_end=fmt.date(bt.calibration_end), length=length,
                    n_models=fmt.number(int(bt.scores["rmse"].notna().sum()) if "rmse" in bt.scores else 0),
                    model=bt.label),
        "ranking": t("trust.ranking", gini=fmt.number(row["gini"], 2)) if pd.notna(row["gini"]) else None,
        "scores": scores,
        "has_deciles": len(bt.deciles) > 0,
    }


def _model(a: Analysis, t: Translator, fmt: Formatter) -> dict[str, Any]:
    s = a.settings
    tables = []
    for title, table in ((t("model.purchase", name=s["model_label"]), a.model_summaries["purchase"]),
                         (t("model.spend"), a.model_summaries.get("spend"))):
        if table is None:
            continue
        tables.append({"title": title, "rows": [
            {"name": str(p), "estimate": fmt.number(r["estimate"], 4), "se": fmt.number(r["std_error"], 4),
             "interval": f"{fmt.number(r['lower_95'], 4)} – {fmt.number(r['upper_95'], 4)}"}
            for p, r in table.iterrows()
        ], "loglik": fmt.number(table.attrs.get("log_likelihood"), 1)})
    return {
        "intro": t("model.intro", purchase_model=s["model_label"], customers=fmt.number(s["n_fit_customers"]),
                   unit=t(f"unit.{s['freq']}.plural"), buyers=fmt.number(s["n_repeat_buyers"])),
        "tables": tables,
    }


# ---------------------------------------------------------------------- notes
def note_text(note: Any, t: Translator, fmt: Formatter) -> str:
    """A pipeline note (:class:`ltvkit.notes.Note`) in the report's language.

    Its parameters are formatted for the language (dates, numbers, nested notes); text without
    a locale key is shown as it is.

    Examples
    --------
    >>> from ltvkit.notes import Note
    >>> n = Note("Spend ...", "note.spend_unmatched", channels="tv, radio")
    >>> note_text(n, Translator("fr"), Formatter("fr", "EUR"))
    'Des dépenses ont été indiquées pour des canaux sans aucun client : tv, radio.'
    """
    key = getattr(note, "key", None)
    if key is None or key not in t.strings:
        return str(note)
    return t(key, **{k: _note_param(v, t, fmt) for k, v in note.params.items()})


def _note_param(value: Any, t: Translator, fmt: Formatter) -> str:
    if hasattr(value, "key"):
        return note_text(value, t, fmt)
    if isinstance(value, dt.date | pd.Timestamp):
        return fmt.date(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return fmt.number(value)
    if isinstance(value, float):
        return fmt.number(value, 2 if abs(value) < 10 else 0)
    return str(value)


def read_notes(a: Analysis, t: Translator, fmt: Formatter) -> list[str]:
    """What the reader excluded and kept, written in the report's language from its counts.

    Without a reader report (an Analysis built by hand) the English ``read_messages`` are used.
    """
    r = a.read_report
    if r is None:
        return list(a.read_messages)
    out = []
    if r.n_bad > 0:
        unit = t(f"read.unit.{r.unit}") if f"read.unit.{r.unit}" in t.strings else r.unit
        first = "; ".join(
            t("read.bad_row", unit=unit, line=str(b.line), column=b.column,
              value="" if b.value is None else str(b.value),
              reason=t(f"read.reason.{b.kind}"))
            for b in r.bad_rows
        )
        out.append(t(_plural("read.bad", r.n_bad), n=fmt.number(r.n_bad), first=first))
    for key, n in (("read.duplicates", r.n_duplicates), ("read.returns", r.n_returns),
                   ("read.after_end", r.n_after_end)):
        if n > 0:
            out.append(t(_plural(key, n), n=fmt.number(n)))
    return out


def _plural(key: str, n: int) -> str:
    return f"{key}.one" if n == 1 else f"{key}.other"


def _calculator_rows(a: Analysis, t: Translator, fmt: Formatter) -> list[dict[str, str]]:
    rows = []
    for key, (value, kind) in (a.calculator or {}).items():
        if kind == "money":
            text = fmt.money(value)
        elif kind == "percent":
            text = fmt.percent(value, 1)
        else:
            v = float(value)
            text = fmt.number(v, 0 if not math.isfinite(v) or v == int(v) or abs(v) >= 100 else 2)
        rows.append({"label": t(f"calc.{key}"), "value": text})
    return rows
