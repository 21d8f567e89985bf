"""Benchmark: model fitting and scoring at scale, ltvkit vs lifetimes 0.11.3 vs PyMC-Marketing (MAP).

Run from the repository root with the project's Python::

    python benchmarks/bench_models.py                       # every task at 1M customers
    python benchmarks/bench_models.py --sizes 100k --models bgnbd,gammagamma
    python benchmarks/bench_models.py --skip pymc           # without the (slow to compile) PyMC runs

Data: ``ltvkit.simulate_transactions`` (BG/NBD + Gamma-Gamma, CDNOW parameters, 78 weeks, first
purchases over 12 weeks) summarised by ``ltvkit.rfm_summary(freq="W")`` (recency and T count
whole days, as in real data), cached under ``benchmarks/_work/``. Tasks:

* ``bgnbd``: fit BG/NBD on N customers;
* ``gammagamma``: fit Gamma-Gamma on 0.8 N repeat buyers;
* ``paretonbd``: fit Pareto/NBD on N customers (lifetimes takes minutes from 100k: use 10k);
* ``mbgnbd``: fit MBG/NBD on N customers (the same BG/NBD data: a speed comparison);
* ``score``: for N customers, with the true parameters: expected purchases over 52 weeks,
  P(alive) and a 12-month CLV (1% a month);
* ``nextpurchase``: Pareto/NBD ``next_purchase_time`` (q10, q50, q90) for N customers, as observed
  and given alive (CDNOW estimates; ltvkit only: neither library has it).

Each contender runs each task in a fresh subprocess (imports and data loading not timed): ltvkit
here, lifetimes in ``benchmarks/_work/venv-lifetimes`` (``lifetimes==0.11.3 numpy<2 pandas<2
scipy<1.12 pyarrow<20``) and PyMC-Marketing in ``benchmarks/_work/venv-pymc`` (``pip install
pymc-marketing``; MAP with flat priors, i.e. maximum likelihood; its first fit compiles for about
a minute, which is included as users pay it). Both venvs are created on first use. The
log-likelihood of every contender's estimates is evaluated with ltvkit's likelihood, so the
column compares like with like (higher is better).

Adding a model: append a :class:`Task` to ``TASKS`` with the ltvkit callable and the code strings
for lifetimes and PyMC-Marketing (``None`` when not available). A code string has ``setup`` (not
timed) and ``run`` (timed) parts; it sees ``data`` (the task's DataFrame) and ``truth`` (true
parameters) and leaves the estimates, named as in ltvkit, in ``params`` (fits only).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
WORK = HERE / "_work"
VENVS = {
    "lifetimes": (WORK / "venv-lifetimes",
                  ["lifetimes==0.11.3", "numpy<2", "pandas<2", "scipy<1.12", "pyarrow<20"]),
    "pymc": (WORK / "venv-pymc", ["pymc-marketing", "pyarrow"]),
}
SIZES = {"10k": 10_000, "100k": 100_000, "1M": 1_000_000}
TRUTH_BG = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
TRUTH_GG = {"p": 6.25, "q": 3.74, "gamma": 15.44}
CDNOW_PARETO = {"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669}
TIMEOUT = 1800  # seconds per contender and task
MONTH_WEEKS = 365.25 / 12 / 7


@dataclass(frozen=True)
class Code:
    """Code run in a contender's own interpreter: ``setup`` untimed, then ``run`` timed."""

    setup: str
    run: str


@dataclass(frozen=True)
class Task:
    """One benchmark row: how each contender does it, and how to score their estimates."""

    name: str
    data: Callable[[int], Any]                 # N customers -> DataFrame for this task
    ours: Callable[[Any, dict], dict | None]   # (data, truth) -> estimates (None for scoring)
    lifetimes: Code | None
    pymc: Code | None
    model: str | None = None                   # ltvkit class whose likelihood rates the estimates
    truth: dict | None = None
    target: str = ""


# ------------------------------------------------------------------------------ data
def summary(n: int) -> Any:
    """RFM summary (weeks) of a simulated population large enough for n customers and
    0.8 n repeat buyers (cached as Parquet)."""
    import pandas as pd

    n_pop = 2 * n  # about half of the customers repeat with the CDNOW parameters
    path = WORK / f"models_summary_{n_pop}.parquet"
    if not path.exists():
        from ltvkit import rfm_summary, simulate_transactions

        print(f"simulating {n_pop:,} customers ...", flush=True)
        log = simulate_transactions(n_pop, seed=2025)
        s = rfm_summary(log, freq="W", observation_end="2025-06-29")
        WORK.mkdir(parents=True, exist_ok=True)
        s[["frequency", "recency", "T", "monetary_value"]].to_parquet(path)
    return pd.read_parquet(path)


