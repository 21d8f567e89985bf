"""BG/NBD: published CDNOW estimates, closed forms vs quadrature and simulation, properties, recovery."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, stats

from ltvkit import BGNBD, InputError
from ltvkit.models import _special, bgnbd

CDNOW = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}


def simulate(n, params, T, horizon, rng):
    """Vectorised BG/NBD simulator at the summary level.

    Each customer is observed for ``T`` (calibration) and ``horizon`` more (holdout). Returns
    frequency, recency (calibration), holdout purchases, alive at T, alive at T + horizon, and
    time from T to the first holdout purchase (inf if none).
    """
    r, alpha, a, b = (params[k] for k in ("r", "alpha", "a", "b"))
    T = np.broadcast_to(np.asarray(T, dtype=float), (n,))
    lam = rng.gamma(r, 1.0 / alpha, n)
    p = rng.beta(a, b, n)
    now = np.zeros(n)
    alive = np.ones(n, dtype=bool)        # has not dropped out (dropout only after a purchase)
    x, tx, hold = np.zeros(n), np.zeros(n), np.zeros(n)
    alive_T = np.ones(n, dtype=bool)
    first_hold = np.full(n, np.inf)
    active = np.arange(n)
    while active.size:
        now[active] += rng.exponential(1.0 / lam[active])
        in_cal = now[active] <= T[active]
        in_hold = ~in_cal & (now[active] <= T[active] + horizon)
        i = active[in_cal]
        x[i] += 1
        tx[i] = now[i]
        j = active[in_hold]
        hold[j] += 1
        first_hold[j] = np.minimum(first_hold[j], now[j] - T[j])
        bought = active[in_cal | in_hold]
        dies = rng.random(bought.size) < p[bought]
        alive[bought[dies]] = False
        alive_T[bought[dies & in_cal[in_cal | in_hold]]] = False
        active = bought[~dies]
    return pd.DataFrame({"frequency": x, "recency": tx, "T": T, "holdout": hold,
                         "alive_T": alive_T, "alive_end": alive, "first_hold": first_hold})


@pytest.fixture(scope="module")
def fitted(cdnow_summary):
    return BGNBD().fit(cdnow_summary)


@pytest.fixture(scope="module")
def cdnow_model():
    return BGNBD.from_params(**CDNOW)


# ------------------------------------------------------------------------------ published numbers
def test_cdnow_estimates(fitted):
    """Fader, Hardie & Lee (2005), Marketing Science 24(2), on the CDNOW calibration summary."""
    got = {k: round(v, 3) for k, v in fitted.params_.items()}
    assert got == CDNOW
    assert round(fitted.log_likelihood_, 1) == -9582.4
    assert fitted.converged_


def test_cdnow_expected_repeat_purchases_week78(fitted):
    """FHL 2005 (and its spreadsheet): a new customer's expected repeat purchases by week 78 = 1.858."""
    assert round(float(fitted.expected_purchases_new(78)), 3) == 1.858


# ------------------------------------------------------------------------------ likelihood
def test_gradient_matches_finite_differences(cdnow_summary):
    d = {c: cdnow_summary[c].to_numpy(float) for c in ("frequency", "recency", "T")}
    for params in (np.array([0.3, 4.0, 0.8, 2.5]), np.array([2.0, 0.5, 3.0, 0.7])):
        rows = _special.BGRows(d["frequency"], d["recency"], d["T"])
        g = bgnbd._log_likelihood_and_gradient(params, rows)[1]
        for k in range(4):
            e = np.zeros(4)
            e[k] = 1e-6 * params[k]
            num = (bgnbd._log_likelihood(params + e, rows)
                   - bgnbd._log_likelihood(params - e, rows)) / (2 * e[k])
            np.testing.assert_allclose(g[:, k], num, rtol=1e-5, atol=1e-7)


