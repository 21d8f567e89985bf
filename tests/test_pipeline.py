"""ltvkit.analyze end to end: CDNOW, a simulated log with channels and spend, a messy log; the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import ltvkit
from ltvkit.cli import main
from ltvkit.errors import InputError
from ltvkit.pipeline import CUSTOMER_COLUMNS, STAGES


@pytest.fixture(scope="module")
def cdnow() -> ltvkit.Analysis:
    stages: list[str] = []
    result = ltvkit.analyze(ltvkit.datasets.load_cdnow(), holdout="1997-09-30", progress=stages.append)
    result.settings["_stages_seen"] = stages
    return result


def test_cdnow_customer_table(cdnow: ltvkit.Analysis) -> None:
    c = cdnow.customers
    assert len(c) == 2357 and c.index.name == "customer_id" and c.index.is_unique
    assert list(c.columns[: len(CUSTOMER_COLUMNS)]) == list(CUSTOMER_COLUMNS)
    assert "cohort" in c and "channel" not in c  # CDNOW has no channel column
    assert set(c["cohort"]) == {"1997-01", "1997-02", "1997-03"}
    assert c[["p_alive", "expected_purchases", "clv", "clv_low", "clv_high"]].notna().all().all()
    assert ((c["p_alive"] >= 0) & (c["p_alive"] <= 1)).all()
    assert (c["clv"] >= 0).all() and (c["clv_low"] <= c["clv"]).all() and (c["clv"] <= c["clv_high"]).all()
    assert c["r_score"].between(1, 5).all() and c["tier"].notna().all()
    assert (c["next_contact_date"] >= pd.Timestamp("1998-07-01")).all()
    # the whole-log summary: 1,139 customers bought again in the 78 weeks
    assert int((c["frequency"] > 0).sum()) == 1139
    # customers who bought more, more recently, are worth more (on average)
    by_f = c.groupby(np.minimum(c["frequency"], 5))["clv"].mean()
    assert by_f.is_monotonic_increasing


@pytest.mark.slow
def test_cdnow_clv_matches_lifetime_value_and_its_draws(cdnow: ltvkit.Analysis) -> None:
    """CLV is ltvkit.lifetime_value; its delta-method interval matches the parameter draws'."""
    c = cdnow.customers.sort_values("clv").iloc[::60]  # 40 customers across the range
    data = c[["frequency", "recency", "T", "monetary_value"]]
    exact = ltvkit.lifetime_value(cdnow.models["purchase"], cdnow.models["spend"], data, horizon=12,
                                  discount_rate=0.01)
    assert c["clv"].to_numpy() == pytest.approx(exact.to_numpy(), rel=1e-9)
    draws = ltvkit.lifetime_value(cdnow.models["purchase"], cdnow.models["spend"], data, horizon=12,
                                  discount_rate=0.01, interval=0.9, n_draws=150)
    assert c["clv_low"].to_numpy() == pytest.approx(draws["low"].to_numpy(), rel=0.15)
    assert c["clv_high"].to_numpy() == pytest.approx(draws["high"].to_numpy(), rel=0.15)


def test_cdnow_backtest_choice_and_refit(cdnow: ltvkit.Analysis) -> None:
    bt = cdnow.backtest
    assert set(bt.scores.index) == {"bgnbd", "paretonbd", "mbgnbd"} or len(bt.scores) >= 2
    assert (bt.scores["actual"] == 1882).all()
    assert cdnow.settings["model"] == bt.chosen
    refit = cdnow.model_summaries["purchase"]
    assert refit.attrs["n_customers"] == 2357  # refitted on the whole log, not the calibration part
    assert cdnow.models["purchase"].n_customers_ == 2357


def test_cdnow_segments_tiers_forecast(cdnow: ltvkit.Analysis) -> None:
    seg, tiers, c = cdnow.segments, cdnow.tiers, cdnow.customers
    assert seg["customers"].sum() == 2357 and seg["value"].sum() == pytest.approx(c["clv"].sum())
    assert {"segment", "action"} <= set(seg.columns)
    assert tiers.loc["top_1", "customers"] >= 23 and tiers["value_share"].sum() == pytest.approx(1.0)
    assert 0 < cdnow.gini < 1
    fc = cdnow.forecast
    assert len(fc) == 12 and str(fc["period_start"].iloc[0].date()) == "1998-07-01"
    assert cdnow.settings["new_customers_per_month"] == 0  # CDNOW acquired everyone in 1997 Q1
    # the forecast's existing-base purchases over 12 months equal the per-customer expectations
    assert fc["purchases"].sum() == pytest.approx(c["expected_purchases"].sum(), rel=1e-6)


