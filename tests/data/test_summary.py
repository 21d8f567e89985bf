"""RFM summary and calibration/holdout split: CDNOW reference, hand-computed cases, a pandas oracle."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from ltvkit import InputError
from ltvkit.data import datasets
from ltvkit.data.summary import calibration_holdout, rfm_summary, summary_statistics
from ltvkit.data.synthetic import simulate_transactions
from ltvkit.data.transactions import Transactions, read_transactions


@pytest.fixture(scope="module")
def cdnow_split() -> pd.DataFrame:
    return calibration_holdout(datasets.load_cdnow(), "1997-09-30", freq="W")


def test_cdnow_calibration_reproduces_reference_summary(cdnow_split, cdnow_summary):
    """Fader, Hardie & Lee (2005) CDNOW sample: the published calibration summary, per customer."""
    assert len(cdnow_split) == 2357
    assert cdnow_split.index.tolist() == cdnow_summary.index.tolist()
    assert int(cdnow_split["frequency"].sum()) == 2457
    np.testing.assert_array_equal(cdnow_split["frequency"], cdnow_summary["frequency"])
    for col in ("recency", "T"):
        np.testing.assert_allclose(cdnow_split[col].round(2), cdnow_summary[col], atol=1e-9)


def test_cdnow_holdout_counts(cdnow_split):
    """1,882 repeat purchase-days in weeks 40-78 (REFERENCES.md); holdout is 273 days = 39 weeks."""
    assert int(cdnow_split["frequency_holdout"].sum()) == 1882
    assert (cdnow_split["duration_holdout"] == 39.0).all()
    assert cdnow_split.attrs["observation_end"] == "1998-06-30"


def test_cdnow_holdout_revenue_is_frequency_times_mean(cdnow_split):
    """monetary_value_holdout averages purchase days, so their product is the holdout revenue."""
    split = cdnow_split
    log = datasets.load_cdnow().to_pandas()
    holdout = log[log["ts"] > pd.Timestamp("1997-09-30 23:59:59", tz="UTC")]
    revenue = holdout.groupby("customer_id")["amount"].sum()
    product = split["frequency_holdout"] * split["monetary_value_holdout"]
    np.testing.assert_allclose(product.reindex(revenue.index), revenue, rtol=1e-12)
    assert (product.drop(revenue.index) == 0).all()


def test_cdnow_monetary_value_matches_zbar(cdnow_split, cdnow_spend):
    """Mean repeat spend equals the published zbar to half a cent (the file rounds halves up)."""
    diff = (cdnow_split["monetary_value"] - cdnow_spend["monetary_value"]).abs()
    assert diff.max() <= 0.005 + 1e-9
    repeaters = cdnow_split["frequency"] > 0
    assert repeaters.sum() == 946
    assert round(cdnow_split.loc[repeaters, "monetary_value"].mean(), 2) == 35.08
    assert (cdnow_split.loc[~repeaters, "monetary_value"] == 0).all()


def _log(rows):
    customer, ts, amount = zip(*rows)
    return pd.DataFrame({"customer_id": customer, "ts": pd.to_datetime(ts), "amount": amount})


HAND = _log(
    [
        ("a", "2024-01-01 08:00", 10.0),
        ("a", "2024-01-01 20:00", 5.0),  # same day as the first: merges into it
        ("a", "2024-01-11 00:00", 20.0),
        ("a", "2024-01-11 23:59", 4.0),  # merges: that period is 24
        ("a", "2024-03-01 12:00", 36.0),
        ("b", "2024-02-01 00:00", 7.0),
        ("c", "2024-03-02 00:00", 1.0),
    ]
)


def test_hand_computed_days():
    s = rfm_summary(HAND, freq="D")
    a = s.loc["a"]
    assert a["frequency"] == 2
    assert a["recency"] == 60.0  # 2024-01-01 -> 2024-03-01 (leap year)
    assert a["T"] == 61.0  # observation end defaults to the last day, 2024-03-02
    assert a["monetary_value"] == pytest.approx((24 + 36) / 2)
    assert a["n_orders"] == 5
    assert a["total_revenue"] == pytest.approx(75.0)
    assert a["first_purchase"] == pd.Timestamp("2024-01-01", tz="UTC")  # the day (period)
    assert a["last_purchase"] == pd.Timestamp("2024-03-01", tz="UTC")
    assert s.loc["b", ["frequency", "recency", "T", "monetary_value"]].tolist() == [0, 0, 30, 0]
    assert s.loc["c", "T"] == 0.0
    assert s.index.tolist() == ["a", "b", "c"]


@pytest.mark.parametrize(("freq", "days"), [("W", 7.0), ("M", 365.25 / 12)])
def test_units_scale_days(freq, days):
    by_day = rfm_summary(HAND, freq="D")
    other = rfm_summary(HAND, freq=freq)
    np.testing.assert_allclose(other["recency"], by_day["recency"] / days)
    np.testing.assert_allclose(other["T"], by_day["T"] / days)
    np.testing.assert_array_equal(other["frequency"], by_day["frequency"])
    assert other.attrs["freq"] == freq


def test_observation_end_excludes_and_warns():
    with pytest.warns(UserWarning, match=r"2 transaction row\(s\) after observation_end 2024-02-29"):
        s = rfm_summary(HAND, freq="D", observation_end="2024-02-29")
    assert s.attrs["rows_after_end"] == 2
    assert "c" not in s.index  # first purchase after the end
    assert s.loc["a", "frequency"] == 1
    assert s.loc["a", "T"] == 59.0


def test_observation_end_of_transactions_is_used():
    tx = read_transactions(HAND, customer="customer_id", date="ts", amount="amount",
                           observation_end="2024-02-15")
    s = rfm_summary(tx, freq="D")
    assert s.attrs["observation_end"] == "2024-02-15"
    assert s.loc["a", "T"] == 45.0
    assert s.attrs["rows_after_end"] == 0  # the reader already excluded and reported them


def test_without_amount_has_no_money_columns():
    s = rfm_summary(HAND.drop(columns="amount"))
    assert "monetary_value" not in s.columns and "total_revenue" not in s.columns
    assert s.loc["a", "frequency"] == 2
    split = calibration_holdout(HAND.drop(columns="amount"), "2024-01-31")
    assert "monetary_value_holdout" not in split.columns


def test_calibration_holdout_hand_computed():
    s = calibration_holdout(HAND, calibration_end="2024-01-31", observation_end="2024-03-02", freq="D")
    assert s.index.tolist() == ["a"]  # b and c start after the calibration end
    a = s.loc["a"]
    assert (a["frequency"], a["recency"], a["T"]) == (1, 10.0, 30.0)
    assert a["monetary_value"] == pytest.approx(24.0)
    assert (a["frequency_holdout"], a["monetary_value_holdout"]) == (1, pytest.approx(36.0))
    assert a["duration_holdout"] == 31.0


def _pandas_oracle(log: pd.DataFrame, end: pd.Timestamp, unit: float) -> pd.DataFrame:
    """Straightforward pandas implementation of the BTYD summary (day periods)."""
    log = log[log["ts"] < end + pd.Timedelta(days=1)]
    days = log.assign(day=log["ts"].dt.floor("D")).groupby(["customer_id", "day"])["amount"].sum()
    days = days.reset_index()
    first = days.groupby("customer_id")["day"].transform("min")
    repeat = days[days["day"] > first]
    out = pd.DataFrame(
        {
            "frequency": days.groupby("customer_id").size() - 1,
            "recency": (days.groupby("customer_id")["day"].max()
                        - days.groupby("customer_id")["day"].min()).dt.days / unit,
            "T": (end - days.groupby("customer_id")["day"].min()).dt.days / unit,
        }
    )
    out["monetary_value"] = repeat.groupby("customer_id")["amount"].mean().reindex(out.index).fillna(0.0)
    return out


def test_matches_pandas_oracle_on_synthetic_log():
    log = simulate_transactions(3000, seed=7, duration_weeks=40)
    end = pd.Timestamp("2024-08-31", tz="UTC")
    with pytest.warns(UserWarning, match="after observation_end"):
        s = rfm_summary(log, freq="W", observation_end=end)
    expected = _pandas_oracle(log, end, 7.0)
    assert s.index.tolist() == expected.index.tolist()
    np.testing.assert_array_equal(s["frequency"], expected["frequency"])
    for col in ("recency", "T", "monetary_value"):
        np.testing.assert_allclose(s[col], expected[col], rtol=1e-9, atol=1e-9)


def test_customer_id_kinds_give_the_same_summary():
    """Compact integer ids are used as slots; sparse, negative and text ids are numbered by DuckDB."""
    log = simulate_transactions(500, seed=11, duration_weeks=30)
    base = rfm_summary(log, freq="D")
    for ids in (log["customer_id"] * 10**12 - 7, -log["customer_id"], log["customer_id"].astype(str)):
        other = rfm_summary(log.assign(customer_id=ids), freq="D")
        order = np.argsort(base.index.map(dict(zip(log["customer_id"], ids))).to_numpy(), kind="stable")
        expected = base.iloc[order]
        assert other.index.tolist() == sorted(set(ids))
        for col in base.columns:
            np.testing.assert_array_equal(other[col].to_numpy(), expected[col].to_numpy())


def test_days_before_1970_are_whole_utc_days():
    log = _log([("x", "1969-12-31 23:00", 1.0), ("x", "1970-01-01 01:00", 2.0),
                ("x", "1969-12-31 01:00", 4.0)])
    s = rfm_summary(log, freq="D")
    assert (s.loc["x", "frequency"], s.loc["x", "recency"], s.loc["x", "T"]) == (1, 1.0, 1.0)
    assert s.loc["x", "first_purchase"] == pd.Timestamp("1969-12-31", tz="UTC")
    assert s.loc["x", "monetary_value"] == 2.0 and s.loc["x", "n_orders"] == 3


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"freq": "Y"}, "freq must be one of"),
        ({"observation_end": "2023-12-31"}, "before the first purchase"),
        ({"observation_end": "not a date"}, "not a date|cannot read"),
    ],
)
def test_bad_arguments_raise_input_error(kwargs, message):
    with pytest.raises(InputError, match=message):
        rfm_summary(HAND, **kwargs)


def test_bad_inputs_raise_input_error():
    with pytest.raises(InputError, match=r"lack column\(s\) \['ts'\]"):
        rfm_summary(HAND.rename(columns={"ts": "date"}))
    with pytest.raises(InputError, match="expected a Transactions object"):
        rfm_summary([1, 2, 3])
    table = pa.Table.from_pandas(HAND, preserve_index=False)
    gap = table.set_column(2, "amount", pa.array([1.0, None, 2.0, 3.0, 4.0, 5.0, 6.0]))
    with pytest.raises(InputError, match="1 row.* have no amount; read the log with"):
        rfm_summary(Transactions(gap))
    with pytest.raises(InputError, match="must be before the observation end"):
        calibration_holdout(HAND, "2024-03-02")
    with pytest.raises(InputError, match="no customer made a first purchase"):
        calibration_holdout(HAND.iloc[5:], "2024-01-15", "2024-03-02")


def test_summary_statistics_of_cdnow():
    """Headline figures of the CDNOW sample log (REFERENCES.md data facts)."""
    stats = summary_statistics(rfm_summary(datasets.load_cdnow()))
    assert (stats["customers"], stats["orders"]) == (2357, 6919)
    assert stats["mean_frequency"] * 2357 + 2357 == pytest.approx(6696)  # customer-days
    assert (stats["first_date"], stats["last_date"]) == ("1997-01-01", "1998-06-30")
    assert stats["revenue"] == pytest.approx(244091.94)
    assert stats["repeat_customers"] == 1139 and stats["repeat_share"] == pytest.approx(1139 / 2357)
    no_amount = summary_statistics(rfm_summary(HAND.drop(columns="amount")))
    assert "revenue" not in no_amount and no_amount["orders"] == 7