def test_likelihood_equals_direct_formula():
    """FHL 2005 eq. 6 evaluated naively (moderate values) equals the log-space version."""
    from scipy.special import beta, gamma

    r, alpha, a, b = 0.5, 3.0, 1.2, 2.5
    x, tx, T = 3.0, 10.0, 20.0
    common = gamma(r + x) * alpha**r / gamma(r)
    naive = (beta(a, b + x) / beta(a, b) * common / (alpha + T) ** (r + x)
             + beta(a + 1, b + x - 1) / beta(a, b) * common / (alpha + tx) ** (r + x))
    rows = _special.BGRows(np.array([x, 0.0]), np.array([tx, 0.0]), np.array([T, T]))
    got = bgnbd._log_likelihood(np.array([r, alpha, a, b]), rows)
    assert got[0] == pytest.approx(np.log(naive), rel=1e-12)
    naive0 = beta(a, b) / beta(a, b) * gamma(r) * alpha**r / gamma(r) / (alpha + T) ** r  # x = 0
    assert got[1] == pytest.approx(np.log(naive0), rel=1e-12)


# ------------------------------------------------------------------------------ predictions vs independent computations
def test_p_alive_hand_computed(cdnow_model):
    """FHL 2005 eq. 13 by hand for x=3, t_x=5, T=39 (matches lifetimes 0.11.3: 0.0378)."""
    r, alpha, a, b = CDNOW.values()
    hand = 1 / (1 + a / (b + 3 - 1) * ((alpha + 39) / (alpha + 5)) ** (r + 3))
    d = pd.DataFrame({"frequency": [3, 0], "recency": [5.0, 0.0], "T": [39.0, 39.0]})
    assert cdnow_model.p_alive(d).tolist() == pytest.approx([hand, 1.0], rel=1e-12)
    assert hand == pytest.approx(0.0378, abs=1e-4)


@pytest.mark.parametrize("x, tx, T, t", [(0, 0.0, 39.0, 39.0), (2, 30.43, 38.86, 39.0),
                                         (7, 35.0, 38.0, 200.0), (1, 1.0, 2.0, 0.5)])
@pytest.mark.parametrize("a", [0.793, 1.0, 2.5])
def test_conditional_expectation_equals_direct_integral(x, tx, T, t, a):
    """E[X(T, T+t)] = P(alive) * int (1 - (1 + p t/(alpha+T))^-(r+x)) / p dBeta(p; a, b+x).

    An independent route (scipy.integrate.quad over the dropout probability) to the closed form
    with the hypergeometric function; a = 1 is the removable 0/0 of eq. 10.
    """
    params = dict(CDNOW, a=a)
    r, alpha, _, b = params.values()
    model = BGNBD.from_params(**params)
    d = pd.DataFrame({"frequency": [x], "recency": [tx], "T": [T]})
    u, A = t / (alpha + T), r + x
    dist = stats.beta(a, b + x)
    inner = integrate.quad(lambda p: -np.expm1(-A * np.log1p(p * u)) / p * dist.pdf(p), 0, 1,
                           points=[dist.mean()], limit=200, epsabs=1e-13)[0]
    expected = float(model.p_alive(d)[0]) * inner
    assert float(model.expected_purchases(t, d)[0]) == pytest.approx(expected, rel=1e-7)


def test_closed_forms_agree_with_quadrature_on_grid():
    """The hypergeometric closed forms and the logit-trapezoid quadrature agree over a wide grid."""
    r, b = 0.243, 2.426
    grid = np.array(np.meshgrid([0, 1, 5, 50, 500], [0.5, 39.0, 500.0], [0.1, 10.0, 104.0, 2000.0])
                    ).reshape(3, -1)
    x, T, t = grid
    for a in (0.3, 0.793, 1.7, 20.0):
        A, rate, bx = r + x, 4.414 + T, b + x
        closed = _special.bg_expected_given_alive(t, A, rate, bx, a, r, b)
        quad = _special.beta_average(_special._log_expected_given_p, a, bx, A, t / rate)
        np.testing.assert_allclose(closed, quad, rtol=1e-8)
        closed_s = _special.bg_survive_given_alive(t, A, rate, bx, a, r, b)
        quad_s = _special.beta_average(_special._log_survive_given_p, a, bx, A, t / rate)
        np.testing.assert_allclose(closed_s, quad_s, rtol=1e-7, atol=1e-300)


