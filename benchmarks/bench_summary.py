"""Benchmark: per-customer RFM summary of 1M and 10M transactions, ltvkit vs lifetimes vs polars.

Run from the repository root with the project's Python::

    python benchmarks/bench_summary.py              # 1M and 10M rows
    python benchmarks/bench_summary.py --sizes 1M   # quicker
    python benchmarks/bench_summary.py --repeat 3   # median of 3 runs (a busy machine)

It generates synthetic logs with ``ltvkit.simulate_transactions`` (BG/NBD + Gamma-Gamma, CDNOW
parameters, rows in time order), caches them under ``benchmarks/_work/`` as Parquet and CSV,
then times each contender in its own subprocess (read + summary; imports excluded) and reports
seconds, rows/s and the peak resident memory of that subprocess (``ru_maxrss``, which includes
the interpreter and its imports):

* ltvkit: ``read_transactions`` + ``rfm_summary(freq="W")`` from Parquet and from CSV (the
  read alone is shown in its own column);
* lifetimes 0.11.3: ``pandas.read_parquet`` + ``summary_data_from_transaction_data(freq="D",
  freq_multiplier=7)`` (the same day-merging convention, in weeks), in its own virtual
  environment ``benchmarks/_work/venv-lifetimes`` created on first use (numpy<2, pandas<2);
* polars: a plain hand-written lazy query from Parquet;
* duckdb: a plain hand-written two-level GROUP BY (customer-day, then customer) on the Parquet
  file, 2 threads: what ltvkit's summary did before it moved to a numpy sort (see
  ``ltvkit.data.summary``).

All contenders compute the same numbers; the script checks that their totals agree. Wall
times depend on how busy the machine is: check ``uptime`` first, and use ``--repeat``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
WORK = HERE / "_work"
LIFETIMES_VENV = WORK / "venv-lifetimes"
LIFETIMES_PACKAGES = ["lifetimes==0.11.3", "numpy<2", "pandas<2", "scipy<1.12", "pyarrow<20"]
SIZES = {"1M": 1_000_000, "10M": 10_000_000}
OBSERVATION_END = "2025-06-29"  # last day of the 78-week synthetic log starting 2024-01-01
CONTENDERS = ["ltvkit-parquet", "ltvkit-csv", "lifetimes", "polars", "duckdb"]


# ------------------------------------------------------------------------------ data


def make_data(label: str) -> tuple[Path, Path]:
    """Parquet and CSV logs of SIZES[label] rows (cached)."""
    parquet, csv = WORK / f"tx_{label}.parquet", WORK / f"tx_{label}.csv"
    if parquet.exists() and csv.exists():
        return parquet, csv
    import duckdb
    import pyarrow as pa
    import pyarrow.parquet as pq

    from ltvkit.data.synthetic import simulate_transactions

    rows = SIZES[label]
    print(f"generating {label} transactions ...", flush=True)
    log = simulate_transactions(int(rows / 2.7) + 1000, seed=2024)
    log = log.iloc[:rows].sort_values("ts", kind="stable").reset_index(drop=True)
    table = pa.Table.from_pandas(log, preserve_index=False)
    WORK.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, parquet)
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    con.register("log", table)
    con.execute(
        f"COPY (SELECT customer_id, strftime(ts, '%Y-%m-%d %H:%M:%S') AS ts, amount FROM log) "
        f"TO '{csv}' (HEADER, DELIMITER ',')"
    )
    return parquet, csv


# ------------------------------------------------------------------------------ workers
# Each returns ((wall, cpu) seconds, checksums) and runs in a fresh subprocess.


def work_ltvkit(path: str) -> tuple[tuple[float, float], dict[str, float]]:
    from ltvkit.data.summary import rfm_summary
    from ltvkit.data.transactions import read_transactions

    start = _clock()
    tx = read_transactions(path, customer="customer_id", date="ts", amount="amount")
    READ_SECONDS.append(_clock(start)[0])
    s = rfm_summary(tx, freq="W", observation_end=OBSERVATION_END)
    seconds = _clock(start)
    return seconds, _checksums(s)


READ_SECONDS: list[float] = []  # wall seconds of ltvkit's read, reported on its own


def work_lifetimes(path: str) -> tuple[tuple[float, float], dict[str, float]]:
    import pandas as pd
    from lifetimes.utils import summary_data_from_transaction_data

    start = _clock()
    df = pd.read_parquet(path)
    df["ts"] = df["ts"].dt.tz_localize(None)
    s = summary_data_from_transaction_data(
        df, "customer_id", "ts", monetary_value_col="amount", freq="D", freq_multiplier=7,
        observation_period_end=OBSERVATION_END,
    )
    seconds = _clock(start)
    return seconds, _checksums(s)


def work_polars(path: str) -> tuple[tuple[float, float], dict[str, float]]:
    import polars as pl

    start = _clock()
    end_day = (pl.Series([OBSERVATION_END]).str.to_date().cast(pl.Int32))[0]
    days = (
        pl.scan_parquet(path)
        .with_columns(day=pl.col("ts").dt.date().cast(pl.Int32))
        .filter(pl.col("day") <= end_day)
        .group_by("customer_id", "day")
        .agg(pl.col("amount").sum(), pl.len().alias("n"))
    )
    s = (
        days.group_by("customer_id")
        .agg(
            frequency=pl.len() - 1,
            first=pl.col("day").min(),
            last=pl.col("day").max(),
            total=pl.col("amount").sum(),
            first_amount=pl.col("amount").sort_by("day").first(),
            n_orders=pl.col("n").sum(),
        )
        .with_columns(
            recency=(pl.col("last") - pl.col("first")) / 7.0,
            T=(end_day - pl.col("first")) / 7.0,
            monetary_value=pl.when(pl.col("frequency") > 0)
            .then((pl.col("total") - pl.col("first_amount")) / pl.col("frequency"))
            .otherwise(0.0),
        )
        .sort("customer_id")
        .collect()
    )
    seconds = _clock(start)
    return seconds, _checksums(s.to_pandas())


def work_duckdb(path: str) -> tuple[tuple[float, float], dict[str, float]]:
    import duckdb

    end_day = (dt.date.fromisoformat(OBSERVATION_END) - dt.date(1970, 1, 1)).days
    start = _clock()
    con = duckdb.connect(config={"threads": 2, "preserve_insertion_order": False})
    s = con.sql(
        f"""
        WITH days AS (
            SELECT customer_id, (epoch_us(ts) // 86400000000)::INTEGER AS day,
                   sum(amount) AS amount
            FROM read_parquet(?) GROUP BY ALL HAVING day <= {end_day})
        SELECT customer_id, count(*) - 1 AS frequency,
               (max(day) - min(day)) / 7.0 AS recency, ({end_day} - min(day)) / 7.0 AS "T",
               CASE WHEN count(*) > 1
                    THEN (sum(amount) - arg_min(amount, day)) / (count(*) - 1)
                    ELSE 0.0 END AS monetary_value
        FROM days GROUP BY customer_id ORDER BY customer_id""",
        params=[path],
    ).df()
    seconds = _clock(start)
    return seconds, _checksums(s)


def _clock(start: tuple[float, float] | None = None):  # type: ignore[no-untyped-def]
    """(wall, cpu) now, or the (wall, cpu) seconds elapsed since ``start``."""
    now = (time.perf_counter(), time.process_time())
    return now if start is None else (now[0] - start[0], now[1] - start[1])


def _checksums(s) -> dict[str, float]:  # type: ignore[no-untyped-def]
    return {
        "customers": float(len(s)),
        "frequency": float(s["frequency"].sum()),
        "recency": round(float(s["recency"].sum()), 3),
        "T": round(float(s["T"].sum()), 3),
        "monetary_value": round(float(s["monetary_value"].sum()), 2),
    }


WORKERS = {"ltvkit": work_ltvkit, "lifetimes": work_lifetimes, "polars": work_polars,
           "duckdb": work_duckdb}


def worker_main(name: str, path: str) -> None:
    (seconds, cpu), sums = WORKERS[name](path)
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(json.dumps({"seconds": seconds, "cpu": cpu, "peak_mb": peak_kib / 1024, "checksums": sums,
                      "read_seconds": READ_SECONDS[0] if READ_SECONDS else None}))


# ------------------------------------------------------------------------------ driver


def lifetimes_python() -> Path:
    python = LIFETIMES_VENV / "bin" / "python"
    if not python.exists():
        print("creating the lifetimes venv (once) ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(LIFETIMES_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *LIFETIMES_PACKAGES], check=True)
    return python


def run_one(contender: str, parquet: Path, csv: Path) -> dict[str, object]:
    python, name, path = {
        "ltvkit-parquet": (Path(sys.executable), "ltvkit", parquet),
        "ltvkit-csv": (Path(sys.executable), "ltvkit", csv),
        "lifetimes": (lifetimes_python(), "lifetimes", parquet),
        "polars": (Path(sys.executable), "polars", parquet),
        "duckdb": (Path(sys.executable), "duckdb", parquet),
    }[contender]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run(
        [str(python), __file__, "--worker", name, str(path)],
        capture_output=True, text=True, env=env, check=False,
    )
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr else "failed"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1M,10M", help="comma-separated: 1M, 10M")
    parser.add_argument("--skip", default="", help="contenders to skip, e.g. lifetimes")
    parser.add_argument("--repeat", type=int, default=1,
                        help="runs per contender; the run with the median wall time is shown")
    parser.add_argument("--worker", nargs=2, metavar=("NAME", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker_main(*args.worker)
        return
    contenders = [c for c in CONTENDERS if c not in args.skip.split(",")]
    results: dict[tuple[str, str], dict[str, object]] = {}
    for label in args.sizes.split(","):
        parquet, csv = make_data(label)
        for contender in contenders:
            print(f"  {label} {contender} ...", flush=True)
            runs = [run_one(contender, parquet, csv) for _ in range(max(args.repeat, 1))]
            runs.sort(key=lambda r: float(r.get("seconds", "inf")))  # type: ignore[arg-type]
            results[label, contender] = runs[len(runs) // 2]
    print_table(results)


def print_table(results: dict[tuple[str, str], dict[str, object]]) -> None:
    head = (f"{'rows':>5}  {'contender':<15} {'seconds':>8} {'cpu s':>7} {'read s':>7} "
            f"{'rows/s':>12} {'peak MB':>8}  {'vs lifetimes':>12}")
    print("\n" + head + "\n" + "-" * len(head))
    for (label, contender), r in results.items():
        if "error" in r:
            print(f"{label:>5}  {contender:<15} error: {r['error']}")
            continue
        base = results.get((label, "lifetimes"), {})
        speedup = (
            f"{float(base['seconds']) / float(r['seconds']):.1f}x" if "seconds" in base else "-"
        )
        rate = SIZES[label] / float(r["seconds"])
        read = f"{float(r['read_seconds']):7.2f}" if r.get("read_seconds") is not None else "      -"
        print(f"{label:>5}  {contender:<15} {float(r['seconds']):8.2f} {float(r['cpu']):7.2f} {read} "
              f"{rate:12,.0f} {float(r['peak_mb']):8.0f}  {speedup:>12}")
    for label in dict.fromkeys(k[0] for k in results):
        csv, parquet = results.get((label, "ltvkit-csv"), {}), results.get((label, "ltvkit-parquet"), {})
        if "seconds" in csv and "seconds" in parquet:
            ratio = float(csv["seconds"]) / float(parquet["seconds"])
            print(f"{label:>5}  ltvkit CSV / Parquet wall time: {ratio:.1f}x")
    print("\nchecksums (customers, sum frequency, sum recency, sum T, sum monetary_value):")
    for label in dict.fromkeys(k[0] for k in results):
        sums = {c: r.get("checksums") for (lab, c), r in results.items() if lab == label}
        distinct = {json.dumps(v, sort_keys=True) for v in sums.values() if v}
        verdict = "all agree" if len(distinct) == 1 else "DIFFER"
        print(f"  {label}: {verdict}: " + "; ".join(f"{c}={v}" for c, v in sums.items()))


if __name__ == "__main__":
    main()