def purchase_data(n: int) -> Any:
    return summary(n).iloc[:n]


def spend_data(n: int) -> Any:
    s = summary(n)
    return s[s["frequency"] > 0].iloc[: int(0.8 * n)]


# ------------------------------------------------------------------------------ ltvkit
def ours_bgnbd(data: Any, truth: dict) -> dict:
    from ltvkit import BGNBD

    return BGNBD().fit(data[["frequency", "recency", "T"]]).params_


def ours_gammagamma(data: Any, truth: dict) -> dict:
    from ltvkit import GammaGamma

    return GammaGamma().fit(data[["frequency", "monetary_value"]]).params_


def ours_paretonbd(data: Any, truth: dict) -> dict:
    from ltvkit import ParetoNBD

    return ParetoNBD().fit(data[["frequency", "recency", "T"]]).params_


def ours_mbgnbd(data: Any, truth: dict) -> dict:
    from ltvkit import MBGNBD

    return MBGNBD().fit(data[["frequency", "recency", "T"]]).params_


def ours_score(data: Any, truth: dict) -> None:
    from ltvkit import BGNBD, GammaGamma, lifetime_value

    bg, gg = BGNBD.from_params(**TRUTH_BG), GammaGamma.from_params(**TRUTH_GG)
    bg.expected_purchases(52, data)
    bg.p_alive(data)
    lifetime_value(bg, gg, data, horizon=12, unit="M", discount_rate=0.01)


def ours_next_purchase(data: Any, truth: dict) -> None:
    from ltvkit import ParetoNBD

    m = ParetoNBD.from_params(**truth)
    m.next_purchase_time(data)
    m.next_purchase_time(data, given_alive=True)


