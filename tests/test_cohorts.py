"""Acquisition cohorts and channels, retention curves, spend files, CAC and affordable CPA."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import ltvkit
from ltvkit.cohorts import (
    acquisition,
    channel_economics,
    cohort_value,
    read_spend,
    retention_curves,
)
from ltvkit.errors import InputError


@pytest.fixture(scope="module")
def cdnow_tx():
    return ltvkit.datasets.load_cdnow()


def _log():
    """Three customers: a (ads, Jan), b (email, Jan; its two first rows share a timestamp), c (ads, Mar)."""
    return pd.DataFrame(
        {
            "customer_id": ["a", "a", "a", "b", "b", "b", "c"],
            "ts": pd.to_datetime(
                [
                    "2024-01-10",
                    "2024-02-15",
                    "2024-04-01",
                    "2024-01-20",
                    "2024-01-20",
                    "2024-03-05",
                    "2024-03-31",
                ]
            ),
            "amount": [10.0, 20.0, 30.0, 5.0, 5.0, 40.0, 100.0],
            "channel": ["ads", "email", "email", "seo", "email", "ads", "ads"],
            "campaign": ["x", "y", "y", "z", "w", "x", "x"],
        }
    )


# ---------------------------------------------------------------- acquisition


def test_acquisition_takes_the_first_transaction_deterministically():
    acq = acquisition(_log())
    assert acq["cohort"].to_dict() == {"a": "2024-01", "b": "2024-01", "c": "2024-03"}
    # b's two first rows are simultaneous: the smallest channel wins, every time
    assert acq["channel"].to_dict() == {"a": "ads", "b": "email", "c": "ads"}
    assert acq["campaign"].to_dict() == {"a": "x", "b": "w", "c": "x"}
    shuffled = acquisition(_log().sample(frac=1.0, random_state=5))
    pd.testing.assert_frame_equal(shuffled, acq)
    no_channel = acquisition(_log()[["customer_id", "ts"]])
    assert list(no_channel.columns) == ["first_purchase", "cohort"]


def test_cdnow_cohorts_are_the_three_first_months(cdnow_tx):
    acq = acquisition(cdnow_tx)
    assert len(acq) == 2357
    counts = acq["cohort"].value_counts().sort_index()
    assert list(counts.index) == ["1997-01", "1997-02", "1997-03"]
    assert counts.sum() == 2357


# ---------------------------------------------------------------- curves


def test_retention_curves_by_cohort_on_a_hand_made_log():
    curves = retention_curves(_log(), observation_end="2024-04-30")
    jan = curves[curves["cohort"] == "2024-01"].set_index("tenure")
    # Jan cohort (a, b) observed for tenures 0..3 (Jan..Apr)
    assert list(jan.index) == [0, 1, 2, 3]
    assert jan["customers"].tolist() == [2, 2, 2, 2]
    assert jan["active"].tolist() == [2, 1, 1, 1]  # Feb: a; Mar: b; Apr: a
    assert jan["retention"].tolist() == [1.0, 0.5, 0.5, 0.5]
    # cumulative value per customer: Jan 20/2, +20 (a), +40 (b), +30 (a)
    assert jan["value_per_customer"].tolist() == [10.0, 20.0, 40.0, 55.0]
    mar = curves[curves["cohort"] == "2024-03"].set_index("tenure")
    assert list(mar.index) == [0, 1]  # observed for March and April only
    assert mar["value_per_customer"].tolist() == [100.0, 100.0]


def test_channel_curves_count_only_customers_observed_that_long():
    curves = retention_curves(_log(), by="channel", observation_end="2024-04-30", margin=0.5)
    ads = curves[curves["channel"] == "ads"].set_index("tenure")
    # a (Jan, 4 months observed) and c (Mar, 2 months): tenures 2-3 only count a
    assert ads["customers"].tolist() == [2, 2, 1, 1]
    assert ads["active"].tolist() == [2, 1, 0, 1]
    assert ads["value_per_customer"].tolist() == pytest.approx(
        [0.5 * 110 / 2, 0.5 * 130 / 2, 0.5 * 30, 0.5 * 60]
    )
    with pytest.raises(InputError, match="'region'"):
        retention_curves(_log(), by="region")


def test_missing_channels_are_labelled_not_dropped():
    log = _log().drop(columns="amount")
    log["channel"] = log["channel"].where(log["customer_id"] != "c", None)
    log = log.rename(columns={"channel": "utm source"})
    acq = acquisition(log, columns=("utm source",))
    assert acq["utm source"].to_dict() == {"a": "ads", "b": "email", "c": "(unknown)"}
    curves = retention_curves(log, by="utm source", observation_end="2024-04-30")
    assert set(curves["utm source"]) == {"ads", "email", "(unknown)"}
    assert "revenue" not in curves.columns  # no amounts in this log
    assert curves.loc[curves["tenure"] == 0, "customers"].sum() == 3


def test_cdnow_curves(cdnow_tx):
    curves = retention_curves(cdnow_tx)
    assert set(curves["cohort"]) == {"1997-01", "1997-02", "1997-03"}
    assert (curves.loc[curves["tenure"] == 0, "retention"] == 1.0).all()
    jan = curves[curves["cohort"] == "1997-01"]
    assert jan["tenure"].max() == 17  # January 1997 to June 1998
    assert curves.loc[curves["tenure"] == 0, "customers"].sum() == 2357
    for _, curve in curves.groupby("cohort"):
        assert (np.diff(curve["value_per_customer"]) >= 0).all()
        assert (curve["retention"].iloc[1:] < 0.5).all()  # most CDNOW customers never return
    # revenue over all cells = total revenue of the log
    assert curves["revenue"].sum() == pytest.approx(244091.94)


# ---------------------------------------------------------------- value per cohort


def test_cohort_value_sums_and_interval():
    customers = pd.DataFrame(
        {
            "cohort": ["2024-01", "2024-01", "2024-01", "2024-02"],
            "total_revenue": [10.0, 20.0, 60.0, 7.0],
            "clv": [30.0, 10.0, 80.0, 5.0],
            "clv_low": [20.0, 5.0, 60.0, 1.0],
            "clv_high": [40.0, 15.0, 100.0, 9.0],
        }
    )
    table = cohort_value(customers)
    jan = table.loc["2024-01"]
    assert jan["customers"] == 3 and jan["revenue"] == 90.0
    assert jan["revenue_per_customer"] == 30.0
    assert jan["clv_mean"] == pytest.approx(40.0) and jan["clv_median"] == 30.0
    assert jan["clv_mean_low"] == pytest.approx(85 / 3) and jan["clv_mean_high"] == pytest.approx(
        155 / 3
    )
    assert table["clv_total"].sum() == customers["clv"].sum()
    with pytest.raises(InputError, match="clv"):
        cohort_value(customers.drop(columns="clv"))


# ---------------------------------------------------------------- spend


def test_read_spend_csv_with_and_without_month(tmp_path):
    path = tmp_path / "spend.csv"
    path.write_text("channel,spend\nads,1000\nemail, 250.5\nads,500\n")
    spend = read_spend(path)
    assert spend.to_dict("records") == [
        {"channel": "ads", "spend": 1500.0},
        {"channel": "email", "spend": 250.5},
    ]
    path.write_text("Channel,Spend,Month\nads,100,2024-01\nads,300,2024-02\n")
    assert read_spend(path)["month"].tolist() == ["2024-01", "2024-02"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("channel,spend\nads,100\nemail,lots\n", r"line 3, column 'spend': 'lots'"),
        ("channel,spend\nads,-5\n", r"line 2, column 'spend': '-5'"),
        ("channel,spend\nads,100,extra\n", r"line 2: 3 fields"),
        ("channel,cost\nads,100\n", r"line 1: .*missing \['spend'\]"),
        ("channel,spend,month\nads,100,someday\n", r"line 2, column 'month': 'someday'"),
        ("channel,spend\n,100\n", r"line 2, column 'channel'"),
        ("", "empty"),
    ],
)
def test_bad_spend_files_name_file_line_and_column(tmp_path, text, message):
    path = tmp_path / "bad_spend.csv"
    path.write_text(text)
    with pytest.raises(InputError, match=message) as info:
        read_spend(path)
    assert "bad_spend.csv" in str(info.value)


def test_spend_dict_and_missing_file(tmp_path):
    assert read_spend({"ads": 10}).to_dict("records") == [{"channel": "ads", "spend": 10.0}]
    with pytest.raises(InputError, match="ads"):
        read_spend({"ads": float("nan")})
    with pytest.raises(InputError, match="does not exist"):
        read_spend(tmp_path / "nope.csv")


# ---------------------------------------------------------------- CAC


def test_cac_ratio_affordable_cpa_arithmetic():
    customers = pd.DataFrame(
        {"channel": ["ads"] * 4 + ["email"] * 2 + ["seo"], "clv": [120, 60, 30, 30, 45, 15, 9.0]}
    )
    table = channel_economics(customers, {"ads": 200.0, "email": 20.0, "tv": 500.0})
    ads = table.loc["ads"]
    assert ads["customers"] == 4 and ads["cac"] == 50.0
    assert ads["clv_mean"] == 60.0 and ads["clv_to_cac"] == pytest.approx(1.2)
    assert ads["affordable_cpa"] == pytest.approx(20.0)  # 60 / 3
    assert ads["spend_limit"] == pytest.approx(80.0)  # 4 customers × 20
    email = table.loc["email"]
    assert email["cac"] == 10.0 and email["clv_to_cac"] == pytest.approx(3.0)
    assert channel_economics(customers, {"email": 20.0}, target_ratio=2)["affordable_cpa"][
        "email"
    ] == pytest.approx(15.0)
    assert np.isinf(table.loc["tv", "cac"]) and table.loc["tv", "customers"] == 0  # spend, no one
    assert np.isnan(table.loc["seo", "cac"])  # customers, no spend known
    with pytest.raises(InputError, match="target_ratio"):
        channel_economics(customers, {"ads": 1.0}, target_ratio=0)


def test_payback_months_from_the_value_curves():
    log = _log()
    acq = acquisition(log)
    customers = acq.assign(clv=[90.0, 60.0, 150.0])
    curves = retention_curves(log, by="channel", observation_end="2024-04-30")
    # ads: a and c → cumulative value per customer 55, 65, 30 (a only), 60 (a only)
    table = channel_economics(customers, {"ads": 2 * 60.0, "email": 2.0}, curves=curves)
    assert table.loc["ads", "cac"] == 60.0
    assert table.loc["ads", "payback_months"] == 1.0  # 65 >= 60 at tenure 1
    assert table.loc["email", "payback_months"] == 0.0  # b's first month (10) covers CAC 2
    high = channel_economics(customers, {"ads": 2 * 200.0}, curves=curves)
    assert np.isnan(high.loc["ads", "payback_months"])  # never reached in the history


def test_monthly_spend_gives_cac_per_channel_and_cohort():
    customers = acquisition(_log()).assign(clv=[90.0, 60.0, 150.0])
    spend = pd.DataFrame(
        {
            "channel": ["ads", "ads", "email"],
            "month": ["2024-01", "2024-03", "2024-01"],
            "spend": [45.0, 50.0, 30.0],
        }
    )
    table = channel_economics(customers, spend)
    assert table.loc[("ads", "2024-01"), "cac"] == 45.0
    assert table.loc[("ads", "2024-03"), "clv_to_cac"] == pytest.approx(3.0)
    assert table.loc[("email", "2024-01"), "affordable_cpa"] == pytest.approx(20.0)
