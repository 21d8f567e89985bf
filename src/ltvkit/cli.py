"""The ``ltv`` command line: thin front end over the library (typer + rich).

Exit codes: 0 success, 2 bad input (``InputError``), 1 any other failure. Errors go to
stderr without a traceback unless ``--debug`` is given.
"""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from ltvkit.errors import InputError, LtvError

app = typer.Typer(
    name="ltv",
    help="Customer lifetime value from a transaction log or from a few business figures.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)
_state = {"debug": False}


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors."),
) -> None:
    _state["debug"] = debug


@app.command()
def calc(
    churn: float | None = typer.Option(None, help="Share of customers lost per month, in (0, 1]."),
    lifespan: float | None = typer.Option(None, help="Mean lifespan, months (not with --churn)."),
    arpu: float | None = typer.Option(
        None, help="Average invoice per month, or per purchase with --purchases-per-month."),
    purchases_per_month: float | None = typer.Option(None, help="Purchases per customer-month."),
    margin: float = typer.Option(1.0, help="Gross margin, in (0, 1]; 1 = revenue CLV."),
    discount_rate: float = typer.Option(0.0, help="Discount rate per month, e.g. 0.01."),
    new_customers: float | None = typer.Option(None, help="New customers per month."),
    spend: float | None = typer.Option(None, help="Marketing + sales spend per month."),
    target_ratio: float = typer.Option(3.0, help="Target CLV:CAC ratio."),
    acquisition_multiplier: float = typer.Option(
        1.0, help="What-if for the 24-month projection: new customers (and spend) times this."),
    source: str | None = typer.Option(
        None, "--from", help="Transaction log to estimate churn, invoice, purchases, new customers."
    ),
    customer: str | None = typer.Option(
        None, help="With --from: customer column (name or 0-based)."),
    date: str | None = typer.Option(None, help="With --from: date column (name or 0-based)."),
    amount: str | None = typer.Option(None, help="With --from: amount column (name or 0-based)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Top-down CLV, CAC, payback and levers from a few business figures (or a log)."""
    import json

    from ltvkit.calculator import calculate, calculator_inputs

    given = {"churn": churn, "arpu": arpu, "purchases_per_month": purchases_per_month,
             "new_customers": new_customers}
    estimated = None
    if source is not None:
        if amount is None:
            raise InputError("--from needs --amount COLUMN (the order value column of the log)")
        from ltvkit.data.transactions import read_transactions

        cols = [_column_ref(c) for c in (customer, date, amount)]
        estimated = calculator_inputs(read_transactions(source, *cols))
        if estimated.new_customers == 0 and new_customers is None:
            raise InputError(
                f"{source}: no new customers in {estimated.first_month}..{estimated.last_month}; "
                "pass --new-customers N")
        defaults = estimated.calculator_kwargs()
        if lifespan is not None:
            defaults.pop("churn")
        given = {k: defaults.get(k) if v is None else v for k, v in given.items()}
    if spend is None:
        raise InputError("--spend is required: marketing + sales spend per month, e.g. 15000")
    for flag, key in (("--arpu", "arpu"), ("--new-customers", "new_customers")):
        if given[key] is None:
            raise InputError(f"{flag} is required, or --from FILE to estimate it from a log")
    if given["purchases_per_month"] is None:
        given["purchases_per_month"] = 1.0
    result = calculate(**given, lifespan=lifespan, margin=margin, discount_rate=discount_rate,
                       spend=spend, target_ratio=target_ratio,
                       acquisition_multiplier=acquisition_multiplier)
    if as_json:
        out = result.to_dict()
        if estimated is not None:
            out["estimated_inputs"] = estimated.to_dict()
        typer.echo(json.dumps(out))
        return
    _print_calc(result, estimated)


def _print_calc(result: object, estimated: object | None) -> None:
    from rich.table import Table

    r = result
    if estimated is not None:
        console.print(f"Estimated from the log ({estimated.first_month}..{estimated.last_month}): "
                      f"churn {estimated.churn:.1%}/month, average invoice "
                      f"{estimated.average_invoice:,.2f} (median {estimated.median_invoice:,.2f}), "
                      f"{estimated.purchases_per_month:.2f} purchases/month, "
                      f"{estimated.new_customers:,.0f} new customers/month")
    payback = f"{r.payback_months:.0f}" if r.payback_months < float("inf") else "never (CAC > CLV)"
    table = Table(title="Customer value (per customer, monthly figures)")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for name, value in [
        ("churn per month", f"{r.churn:.2%}"),
        ("revenue per customer-month", f"{r.revenue_per_month:,.2f}"),
        ("gross margin", f"{r.margin:.0%}"), ("CLV (undiscounted)", f"{r.clv:,.2f}"),
        (f"CLV discounted at {r.discount_rate:.2%}/month", f"{r.clv_discounted:,.2f}"),
        ("CAC", f"{r.cac:,.2f}"), ("CLV:CAC", f"{r.clv_to_cac:.2f}"), ("payback (months)", payback),
        (f"max CAC for {r.target_ratio:g}:1", f"{r.max_cac:,.2f}"),
    ]:
        table.add_row(name, value)
    console.print(table)
    levers = Table(title="Levers (change in discounted CLV, ranked)")
    for col in ("lever", "new CLV", "change"):
        levers.add_column(col, justify="left" if col == "lever" else "right")
    for lv in r.levers:
        levers.add_row(lv.label, f"{lv.clv:,.2f}", f"{lv.change:+,.2f} ({lv.change_pct:+.1%})")
    console.print(levers)
    proj = Table(title="Projection (new customers join and pay in their first month)")
    for col in ("month", "active customers", "revenue", "margin", "cumulative net margin"):
        proj.add_column(col, justify="right")
    rows = r.projection[r.projection["month"].isin([1, 3, 6, 12, 18, 24])]
    for row in rows.itertuples():
        proj.add_row(str(row.month), f"{row.active_customers:,.0f}", f"{row.revenue:,.0f}",
                     f"{row.margin:,.0f}", f"{row.cumulative_net_margin:,.0f}")
    console.print(proj)


def _column_ref(value: str | None) -> str | int | None:
    """A column given on the command line: a name, or a 0-based position."""
    return int(value) if value is not None and value.isdigit() else value


@app.command()
def summary(
    file: str = typer.Argument(..., help="Transaction log: CSV/TSV/text, Parquet or Excel."),
    customer: str | None = typer.Option(None, help="Customer column (name or 0-based position)."),
    date: str | None = typer.Option(None, help="Date column (name or 0-based position)."),
    amount: str | None = typer.Option(None, help="Order value column (name or 0-based position)."),
    freq: str = typer.Option("W", help="Time unit of recency and T: D, W or M (365.25/12 days)."),
    observation_end: str | None = typer.Option(
        None, help="Last day observed (YYYY-MM-DD); default: the last purchase date."),
    sep: str | None = typer.Option(None, help="Delimiter of a text file (detected by default)."),
    date_format: str | None = typer.Option(None, help="strptime format, e.g. %d/%m/%Y."),
    skip_bad_rows: bool = typer.Option(
        False, help="Exclude unusable rows (counted and reported) instead of stopping."),
    out: str | None = typer.Option(None, help="Write the per-customer summary to .parquet or .csv."),
    force: bool = typer.Option(False, help="Overwrite --out if it exists."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Per-customer RFM summary (frequency, recency, T, monetary value) of a transaction log."""
    import json
    import time
    import warnings
    from pathlib import Path

    from ltvkit.data.summary import rfm_summary, summary_statistics
    from ltvkit.data.transactions import read_transactions

    target = Path(out) if out is not None else None
    if target is not None:
        if target.suffix.lower() not in (".parquet", ".csv"):
            raise InputError(f"--out {out}: the file name must end with .parquet or .csv")
        if target.exists() and not force:
            raise InputError(f"{target} already exists; pass --force to overwrite it")
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # exclusions are printed as notes below
        with _stage(f"Reading {file}"):
            tx = read_transactions(
                file, _column_ref(customer), _column_ref(date), _column_ref(amount), sep=sep,
                date_format=date_format, on_bad_rows="skip" if skip_bad_rows else "raise",
                observation_end=observation_end,  # the reader counts and reports later rows
            )
        with _stage(f"Summarising {len(tx):,} rows"):
            table = rfm_summary(tx, freq=freq)
    if target is not None:
        with _stage(f"Writing {target}"):
            _write_frame(table.reset_index(), target, force)
    notes = _exclusion_notes(tx, table)
    if as_json:
        payload = {"statistics": summary_statistics(table), "notes": notes,
                   "out": None if target is None else str(target),
                   "seconds": round(time.perf_counter() - started, 3)}
        typer.echo(json.dumps(payload, default=str))
        return
    _print_summary_stats(table, notes, title=f"Summary of {Path(file).name}")
    if target is not None:
        console.print(f"Wrote {len(table):,} customers to {target}")


@app.command("analyze")
def analyze_command(
    file: str = typer.Argument(..., help="Transaction log: CSV/TSV/text, Parquet or Excel."),
    customer: str | None = typer.Option(None, help="Customer column (name or 0-based position)."),
    date: str | None = typer.Option(None, help="Date column (name or 0-based position)."),
    amount: str | None = typer.Option(None, help="Order value column (name or 0-based position)."),
    out: str = typer.Option("ltv-report", help="Folder for report.html, customers.parquet, audiences."),
    holdout: str | None = typer.Option(
        None, help="Backtest holdout: a duration (39W, 6M, 90D) or the last calibration date "
        "(YYYY-MM-DD). Default: the last quarter of the log."),
    model: str | None = typer.Option(
        None, help="Purchase model: bgnbd, paretonbd or mbgnbd (default: best in the backtest)."),
    horizon: int = typer.Option(12, help="CLV and forecast horizon in months."),
    discount_rate: float = typer.Option(0.01, help="Discount rate per month."),
    margin: float = typer.Option(1.0, help="Share of revenue that is profit (1 = revenue CLV)."),
    new_customers_per_month: float | None = typer.Option(
        None, help="Acquisition assumption for the forecast (default: the last 3 months' rate)."),
    channel: str | None = typer.Option(
        None, help="Acquisition channel column (default: a column named 'channel', if any)."),
    spend_file: str | None = typer.Option(
        None, help="CSV of acquisition spend: channel,spend[,month] (needs a channel column)."),
    currency: str = typer.Option("USD", help="Currency code for the report, e.g. EUR."),
    lang: str = typer.Option("en", help="Report language: en or fr."),
    freq: str = typer.Option("W", help="Model time unit: D, W or M."),
    forecast_period: str = typer.Option("M", help="Forecast per month (M) or per week (W)."),
    observation_end: str | None = typer.Option(
        None, help="Last day observed (YYYY-MM-DD); default: the last purchase date."),
    sep: str | None = typer.Option(None, help="Delimiter of a text file (detected by default)."),
    date_format: str | None = typer.Option(None, help="strptime format, e.g. %d/%m/%Y."),
    skip_bad_rows: bool = typer.Option(
        False, help="Skip unusable rows (counted and reported) instead of stopping at the first."),
    csv: bool = typer.Option(False, "--csv", help="Also write customers.csv."),
    force: bool = typer.Option(False, help="Overwrite existing files in --out."),
    as_json: bool = typer.Option(False, "--json", help="Print the headline results as one JSON object."),
) -> None:
    """Full analysis of a transaction log: backtest, CLV per customer, segments, forecasts, report."""
    from pathlib import Path

    options = {
        "holdout": holdout, "model": model, "horizon": horizon, "discount_rate": discount_rate,
        "margin": margin, "new_customers_per_month": new_customers_per_month, "spend": spend_file,
        "channel": channel,
        "currency": currency, "freq": freq, "forecast_period": forecast_period,
        "observation_end": observation_end, "sep": sep,
        "date_format": date_format, "on_bad_rows": "skip" if skip_bad_rows else "raise",
    }
    _analysis_run(file, (_column_ref(customer), _column_ref(date), _column_ref(amount)), options,
                  out=Path(out), force=force, csv=csv, lang=lang, as_json=as_json,
                  title=f"CLV analysis of {Path(file).name}")


@app.command("demo")
def demo(
    out: str = typer.Option("ltv-demo", help="Folder for the demo's report and tables."),
    lang: str = typer.Option("en", help="Report language: en or fr."),
    currency: str = typer.Option("USD", help="Currency code for the report."),
    force: bool = typer.Option(False, help="Overwrite existing files in --out."),
    as_json: bool = typer.Option(False, "--json", help="Print the headline results as one JSON object."),
) -> None:
    """Run the full analysis on the bundled CDNOW sample (Fader, Hardie & Lee 2005) into ./ltv-demo/."""
    from pathlib import Path

    from ltvkit.data.datasets import load_cdnow
    from ltvkit.data.summary import rfm_summary

    tx = load_cdnow()
    if not as_json:
        table = rfm_summary(tx, freq="W")
        _print_summary_stats(table, _exclusion_notes(tx, table),
                             title="CDNOW sample (2,357 customers, 1997-01-01 to 1998-06-30)")
    # the natural split of the paper: calibration to 1997-09-30, 39-week holdout
    _analysis_run(tx, (None, None, None), {"holdout": "1997-09-30", "currency": currency},
                  out=Path(out), force=force, csv=False, lang=lang, as_json=as_json,
                  title="CLV analysis of the CDNOW sample")


_STAGE_TEXT = {
    "read": "Reading and checking the log",
    "backtest": "Backtesting the models on a holdout",
    "fit": "Fitting the chosen model on the whole log",
    "predict": "Predicting each customer's value",
    "segments": "Segmenting customers",
    "cohorts": "Valuing cohorts and channels",
    "forecast": "Forecasting orders and revenue",
    "calculator": "Filling the top-down calculator",
}


def _analysis_run(source: object, columns: tuple[object, object, object], options: dict[str, object],
                  *, out: object, force: bool, csv: bool, lang: str, as_json: bool, title: str) -> None:
    """Shared body of ``ltv analyze`` and ``ltv demo``: progress, outputs, terminal summary."""
    import json
    import warnings
    from pathlib import Path

    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from ltvkit.pipeline import OUTPUT_FILES, STAGES, analyze
    from ltvkit.report.render import load_locale

    load_locale(lang)  # unknown languages fail before any work
    out_dir = Path(str(out))
    existing = [str(out_dir / n) for n in OUTPUT_FILES if (out_dir / n).exists()]
    if existing and not force:
        raise InputError(f"{existing[0]} already exists; pass --force to overwrite, or choose "
                         "another --out folder")
    progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                        TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(),
                        console=err_console, transient=as_json)
    with progress, warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # exclusions are reported as notes
        task = progress.add_task("Starting", total=len(STAGES) + 1)

        def step(stage: str) -> None:
            progress.update(task, description=_STAGE_TEXT.get(stage, stage),
                            completed=STAGES.index(stage))

        result = analyze(source, *columns, progress=step, **options)  # type: ignore[arg-type]
        progress.update(task, description=f"Writing {out_dir}/", completed=len(STAGES))
        files = result.write(out_dir, force=force, csv=csv, lang=lang)
        progress.update(task, description="Done", completed=len(STAGES) + 1)
    headline = result.headline()
    if as_json:
        payload = {**headline, "out": str(out_dir), "files": [str(p) for p in files],
                   "notes": [*result.read_messages, *result.notes],
                   "timings": {k: round(v, 3) for k, v in result.timings.items()}}
        typer.echo(json.dumps(payload, default=str))
        return
    _print_headline(result, headline, title)
    console.print(f"Wrote {len(files)} files to {out_dir}/ — open [bold]{out_dir / 'report.html'}[/]")


def _print_headline(result: object, h: dict[str, object], title: str) -> None:
    from rich.table import Table

    from ltvkit.report.format import Formatter
    from ltvkit.report.render import Translator, trust_sentence

    fmt = Formatter("en", str(h["currency"]))
    grid = Table(title=title)
    grid.add_column("measure")
    grid.add_column("value", justify="right")
    rows = [
        ("customers", fmt.number(h["customers"])),
        ("active customers (P(alive) ≥ 50%)",
         f"{fmt.number(h['active_customers'])} ({fmt.percent(h['active_share'])})"),
        (f"total predicted value, {h['horizon_months']} months",
         (f"{fmt.money_short(h['total_clv'])} ({fmt.money_short(h['total_clv_low'])} – "
          f"{fmt.money_short(h['total_clv_high'])})")),
        ("average value per customer", fmt.money(h["mean_clv"])),
        (f"expected orders, {h['horizon_months']} months", fmt.number(h["expected_orders"])),
        ("purchase model", str(result.settings["model_label"])),  # type: ignore[attr-defined]
    ]
    if h.get("clv_cac") is not None:
        rows.append(("value : acquisition cost", f"{fmt.number(h['clv_cac'], 1)}×"))
    for name, value in rows:
        grid.add_row(name, value)
    console.print(grid)
    sentence = trust_sentence(result, Translator("en"), fmt)
    if sentence:
        console.print(sentence, highlight=False)
    for note in [*result.read_messages, *result.notes]:  # type: ignore[attr-defined]
        console.print(f"[yellow]note:[/] {note}", highlight=False)


@app.command()
def segments(
    file: str = typer.Argument(..., help="Transaction log: CSV/TSV/text, Parquet or Excel."),
    customer: str | None = typer.Option(None, help="Customer column (name or 0-based position)."),
    date: str | None = typer.Option(None, help="Date column (name or 0-based position)."),
    amount: str | None = typer.Option(None, help="Order value column (name or 0-based position)."),
    out: str = typer.Option(..., help="Folder for the audience CSVs (one per segment and tier)."),
    force: bool = typer.Option(False, help="Overwrite audience files that already exist."),
    horizon: int = typer.Option(12, help="CLV horizon in months."),
    sep: str | None = typer.Option(None, help="Delimiter of a text file (detected by default)."),
    date_format: str | None = typer.Option(None, help="strptime format, e.g. %d/%m/%Y."),
    skip_bad_rows: bool = typer.Option(
        False, help="Exclude unusable rows (counted and reported) instead of stopping."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """RFM segments and value tiers with CLV (BG/NBD + Gamma-Gamma): audience CSVs per segment."""
    import json
    import warnings
    from pathlib import Path

    from rich.table import Table

    from ltvkit.pipeline import analyze
    from ltvkit.segments import write_audiences

    existing = sorted(Path(out).glob("segment_*.csv")) + sorted(Path(out).glob("tier_*.csv"))
    if existing and not force:  # fail before the analysis, not after it
        raise InputError(f"{existing[0]} and other audience files already exist in {out}; pass "
                         "--force to overwrite them or choose another --out folder")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # exclusions are printed as notes below
        with _stage(f"Analysing {file}"):
            result = analyze(
                file, _column_ref(customer), _column_ref(date), _column_ref(amount),
                model="bgnbd", run_backtest=False, horizon=horizon, sep=sep,
                date_format=date_format, on_bad_rows="skip" if skip_bad_rows else "raise",
            )
    paths = write_audiences(result.customers, out, force=force)
    table = result.segments
    if as_json:
        rows = table.reset_index().to_dict("records")
        typer.echo(json.dumps({"segments": rows, "files": [str(p) for p in paths],
                               "notes": result.read_messages}, default=str))
        return
    grid = Table(title=f"Segments of {len(result.customers):,} customers ({horizon}-month CLV)")
    for name, justify in (("segment", "left"), ("customers", "right"),
                          ("share of value", "right"), ("action", "left")):
        grid.add_column(name, justify=justify)  # type: ignore[arg-type]
    for row in table.itertuples():
        grid.add_row(str(row.segment), f"{row.customers:,}", f"{row.value_share:.1%}",
                     str(row.action))
    console.print(grid)
    for note in result.read_messages:
        console.print(f"[yellow]note:[/] {note}", highlight=False)
    console.print(f"Wrote {len(paths)} audience files to {out}")


def _stage(message: str):  # type: ignore[no-untyped-def]
    """Spinner on stderr while a stage runs (shown on a terminal only)."""
    return err_console.status(f"{message}…", spinner="dots")


def _write_frame(frame: object, target: object, force: bool) -> None:
    from ltvkit._io import atomic_path

    with atomic_path(target, force=force) as tmp:  # type: ignore[arg-type]
        if str(target).lower().endswith(".csv"):
            frame.to_csv(tmp, index=False)  # type: ignore[attr-defined]
        else:
            frame.to_parquet(tmp, index=False)  # type: ignore[attr-defined]


def _exclusion_notes(tx: object, table: object) -> list[str]:
    """What the reader reported (bad, duplicate, excluded rows) and what the summary left out."""
    notes = list(tx.report.messages()[1:])  # type: ignore[attr-defined]
    after = table.attrs.get("rows_after_end", 0)  # type: ignore[attr-defined]
    if after:
        notes.append(f"{after:,} rows after the observation end "
                     f"{table.attrs['observation_end']} were left out.")  # type: ignore[attr-defined]
    return notes


def _print_summary_stats(table: object, notes: list[str], title: str) -> None:
    """The statistics table of ``ltv summary`` and ``ltv demo``, then the exclusion notes."""
    from rich.table import Table

    from ltvkit.data.summary import summary_statistics

    s = summary_statistics(table)  # type: ignore[arg-type]
    unit = {"D": "days", "W": "weeks", "M": "months"}.get(str(s["freq"]), s["freq"])
    grid = Table(title=title)
    grid.add_column("measure")
    grid.add_column("value", justify="right")
    rows = [
        ("customers", f"{s['customers']:,}"),
        ("orders", f"{s['orders']:,}"),
        ("repeat customers", f"{s['repeat_customers']:,} ({s['repeat_share']:.1%})"),
        ("first / last purchase", f"{s['first_date']} → {s['last_date']}"),
        ("observation end", str(s["observation_end"])),
        ("mean frequency (repeat purchase days)", f"{s['mean_frequency']:.2f}"),
        ("time unit of recency and T", str(unit)),
    ]
    if "revenue" in s:
        rows += [("revenue", f"{s['revenue']:,.2f}"),
                 ("mean monetary value (repeat buyers)",
                  "-" if s["mean_monetary_value"] is None else f"{s['mean_monetary_value']:,.2f}")]
    for name, value in rows:
        grid.add_row(name, value)
    console.print(grid)
    for note in notes:
        console.print(f"[yellow]note:[/] {note}", highlight=False)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``ltv`` console script."""
    args = sys.argv[1:] if argv is None else argv
    _state["debug"] = "--debug" in args
    try:
        app(args=args, prog_name="ltv")  # standalone mode: usage errors exit 2 by themselves
    except InputError as exc:
        _fail(exc, 2)
    except (LtvError, OSError, RuntimeError, ValueError) as exc:
        _fail(exc, 1)


def _fail(exc: Exception, code: int) -> None:
    if _state["debug"]:
        raise exc
    err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
    sys.exit(code)


if __name__ == "__main__":  # pragma: no cover
    main()