def test_cdnow_headline_is_json_and_progress_is_reported(cdnow: ltvkit.Analysis) -> None:
    h = cdnow.headline()
    again = json.loads(json.dumps(h))
    assert again["customers"] == 2357 and again["backtest"]["actual_repeat_purchases"] == 1882
    assert h["total_clv_low"] <= h["total_clv"] <= h["total_clv_high"]
    assert h["active_customers"] == int((cdnow.customers["p_alive"] >= 0.5).sum())
    assert cdnow.settings["_stages_seen"] == list(STAGES)
    assert set(cdnow.timings) == set(STAGES)


def test_write_outputs_never_overwrite(cdnow: ltvkit.Analysis, tmp_path: Path) -> None:
    files = cdnow.write(tmp_path, csv=True)
    names = {p.name for p in files}
    assert {"customers.parquet", "customers.csv", "report.html", "segment_champions.csv",
            "tier_top_1.csv"} <= names
    back = pd.read_parquet(tmp_path / "customers.parquet")
    assert len(back) == 2357 and back["customer_id"].is_unique
    assert back["clv"].to_numpy() == pytest.approx(cdnow.customers["clv"].to_numpy())
    before = (tmp_path / "report.html").stat().st_mtime_ns
    with pytest.raises(InputError, match="already exists"):
        cdnow.write(tmp_path)
    assert (tmp_path / "report.html").stat().st_mtime_ns == before
    cdnow.write(tmp_path, force=True, lang="fr")
    assert '<html lang="fr">' in (tmp_path / "report.html").read_text("utf-8")


# ---------------------------------------------------------------------- simulated log with channels
@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, pd.DataFrame]:
    folder = tmp_path_factory.mktemp("sim")
    log = ltvkit.simulate_transactions(1500, channels={"search": 0.5, "social": 0.3, "email": 0.2},
                                       seed=7)
    path = folder / "orders.csv"
    log.to_csv(path, index=False)
    spend = folder / "spend.csv"
    spend.write_text("channel,spend\nsearch,15000\nsocial,12000\nemail,1500\n")
    return path, spend, log


def test_simulated_log_with_channels_and_spend(simulated, tmp_path: Path) -> None:
    path, spend, log = simulated
    a = ltvkit.analyze(path, customer="customer_id", date="ts", amount="amount", spend=spend,
                       currency="EUR", new_customers_per_month=250)
    c = a.customers
    assert len(c) == 1500 and "channel" in c
    first = log.sort_values("ts").groupby("customer_id")["channel"].first().astype(str)
    first.index = first.index.astype(str)  # ids read back from the CSV are text
    assert (c["channel"].to_numpy() == first.reindex(c.index.astype(str)).to_numpy()).all()
    ch = a.channels.set_index("channel")
    counts = c["channel"].value_counts()
    assert ch.loc["search", "cac"] == pytest.approx(15000 / counts["search"])
    assert ch.loc["email", "clv_cac"] == pytest.approx(c.loc[c["channel"] == "email", "clv"].mean()
                                                       / (1500 / counts["email"]))
    h = a.headline()
    assert h["cac"] == pytest.approx(28500 / 1500)
    assert h["clv_cac"] == pytest.approx(c["clv"].mean() / (28500 / 1500))
    assert (a.forecast["new_customers"] == 250).all() and (a.forecast["new_orders"] >= 250).all()
    assert a.settings["new_customers_source"] == "user"
    files = {p.name for p in a.write(tmp_path)}
    assert "channels.csv" in files
    written = pd.read_csv(tmp_path / "channels.csv")
    assert set(written["channel"]) == {"search", "social", "email"}
    assert "1\u202f" in a.to_html(lang="fr", currency="EUR") or "\u202f€" in a.to_html(lang="fr")


def test_weekly_forecast(simulated) -> None:
    path, _, _ = simulated
    a = ltvkit.analyze(path, customer="customer_id", date="ts", amount="amount", run_backtest=False,
                       model="bgnbd", forecast_period="W", new_customers_per_month=100)
    fc = a.forecast
    assert len(fc) == 52 and (fc["period_end"] - fc["period_start"]).dt.days.eq(7).all()
    assert fc["new_customers"].iloc[0] == pytest.approx(100 * 7 / (365.25 / 12))
    # 52 weeks hold slightly fewer purchases than the 12 calendar months of the CLV horizon
    assert fc["purchases"].sum() == pytest.approx(a.customers["expected_purchases"].sum(), rel=0.01)
    assert "Expected orders per week" in a.to_html()
    with pytest.raises(InputError, match="forecast_period"):
        ltvkit.analyze(path, customer="customer_id", date="ts", amount="amount", forecast_period="Q")


def test_spend_without_channel_column_is_a_clear_error(tmp_path: Path) -> None:
    spend = tmp_path / "spend.csv"
    spend.write_text("channel,spend\nsearch,100\n")
    with pytest.raises(InputError, match="no 'channel' column"):
        ltvkit.analyze(ltvkit.datasets.load_cdnow(), spend=spend, run_backtest=False, model="bgnbd")


