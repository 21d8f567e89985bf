"""Next-purchase windows in calendar dates, contact-gap rules, habits and seasonality."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import ltvkit
from ltvkit.errors import InputError
from ltvkit.timing import (
    next_contact_dates,
    next_purchase_dates,
    next_purchase_window,
    purchase_habits,
    purchase_rates,
    purchase_seasonality,
)

CDNOW_PARAMS = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}


@pytest.fixture(scope="module")
def cdnow_tx():
    return ltvkit.datasets.load_cdnow()


# ---------------------------------------------------------------- next purchase in dates


def test_quantiles_become_dates_after_the_observation_end():
    q = pd.DataFrame(
        {"q10": [0.0, 1.0, 2.0], "q90": [1.5, np.inf, 12.0]}, index=pd.Index([7, 8, 9])
    )
    weeks = next_purchase_dates(q, "1997-09-30", unit="W")
    assert weeks["next_purchase_q10"].dt.strftime("%Y-%m-%d").tolist() == [
        "1997-09-30",
        "1997-10-07",
        "1997-10-14",
    ]
    assert pd.isna(weeks.loc[8, "next_purchase_q90"])  # never reached: may have dropped out
    assert weeks.loc[7, "next_purchase_q90"] == pd.Timestamp("1997-10-10")  # 10.5 days, floored
    months = next_purchase_dates(q, "2024-01-01", unit="M")
    # 12 months of 365.25/12 days = 365.25 days -> 2024 is a leap year: 2024-12-31
    assert months.loc[9, "next_purchase_q90"] == pd.Timestamp("2024-12-31")
    days = next_purchase_dates(q, pd.Timestamp("2024-01-01 15:00", tz="UTC"), unit="D")
    assert days.loc[9, "next_purchase_q10"] == pd.Timestamp("2024-01-03")


def test_bad_units_and_quantiles_are_input_errors():
    q = pd.DataFrame({"q50": [1.0]})
    with pytest.raises(InputError, match="unit"):
        next_purchase_dates(q, "2024-01-01", unit="Y")
    with pytest.raises(InputError, match="not a date"):
        next_purchase_dates(q, "someday", unit="W")
    with pytest.raises(InputError, match="negative"):
        next_purchase_dates(-q, "2024-01-01", unit="W")


def _simulate_bgnbd(n, T, r, alpha, a, b, seed):
    """Simulate BG/NBD customers observed over (0, T]: summary + waiting time to the next purchase.

    Fader, Hardie & Lee (2005): purchases at Poisson rate lambda ~ Gamma(r, alpha); after each
    repeat purchase the customer drops out with probability p ~ Beta(a, b). The wait from T to
    the next purchase is +inf for customers who dropped out before T.
    """
    rng = np.random.default_rng(seed)
    lam = rng.gamma(r, 1.0 / alpha, n)
    p = rng.beta(a, b, n)
    x = np.zeros(n, dtype=np.int64)
    tx = np.zeros(n)
    t = np.zeros(n)
    wait = np.full(n, np.inf)
    open_ = np.ones(n, dtype=bool)  # alive and still inside (0, T]
    while open_.any():  # one step per purchase number, vectorised over customers
        idx = np.flatnonzero(open_)
        t[idx] += rng.exponential(1.0 / lam[idx])
        after = idx[t[idx] > T]
        wait[after] = t[after] - T  # alive at T: the first arrival after T is the next purchase
        bought = idx[t[idx] <= T]
        x[bought] += 1
        tx[bought] = t[bought]
        died = bought[rng.random(bought.size) < p[bought]]
        open_[after] = False
        open_[died] = False
    summary = pd.DataFrame({"frequency": x, "recency": tx, "T": np.full(n, float(T))})
    return summary, wait, np.isfinite(wait)


def test_next_purchase_window_covers_80_percent_in_simulation():
    """Share of simulated BG/NBD customers buying inside (q10, q90] is 80% (± 3 s.e.).

    ``next_purchase_time`` is the model's unconditional predictive distribution (it puts mass
    1 - P(alive) at +inf), so the calibration holds for every group selected on the observed
    data: here the customers whose q90 is finite (P(alive) > 0.9). Among customers alive at
    T — which the model cannot see — the same check uses the model's CDF rescaled by
    P(alive) (below).
    """
    model = ltvkit.BGNBD.from_params(**CDNOW_PARAMS)
    summary, wait, alive = _simulate_bgnbd(20_000, 39.0, **CDNOW_PARAMS, seed=11)
    q = model.next_purchase_time(summary, q=(0.1, 0.5, 0.9))
    finite = np.isfinite(q["q90"].to_numpy())
    assert finite.sum() > 5_000
    inside = (wait > q["q10"].to_numpy()) & (wait <= q["q90"].to_numpy())
    share = inside[finite].mean()
    assert abs(share - 0.8) < 3 * np.sqrt(0.8 * 0.2 / finite.sum()), share
    median_ok = np.isfinite(q["q50"].to_numpy())
    below = (wait <= q["q50"].to_numpy())[median_ok].mean()
    assert abs(below - 0.5) < 3 * np.sqrt(0.25 / median_ok.sum()), below
    # the same among repeat buyers, whose P(alive) < 1 shapes the quantiles (~4,900 of them)
    repeat = median_ok & (summary["frequency"].to_numpy() > 0)
    below = (wait <= q["q50"].to_numpy())[repeat].mean()
    assert abs(below - 0.5) < 3 * np.sqrt(0.25 / repeat.sum()), below

    # among the customers alive at T, the window given alive: the model's CDF divided by
    # P(alive) is 1 - ((alpha+T)/(alpha+T+tau))^(r+x) (FHL 2005), inverted at 0.1 and 0.9
    A = CDNOW_PARAMS["r"] + summary["frequency"].to_numpy()
    rate = CDNOW_PARAMS["alpha"] + summary["T"].to_numpy()
    tau = rate * np.expm1(-np.log1p(-np.array([[0.1], [0.9]])) / A)
    inside_alive = ((wait > tau[0]) & (wait <= tau[1]))[alive].mean()
    assert abs(inside_alive - 0.8) < 3 * np.sqrt(0.16 / alive.sum()), inside_alive


def test_next_purchase_window_reads_end_and_unit_from_the_summary(cdnow_tx):
    with pytest.warns(UserWarning, match="left out"):
        summary = ltvkit.rfm_summary(cdnow_tx, freq="W", observation_end="1997-09-30")
    model = ltvkit.BGNBD.from_params(**CDNOW_PARAMS)
    window = next_purchase_window(model, summary)
    q = model.next_purchase_time(summary)
    finite = np.isfinite(q["q10"])
    days = np.floor(q.loc[finite, "q10"] * 7)
    expected = pd.Timestamp("1997-09-30") + pd.to_timedelta(days, unit="D")
    assert (window.loc[finite, "next_purchase_q10"] == expected).all()
    assert window.loc[~finite, "next_purchase_q10"].isna().all()
    assert window["next_purchase_q90"].isna().sum() == np.isinf(q["q90"]).sum()
    bare = summary[["frequency", "recency", "T"]].copy()
    bare.attrs = {}
    with pytest.raises(InputError, match="observation_end"):
        next_purchase_window(model, bare)


# ---------------------------------------------------------------- contact dates


def test_contact_gap_rules():
    idx = ["early", "later", "overdue", "unknown", "recently_contacted", "long_ago"]
    target = pd.Series(
        pd.to_datetime(
            ["2024-03-05", "2024-04-10", "2024-01-15", None, "2024-03-02", "2024-03-20"]
        ),
        index=idx,
    )
    last = pd.Series(
        pd.to_datetime(["2024-02-25", "2024-03-30", "2024-01-01", "2024-02-28", None]),
        index=["early", "later", "unknown", "recently_contacted", "long_ago"],
    )
    out = next_contact_dates(target, "2024-03-01", last, min_gap_days=14)
    assert out.dt.strftime("%m-%d").to_dict() == {
        "early": "03-10",  # wanted 03-05 but contacted 02-25: 14 days later
        "later": "04-13",  # wanted 04-10 but contacted 03-30
        "overdue": "03-01",  # target in the past: contact today
        "unknown": "03-01",  # no expected purchase: today (last contact long enough ago)
        "recently_contacted": "03-13",  # 02-28 + 14 days
        "long_ago": "03-20",  # never contacted (NaT): the target itself
    }
    gaps = (out - last.reindex(out.index)).dt.days.dropna()
    assert (gaps >= 14).all()
    assert (out >= pd.Timestamp("2024-03-01")).all()


def test_contact_lead_days_and_configurable_gap():
    target = pd.Series(pd.to_datetime(["2024-03-20"]), index=["a"])
    last = pd.Series(pd.to_datetime(["2024-03-10"]), index=["a"])
    assert next_contact_dates(target, "2024-03-01", lead_days=5).iloc[0] == pd.Timestamp(
        "2024-03-15"
    )
    out = next_contact_dates(target, "2024-03-01", last, min_gap_days=30, lead_days=5)
    assert out.iloc[0] == pd.Timestamp("2024-04-09")
    aware = pd.Series(pd.to_datetime(["2024-03-20 23:30"]).tz_localize("UTC"), index=["a"])
    assert next_contact_dates(aware, "2024-03-01").iloc[0] == pd.Timestamp("2024-03-20")
    with pytest.raises(InputError, match="min_gap_days"):
        next_contact_dates(target, "2024-03-01", min_gap_days=-1)


# ---------------------------------------------------------------- habits and seasonality


def _timed_log():
    return pd.DataFrame(
        {
            "customer_id": ["a", "a", "a", "a", "b", "b", "c"],
            "ts": pd.to_datetime(
                [
                    "2024-01-02 20:15",  # Tuesday
                    "2024-01-09 20:40",  # Tuesday
                    "2024-01-09 21:00",  # same day: no new gap
                    "2024-01-27 08:00",  # Saturday
                    "2024-01-06 10:00",  # Saturday
                    "2024-01-07 11:00",  # Sunday: tie with Saturday -> Saturday (earlier)
                    "2024-01-03 00:00",
                ],
                utc=True,
            ),
            "amount": [10.0, 5.0, 5.0, 20.0, 7.0, 8.0, 1.0],
        }
    )


def test_purchase_habits_on_a_hand_made_log():
    habits = purchase_habits(_timed_log())
    assert habits.loc["a", "n_orders"] == 4
    assert habits.loc["a", "avg_days_between"] == pytest.approx(25 / 2)  # 3 days, 2 gaps
    assert habits.loc["b", "avg_days_between"] == pytest.approx(1.0)
    assert np.isnan(habits.loc["c", "avg_days_between"])
    assert habits["preferred_weekday"].to_dict() == {
        "a": "Tuesday",
        "b": "Saturday",
        "c": "Wednesday",
    }
    assert habits["preferred_hour"].to_dict() == {"a": 20, "b": 10, "c": 0}


def test_habits_without_times_have_no_preferred_hour(cdnow_tx):
    habits = purchase_habits(cdnow_tx)
    assert len(habits) == 2357
    assert habits["preferred_hour"].isna().all()
    assert (
        habits["preferred_weekday"]
        .isin(["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"])
        .all()
    )
    assert habits["n_orders"].sum() == 6919
    # the gap is measured between distinct purchase days: one-day buyers have none
    summary = ltvkit.rfm_summary(cdnow_tx, freq="D")
    repeaters = summary["frequency"] > 0
    expected = summary["recency"][repeaters] / summary["frequency"][repeaters]
    np.testing.assert_allclose(habits["avg_days_between"][repeaters], expected)
    assert habits["avg_days_between"][~repeaters].isna().all()


def test_purchase_rates_compare_the_last_window_with_before():
    log = pd.DataFrame(
        {
            "customer_id": ["old", "old", "old", "new"],
            "ts": pd.to_datetime(["2024-01-01", "2024-01-11", "2024-03-30", "2024-03-25"]),
        }
    )
    rates = purchase_rates(log, window_days=30, observation_end="2024-03-31")
    assert rates.loc["old", "rate_recent"] == pytest.approx(1 / 30)
    # window starts 03-02: 2 orders in the 61 days from 01-01 to 03-02
    assert rates.loc["old", "rate_before"] == pytest.approx(2 / 61)
    assert np.isnan(rates.loc["new", "rate_before"])


def test_seasonality_on_cdnow(cdnow_tx):
    by_month = purchase_seasonality(cdnow_tx, by="month")
    assert by_month["orders"].sum() == 6919
    assert by_month["revenue"].sum() == pytest.approx(244091.94)
    assert by_month["order_share"].sum() == pytest.approx(1.0)
    # every first purchase was in 1997 Q1: January-March are the busiest months
    assert set(by_month["orders"].nlargest(3).index) == {"January", "February", "March"}
    by_day = purchase_seasonality(cdnow_tx, by="weekday")
    assert by_day.index[0] == "Monday" and len(by_day) == 7
    assert by_day["revenue_share"].sum() == pytest.approx(1.0)
    with pytest.raises(InputError, match="no time of day"):
        purchase_seasonality(cdnow_tx, by="hour")


def test_hourly_profile_lists_every_hour():
    by_hour = purchase_seasonality(_timed_log(), by="hour")
    assert len(by_hour) == 24 and by_hour["orders"].sum() == 7
    assert by_hour.loc[20, "orders"] == 2 and by_hour.loc[20, "customers"] == 1
    assert by_hour.loc[3, "orders"] == 0
    with pytest.raises(InputError, match="weekday"):
        purchase_seasonality(_timed_log(), by="season")