def test_new_customer_functions_are_the_x0_T0_case(cdnow_model):
    d = pd.DataFrame({"frequency": [0], "recency": [0.0], "T": [1e-12]})
    for t in (1.0, 39.0, 520.0):
        assert float(cdnow_model.expected_purchases_new(t)) == pytest.approx(
            float(cdnow_model.expected_purchases(t, d)[0]), rel=1e-9)
        for n in (0, 1, 4):
            assert float(cdnow_model.purchase_probability_new(n, t)) == pytest.approx(
                float(cdnow_model.purchase_probability(n, t, d)[0]), rel=1e-9)


def test_pmf_mean_equals_expectation(cdnow_model):
    """sum_n n P(X = n) equals the closed-form conditional expectation (two independent formulas)."""
    d = pd.DataFrame({"frequency": [0, 2, 9], "recency": [0.0, 30.0, 20.0], "T": [39.0, 39.0, 39.0]})
    n = np.arange(400)
    pmf = np.stack([cdnow_model.purchase_probability(k, 52.0, d).to_numpy() for k in n])
    assert pmf.sum(axis=0) == pytest.approx(1.0, abs=1e-10)
    assert (n @ pmf).tolist() == pytest.approx(cdnow_model.expected_purchases(52.0, d).tolist(), rel=1e-8)
    new = cdnow_model.purchase_probability_new(n, 78.0)
    assert float(n @ new) == pytest.approx(float(cdnow_model.expected_purchases_new(78.0)), rel=1e-8)


@pytest.fixture(scope="module")
def simulated():
    return simulate(300_000, CDNOW, T=30.0, horizon=26.0, rng=np.random.default_rng(7))


@pytest.mark.parametrize("x", [0, 1, 3])
def test_conditional_predictions_match_simulation(simulated, cdnow_model, x):
    """Among simulated customers with x calibration purchases, the averages of the predicted
    PMF, expectation, P(alive) and P(alive at T+t) match the simulated outcomes (4 s.e.)."""
    g = simulated[simulated["frequency"] == x]
    m = len(g)
    assert m > 2000
    alive = cdnow_model.p_alive(g)
    assert abs(alive.mean() - g["alive_T"].mean()) < 4 * np.sqrt(0.25 / m)
    alive_at = cdnow_model.p_alive_at(26.0, g)
    assert abs(alive_at.mean() - g["alive_end"].mean()) < 4 * np.sqrt(0.25 / m)
    expected = cdnow_model.expected_purchases(26.0, g)
    assert abs(expected.mean() - g["holdout"].mean()) < 4 * g["holdout"].std() / np.sqrt(m)
    for n in range(4):
        predicted = cdnow_model.purchase_probability(n, 26.0, g).mean()
        observed = (g["holdout"] == n).mean()
        assert abs(predicted - observed) < 4 * np.sqrt(predicted * (1 - predicted) / m) + 1e-4


def test_next_purchase_time_matches_simulation(simulated, cdnow_model):
    """Calibration of the quantiles: a customer's first holdout purchase comes before their own
    predicted q-quantile with probability q. Checked over simulated customers whose quantile
    falls inside the 26 simulated holdout weeks."""
    g = simulated.iloc[:100_000]
    quantiles = cdnow_model.next_purchase_time(g, q=(0.05, 0.1, 0.2))
    for col, level in (("q5", 0.05), ("q10", 0.1), ("q20", 0.2)):
        tau = quantiles[col].to_numpy()
        seen = tau < 26.0
        assert seen.sum() > 5000
        observed = (g["first_hold"].to_numpy()[seen] <= tau[seen]).mean()
        assert abs(observed - level) < 4 * np.sqrt(level * (1 - level) / seen.sum())


