"""lifetime_value: brute-force sums, closed forms with a constant-rate model, monotonicity, intervals."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from ltvkit import BGNBD, GammaGamma, InputError, lifetime_value
from ltvkit.value import UNIT_DAYS

BG = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
GG = {"p": 6.25, "q": 3.74, "gamma": 15.44}


@pytest.fixture(scope="module")
def models():
    return BGNBD.from_params(**BG), GammaGamma.from_params(**GG)


@pytest.fixture(scope="module")
def customers(cdnow_spend):
    return cdnow_spend.iloc[::40]


def test_matches_brute_force_loop(models, customers):
    """Customer by customer, month by month: incremental expected purchases x spend, discounted."""
    bg, gg = models
    got = lifetime_value(bg, gg, customers, horizon=6, unit="M", discount_rate=0.02, margin=0.3)
    month = 365.25 / 12 / 7  # weeks
    for cid in customers.head(8).index:
        one = customers.loc[[cid]]
        spend = float(gg.expected_spend(one).iloc[0])
        value = 0.0
        for k in range(1, 7):
            bought = (float(bg.expected_purchases(k * month, one).iloc[0])
                      - float(bg.expected_purchases((k - 1) * month, one).iloc[0]))
            value += 0.3 * spend * bought / 1.02**k
        assert got[cid] == pytest.approx(value, rel=1e-12)
    assert got.name == "clv" and got.index.equals(customers.index)


def test_undiscounted_value_telescopes(models, customers):
    """With no discounting the sum telescopes to spend x expected purchases over the horizon."""
    bg, gg = models
    got = lifetime_value(bg, gg, customers, horizon=24, unit="M", discount_rate=0.0)
    expected = gg.expected_spend(customers) * bg.expected_purchases(24 * 365.25 / 12 / 7, customers)
    np.testing.assert_allclose(got, expected, rtol=1e-10)


class ConstantRate:
    """A purchase model with a known answer: Poisson purchases at a fixed rate per day, never churn."""

    param_names = ("rate",)

    def __init__(self, rate):
        self.rate = rate

    def expected_purchases(self, t, data):
        return pd.Series(self.rate * t * np.ones(len(data)), index=data.index)


def test_any_purchase_model_and_unit_conversion(models):
    """Closed form for a constant rate: spend x rate x days per period x sum of discount factors."""
    _, gg = models
    d = pd.DataFrame({"frequency": [0, 3], "recency": [0.0, 20.0], "T": [30.0, 30.0],
                      "monetary_value": [0.0, 50.0]})
    spend = gg.expected_spend(d).to_numpy()
    for unit in ("D", "W", "M", "Q", "Y"):
        got = lifetime_value(ConstantRate(0.1), gg, d, horizon=5, unit=unit, discount_rate=0.03,
                             model_unit="D")
        factor = sum(1.03**-k for k in range(1, 6))
        np.testing.assert_allclose(got, spend * 0.1 * UNIT_DAYS[unit] * factor, rtol=1e-12)
    weekly = lifetime_value(ConstantRate(0.7), gg, d, horizon=2, unit="W", discount_rate=0.0, model_unit="W")
    np.testing.assert_allclose(weekly, spend * 0.7 * 2, rtol=1e-12)


def test_discounting_margin_and_horizon(models, customers):
    bg, gg = models
    base = lifetime_value(bg, gg, customers, horizon=12, discount_rate=0.0)
    discounted = lifetime_value(bg, gg, customers, horizon=12, discount_rate=0.05)
    assert (discounted < base).all()
    half = lifetime_value(bg, gg, customers, horizon=12, discount_rate=0.0, margin=0.5)
    np.testing.assert_allclose(half, 0.5 * base, rtol=1e-12)
    values = [lifetime_value(bg, gg, customers, horizon=h, discount_rate=0.01) for h in (1, 6, 12, 36)]
    for shorter, longer in itertools.pairwise(values):
        assert (longer >= shorter).all()


def test_intervals_cover_point_estimate(cdnow_summary, cdnow_spend):
    bg = BGNBD().fit(cdnow_summary)
    gg = GammaGamma().fit(cdnow_spend)
    d = cdnow_spend.iloc[:30]
    point = lifetime_value(bg, gg, d)
    out = lifetime_value(bg, gg, d, interval=0.9, n_draws=100, seed=1)
    assert list(out.columns) == ["mean", "low", "high"]
    assert (out["low"] < point).all() and (point < out["high"]).all()
    assert "parameter uncertainty" in out.attrs["uncertainty"] and "purchase and spend" in out.attrs["uncertainty"]
    again = lifetime_value(bg, gg, d, interval=0.9, n_draws=100, seed=1)
    pd.testing.assert_frame_equal(out, again)


@pytest.mark.parametrize("kwargs, match", [
    ({"unit": "fortnight"}, "unit must be one of"),
    ({"model_unit": "X"}, "model_unit must be one of"),
    ({"horizon": 0}, "horizon must be a whole number"),
    ({"horizon": 2.5}, "horizon must be a whole number"),
    ({"discount_rate": -0.1}, "discount_rate must be >= 0"),
    ({"margin": float("nan")}, "margin must be"),
    ({"interval": 1.5}, "interval must be between 0 and 1"),
])
def test_bad_arguments(models, customers, kwargs, match):
    bg, gg = models
    with pytest.raises(InputError, match=match):
        lifetime_value(bg, gg, customers, **kwargs)


def test_shared_histories_keep_each_customers_spend(models):
    """Customers with the same purchase history but different spend share the purchase part only."""
    bg, gg = models
    d = pd.DataFrame({"frequency": [2, 2, 2], "recency": [30.0, 30.0, 30.0], "T": [39.0] * 3,
                      "monetary_value": [10.0, 40.0, 10.0]}, index=["a", "b", "c"])
    got = lifetime_value(bg, gg, d)
    one = {k: lifetime_value(bg, gg, d.loc[[k]]).iloc[0] for k in d.index}
    np.testing.assert_allclose(got.to_numpy(), [one["a"], one["b"], one["c"]], rtol=1e-12)
    assert got["a"] == got["c"] < got["b"]
    ratio = got["b"] / got["a"]  # the purchase part cancels: the ratio of expected spends
    spend = gg.expected_spend(d)
    assert ratio == pytest.approx(spend["b"] / spend["a"], rel=1e-12)
