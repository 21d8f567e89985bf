"""Plotly figures of the HTML report (built from an Analysis's tables, labelled in the report language).

Each function returns a :class:`plotly.graph_objects.Figure`; the renderer serialises them to
JSON and draws them with one inlined copy of plotly.js. ``t`` translates a locale key and
``fmt`` is the report's :class:`~ltvkit.report.format.Formatter`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from ltvkit.report.format import NNBSP, Formatter

Translate = Callable[..., str]

BLUE, ORANGE, GREY, GREEN = "#2563eb", "#ea580c", "#94a3b8", "#059669"
_BAND = "rgba(37, 99, 235, 0.15)"
_GRID = "#e5e7eb"
_MAX_POINTS = 400


def _layout(fig: go.Figure, title: str, fmt: Formatter, height: int = 360, **kwargs: object) -> go.Figure:
    settings: dict[str, object] = {
        "title": {"text": title, "x": 0, "xanchor": "left", "font": {"size": 15}},
        "template": "none",  # no bundled theme: it is deep-copied per figure (slow, bulky)
        "paper_bgcolor": "white",
        "plot_bgcolor": "white",
        "height": height,
        "margin": {"l": 60, "r": 20, "t": 50, "b": 70},
        "font": {"family": "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", "size": 12},
        "separators": ("," + NNBSP) if fmt.lang == "fr" else ".,",
        "legend": {"orientation": "h", "y": -0.3, "yanchor": "top"},
        "hovermode": "x unified",
    }
    fig.update_layout(**{**settings, **kwargs})
    fig.update_xaxes(gridcolor=_GRID, linecolor=_GRID, zeroline=False, automargin=True)
    fig.update_yaxes(gridcolor=_GRID, linecolor=_GRID, zeroline=False, automargin=True)
    if fig.layout.yaxis.tickformat is None:
        fig.update_yaxes(tickformat=",~g")  # 6,000 rather than 6000
    return fig


def _money_axis(fmt: Formatter) -> dict[str, str]:
    sample = fmt.money(0, 0)
    prefix, _, suffix = sample.partition("0")
    return {"tickprefix": prefix, "ticksuffix": suffix}


def segment_value(segments: pd.DataFrame, t: Translate, fmt: Formatter) -> go.Figure:
    """Horizontal bars: total predicted value per segment (columns ``label``, ``value``, ``customers``)."""
    data = segments.sort_values("value")
    fig = go.Figure(go.Bar(
        x=data["value"], y=data["label"], orientation="h", marker_color=BLUE,
        text=[fmt.money_short(v) for v in data["value"]], textposition="auto",
        customdata=data["customers"], hovertemplate="%{y}: %{text} · %{customdata} " + t("col.customers").lower() + "<extra></extra>",
    ))
    fig.update_xaxes(**_money_axis(fmt))
    return _layout(fig, t("actions.chart"), fmt, height=max(260, 34 * len(data) + 90), hovermode="closest")


def lorenz(curve: pd.DataFrame, t: Translate, fmt: Formatter) -> go.Figure:
    """Lorenz curve of predicted value with the line of equality."""
    idx = np.unique(np.linspace(0, len(curve) - 1, min(len(curve), _MAX_POINTS)).round().astype(int))
    pts = curve.iloc[idx]
    fig = go.Figure([
        go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name=t("concentration.equal"),
                   line={"color": GREY, "dash": "dot"}),
        go.Scatter(x=pts["customer_share"], y=pts["value_share"], mode="lines",
                   name=t("concentration.lorenz"), line={"color": BLUE, "width": 3},
                   fill="tonexty", fillcolor=_BAND),
    ])
    fig.update_xaxes(title=t("concentration.x"), tickformat=".0%", range=[0, 1])
    fig.update_yaxes(title=t("concentration.y"), tickformat=".0%", range=[0, 1])
    return _layout(fig, t("concentration.lorenz"), fmt, hovermode="closest")


def cohort_value(cohorts: pd.DataFrame, t: Translate, fmt: Formatter) -> go.Figure:
    """Bars of average predicted value per acquisition cohort (columns ``cohort``, ``mean_clv``, ``customers``)."""
    fig = go.Figure(go.Bar(
        x=[cohort_label(c, fmt) for c in cohorts["cohort"]], y=cohorts["mean_clv"], marker_color=BLUE,
        customdata=cohorts["customers"], name=t("col.avg_clv"),
        hovertemplate="%{x}: %{y:.2f} · %{customdata} " + t("col.customers").lower() + "<extra></extra>",
    ))
    fig.update_yaxes(title=t("col.avg_clv"), **_money_axis(fmt))
    fig.update_xaxes(type="category", title=t("col.cohort"))
    return _layout(fig, t("cohorts.chart"), fmt, hovermode="closest")


def cohort_label(cohort: object, fmt: Formatter) -> str:
    """A ``YYYY-MM`` cohort as a month name (``juil. 1998``); other labels as they are.

    Examples
    --------
    >>> cohort_label("1997-01", Formatter("fr")), cohort_label("(unknown)", Formatter("fr"))
    ('janv. 1997', '(unknown)')
    """
    text = str(cohort)
    try:
        return fmt.month(pd.Timestamp(text + "-01")) if len(text) == 7 else text
    except ValueError:
        return text


def channel_value(channels: pd.DataFrame, t: Translate, fmt: Formatter) -> go.Figure:
    """Grouped bars per channel: average predicted value and, when known, cost per customer."""
    bars = [go.Bar(x=channels["channel"].astype(str), y=channels["mean_clv"], name=t("col.avg_clv"),
                   marker_color=BLUE)]
    if "cac" in channels and channels["cac"].notna().any():
        bars.append(go.Bar(x=channels["channel"].astype(str), y=channels["cac"], name=t("col.cac"),
                           marker_color=ORANGE))
    fig = go.Figure(bars)
    fig.update_yaxes(**_money_axis(fmt))
    fig.update_xaxes(type="category", title=t("col.channel"))
    return _layout(fig, t("channels.chart"), fmt, barmode="group")


def forecast(fc: pd.DataFrame, what: str, t: Translate, fmt: Formatter, weekly: bool = False) -> go.Figure:
    """Per-period forecast of ``what`` ("orders" or "revenue"): existing base, new customers, total with its interval."""
    x = fc["period_start"].dt.strftime("%Y-%m-%d")
    existing = "purchases" if what == "orders" else "revenue_existing"
    new = "new_orders" if what == "orders" else "revenue_new"
    traces = [
        go.Scatter(x=x, y=fc[f"{what}_high"], mode="lines", line={"width": 0}, showlegend=False,
                   hoverinfo="skip"),
        go.Scatter(x=x, y=fc[f"{what}_low"], mode="lines", line={"width": 0}, fill="tonexty",
                   fillcolor=_BAND, name=t("forecast.interval"), hoverinfo="skip"),
        go.Scatter(x=x, y=fc[what], mode="lines+markers", name=t("forecast.total"),
                   line={"color": BLUE, "width": 3}),
    ]
    if fc[new].sum() > 0:
        traces += [
            go.Bar(x=x, y=fc[existing], name=t("forecast.existing"), marker_color="#93c5fd", opacity=0.7),
            go.Bar(x=x, y=fc[new], name=t("forecast.new"), marker_color="#fdba74", opacity=0.8),
        ]
    fig = go.Figure(traces)
    if what == "revenue":
        fig.update_yaxes(**_money_axis(fmt))
    fig.update_yaxes(rangemode="tozero")
    fig.update_xaxes(type="date", tickformat="%b %Y")
    title = t(("forecast.orders_chart" if what == "orders" else "forecast.revenue_chart")
              + (".W" if weekly else ""))
    return _layout(fig, title, fmt, barmode="stack")


def tracking(track: pd.DataFrame, calibration_end: pd.Timestamp, t: Translate, fmt: Formatter) -> go.Figure:
    """Cumulative repeat purchases, actual vs model, with the end of calibration marked."""
    x = track["period_end"].dt.strftime("%Y-%m-%d")
    fig = go.Figure([
        go.Scatter(x=x, y=track["actual"], mode="lines", name=t("col.actual"), line={"color": "#111827", "width": 3}),
        go.Scatter(x=x, y=track["predicted"], mode="lines", name=t("col.predicted"),
                   line={"color": ORANGE, "width": 3, "dash": "dash"}),
    ])
    cal = calibration_end.strftime("%Y-%m-%d")
    fig.add_shape(type="line", x0=cal, x1=cal, y0=0, y1=1, yref="paper", line={"color": GREY, "dash": "dot"})
    fig.add_annotation(x=cal, y=1, yref="paper", text=t("trust.cal_end"), showarrow=False,
                       xanchor="right", yanchor="top", font={"color": "#475569"})
    fig.update_xaxes(type="date", title=t("trust.x_time"))
    fig.update_yaxes(title=t("trust.y_cum"), rangemode="tozero")
    return _layout(fig, t("trust.tracking"), fmt)


def calibration(table: pd.DataFrame, t: Translate, fmt: Formatter) -> go.Figure:
    """Mean holdout purchases per customer by calibration frequency, actual vs predicted."""
    x = [str(i) for i in table.index]
    fig = go.Figure([
        go.Bar(x=x, y=table["actual"], name=t("col.actual"), marker_color="#334155"),
        go.Bar(x=x, y=table["predicted"], name=t("col.predicted"), marker_color=ORANGE),
    ])
    fig.update_xaxes(type="category", title=t("trust.x_freq"))
    fig.update_yaxes(title=t("trust.y_mean"))
    return _layout(fig, t("trust.calibration"), fmt, barmode="group")


def deciles(table: pd.DataFrame, t: Translate, fmt: Formatter) -> go.Figure:
    """Holdout value per decile of predicted value, actual vs predicted."""
    x = [str(i) for i in table.index]
    fig = go.Figure([
        go.Bar(x=x, y=table["actual"], name=t("col.actual"), marker_color="#334155"),
        go.Bar(x=x, y=table["predicted"], name=t("col.predicted"), marker_color=ORANGE),
    ])
    fig.update_xaxes(type="category", title=t("trust.x_decile"))
    fig.update_yaxes(title=t("trust.y_value"), **_money_axis(fmt))
    return _layout(fig, t("trust.deciles"), fmt, barmode="group")
