"""Top-down calculator: hand-computed values, payback, levers, projection, checks, log inputs."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

import ltvkit
from ltvkit.calculator import calculate, calculator_inputs
from ltvkit.errors import InputError

BASE = {"churn": 0.05, "arpu": 49.0, "margin": 0.7, "new_customers": 200.0, "spend": 15000.0}


def test_hand_computed_values():
    r = calculate(**BASE, discount_rate=0.01)
    m = 0.7 * 49  # 34.3 margin per month
    assert r.clv == pytest.approx(m / 0.05) == pytest.approx(686.0)
    assert (
        r.clv_discounted
        == pytest.approx(m * 1.01 / (0.01 + 0.05))
        == pytest.approx(577.38333, abs=1e-4)
    )
    assert r.cac == 75.0
    assert r.clv_to_cac == pytest.approx(577.38333 / 75, abs=1e-5)
    # cumulative expected discounted margin: 34.3, 66.56, 96.91 -> CAC 75 covered in month 3
    assert r.payback_months == 3
    assert r.max_cac == pytest.approx(577.38333 / 3, abs=1e-5)
    assert ltvkit.calculator.calculate is calculate


def test_discounted_clv_equals_the_defining_sum_and_is_below_the_annuity_shortcut():
    c, d, m = 0.08, 0.015, 30.0
    r = calculate(churn=c, arpu=m, new_customers=1, spend=0, discount_rate=d)
    t = np.arange(5000)
    assert r.clv_discounted == pytest.approx(np.sum(m * (1 - c) ** t / (1 + d) ** t), rel=1e-12)
    annuity = sum(m / (1 + d) ** k for k in range(round(1 / c)))  # 12.5 -> 12 months... shortcut
    lifetimes = np.arange(1, 5000)  # exact expectation over the geometric lifetime distribution
    p = c * (1 - c) ** (lifetimes - 1)
    value = m * (1 - (1 + d) ** -lifetimes) / (1 - 1 / (1 + d))
    assert np.sum(p * value) == pytest.approx(r.clv_discounted, rel=1e-9)
    assert annuity > r.clv_discounted
    assert calculate(churn=c, arpu=m, new_customers=1, spend=0).clv_discounted == pytest.approx(
        m / c
    )


def test_lifespan_and_purchases_per_month_are_alternatives():
    ref = calculate(**BASE)
    by_lifespan = calculate(**{**BASE, "churn": None}, lifespan=20)
    per_purchase = calculate(**{**BASE, "arpu": 24.5}, purchases_per_month=2)
    for r in (by_lifespan, per_purchase):
        assert r.clv == pytest.approx(ref.clv) and r.payback_months == ref.payback_months
    assert per_purchase.revenue_per_month == 49.0


def _brute_payback(cac, m, c, d):
    total, k = 0.0, 0
    while total < cac:
        if k > 100_000:
            return math.inf
        total += m * ((1 - c) / (1 + d)) ** k
        k += 1
    return k


@pytest.mark.parametrize(
    ("spend", "expected"),
    [(0, 0), (10, 1), (15, 2), (15.01, 3), (19.99, 11), (20, math.inf), (25, math.inf)],
)
def test_payback_by_hand(spend, expected):
    # 10 a month, churn 0.5: cumulative 20 (1 - 0.5^k) = 10, 15, 17.5, ... -> 20 (19.99 at k = 11)
    r = calculate(churn=0.5, arpu=10, new_customers=1, spend=spend)
    assert r.payback_months == expected
    if math.isfinite(expected):
        assert r.payback_months == _brute_payback(spend, 10, 0.5, 0)


@pytest.mark.parametrize("seed", range(5))
def test_payback_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    c, d, arpu = rng.uniform(0.01, 0.3), rng.uniform(0, 0.03), rng.uniform(5, 100)
    clv = arpu * (1 + d) / (d + c)
    spend = rng.uniform(0.05, 0.95) * clv
    r = calculate(churn=c, arpu=arpu, new_customers=1, spend=spend, discount_rate=d)
    assert r.payback_months == _brute_payback(spend, arpu, c, d)
    assert calculate(churn=1.0, arpu=arpu, new_customers=1, spend=arpu).payback_months == 1


def test_levers_hand_computed_and_ranked():
    r = calculate(**BASE)  # no discounting: CLV = 34.3 / 0.05 = 686
    lv = {x.name: x for x in r.levers}
    assert lv["churn"].clv == pytest.approx(34.3 / 0.045)
    assert lv["purchase_frequency"].clv == pytest.approx(34.3 * 1.1 / 0.05)
    assert lv["order_value"].clv == pytest.approx(34.3 * 1.1 / 0.05)
    assert lv["margin"].clv == pytest.approx(0.71 * 49 / 0.05)
    assert lv["churn"].change_pct == pytest.approx(1 / 0.9 - 1)
    assert [x.name for x in r.levers] == ["churn", "purchase_frequency", "order_value", "margin"]
    assert lv["margin"].label == "+1 point of margin"
    # with discounting the retention lever weakens: 34.3*1.01/0.055 < 1.1 * 34.3*1.01/0.06
    discounted = calculate(**BASE, discount_rate=0.01)
    assert [x.name for x in discounted.levers][:2] == ["purchase_frequency", "order_value"]
    capped = calculate(**{**BASE, "margin": 0.995})
    assert "capped at 100%" in {x.name: x for x in capped.levers}["margin"].label


def test_projection_hand_computed():
    r = calculate(**BASE, months=600)
    p = r.projection
    assert list(p["month"][:3]) == [1, 2, 3]
    np.testing.assert_allclose(p["active_customers"][:3], [200, 390, 570.5])
    np.testing.assert_allclose(p["lost_customers"][:3], [0, 10, 19.5])
    np.testing.assert_allclose(p["revenue"][:2], [9800, 19110])
    np.testing.assert_allclose(p["margin"][:2], [6860, 13377])
    np.testing.assert_allclose(p["cumulative_net_margin"][:2], [6860 - 15000, 6860 + 13377 - 30000])
    assert p["active_customers"].iloc[-1] == pytest.approx(200 / 0.05)  # steady state N / c
    assert len(calculate(**BASE).projection) == 24


def test_projection_what_if_and_starting_base():
    ten = calculate(**BASE, acquisition_multiplier=10).projection
    one = calculate(**BASE).projection
    np.testing.assert_allclose(ten["active_customers"], 10 * one["active_customers"])
    np.testing.assert_allclose(ten["acquisition_spend"], 150_000)
    base = calculate(**BASE, customers_at_start=1000, acquisition_multiplier=0).projection
    np.testing.assert_allclose(base["active_customers"][:2], [950, 902.5])
    assert (base["new_customers"] == 0).all()
    # recurrence A_t = 0.95 A_{t-1} + N holds for the whole horizon
    mixed = calculate(**BASE, customers_at_start=500).projection["active_customers"].to_numpy()
    np.testing.assert_allclose(mixed[1:], 0.95 * mixed[:-1] + 200)


def test_to_dict_is_strict_json():
    r = calculate(churn=0.5, arpu=10, new_customers=1, spend=0)
    d = r.to_dict()
    text = json.dumps(d, allow_nan=False)
    assert json.loads(text)["clv_to_cac"] is None  # CAC 0: ratio infinite
    assert {
        "clv",
        "clv_discounted",
        "cac",
        "clv_to_cac",
        "payback_months",
        "max_cac",
        "levers",
    } <= set(d)
    assert (
        calculate(churn=0.5, arpu=10, new_customers=1, spend=50).to_dict()["payback_months"] is None
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"churn": 0}, r"churn must be in \(0, 1\] \(share of active customers lost per month"),
        ({"churn": 1.5}, r"churn must be in \(0, 1\].*got 1.5"),
        ({"churn": float("nan")}, r"churn must be in \(0, 1\]"),
        ({"churn": "abc"}, r"churn must be in \(0, 1\].*got 'abc'"),
        ({"churn": None}, "give either churn .* or lifespan .*not neither"),
        ({"lifespan": 12}, "not both"),
        (
            {"churn": None, "lifespan": 0.5},
            r"lifespan must be >= 1 \(average months a customer stays",
        ),
        ({"arpu": 0}, r"arpu must be > 0"),
        ({"arpu": float("inf")}, r"arpu must be > 0"),
        ({"purchases_per_month": 0}, r"purchases_per_month must be > 0"),
        ({"margin": 0}, r"margin must be in \(0, 1\] \(gross margin as a share"),
        ({"margin": 70}, r"margin must be in \(0, 1\].*got 70"),
        ({"discount_rate": -0.01}, r"discount_rate must be in \[0, 1\)"),
        ({"discount_rate": 1}, r"discount_rate must be in \[0, 1\)"),
        ({"new_customers": 0}, r"new_customers must be > 0"),
        ({"spend": -1}, r"spend must be >= 0 \(marketing \+ sales spend per month"),
        ({"target_ratio": 0}, r"target_ratio must be > 0"),
        ({"acquisition_multiplier": -1}, r"acquisition_multiplier must be >= 0"),
        ({"customers_at_start": -5}, r"customers_at_start must be >= 0"),
        ({"months": 0}, "months must be a whole number from 1 to 600"),
        ({"months": 2.5}, "months must be a whole number from 1 to 600"),
    ],
)
def test_every_input_is_range_checked(change, message):
    with pytest.raises(InputError, match=message):
        calculate(**{**BASE, **change})


# ---------------------------------------------------------------------- inputs from a log
def _log(rows):
    frame = pd.DataFrame(rows, columns=["customer_id", "ts", "amount"])
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
    return frame


@pytest.fixture
def small_log():
    # Jan: a b c | Feb: a b d | Mar: a d e (b returns 5 in Mar) | Apr: a e f | May 1-10: a
    return _log(
        [
            ("a", "2025-01-05", 10),
            ("b", "2025-01-06", 20),
            ("c", "2025-01-07", 30),
            ("a", "2025-02-05", 10),
            ("b", "2025-02-06", 20),
            ("d", "2025-02-07", 40),
            ("d", "2025-02-20", 40),
            ("a", "2025-03-05", 10),
            ("d", "2025-03-07", 40),
            ("e", "2025-03-09", 60),
            ("b", "2025-03-10", -5),
            ("a", "2025-04-05", 10),
            ("e", "2025-04-09", 60),
            ("f", "2025-04-30", 100),
            ("a", "2025-05-10", 10),
        ]
    )


def test_inputs_from_a_small_log_by_hand(small_log):
    est = calculator_inputs(small_log)
    # window Feb..Apr (Jan = first month, May incomplete)
    assert (est.first_month, est.last_month, est.n_months) == ("2025-02", "2025-04", 3)
    # at risk: Jan {a,b,c} -> lost c; Feb {a,b,d} -> b had only a return in Mar, counts active;
    # Mar {a,d,e,b} -> lost d, b: 1 + 0 + 2 = 3 lost of 3 + 3 + 4 = 10 at risk
    assert est.churn == pytest.approx(3 / 10)
    # revenue Feb 110, Mar 105, Apr 170 over 3 + 4 + 3 = 10 active customer-months
    assert est.arpu == pytest.approx(385 / 10)
    assert est.active_customer_months == 10
    assert est.purchases_per_month == pytest.approx(10 / 10)  # invoices = positive rows: 4 + 3 + 3
    assert est.average_invoice == pytest.approx(385 / 10)
    assert est.median_invoice == pytest.approx(
        40.0
    )  # 10 20 40 40 10 40 60 10 60 100 -> sorted median
    assert est.new_customers == pytest.approx((1 + 1 + 1) / 3)  # d, e, f
    kwargs = est.calculator_kwargs()
    assert kwargs["arpu"] * kwargs["purchases_per_month"] == pytest.approx(est.arpu)
    assert calculator_inputs(small_log, months=1).first_month == "2025-04"


def test_inputs_from_cdnow_match_pandas(data_dir):
    tx = ltvkit.read_transactions(data_dir / "CDNOW_sample.txt", customer=0, date=2, amount=4)
    est = calculator_inputs(tx)
    df = tx.to_pandas()
    df["month"] = df["ts"].dt.tz_convert(None).dt.to_period("M")
    active = df.groupby("month")["customer_id"].agg(set)
    window = pd.period_range("1998-01", "1998-06", freq="M")
    lost = sum(len(active[m - 1] - active[m]) for m in window)
    at_risk = sum(len(active[m - 1]) for m in window)
    assert est.churn == pytest.approx(lost / at_risk)
    sel = df[df["month"].isin(window)]
    assert est.arpu == pytest.approx(sel["amount"].sum() / sum(len(active[m]) for m in window))
    assert est.median_invoice == pytest.approx(sel.loc[sel["amount"] > 0, "amount"].median())
    assert est.new_customers == 0  # CDNOW: one cohort, all first purchases in 1997 Q1


def test_inputs_errors(small_log):
    with pytest.raises(InputError, match="at least two complete calendar months"):
        calculator_inputs(small_log[small_log["ts"] < "2025-02-01"])
    no_amount = ltvkit.read_transactions(small_log, customer="customer_id", date="ts")
    with pytest.raises(InputError, match="needs a transaction log with amounts"):
        calculator_inputs(no_amount)
    with pytest.raises(InputError, match="months must be a whole number >= 1"):
        calculator_inputs(small_log, months=0)
