"""BG/BB: published donations estimates; closed forms vs simulation and direct sums; properties."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import betaln

from ltvkit import BGBB, InputError

DONATIONS = {"alpha": 1.204, "beta": 0.750, "gamma": 0.657, "delta": 2.783}


def simulate(rng, size, n, alpha, beta, gamma, delta, horizon=0):
    """BG/BB customers over n opportunities, plus their purchases in the next `horizon` ones.

    Returns the summary, the future purchase indicators (size x horizon) and the dropout
    opportunity D (alive at opportunity k iff k < D).
    """
    n = np.broadcast_to(np.asarray(n), (size,))
    p, theta = rng.beta(alpha, beta, size), rng.beta(gamma, delta, size)
    dropout = rng.geometric(theta)
    k = np.arange(1, n.max() + horizon + 1)[None, :]
    buys = (rng.random((size, k.shape[1])) < p[:, None]) & (k < dropout[:, None])
    past = buys & (k <= n[:, None])
    x = past.sum(axis=1)
    tx = np.where(x > 0, np.max(np.where(past, k, 0), axis=1), 0)
    future = np.take_along_axis(buys, n[:, None] + np.arange(horizon)[None, :], axis=1)
    return pd.DataFrame({"frequency": x, "recency": tx, "T": n}), future, dropout


@pytest.fixture(scope="module")
def fitted(donations):
    return BGBB().fit(donations)


@pytest.fixture
def model():
    return BGBB.from_params(**DONATIONS)


def test_donations_estimates_match_fader_hardie_shang(fitted, donations):
    """FHS (2010), 11,104 donors: alpha=1.204, beta=0.750, gamma=0.657, delta=2.783, LL -33,225.6."""
    for name, value in DONATIONS.items():
        assert round(fitted.params_[name], 3) == value
    assert fitted.log_likelihood_ == pytest.approx(-33225.6, abs=0.05)
    assert fitted.converged_ and fitted.n_customers_ == 11_104 == donations["weights"].sum()


def test_gradient_matches_finite_differences(donations, model):
    d = model._columns(donations)
    w = donations["weights"].to_numpy()
    theta = model._params * np.array([1.4, 0.7, 1.8, 0.5])
    analytic = w @ model._gradient(theta, d)
    numeric = [
        w @ (model._log_likelihood(theta + e, d) - model._log_likelihood(theta - e, d)) / 2e-6
        for e in np.eye(4) * 1e-6
    ]
    np.testing.assert_allclose(analytic, numeric, rtol=1e-5)


def test_likelihood_matches_direct_formula(model):
    """FHS eq. 5 written term by term for one donor (x=2, t_x=3, n=6)."""
    al, be, ga, de = DONATIONS.values()
    x, tx, n = 2, 3, 6
    value = np.exp(
        betaln(al + x, be + n - x) - betaln(al, be) + betaln(ga, de + n) - betaln(ga, de)
    )
    value += sum(
        np.exp(
            betaln(al + x, be + tx - x + i)
            - betaln(al, be)
            + betaln(ga + 1, de + tx + i)
            - betaln(ga, de)
        )
        for i in range(n - tx)
    )
    d = {"frequency": np.array([2.0]), "recency": np.array([3.0]), "T": np.array([6.0])}
    assert model._log_likelihood(model._params, d)[0] == pytest.approx(np.log(value), rel=1e-12)


def test_new_customer_pmf_and_expectation_match_simulation(model):
    data, _, _ = simulate(np.random.default_rng(1), 200_000, 6, *DONATIONS.values())
    pmf = model.purchase_probability_new(np.arange(7), 6)
    assert pmf.sum() == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(
        np.bincount(data["frequency"], minlength=7) / len(data), pmf, atol=4e-3
    )
    assert model.expected_purchases_new(6) == pytest.approx((np.arange(7) * pmf).sum(), rel=1e-10)
    assert model.expected_purchases_new(6) == pytest.approx(data["frequency"].mean(), rel=0.01)


def test_expected_purchases_new_against_direct_sum():
    """E[X(t)] = E[p] sum_{k<=t} B(gamma, delta+k)/B(gamma, delta), also at the removable gamma=1."""
    for gamma in (0.657, 1.0, 1 + 4e-5, 3.0):
        m = BGBB.from_params(alpha=1.2, beta=0.75, gamma=gamma, delta=2.8)
        direct = (
            1.2
            / 1.95
            * sum(np.exp(betaln(gamma, 2.8 + k) - betaln(gamma, 2.8)) for k in range(1, 31))
        )
        assert m.expected_purchases_new(30) == pytest.approx(direct, rel=1e-7)


@pytest.mark.parametrize("pattern", [(0, 0), (2, 3), (3, 6), (6, 6)])
def test_conditional_predictions_match_simulation(model, pattern):
    """Donors with a given (x, t_x) after n=6 opportunities (conditioning is exact here)."""
    data, future, dropout = simulate(
        np.random.default_rng(sum(pattern)), 400_000, 6, *DONATIONS.values(), horizon=5
    )
    group = ((data["frequency"] == pattern[0]) & (data["recency"] == pattern[1])).to_numpy()
    one = data[group].iloc[:1]
    assert model.p_alive(one).iloc[0] == pytest.approx(np.mean(dropout[group] > 7), abs=0.01)
    assert model.p_alive_at(3, one).iloc[0] == pytest.approx(np.mean(dropout[group] > 9), abs=0.01)
    counts = future[group].sum(axis=1)
    assert model.expected_purchases(5, one).iloc[0] == pytest.approx(counts.mean(), abs=0.03)
    pmf = [model.purchase_probability(k, 5, one).iloc[0] for k in range(6)]
    np.testing.assert_allclose(np.bincount(counts, minlength=6) / group.sum(), pmf, atol=0.01)
    # P(a purchase within the next k opportunities), the function next_purchase_time inverts
    within = np.cumsum(future[group], axis=1).clip(max=1).mean(axis=0)
    np.testing.assert_allclose(
        within, [1 - model.purchase_probability(0, k, one).iloc[0] for k in range(1, 6)], atol=0.01
    )


def test_next_purchase_time_inverts_the_pmf(model):
    """The q-quantile k is the first opportunity count with 1 - P(no purchase in k) >= q."""
    data = pd.DataFrame({"frequency": [0, 1, 3, 6], "recency": [0, 1, 5, 6], "T": [6, 6, 6, 6]})
    qs = (0.05, 0.1, 0.5)
    table = model.next_purchase_time(data, q=qs)
    assert list(table.columns) == ["q5", "q10", "q50"]
    for i in range(len(data)):
        row = data.iloc[[i]]
        within = 1 - np.array([model.purchase_probability(0, k, row).iloc[0] for k in range(60)])
        for col, q in zip(table.columns, qs):
            k = table[col].iloc[i]
            if np.isfinite(k):
                assert within[int(k)] >= q > within[int(k) - 1]
            else:
                assert within[-1] < q
    assert np.isinf(table.loc[0, "q50"]) and table.loc[3, "q50"] == 1


@pytest.mark.parametrize("pattern", [(0, 0), (3, 6)])
def test_next_purchase_time_given_alive_matches_simulation(model, pattern):
    """Donors alive at opportunity n=6: the given-alive k is the first with P(bought by k) >= q."""
    data, future, dropout = simulate(
        np.random.default_rng(10 + sum(pattern)), 400_000, 6, *DONATIONS.values(), horizon=12
    )
    group = ((data["frequency"] == pattern[0]) & (data["recency"] == pattern[1])).to_numpy()
    group = group & (dropout > 6)  # alive at n
    assert group.sum() > 5000
    within = np.cumsum(future[group], axis=1).clip(max=1).mean(axis=0)  # after k = 1..12
    qs = (0.1, 0.3, 0.5)
    ks = model.next_purchase_time(data[group].iloc[:1], q=qs, given_alive=True).iloc[0]
    tol = 4 * np.sqrt(0.25 / group.sum())
    for q, k in zip(qs, ks):
        assert 1 <= k <= 12
        assert within[int(k) - 1] >= q - tol and (k == 1 or within[int(k) - 2] < q + tol)
    plain = model.next_purchase_time(data[group].iloc[:1], q=qs).iloc[0]
    assert np.all(plain.to_numpy() >= ks.to_numpy())


@pytest.mark.parametrize("scale", [400.0, 4000.0])
def test_next_purchase_time_beyond_the_exact_horizon(scale):
    """Rare buyers: quantiles past 2,000 opportunities come from an integral of the terms."""
    m = BGBB.from_params(alpha=0.5, beta=scale, gamma=0.3, delta=scale)
    row = pd.DataFrame({"frequency": [0], "recency": [0], "T": [10]})
    qs = (0.2, 0.4, 0.55)
    ks = m.next_purchase_time(row, q=qs).iloc[0].to_numpy()
    for q, k in zip(qs, ks):
        assert np.isfinite(k)
        within = 1 - m.purchase_probability(0, np.ceil([k * 0.998 - 1, k * 1.002]), row.loc[[0, 0]])
        assert within.iloc[0] < q <= within.iloc[1]
    assert ks[-1] > 2000
    assert np.isinf(m.next_purchase_time(row, q=(0.999,)).iloc[0, 0])


def test_repeated_histories_and_per_customer_horizons(model, fitted):
    """Predictions are computed per distinct row and mapped back: same values, same index."""
    data = pd.DataFrame(
        {"frequency": [2, 0, 2, 5, 2], "recency": [3, 0, 3, 6, 3], "T": [6, 6, 6, 6, 6]},
        index=pd.Index(["a", "b", "c", "d", "e"], name="customer"),
    )
    t = np.array([5, 5, 1, 2, 5])
    together = model.expected_purchases(t, data)
    assert list(together.index) == list(data.index)
    for i in range(len(data)):
        alone = model.expected_purchases(int(t[i]), data.iloc[[i]]).iloc[0]
        assert together.iloc[i] == pytest.approx(alone, rel=1e-12)
    assert together["a"] == together["e"] != together["c"]
    ranged = fitted.p_alive(data, interval=0.9)
    assert list(ranged.index) == list(data.index) and list(ranged.columns) == [
        "mean",
        "low",
        "high",
    ]
    point = fitted.p_alive(data)
    assert (ranged["low"] <= point).all() and (point <= ranged["high"]).all()
    assert ranged.loc["a", "mean"] == ranged.loc["e", "mean"]


def test_extreme_customers_are_finite(model):
    n = np.array([1, 10, 100, 1000])
    rows = [(0, 0, t) for t in n] + [
        (x, r, t) for t in n for x in {1, t // 2, t} for r in {x, t} if x <= r
    ]
    data = pd.DataFrame(rows, columns=["frequency", "recency", "T"])
    d = model._columns(data)
    for values in (
        model._log_likelihood(model._params, d),
        model._gradient(model._params, d),
        model.p_alive(data),
        model.p_alive_at(1000, data),
        model.expected_purchases(1000, data),
        model.purchase_probability(2, 50, data),
    ):
        assert np.all(np.isfinite(values))
    assert model.p_alive(data).between(0, 1).all()
    assert not model.next_purchase_time(data).isna().any().any()


params = st.fixed_dictionaries(
    {
        "alpha": st.floats(0.05, 20),
        "beta": st.floats(0.05, 20),
        "gamma": st.floats(0.05, 20),
        "delta": st.floats(0.05, 20),
    }
)


@st.composite
def histories(draw):
    n = draw(st.integers(1, 60))
    x = draw(st.integers(0, n))
    tx = draw(st.integers(x, n)) if x else 0
    return x, tx, n


def _row(h):
    return pd.DataFrame([h], columns=["frequency", "recency", "T"])


@settings(max_examples=60, deadline=None)
@given(params, histories())
def test_p_alive_in_unit_interval_and_increasing_in_recency(p, h):
    m = BGBB.from_params(**p)
    x, tx, n = h
    assert 0 <= m.p_alive(_row(h)).iloc[0] <= m.p_alive_at(0, _row(h)).iloc[0] <= 1
    if 0 < x and tx < n:
        assert m.p_alive(_row(h)).iloc[0] <= m.p_alive(_row((x, tx + 1, n))).iloc[0] * (1 + 1e-12)


@settings(max_examples=60, deadline=None)
@given(params, histories(), st.integers(0, 200), st.integers(0, 200))
def test_expected_purchases_non_negative_and_non_decreasing(p, h, t1, t2):
    m = BGBB.from_params(**p)
    lo, hi = sorted((t1, t2))
    e_lo, e_hi = (
        m.expected_purchases(lo, _row(h)).iloc[0],
        m.expected_purchases(hi, _row(h)).iloc[0],
    )
    assert 0 <= e_lo <= e_hi * (1 + 1e-9) + 1e-12 and e_hi <= hi
    assert 0 <= m.expected_purchases_new(lo) <= m.expected_purchases_new(hi) * (1 + 1e-9) + 1e-12


@settings(max_examples=60, deadline=None)
@given(params, histories(), st.integers(0, 40))
def test_pmf_sums_to_one(p, h, t):
    m = BGBB.from_params(**p)
    k = np.arange(t + 3)
    pmf = m.purchase_probability(k, t, _row(h).loc[[0] * len(k)]).to_numpy()
    assert np.all(pmf >= 0) and pmf[-2:].sum() == 0  # more purchases than opportunities: impossible
    assert pmf[: t // 2].sum() <= 1 + 1e-9 and pmf.sum() == pytest.approx(1.0, abs=1e-9)
    assert (k * pmf).sum() == pytest.approx(
        m.expected_purchases(t, _row(h)).iloc[0], rel=1e-7, abs=1e-12
    )


def test_bad_input_raises_input_error(model):
    with pytest.raises(InputError, match="frequency > recency"):
        model.p_alive(pd.DataFrame({"frequency": [3], "recency": [2], "T": [6]}))
    with pytest.raises(InputError, match="whole number"):
        model.p_alive(pd.DataFrame({"frequency": [1], "recency": [2.5], "T": [6]}))
    with pytest.raises(InputError, match="t must be a whole number"):
        model.expected_purchases(1.5, pd.DataFrame({"frequency": [1], "recency": [2], "T": [6]}))


@pytest.mark.slow
def test_parameter_recovery_on_simulated_data():
    """20,000 simulated donors, 10 seeds: each true value inside the 95% interval >= 9 times."""
    truth = pd.Series(DONATIONS)
    covered = np.zeros(4, dtype=int)
    for seed in range(10):
        rng = np.random.default_rng(seed)
        data, _, _ = simulate(rng, 20_000, rng.integers(4, 11, 20_000), *truth)
        table = BGBB().fit(data).summary()
        covered += ((table["lower_95"] <= truth) & (truth <= table["upper_95"])).to_numpy()
    assert np.all(covered >= 9), dict(zip(truth.index, covered))