def test_next_purchase_time_given_alive_matches_simulation(simulated, cdnow_model):
    """Among simulated customers still alive at T, the first holdout purchase comes before their
    given-alive q-quantile with probability q; every level is reached (no dropout before a
    purchase), and the unconditional quantiles are never earlier."""
    g = simulated.iloc[:100_000]
    g = g[g["alive_T"]]
    quantiles = cdnow_model.next_purchase_time(g, q=(0.1, 0.3, 0.5), given_alive=True)
    assert np.all(np.isfinite(quantiles.to_numpy()))
    for col, level in (("q10", 0.1), ("q30", 0.3), ("q50", 0.5)):
        tau = quantiles[col].to_numpy()
        seen = tau < 26.0
        assert seen.sum() > 5000
        observed = (g["first_hold"].to_numpy()[seen] <= tau[seen]).mean()
        assert abs(observed - level) < 4 * np.sqrt(level * (1 - level) / seen.sum())
    plain = cdnow_model.next_purchase_time(g, q=(0.1, 0.3, 0.5)).to_numpy()
    assert np.all(plain >= quantiles.to_numpy() * (1 - 1e-12))


def test_next_purchase_time_infinite_beyond_p_alive(cdnow_model):
    d = pd.DataFrame({"frequency": [6], "recency": [5.0], "T": [39.0]})
    alive = float(cdnow_model.p_alive(d)[0])
    out = cdnow_model.next_purchase_time(d, q=(alive * 0.5, 0.9))
    assert np.isfinite(out.iloc[0, 0]) and np.isinf(out.iloc[0, 1])
    with pytest.raises(InputError, match="quantile"):
        cdnow_model.next_purchase_time(d, q=(1.5,))


def test_purchase_probability_new_matches_simulation(cdnow_model):
    """FHL 2005 eq. 8 against a simulation of new customers over 39 weeks."""
    sim = simulate(200_000, CDNOW, T=39.0, horizon=0.0, rng=np.random.default_rng(3))
    for n in range(5):
        predicted = float(cdnow_model.purchase_probability_new(n, 39.0))
        observed = (sim["frequency"] == n).mean()
        assert abs(predicted - observed) < 4 * np.sqrt(predicted * (1 - predicted) / len(sim))


# ------------------------------------------------------------------------------ properties
history = st.tuples(st.integers(0, 300), st.floats(0.0, 1.0), st.floats(0.5, 500.0))
params_st = st.fixed_dictionaries({
    "r": st.floats(0.05, 5.0), "alpha": st.floats(0.1, 50.0),
    "a": st.floats(0.1, 10.0), "b": st.floats(0.1, 50.0),
})


def _frame(x, frac, T):
    tx = frac * T if x > 0 else 0.0
    if x > 0 and tx <= 0:
        tx = T
    return pd.DataFrame({"frequency": [x], "recency": [tx], "T": [T]})


@settings(max_examples=60, deadline=None)
@given(params_st, history, st.floats(0.01, 1000.0))
def test_properties_p_alive_and_expectation(params, h, t):
    m = BGNBD.from_params(**params)
    d = _frame(*h)
    alive = float(m.p_alive(d)[0])
    assert 0.0 <= alive <= 1.0
    later = d.assign(recency=np.minimum(d["recency"] * 1.1 + 0.01, d["T"]))
    if h[0] > 0:
        assert float(m.p_alive(later)[0]) >= alive - 1e-12
    e1, e2 = float(m.expected_purchases(t, d)[0]), float(m.expected_purchases(2 * t, d)[0])
    assert 0.0 <= e1 <= e2 * (1 + 1e-9) + 1e-300
    s1, s2 = float(m.p_alive_at(t, d)[0]), float(m.p_alive_at(2 * t, d)[0])
    assert 0.0 <= s2 <= s1 * (1 + 1e-9) + 1e-300 and s1 <= alive * (1 + 1e-9)


@settings(max_examples=40, deadline=None)
@given(params_st, history, st.floats(0.01, 200.0))
def test_properties_purchase_probability(params, h, t):
    m = BGNBD.from_params(**params)
    d = _frame(*h)
    probs = np.array([float(m.purchase_probability(n, t, d)[0]) for n in range(30)])
    assert np.all(probs >= 0) and probs.sum() <= 1 + 1e-9
    n = np.arange(20_000)
    cols = {c: np.repeat(d[c].to_numpy(float), n.size) for c in d}
    big = BGNBD._purchase_probability(m._params, cols, n=n, t=t)
    assert big[:30] == pytest.approx(probs, rel=1e-12, abs=1e-300)
    if float(m.expected_purchases(t, d)[0]) < 50:  # then 20,000 counts hold all but a tiny tail
        assert float(big.sum()) == pytest.approx(1.0, abs=1e-6)


