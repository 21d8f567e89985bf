"""`ltv calc`: readable table, JSON keys and values, inputs from a log, exit code 2 on bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from ltvkit.cli import main

ARGS = [
    "calc",
    "--churn",
    "0.05",
    "--arpu",
    "49",
    "--margin",
    "0.7",
    "--new-customers",
    "200",
    "--spend",
    "15000",
]


def run(args, capsys):
    with pytest.raises(SystemExit) as exc:
        main(args)
    out, err = capsys.readouterr()
    return exc.value.code or 0, out, err


def test_json_output_hand_computed(capsys):
    code, out, _ = run([*ARGS, "--discount-rate", "0.01", "--json"], capsys)
    assert code == 0
    d = json.loads(out)
    assert {
        "clv",
        "clv_discounted",
        "cac",
        "clv_to_cac",
        "payback_months",
        "max_cac",
        "levers",
    } <= set(d)
    assert d["clv"] == pytest.approx(686.0)
    assert d["clv_discounted"] == pytest.approx(34.3 * 1.01 / 0.06)
    assert d["cac"] == 75.0 and d["payback_months"] == 3
    assert d["max_cac"] == pytest.approx(34.3 * 1.01 / 0.06 / 3)
    assert d["levers"][0]["name"] == "purchase_frequency"
    assert len(d["projection"]) == 24


def test_table_output_shows_results_and_levers(capsys):
    code, out, _ = run([*ARGS, "--target-ratio", "4"], capsys)
    assert code == 0
    for text in (
        "CLV (undiscounted)",
        "686.00",
        "CAC",
        "75.00",
        "9.15",
        "max CAC for 4:1",
        "171.50",
        "-10% churn",
        "+10% order value",
        "+1 point of margin",
        "Projection",
    ):
        assert text in out


def test_lifespan_and_purchases_per_month(capsys):
    code, out, _ = run(
        [
            "calc",
            "--lifespan",
            "20",
            "--arpu",
            "24.5",
            "--purchases-per-month",
            "2",
            "--margin",
            "0.7",
            "--new-customers",
            "200",
            "--spend",
            "15000",
            "--json",
        ],
        capsys,
    )
    assert code == 0 and json.loads(out)["clv"] == pytest.approx(686.0)


def test_what_if_multiplier(capsys):
    _, out, _ = run([*ARGS, "--acquisition-multiplier", "10", "--json"], capsys)
    assert json.loads(out)["projection"][0]["active_customers"] == pytest.approx(2000)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--churn", "1.5"], r"churn must be in (0, 1]"),
        (["--margin", "0"], r"margin must be in (0, 1]"),
        (["--spend", "-3"], "spend must be >= 0"),
        (["--lifespan", "12"], "not both"),
        (["--discount-rate", "-1"], "discount_rate must be in [0, 1)"),
        (["--purchases-per-month", "0"], "purchases_per_month must be > 0"),
    ],
)
def test_bad_values_exit_2_with_one_line(capsys, extra, message):
    code, _, err = run([*ARGS, *extra], capsys)
    assert code == 2
    assert message in err and err.strip().count("\n") == 0
    assert "Traceback" not in err


def test_missing_required_inputs_exit_2(capsys):
    code, _, err = run(["calc", "--churn", "0.05", "--arpu", "49", "--new-customers", "10"], capsys)
    assert code == 2 and "--spend is required" in err
    code, _, err = run(
        ["calc", "--churn", "0.05", "--spend", "10", "--new-customers", "10"], capsys
    )
    assert code == 2 and "--arpu is required" in err


def test_from_file_fills_inputs(capsys, data_dir):
    sample = str(data_dir / "CDNOW_sample.txt")
    base = [
        "calc",
        "--from",
        sample,
        "--customer",
        "0",
        "--date",
        "2",
        "--amount",
        "4",
        "--spend",
        "1000",
    ]
    code, _, err = run(base, capsys)
    assert code == 2 and "no new customers in 1998-01..1998-06; pass --new-customers" in err
    code, out, _ = run([*base, "--new-customers", "50", "--json"], capsys)
    assert code == 0
    d = json.loads(out)
    est = d["estimated_inputs"]
    assert d["churn"] == pytest.approx(est["churn"])
    assert d["revenue_per_month"] == pytest.approx(est["arpu"])
    assert d["cac"] == 20.0
    code, out, _ = run([*base, "--new-customers", "50", "--churn", "0.2", "--json"], capsys)
    assert json.loads(out)["churn"] == 0.2  # explicit flags override the estimate
    code, _, err = run(["calc", "--from", sample, "--spend", "1"], capsys)
    assert code == 2 and "--from needs --amount" in err


def test_console_script_exit_code():
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "from ltvkit.cli import main; main()",
            "calc",
            "--churn",
            "0",
            "--arpu",
            "49",
            "--new-customers",
            "1",
            "--spend",
            "1",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert "churn must be in (0, 1]" in proc.stderr and "Traceback" not in proc.stderr