# ---------------------------------------------------------------------- messy log
@pytest.fixture(scope="module")
def messy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    log = ltvkit.simulate_transactions(600, seed=3)
    rows = log.assign(ts=log["ts"].dt.strftime("%Y-%m-%d"), amount=log["amount"].map("{:.2f}".format))
    rows = rows.astype(str)
    rows.loc[5, "ts"] = "not a date"
    rows.loc[40, "amount"] = "twelve"
    rows.loc[77, "customer_id"] = ""
    path = tmp_path_factory.mktemp("messy") / "messy.csv"
    rows.to_csv(path, index=False)
    return path


def test_messy_log_bad_rows_skipped_and_reported(messy: Path) -> None:
    with pytest.warns(UserWarning):
        a = ltvkit.analyze(messy, customer="customer_id", date="ts", amount="amount",
                           on_bad_rows="skip", run_backtest=False, model="bgnbd")
    assert a.settings["bad_rows"] == 3 and a.headline()["bad_rows"] == 3
    assert any("3 rows" in m and "line 7" in m for m in a.read_messages)  # header = line 1
    assert "3 unusable rows were skipped" in a.to_html()
    assert a.backtest is None


def test_messy_log_first_bad_row_stops_the_run(messy: Path) -> None:
    with pytest.raises(InputError, match=r"line 7.*'ts'|'ts'.*line 7"):
        ltvkit.analyze(messy, customer="customer_id", date="ts", amount="amount")


# ---------------------------------------------------------------------- the CLI
def _run(args: list[str]) -> int:
    try:
        main(args)
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def test_cli_analyze_json_and_no_overwrite(simulated, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path, spend, _ = simulated
    out = tmp_path / "out"
    args = ["analyze", str(path), "--customer", "customer_id", "--date", "ts", "--amount", "amount",
            "--out", str(out), "--spend-file", str(spend), "--holdout", "13W", "--model", "bgnbd",
            "--csv", "--json"]
    assert _run(args) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["customers"] == 1500 and payload["model"] == "bgnbd"
    assert payload["backtest"]["holdout_length"] == pytest.approx(13.0)
    assert {"report.html", "customers.parquet", "customers.csv", "channels.csv"} <= {
        Path(f).name for f in payload["files"]}
    stamp = (out / "report.html").stat().st_mtime_ns
    assert _run(args) == 2
    err = capsys.readouterr().err
    assert "already exists" in err and "--force" in err and "Traceback" not in err
    assert (out / "report.html").stat().st_mtime_ns == stamp


def test_cli_bad_input_exit_codes(messy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["analyze", str(messy), "--customer", "customer_id", "--date", "ts", "--amount", "amount",
            "--out", str(tmp_path / "o")]
    assert _run(base) == 2
    err = capsys.readouterr().err
    assert "line 7" in err and "Traceback" not in err
    assert _run(["analyze", str(tmp_path / "missing.csv"), "--out", str(tmp_path / "o")]) == 2
    assert _run([*base, "--skip-bad-rows", "--model", "nope"]) == 2
    assert "unknown model 'nope'" in capsys.readouterr().err
    assert _run([*base, "--skip-bad-rows", "--lang", "de"]) == 2
    capsys.readouterr()
    assert _run([*base, "--skip-bad-rows", "--holdout", "13W", "--model", "bgnbd"]) == 0
    shown = " ".join(capsys.readouterr().out.split())
    assert "3 rows with an unusable value were excluded" in shown and "line 7" in shown


def test_cli_demo(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "ltv-demo"
    assert _run(["demo", "--out", str(out)]) == 0
    text = " ".join(capsys.readouterr().out.split())  # undo the console's line wrapping
    assert "2,357" in text and "1,882 happened" in text  # stats table and the backtest sentence
    assert (out / "report.html").exists() and (out / "customers.parquet").exists()


def test_unidentified_fit_is_retried_with_a_small_penalty_and_noted() -> None:
    from ltvkit.errors import FitError
    from ltvkit.pipeline import _fit_with_fallback

    class Flaky:
        def __init__(self, penalizer: float) -> None:
            self.penalizer = penalizer

        def fit(self, data: object) -> Flaky:
            if self.penalizer == 0:
                raise FitError("parameter 'b' is not identified")
            return self

    notes: list[str] = []
    fitted = _fit_with_fallback(Flaky, pd.DataFrame({"x": [1]}), "Model", notes)
    assert fitted.penalizer == 0.01
    assert "small penalty (0.01)" in notes[0] and "'b' is not identified" in notes[0]
    with pytest.raises(FitError, match="Model could not be fitted"):
        _fit_with_fallback(lambda pen: Flaky(0.0), pd.DataFrame({"x": [1]}), "Model", [])
