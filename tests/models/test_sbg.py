"""sBG retention model: published estimates, holdout fit, closed forms vs brute force, checks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.special import betaln

import ltvkit
from ltvkit.errors import InputError, NotFittedError
from ltvkit.models.sbg import SBG

CALIBRATION_YEARS = 8  # years 0..7


def _counts(sbg_retention: pd.DataFrame, cohort: str) -> np.ndarray:
    return sbg_retention[f"{cohort}_pct_alive"].to_numpy() * 10  # % of a 1,000-subscriber cohort


@pytest.fixture(scope="module")
def fitted(sbg_retention):
    return {
        c: SBG().fit(_counts(sbg_retention, c)[:CALIBRATION_YEARS]) for c in ("regular", "highend")
    }


@pytest.mark.parametrize(
    ("cohort", "alpha", "beta"), [("regular", 0.704, 1.182), ("highend", 0.668, 3.806)]
)
def test_published_estimates(fitted, cohort, alpha, beta):
    """Fader & Hardie (2007), "How to project customer retention", JIM 21(1); years 0-7 fitted."""
    m = fitted[cohort]
    assert m.converged_
    assert round(m.params_["alpha"], 3) == alpha
    assert round(m.params_["beta"], 3) == beta
    assert m.n_customers_ == 1000
    assert ltvkit.SBG is SBG


@pytest.mark.parametrize("cohort", ["regular", "highend"])
def test_holdout_projection_tracks_actual_and_beats_curve_fits(fitted, sbg_retention, cohort):
    """F&H (2007): sBG projections of years 8-12 track the holdout; linear/exponential fits fail."""
    actual = sbg_retention[f"{cohort}_pct_alive"].to_numpy() / 100
    years = np.arange(13)
    calib, hold = years < CALIBRATION_YEARS, years >= CALIBRATION_YEARS
    sbg_err = np.max(np.abs(fitted[cohort].survival(years[hold]) - actual[hold]))
    assert sbg_err < 0.02  # under two percentage points, up to five years out of sample

    lin = np.polyval(np.polyfit(years[calib], actual[calib], 1), years[hold])
    expo = np.exp(np.polyval(np.polyfit(years[calib], np.log(actual[calib]), 1), years[hold]))
    for curve in (lin, expo):
        assert np.max(np.abs(curve - actual[hold])) > 3 * sbg_err


def test_projection_interval_is_labelled_and_brackets_the_estimate(fitted):
    m = fitted["regular"]
    frame = m.survival([8, 10, 12], interval=0.9)
    assert list(frame.columns) == ["mean", "low", "high"]
    assert frame.attrs["uncertainty"] == "parameter uncertainty (90% interval)"
    point = m.survival([8, 10, 12])
    assert np.all(frame["low"].to_numpy() < point) and np.all(point < frame["high"].to_numpy())
    assert np.all(frame["high"] - frame["low"] < 0.1)


def test_curves_are_consistent():
    m = SBG.from_params(alpha=0.704, beta=1.182)
    t = np.arange(1, 30)
    s_prev, s = m.survival(t - 1), m.survival(t)
    np.testing.assert_allclose(m.churn_probability(t), s_prev - s, rtol=1e-12)
    np.testing.assert_allclose(m.retention_rate(t), s / s_prev, rtol=1e-12)
    assert m.survival(0) == 1.0
    assert np.all(np.diff(m.retention_rate(t)) > 0)  # retention rises: sorting effect
    # S(1) = beta / (alpha + beta) by hand
    assert m.survival(1) == pytest.approx(1.182 / (0.704 + 1.182), rel=1e-12)


def _brute_derl(alpha, beta, n, d, horizon=20_000):
    t = np.arange(n, n + horizon)
    log_s = betaln(alpha, beta + t) - betaln(alpha, beta + n - 1)  # S(t) / S(n - 1)
    return float(np.sum(np.exp(log_s - (t - n) * np.log1p(d))))


@pytest.mark.parametrize("n", [1, 2, 5, 20])
@pytest.mark.parametrize("d", [0.01, 0.1, 0.3])
@pytest.mark.parametrize(("alpha", "beta"), [(0.704, 1.182), (0.668, 3.806), (3.0, 0.5)])
def test_derl_matches_brute_force_sum(alpha, beta, n, d):
    """Fader & Hardie (2010), Marketing Science 29(1): DERL via 2F1 equals the defining series."""
    m = SBG.from_params(alpha=alpha, beta=beta)
    assert m.expected_residual_lifetime(n, discount_rate=d) == pytest.approx(
        _brute_derl(alpha, beta, n, d), rel=1e-9
    )


def test_del_relations_and_undiscounted_limits():
    m = SBG.from_params(alpha=0.704, beta=1.182)
    d = 0.1
    # DEL counts the payment at signing, then the first renewal onwards discounted one period
    assert m.expected_lifetime(d) == pytest.approx(1 + m.expected_residual_lifetime(1, d) / (1 + d))
    assert m.expected_lifetime(0.0) == np.inf  # alpha <= 1: infinite mean lifetime
    assert m.expected_residual_lifetime(3, 0.0) == np.inf
    g = SBG.from_params(alpha=3.0, beta=2.0)
    assert g.expected_lifetime(0.0) == pytest.approx((3 + 2 - 1) / (3 - 1))  # E[T] = (a+b-1)/(a-1)
    assert g.expected_residual_lifetime(4, 0.0) == pytest.approx(
        _brute_derl(3.0, 2.0, 4, 0.0, 10**6), rel=1e-5
    )
    np.testing.assert_allclose(
        m.expected_residual_lifetime([1, 5], d),
        [m.expected_residual_lifetime(1, d), m.expected_residual_lifetime(5, d)],
    )
    # older subscribers are worth more (survivors are the stayers)
    assert m.expected_residual_lifetime(5, d) > m.expected_residual_lifetime(1, d)


def test_subscriber_value_is_margin_times_derl(fitted):
    m = fitted["highend"]
    assert m.subscriber_value(50.0, 3, 0.1) == pytest.approx(
        50.0 * m.expected_residual_lifetime(3, 0.1)
    )
    frame = m.subscriber_value(50.0, 3, 0.1, interval=0.8)
    assert (
        frame.loc[3.0, "low"] < 50.0 * m.expected_residual_lifetime(3, 0.1) < frame.loc[3.0, "high"]
    )


def test_fit_subscribers_equals_survivor_fit(fitted, sbg_retention):
    s = _counts(sbg_retention, "regular")[:CALIBRATION_YEARS]
    lost = -np.diff(s)
    tenure = np.append(np.arange(1, CALIBRATION_YEARS), CALIBRATION_YEARS - 1)
    churned = np.append(np.ones(CALIBRATION_YEARS - 1, bool), False)
    weighted = SBG().fit_subscribers(tenure, churned, weights=np.append(lost, s[-1]))
    one_per_row = SBG().fit_subscribers(
        np.repeat(tenure, np.append(lost, s[-1]).astype(int)),
        np.repeat(churned, np.append(lost, s[-1]).astype(int)),
    )
    for m in (weighted, one_per_row):
        assert m.params_ == pytest.approx(fitted["regular"].params_, rel=1e-5)
        assert m.log_likelihood_ == pytest.approx(fitted["regular"].log_likelihood_, rel=1e-9)


def test_analytic_gradient_matches_numeric():
    m = SBG()
    d = {"tenure": np.array([1.0, 2.0, 7.0, 7.0]), "churned": np.array([1.0, 1.0, 1.0, 0.0])}
    p, h = np.array([0.7, 1.2]), 1e-6
    numeric = np.column_stack(
        [
            (m._log_likelihood(p + e, d) - m._log_likelihood(p - e, d)) / (2 * h)
            for e in (np.array([h, 0]), np.array([0, h]))
        ]
    )
    np.testing.assert_allclose(m._gradient(p, d), numeric, rtol=1e-6)


def test_summary_and_sampling(fitted):
    table = fitted["regular"].summary()
    assert list(table.index) == ["alpha", "beta"]
    assert (table["lower_95"] < table["estimate"]).all() and (
        table["estimate"] < table["upper_95"]
    ).all()
    draws = fitted["regular"].sample_params(500, seed=1)
    assert draws.shape == (500, 2) and np.all(draws > 0)
    assert np.median(draws[:, 0]) == pytest.approx(0.704, abs=0.02)


@pytest.mark.parametrize(
    ("survivors", "message"),
    [
        ([1000], "at least two numbers"),
        ("many", "at least two numbers.*fit_subscribers"),
        ([1000, 600, 650], "must not increase.*period 2 has 650 > 600"),
        ([1000, -5], "non-negative"),
        ([0, 0], "positive cohort size"),
        ([1000, float("nan")], "finite"),
    ],
)
def test_bad_survivors(survivors, message):
    with pytest.raises(InputError, match=message):
        SBG().fit(survivors)


def test_bad_subscriber_rows():
    with pytest.raises(InputError, match=r"churned with tenure 0.*row 1"):
        SBG().fit_subscribers([2, 0], [True, True])
    with pytest.raises(InputError, match="tenure is not a whole number"):
        SBG().fit_subscribers([1.5, 2], [True, False])
    with pytest.raises(InputError, match="churned is not 0/1"):
        SBG().fit_subscribers([1, 2], [2, 0])
    with pytest.raises(InputError, match="same length"):
        SBG().fit_subscribers([1, 2, 3], [True, False])


def test_bad_prediction_arguments():
    m = SBG.from_params(alpha=1.0, beta=2.0)
    with pytest.raises(InputError, match=r"t must be whole numbers of periods >= 0"):
        m.survival(-1)
    with pytest.raises(InputError, match=r"t must be whole numbers of periods >= 1"):
        m.retention_rate(0)
    with pytest.raises(InputError, match=r"n must be whole numbers of periods >= 1"):
        m.expected_residual_lifetime(0, 0.1)
    with pytest.raises(InputError, match="discount_rate must be >= 0"):
        m.expected_lifetime(-0.1)
    with pytest.raises(InputError, match="no parameter uncertainty"):
        m.survival(3, interval=0.9)
    with pytest.raises(NotFittedError, match="not fitted yet"):
        SBG().survival(3)


@pytest.mark.parametrize(
    ("alpha", "beta", "n", "d"),
    [
        (0.05, 0.05, 1000, 0.0005),  # scipy: NaN (large b, z near 1)
        (20.0, 10.0, 1000, 0.01),  # scipy: NaN
        (1.0, 0.05, 1, 0.001),  # scipy: negative (integer alpha, log case)
        (3.0, 0.05, 5, 0.001),  # scipy: finite but off by 4e-5
        (20.0, 0.3, 100, 5.0),  # far from z = 1
    ],
)
def test_derl_where_scipy_hyp2f1_fails(alpha, beta, n, d):
    """Where scipy's 2F1 is NaN, negative or inexact, the checked value still equals the series."""
    m = SBG.from_params(alpha=alpha, beta=beta)
    expected = _brute_derl(alpha, beta, n, d, horizon=400_000)
    assert m.expected_residual_lifetime(n, d) == pytest.approx(expected, rel=1e-9)
    many = m.expected_residual_lifetime(np.array([[n, n + 1]]), d)  # shapes are kept
    assert many.shape == (1, 2) and many[0, 0] == pytest.approx(expected, rel=1e-9)


def test_bootstrap_uncertainty(sbg_retention):
    counts = _counts(sbg_retention, "highend")[:CALIBRATION_YEARS]
    m = SBG().fit(counts, uncertainty="bootstrap", n_boot=10, seed=3)
    assert m.summary().attrs["uncertainty"] == "bootstrap"
    laplace = SBG().fit(counts).standard_errors_["beta"]
    assert 0.3 * laplace < m.standard_errors_["beta"] < 3 * laplace
    frame = m.survival(10, interval=0.9)
    assert frame.loc[10.0, "low"] < m.survival(10) < frame.loc[10.0, "high"]