def test_no_nan_on_extremes_grid():
    """Frequency 0..10,000, T up to 10,000, recency = T (and 0 with frequency 0), t up to 1e5."""
    x = np.array([0, 1, 10, 100, 1000, 10_000], dtype=float)
    T = np.array([0.01, 1.0, 100.0, 10_000.0])
    xx, TT = (v.ravel() for v in np.meshgrid(x, T))
    d = pd.DataFrame({"frequency": xx, "recency": np.where(xx > 0, TT, 0.0), "T": TT})
    for params in (CDNOW, {"r": 5.0, "alpha": 0.1, "a": 50.0, "b": 200.0},
                   {"r": 0.05, "alpha": 50.0, "a": 1.0, "b": 0.1}):
        m = BGNBD.from_params(**params)
        outs = [m.p_alive(d), m.expected_purchases(1e5, d), m.expected_purchases(1e-6, d),
                m.p_alive_at(1e5, d), m.p_alive_at(52.0, d), m.purchase_probability(0, 52.0, d),
                m.purchase_probability(5, 1e4, d), m.next_purchase_time(d).stack()]
        for o in outs:
            v = np.asarray(o, dtype=float)
            assert not np.any(np.isnan(v)) and np.all(v >= 0)
        assert np.all(np.isfinite(np.asarray(outs[1], dtype=float)))
        rows = _special.BGRows(xx, d["recency"].to_numpy(), TT)
        lik = bgnbd._log_likelihood(np.array(list(params.values())), rows)
        assert np.all(np.isfinite(lik))


def test_intervals_and_bad_input(fitted, cdnow_summary):
    out = fitted.expected_purchases(39, cdnow_summary.head(50), interval=0.9)
    assert list(out.columns) == ["mean", "low", "high"]
    assert (out["low"] <= out["mean"]).all() and (out["mean"] <= out["high"]).all()
    assert "parameter uncertainty" in out.attrs["uncertainty"]
    bad = cdnow_summary.head(3).assign(recency=[1.0, 50.0, 0.0])
    with pytest.raises(InputError, match="recency > T"):
        fitted.p_alive(bad)


# ------------------------------------------------------------------------------ parameter recovery
@pytest.mark.slow
def test_parameter_recovery():
    """20k simulated customers, 10 seeds: each true parameter inside its 95% interval in >= 9."""
    truth = {"r": 0.5, "alpha": 6.0, "a": 0.8, "b": 2.5}
    hits = np.zeros(4)
    for seed in range(10):
        rng = np.random.default_rng(seed)
        sim = simulate(20_000, truth, T=rng.uniform(20.0, 80.0, 20_000), horizon=0.0, rng=rng)
        table = BGNBD().fit(sim[["frequency", "recency", "T"]]).summary()
        hits += [(table.loc[k, "lower_95"] <= v <= table.loc[k, "upper_95"]) for k, v in truth.items()]
    assert np.all(hits >= 9), dict(zip(truth, hits))


def test_predictions_shared_by_identical_histories_keep_per_customer_arguments(fitted):
    """Predictions run once per distinct (history, t) row; per-customer t and the index survive."""
    d = pd.DataFrame({"frequency": [2, 2, 2, 0], "recency": [30.0, 30.0, 30.0, 0.0],
                      "T": [39.0] * 4}, index=["a", "b", "c", "d"])
    t = np.array([10.0, 39.0, 10.0, 39.0])
    got = fitted.expected_purchases(t, d)
    assert got.index.tolist() == ["a", "b", "c", "d"]
    assert got["a"] == got["c"] < got["b"]
    assert got["b"] == fitted.expected_purchases(39.0, d.iloc[[1]]).iloc[0]
    assert got["d"] == fitted.expected_purchases(39.0, d.iloc[[3]]).iloc[0]
    band = fitted.expected_purchases(t, d, interval=0.9)
    assert band.index.equals(d.index) and band.loc["a"].equals(band.loc["c"])
    assert np.all((band["low"] < got) & (got < band["high"]))
