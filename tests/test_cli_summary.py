"""`ltv summary`: statistics table, outputs, exit codes and error messages.

(`ltv demo` prints the same table first; it runs the full analysis and is tested with it.)
"""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from ltvkit.cli import app, main

SAMPLE_ARGS = ["--customer", "1", "--date", "2", "--amount", "4"]


def run(argv, capsys):
    """Run the console entry point in-process; return (exit code, stdout, stderr)."""
    with pytest.raises(SystemExit) as exc:
        main(argv)
    out = capsys.readouterr()
    return exc.value.code, out.out, out.err


@pytest.fixture(scope="module")
def sample_path(data_dir):
    return str(data_dir / "CDNOW_sample.txt")


def test_summary_table_on_cdnow_calibration(sample_path, capsys):
    code, out, _ = run(["summary", sample_path, *SAMPLE_ARGS, "--observation-end", "1997-09-30"],
                       capsys)
    assert code == 0
    assert "2,357" in out and "946 (40.1%)" in out  # customers, repeat buyers in calibration
    assert "35.08" in out  # mean repeat spend, Fader & Hardie note 025
    assert "1997-01-01 → 1997-09-30" in out
    assert "1,959 rows dated after the observation end were excluded" in out


def test_summary_json_and_parquet_output(sample_path, tmp_path, capsys):
    target = tmp_path / "rfm.parquet"
    code, out, _ = run(["summary", sample_path, *SAMPLE_ARGS, "--json", "--out", str(target)],
                       capsys)
    assert code == 0
    payload = json.loads(out)
    stats = payload["statistics"]
    assert (stats["customers"], stats["orders"], stats["observation_end"]) == (2357, 6919, "1998-06-30")
    assert stats["revenue"] == pytest.approx(244091.94)
    assert any("duplicate" in note for note in payload["notes"])
    written = pd.read_parquet(target)
    assert len(written) == 2357 and int(written["frequency"].sum()) == 4339
    assert {"customer_id", "frequency", "recency", "T", "monetary_value"} <= set(written.columns)

    before = target.read_bytes()
    code, _, err = run(["summary", sample_path, *SAMPLE_ARGS, "--out", str(target)], capsys)
    assert code == 2 and "already exists" in err and "--force" in err
    assert target.read_bytes() == before
    code, _, _ = run(["summary", sample_path, *SAMPLE_ARGS, "--freq", "D", "--out", str(target),
                      "--force"], capsys)
    assert code == 0
    assert pd.read_parquet(target)["T"].max() == 545.0  # 1997-01-01 -> 1998-06-30 in days


def test_summary_csv_with_names_and_bad_rows(tmp_path, capsys):
    log = tmp_path / "orders.csv"
    log.write_text("client,day,paid\nA,2024-01-01,10\nA,2024-01-15,20\nB,2024-01-03,oops\n"
                   "B,2024-01-20,5\n")
    code, _, err = run(["summary", str(log), "--customer", "client", "--date", "day",
                        "--amount", "paid"], capsys)
    assert code == 2
    assert "oops" in err and "paid" in err  # names the value and the column
    out_csv = tmp_path / "rfm.csv"
    code, out, _ = run(["summary", str(log), "--customer", "client", "--date", "day", "--amount",
                        "paid", "--skip-bad-rows", "--freq", "D", "--out", str(out_csv)], capsys)
    assert code == 0
    assert "note:" in out and "Wrote 2 customers" in out
    written = pd.read_csv(out_csv, index_col="customer_id")
    assert written.loc["A", ["frequency", "recency", "T", "monetary_value"]].tolist() == [1, 14, 19, 20]


def test_summary_json_without_repeat_buyers_is_valid_json(tmp_path, capsys):
    log = tmp_path / "once.csv"
    log.write_text("customer_id,date,amount\n1,2024-01-01,5\n2,2024-01-02,7\n")
    code, out, _ = run(["summary", str(log), "--amount", "amount", "--json"], capsys)
    assert code == 0
    stats = json.loads(out)["statistics"]
    assert stats["repeat_customers"] == 0 and stats["mean_monetary_value"] is None


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--freq", "Y"], "freq must be one of"),
        (["--out", "rfm.txt"], "must end with .parquet or .csv"),
        (["--observation-end", "1990-01-01"], "observation"),
    ],
)
def test_summary_bad_arguments_exit_2(sample_path, extra, message, capsys):
    code, _, err = run(["summary", sample_path, *SAMPLE_ARGS, *extra], capsys)
    assert code == 2
    assert message in err
    assert "Traceback" not in err


def test_summary_missing_file_exit_2(tmp_path, capsys):
    code, _, err = run(["summary", str(tmp_path / "nope.csv"), "--customer", "0"], capsys)
    assert code == 2 and "nope.csv" in err


def test_summary_help_lists_options():
    result = CliRunner().invoke(app, ["summary", "--help"])
    assert result.exit_code == 0
    for option in ("--customer", "--observation-end", "--skip-bad-rows", "--force", "--json"):
        assert option in result.output
