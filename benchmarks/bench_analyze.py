"""Benchmark of ``ltv analyze`` end to end on synthetic logs: stage timings and peak memory.

Targets (issue #6, 2 cores): 1M transactions within 20 s; 10M transactions (≈2.6M customers)
within 3 minutes and 6 GB. Each size runs in its own process (so peak memory is its own),
on a Parquet log simulated once and cached under ``benchmarks/_work/``.

Usage::

    python benchmarks/bench_analyze.py            # 1M
    python benchmarks/bench_analyze.py 1M 10M     # both
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WORK = Path(__file__).parent / "_work"
TARGETS = {1_000_000: (20.0, 6.0), 10_000_000: (180.0, 6.0)}  # seconds, GB
CHANNELS = {"search": 0.4, "social": 0.3, "email": 0.2, "referral": 0.1}


def _size(text: str) -> int:
    text = text.upper()
    factor = {"K": 1_000, "M": 1_000_000}.get(text[-1], 1)
    return int(float(text.rstrip("KM")) * factor)


def make_log(n_transactions: int) -> Path:
    """Simulated log of about ``n_transactions`` rows (BG/NBD at the CDNOW estimates)."""
    import ltvkit

    path = WORK / f"log_{n_transactions}.parquet"
    if path.exists():
        return path
    WORK.mkdir(parents=True, exist_ok=True)
    probe = ltvkit.simulate_transactions(20_000, channels=CHANNELS, seed=1)
    per_customer = len(probe) / 20_000
    log = ltvkit.simulate_transactions(int(n_transactions / per_customer), channels=CHANNELS, seed=0)
    log["channel"] = log["channel"].astype(str)
    log.to_parquet(path, index=False)
    return path


def run_one(path: str) -> dict[str, object]:
    """Child process: analyze the log, write the outputs, report timings and peak memory."""
    import ltvkit

    out = Path(tempfile.mkdtemp(prefix="ltv-bench-"))
    spend = out / "spend.csv"
    spend.write_text("channel,spend\n" + "\n".join(f"{c},{int(s * 1e6)}" for c, s in CHANNELS.items()))
    start = time.perf_counter()
    result = ltvkit.analyze(path, customer="customer_id", date="ts", amount="amount", spend=spend)
    analyzed = time.perf_counter()
    result.write(out / "out")
    done = time.perf_counter()
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    return {"customers": len(result.customers), "transactions": result.settings["n_transactions"],
            "model": result.settings["model"],
            "stages": {k: round(v, 2) for k, v in result.timings.items()},
            "write": round(done - analyzed, 2), "total": round(done - start, 2),
            "peak_gb": round(peak_gb, 2)}


def main(sizes: list[str]) -> None:
    rows = []
    for text in sizes:
        n = _size(text)
        path = make_log(n)
        child = subprocess.run([sys.executable, __file__, "--child", str(path)], capture_output=True,
                               text=True, check=True)
        rows.append((n, json.loads(child.stdout.strip().splitlines()[-1])))
    stages = list(rows[0][1]["stages"]) + ["write"]
    print(f"{'transactions':>12} {'customers':>10} " + " ".join(f"{s:>10}" for s in stages)
          + f" {'total s':>8} {'target s':>8} {'peak GB':>8} {'target GB':>9}")
    for n, r in rows:
        secs, gb = TARGETS.get(n, (float("nan"), float("nan")))
        cells = [r["stages"].get(s, r.get(s)) for s in stages]
        print(f"{r['transactions']:>12,} {r['customers']:>10,} " + " ".join(f"{c:>10}" for c in cells)
              + f" {r['total']:>8} {secs:>8} {r['peak_gb']:>8} {gb:>9}  model={r['model']}")


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        print(json.dumps(run_one(sys.argv[2])))
    else:
        main(sys.argv[1:] or ["1M"])