# ------------------------------------------------------------------------------ reference code
LIFETIMES_BGNBD = Code(
    "from lifetimes import BetaGeoFitter",
    "m = BetaGeoFitter().fit(data['frequency'], data['recency'], data['T'])\n"
    "params = dict(m.params_)",
)
LIFETIMES_GG = Code(
    "from lifetimes import GammaGammaFitter",
    "m = GammaGammaFitter().fit(data['frequency'], data['monetary_value'])\n"
    "params = {'p': m.params_['p'], 'q': m.params_['q'], 'gamma': m.params_['v']}",
)
LIFETIMES_SCORE = Code(
    "import pandas as pd\n"
    "from lifetimes import BetaGeoFitter, GammaGammaFitter\n"
    "bg = BetaGeoFitter(); bg.params_ = pd.Series(truth['bgnbd'])\n"
    "bg.predict = bg.conditional_expected_number_of_purchases_up_to_time\n"
    "gg = GammaGammaFitter(); t = truth['gammagamma']\n"
    "gg.params_ = pd.Series({'p': t['p'], 'q': t['q'], 'v': t['gamma']})",
    "f, r, T, mv = data['frequency'], data['recency'], data['T'], data['monetary_value']\n"
    "bg.conditional_expected_number_of_purchases_up_to_time(52, f, r, T)\n"
    "bg.conditional_probability_alive(f, r, T)\n"
    "gg.customer_lifetime_value(bg, f, r, T, mv, time=12, discount_rate=0.01, freq='W')",
)
PYMC_BGNBD = Code(
    "from pymc_extras.prior import Prior\n"
    "from pymc_marketing.clv import BetaGeoModel\n"
    "df = data.reset_index(drop=True).rename_axis('customer_id').reset_index()\n"
    "flat = {k: Prior('HalfFlat') for k in ('r', 'alpha', 'a', 'b')}",
    "m = BetaGeoModel(data=df, model_config=flat)\n"
    "m.fit(method='map')\n"
    "post = m.idata.posterior\n"
    "params = {k: float(post[k].values.ravel()[0]) for k in ('r', 'alpha', 'a', 'b')}",
)
PYMC_GG = Code(
    "from pymc_extras.prior import Prior\n"
    "from pymc_marketing.clv import GammaGammaModel\n"
    "df = data.reset_index(drop=True).rename_axis('customer_id').reset_index()",
    "m = GammaGammaModel(data=df, model_config={k: Prior('HalfFlat') for k in ('p', 'q', 'v')})\n"
    "m.fit(method='map')\n"
    "post = m.idata.posterior\n"
    "params = {'p': float(post['p'].values.ravel()[0]), 'q': float(post['q'].values.ravel()[0]),"
    " 'gamma': float(post['v'].values.ravel()[0])}",
)
LIFETIMES_PARETO = Code(
    "from lifetimes import ParetoNBDFitter",
    "m = ParetoNBDFitter().fit(data['frequency'], data['recency'], data['T'])\n"
    "params = dict(m.params_)",
)
PYMC_PARETO = Code(
    "from pymc_extras.prior import Prior\n"
    "from pymc_marketing.clv import ParetoNBDModel\n"
    "df = data.reset_index(drop=True).rename_axis('customer_id').reset_index()\n"
    "flat = {k: Prior('HalfFlat') for k in ('r', 'alpha', 's', 'beta')}",
    "m = ParetoNBDModel(data=df, model_config=flat)\n"
    "m.fit(method='map')\n"
    "post = m.idata.posterior\n"
    "params = {k: float(post[k].values.ravel()[0]) for k in ('r', 'alpha', 's', 'beta')}",
)
LIFETIMES_MBGNBD = Code(
    "from lifetimes import ModifiedBetaGeoFitter",
    "m = ModifiedBetaGeoFitter().fit(data['frequency'], data['recency'], data['T'])\n"
    "params = dict(m.params_)",
)
PYMC_MBGNBD = Code(
    "from pymc_extras.prior import Prior\n"
    "from pymc_marketing.clv import ModifiedBetaGeoModel\n"
    "df = data.reset_index(drop=True).rename_axis('customer_id').reset_index()\n"
    "flat = {k: Prior('HalfFlat') for k in ('r', 'alpha', 'a', 'b')}",
    "m = ModifiedBetaGeoModel(data=df, model_config=flat)\n"
    "m.fit(method='map')\n"
    "post = m.idata.posterior\n"
    "params = {k: float(post[k].values.ravel()[0]) for k in ('r', 'alpha', 'a', 'b')}",
)
PYMC_SCORE = Code(
    "import arviz as az, numpy as np\n"
    "from pymc_extras.prior import Prior\n"
    "from pymc_marketing.clv import BetaGeoModel, GammaGammaModel, customer_lifetime_value\n"
    "df = data.reset_index(drop=True).rename_axis('customer_id').reset_index()\n"
    "def with_params(model, values):\n"
    "    model.build_model()\n"
    "    model.idata = az.from_dict(posterior={k: np.array([[v]]) for k, v in values.items()})\n"
    "    return model\n"
    "bg = with_params(BetaGeoModel(data=df, model_config={k: Prior('HalfFlat') for k in "
    "('r', 'alpha', 'a', 'b')}), truth['bgnbd'])\n"
    "t = truth['gammagamma']\n"
    "rep = df[df['frequency'] > 0]\n"
    "gg = with_params(GammaGammaModel(data=rep, model_config={k: Prior('HalfFlat') for k in "
    "('p', 'q', 'v')}), {'p': t['p'], 'q': t['q'], 'v': t['gamma']})",
    "bg.expected_purchases(data=df, future_t=52)\n"
    "bg.expected_probability_alive(data=df)\n"
    "spend = gg.expected_customer_spend(data=df)\n"
    "customer_lifetime_value(bg, df.assign(future_spend=spend.values.ravel()[:len(df)]),"
    " future_t=12, discount_rate=0.01, time_unit='W')",
)

TASKS: dict[str, Task] = {
    "bgnbd": Task("BG/NBD fit", purchase_data, ours_bgnbd, LIFETIMES_BGNBD, PYMC_BGNBD,
                  model="BGNBD", truth=TRUTH_BG, target="<= 0.5 s at 1M"),
    "gammagamma": Task("Gamma-Gamma fit", spend_data, ours_gammagamma, LIFETIMES_GG, PYMC_GG,
                       model="GammaGamma", truth=TRUTH_GG, target="<= 0.3 s at 800k"),
    "paretonbd": Task("Pareto/NBD fit", purchase_data, ours_paretonbd, LIFETIMES_PARETO, PYMC_PARETO,
                      model="ParetoNBD", target="<= 5 s at 1M"),
    "mbgnbd": Task("MBG/NBD fit", purchase_data, ours_mbgnbd, LIFETIMES_MBGNBD, PYMC_MBGNBD,
                   model="MBGNBD"),
    "score": Task("score: E[X(52w)] + P(alive) + CLV(12m)", purchase_data, ours_score,
                  LIFETIMES_SCORE, PYMC_SCORE, truth={"bgnbd": TRUTH_BG, "gammagamma": TRUTH_GG},
                  target="<= 2 s at 1M"),
    "nextpurchase": Task("Pareto/NBD next purchase time (+ given alive)", purchase_data,
                         ours_next_purchase, None, None, model="ParetoNBD", truth=CDNOW_PARETO,
                         target="a few s at 1M"),
}


