"""Planning forecasts: per-period expectations match the model, intervals, new-customer cohorts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import ltvkit
from ltvkit.errors import InputError
from ltvkit.forecast import forecast, period_bounds

# Fader, Hardie & Lee (2005) BG/NBD estimates on CDNOW, with a small covariance for intervals
PARAMS = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
COV = np.diag([0.0125, 0.378, 0.186, 0.704]) ** 2


@pytest.fixture(scope="module")
def model() -> ltvkit.BGNBD:
    return ltvkit.BGNBD.from_params(covariance=COV, **PARAMS)


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    return pd.DataFrame({"frequency": [0, 0, 2, 5, 2], "recency": [0.0, 0.0, 20.0, 35.0, 20.0],
                         "T": [39.0, 30.0, 39.0, 39.0, 39.0]})


def test_period_bounds_calendar_months_and_weeks() -> None:
    b = period_bounds("1998-07-01", 2)
    assert [str(d.date()) for d in b] == ["1998-07-01", "1998-08-01", "1998-09-01"]
    w = period_bounds("2024-01-01", 2, "W")
    assert (w[1] - w[0]).days == 7
    with pytest.raises(InputError, match="'M' \\(months\\) or 'W'"):
        period_bounds("2024-01-01", 2, "Q")
    with pytest.raises(InputError, match="horizon"):
        period_bounds("2024-01-01", 0)


def test_existing_base_equals_differences_of_conditional_expectations(model, data) -> None:
    spend = np.array([10.0, 20.0, 30.0, 40.0, 50.0])
    fc = forecast(model, data, spend, "1997-10-01", horizon=3)
    # period ends: 31 Oct (31 days), 30 Nov (61), 31 Dec (92) -> model time in weeks
    cum = np.stack([model.expected_purchases(days / 7, data).to_numpy() for days in (31, 61, 92)])
    per_period = np.diff(np.vstack([np.zeros(len(data)), cum]), axis=0)
    assert fc["purchases"].to_numpy() == pytest.approx(per_period.sum(axis=1))
    assert fc["revenue"].to_numpy() == pytest.approx(per_period @ spend)
    assert fc["orders"].equals(fc["purchases"])  # no new customers assumed
    assert fc["period_start"].dt.strftime("%Y-%m-%d").tolist() == ["1997-10-01", "1997-11-01", "1997-12-01"]


def test_intervals_contain_the_point_and_widen_with_uncertainty(model, data) -> None:
    spend = np.full(len(data), 30.0)
    fc = forecast(model, data, spend, "1997-10-01", horizon=4)
    for name in ("purchases", "orders", "revenue"):
        assert (fc[f"{name}_low"] <= fc[name]).all() and (fc[name] <= fc[f"{name}_high"]).all()
        assert (fc[f"{name}_high"] > fc[f"{name}_low"]).all()
    wider = ltvkit.BGNBD.from_params(covariance=COV * 9, **PARAMS)
    fc_wide = forecast(wider, data, spend, "1997-10-01", horizon=4)
    width = (fc["revenue_high"] - fc["revenue_low"]).sum()
    assert (fc_wide["revenue_high"] - fc_wide["revenue_low"]).sum() > 2 * width
    assert "parameter uncertainty" in fc.attrs["uncertainty"]


def test_interval_agrees_with_parameter_draws(model, data) -> None:
    """The delta-method interval of a period total matches the spread over parameter draws."""
    fc = forecast(model, data, np.ones(5), "1997-10-01", horizon=1)
    draws = model.sample_params(600, seed=1)
    totals = np.array([
        ltvkit.BGNBD.from_params(**dict(zip(model.param_names, p))).expected_purchases(31 / 7, data).sum()
        for p in draws])
    low, high = np.quantile(totals, [0.05, 0.95])
    assert fc["purchases_low"].iloc[0] == pytest.approx(low, rel=0.05)
    assert fc["purchases_high"].iloc[0] == pytest.approx(high, rel=0.05)


def test_new_customers_first_orders_and_repeat_purchases(model, data) -> None:
    n = 100.0
    fc = forecast(model, data, np.full(5, 30.0), "1997-10-01", horizon=2,
                  new_customers_per_period=n, new_customer_spend=25.0)
    t1, t2 = 31 / 7, 61 / 7
    mid1, mid2 = t1 / 2, (t1 + t2) / 2
    e = model.expected_purchases_new
    # month 1: the October cohort's first orders + its repeats until 31 October
    assert fc["new_orders"].iloc[0] == pytest.approx(n * (1 + e(t1 - mid1)))
    # month 2: October cohort's November repeats + November cohort's first orders and repeats
    expected2 = n * ((e(t2 - mid1) - e(t1 - mid1)) + 1 + e(t2 - mid2))
    assert fc["new_orders"].iloc[1] == pytest.approx(expected2)
    assert fc["revenue_new"].to_numpy() == pytest.approx(25.0 * fc["new_orders"].to_numpy())
    assert fc["orders"].to_numpy() == pytest.approx((fc["purchases"] + fc["new_orders"]).to_numpy())
    assert (fc["new_customers"] == n).all()


def test_orders_scale_with_the_acquisition_assumption(model, data) -> None:
    """'What if we grow from 5,000 to 500,000 new customers?' — new orders scale linearly."""
    small = forecast(model, data, np.ones(5), "1997-10-01", horizon=6, new_customers_per_period=5_000)
    large = forecast(model, data, np.ones(5), "1997-10-01", horizon=6, new_customers_per_period=500_000)
    assert large["new_orders"].to_numpy() == pytest.approx(100 * small["new_orders"].to_numpy())


def test_forecast_input_errors(model, data) -> None:
    with pytest.raises(InputError, match="one finite value per customer"):
        forecast(model, data, [1.0, 2.0], "1997-10-01")
    with pytest.raises(InputError, match=">= 0"):
        forecast(model, data, np.ones(5), "1997-10-01", new_customers_per_period=-1)
    with pytest.raises(InputError, match="interval"):
        forecast(model, data, np.ones(5), "1997-10-01", interval=1.5)
    with pytest.raises(InputError, match="rfm_summary"):
        forecast(model, data.drop(columns="T"), np.ones(5), "1997-10-01")
