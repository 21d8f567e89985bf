"""``ltv segments``: audience files per segment and tier from a transaction log (CDNOW sample)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from ltvkit.cli import main

pytestmark = pytest.mark.slow  # two full analyses of the CDNOW sample (a few seconds each)

ARGS = ["--customer", "1", "--date", "2", "--amount", "4", "--sep", "whitespace",
        "--date-format", "%Y%m%d"]  # fmt: skip


def _run(argv: list[str]) -> int:
    try:
        main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


@pytest.fixture(scope="module")
def written(tmp_path_factory, data_dir):
    """Run ``ltv segments --json`` once; return exit code, output folder and parsed stdout."""
    out = tmp_path_factory.mktemp("audiences")
    capture = tmp_path_factory.mktemp("stdout") / "out.json"
    with pytest.MonkeyPatch.context() as mp, capture.open("w") as handle:
        mp.setattr("sys.stdout", handle)
        code = _run(
            ["segments", str(data_dir / "CDNOW_sample.txt"), *ARGS, "--out", str(out), "--json"]
        )
    return code, out, json.loads(capture.read_text())


def test_segments_writes_one_csv_per_segment_and_tier(written):
    code, out, _ = written
    assert code == 0
    segment_files = sorted(out.glob("segment_*.csv"))
    tier_files = sorted(out.glob("tier_*.csv"))
    assert {p.name for p in tier_files} == {
        "tier_top_1.csv", "tier_top_10.csv", "tier_next_40.csv", "tier_bottom_50.csv",
    }  # fmt: skip
    # every customer is in exactly one segment file and one tier file
    seg_ids = pd.concat([pd.read_csv(p)["customer_id"] for p in segment_files])
    tier_ids = pd.concat([pd.read_csv(p)["customer_id"] for p in tier_files])
    assert len(seg_ids) == len(set(seg_ids)) == 2357
    assert set(tier_ids) == set(seg_ids)
    top = pd.read_csv(out / "tier_top_1.csv")
    assert len(top) == 24  # 1% of 2,357 customers, ranked by CLV (ties would share the tier)
    for col in ("customer_id", "segment", "tier", "clv", "p_alive", "next_contact_date"):
        assert col in top.columns
    bottom = pd.read_csv(out / "tier_bottom_50.csv")
    assert top["clv"].min() >= bottom["clv"].max()
    assert top["p_alive"].between(0, 1).all()


def test_segments_json_lists_the_segments_and_files(written):
    _, out, payload = written
    shares = [row["value_share"] for row in payload["segments"]]
    assert sum(shares) == pytest.approx(1.0)
    assert sum(row["customers"] for row in payload["segments"]) == 2357
    assert sorted(payload["files"]) == sorted(str(p) for p in out.glob("*.csv"))


def test_segments_refuses_to_overwrite_without_force(written, data_dir, capsys):
    _, out, _ = written
    argv = ["segments", str(data_dir / "CDNOW_sample.txt"), *ARGS, "--out", str(out)]
    assert _run(argv) == 2  # refused before any analysis
    assert "already exist" in capsys.readouterr().err
    assert _run([*argv, "--force"]) == 0
    printed = capsys.readouterr().out
    assert "Champions" in printed and "Wrote" in printed