# ------------------------------------------------------------------------------ workers
def worker(contender: str, task: str, n: int, data_path: str) -> None:
    """Runs in a subprocess: load the data, run one task, print JSON (seconds, params)."""
    import pandas as pd

    data = pd.read_parquet(data_path)
    t = TASKS[task]
    if contender == "ltvkit":
        import ltvkit

        for name in ("BGNBD", "GammaGamma", "lifetime_value", t.model or "BGNBD"):
            getattr(ltvkit, name)  # import before timing, as for the others' setup code
        start, cpu = time.perf_counter(), _cpu()
        params = t.ours(data, t.truth)
    else:
        code = getattr(t, contender)
        ns: dict[str, Any] = {"data": data, "truth": t.truth}
        exec(code.setup, ns)
        start, cpu = time.perf_counter(), _cpu()
        exec(code.run, ns)
        params = ns.get("params")
    seconds, cpu = time.perf_counter() - start, _cpu() - cpu
    out = {k: float(v) for k, v in params.items()} if params else None
    print(json.dumps({"seconds": seconds, "cpu": cpu, "params": out}))


def _cpu() -> float:
    """CPU seconds of this process and its children (PyMC compiles C code in subprocesses)."""
    import resource

    child = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + child.ru_utime + child.ru_stime


def python_for(contender: str) -> Path:
    if contender == "ltvkit":
        return Path(sys.executable)
    venv, packages = VENVS[contender]
    python = venv / "bin" / "python"
    if not python.exists():
        print(f"creating the {contender} venv (once) ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *packages], check=True)
    return python


def run(contender: str, task: str, n: int, data_path: Path) -> dict[str, Any]:
    if contender != "ltvkit" and getattr(TASKS[task], contender) is None:
        return {"error": "not available"}
    try:
        python = python_for(contender)
    except subprocess.CalledProcessError as exc:
        return {"error": f"not available (installing {contender} failed: {exc})"}
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    # the worker imports this file by path; lifetimes/PyMC venvs have no ltvkit, which is fine:
    # their code strings never touch it
    cmd = [str(python), __file__, "--worker", contender, task, str(n), str(data_path)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        return {"error": f"timeout after {TIMEOUT} s"}
    if proc.returncode != 0:
        lines = proc.stderr.strip().splitlines() or ["failed"]
        return {"error": lines[-1][:120]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def log_likelihood(model: str, params: dict, data: Any) -> float:
    import numpy as np

    import ltvkit

    cls = getattr(ltvkit, model)
    m = cls.from_params(**params)
    d = {c: data[c].to_numpy(float) for c in cls.data_columns}
    if model == "GammaGamma":
        d = {c: v[d["frequency"] > 0] for c, v in d.items()}
    return float(np.sum(m._log_likelihood(m._params, d)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1M", help=f"comma-separated, from {', '.join(SIZES)}")
    parser.add_argument("--models", default=",".join(TASKS), help=f"comma-separated tasks: {', '.join(TASKS)}")
    parser.add_argument("--skip", default="", help="contenders to skip: lifetimes, pymc")
    parser.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        contender, task, n, path = args.worker
        worker(contender, task, int(n), path)
        return
    contenders = [c for c in ("ltvkit", "lifetimes", "pymc") if c not in args.skip.split(",")]
    rows = []
    for size in args.sizes.split(","):
        n = SIZES[size]
        for name in args.models.split(","):
            task = TASKS[name]
            data = task.data(n)
            path = WORK / f"task_{name}_{n}.parquet"
            data.to_parquet(path)
            for contender in contenders:
                print(f"{size} {name} {contender} ...", flush=True)
                res = run(contender, name, n, path)
                ll = (log_likelihood(task.model, res["params"], data)
                      if task.model and res.get("params") else None)
                rows.append((f"{task.name} [{len(data):,}]", contender, res, ll, task.target))
    print()
    print(f"{'task':<52} {'contender':<10} {'seconds':>9} {'cpu s':>8} {'log-likelihood':>16}  estimates / note")
    for label, contender, res, ll, target in rows:
        if "error" in res:
            print(f"{label:<52} {contender:<10} {'-':>9} {'-':>8} {'-':>16}  {res['error']}")
            continue
        est = ", ".join(f"{k}={v:.4g}" for k, v in (res["params"] or {}).items())
        note = est + (f"  (target {target})" if contender == "ltvkit" and target else "")
        ll_text = f"{ll:,.1f}" if ll is not None else "-"
        print(f"{label:<52} {contender:<10} {res['seconds']:>9.2f} {res['cpu']:>8.2f} {ll_text:>16}  {note}")


if __name__ == "__main__":
    main()
