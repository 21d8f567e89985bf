"""Pareto/NBD: published CDNOW estimates, likelihood and predictions against independent computations."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate
from scipy.stats import gamma as gamma_dist

from ltvkit import InputError, ParetoNBD
from ltvkit.models.paretonbd import _log_likelihood, _log_likelihood_and_gradient

PUBLISHED = {"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669}


def simulate(n, r, alpha, s, beta, T, seed):
    """(x, t_x, T) drawn directly from the model: Poisson purchases until an exponential death."""
    rng = np.random.default_rng(seed)
    lam, mu = rng.gamma(r, 1 / alpha, n), rng.gamma(s, 1 / beta, n)
    T = np.broadcast_to(np.asarray(T, dtype=float), (n,))
    end = np.minimum(rng.exponential(1 / mu), T)
    x = rng.poisson(lam * end)
    tx = np.where(x > 0, end * rng.random(n) ** (1 / np.maximum(x, 1)), 0.0)  # max of x uniforms
    return pd.DataFrame({"frequency": x.astype(float), "recency": tx, "T": T})


@pytest.fixture(scope="module")
def fitted(cdnow_summary):
    return ParetoNBD().fit(cdnow_summary)


@pytest.fixture(scope="module")
def published():
    return ParetoNBD.from_params(**PUBLISHED)


def test_published_cdnow_estimates(fitted):
    """Fader, Hardie & Lee (2005), CDNOW: r=0.553, alpha=10.578, s=0.606, beta=11.669, LL -9,595.0.

    beta is weakly identified (standard error about 6): our optimum is 11.668, and the
    log-likelihood differs from the one at the published beta by less than 1e-6.
    """
    p = fitted.params_
    for name in ("r", "alpha", "s"):
        assert p[name] == pytest.approx(PUBLISHED[name], abs=5e-4), name
    assert p["beta"] == pytest.approx(PUBLISHED["beta"], abs=2e-3)
    assert fitted.log_likelihood_ == pytest.approx(-9595.0, abs=0.05)
    assert fitted.converged_
    assert fitted.standard_errors_["beta"] > fitted.standard_errors_["alpha"]


def test_log_likelihood_at_published_values(cdnow_summary):
    d = {c: cdnow_summary[c].to_numpy(float) for c in ("frequency", "recency", "T")}
    ll = _log_likelihood(np.array(list(PUBLISHED.values())), d["frequency"], d["recency"], d["T"]).sum()
    assert ll == pytest.approx(-9595.0, abs=0.05)


def _direct_log_likelihood(params, x, tx, T):
    """Note 009's integral form by adaptive quadrature (independent of the 2F1 machinery)."""
    from scipy.special import gammaln

    r, alpha, s, beta = params
    pre = gammaln(r + x) - gammaln(r) + r * np.log(alpha) + s * np.log(beta)
    alive = (alpha + T) ** -(r + x) * (beta + T) ** -s
    dead = integrate.quad(lambda t: (alpha + t) ** -(r + x) * (beta + t) ** -(s + 1), tx, T,
                          epsabs=0, epsrel=1e-13)[0]
    return pre + np.log(alive + s * dead)


@pytest.mark.parametrize("params", [[0.553, 10.578, 0.606, 11.669], [0.8, 5.0, 0.5, 40.0],
                                    [2.0, 30.0, 1.5, 3.0], [1.0, 7.0, 2.0, 7.0]])
def test_likelihood_matches_direct_integration(params):
    rows = [(0, 0.0, 39.0), (1, 2.0, 39.0), (7, 30.5, 38.0), (25, 20.0, 60.0), (3, 12.0, 12.0)]
    x, tx, T = (np.array(v, dtype=float) for v in zip(*rows))
    ours = _log_likelihood(np.array(params), x, tx, T)
    direct = [_direct_log_likelihood(params, *row) for row in rows]
    np.testing.assert_allclose(ours, direct, rtol=1e-10)


@pytest.mark.parametrize("params", [[0.553, 10.578, 0.606, 11.669], [0.8, 5.0, 0.5, 40.0],
                                    [2.0, 30.0, 1.5, 3.0], [1.0, 7.0, 2.0, 7.0]])
def test_analytic_gradient_matches_numeric(cdnow_summary, params):
    d = [cdnow_summary[c].to_numpy(float) for c in ("frequency", "recency", "T")]
    p = np.array(params)
    _, g = _log_likelihood_and_gradient(p, *d)
    for j in range(4):
        h = 1e-4 * p[j]
        up, dn = p.copy(), p.copy()
        up[j] += h
        dn[j] -= h
        fd = (_log_likelihood(up, *d).sum() - _log_likelihood(dn, *d).sum()) / (2 * h)
        assert g[:, j].sum() == pytest.approx(fd, rel=1e-6, abs=1e-5)


EXTREMES = pd.DataFrame(
    [(x, tx, T) for T in (0.5, 39.0, 10_000.0) for x, tx in
     ((0, 0.0), (1, T / 2), (1, T), (50, T), (10_000, T / 1000), (10_000, T), (10_000, 0.999 * T))],
    columns=["frequency", "recency", "T"],
)


@pytest.mark.parametrize("params", [[0.5, 10.0, 0.6, 10.0], [0.5, 10.0, 0.6, 1e4], [0.5, 1e4, 0.6, 10.0],
                                    [0.05, 0.01, 5.0, 300.0], [30.0, 2.0, 0.05, 0.02]])
def test_no_overflow_on_extremes(params):
    """alpha = beta, alpha << beta, alpha >> beta; frequency 0 to 10,000; T up to 10,000; recency = T."""
    d = [EXTREMES[c].to_numpy(float) for c in ("frequency", "recency", "T")]
    ll, g = _log_likelihood_and_gradient(np.array(params), *d)
    assert np.all(np.isfinite(ll)) and np.all(np.isfinite(g))
    m = ParetoNBD.from_params(**dict(zip(("r", "alpha", "s", "beta"), params)))
    alive = m.p_alive(EXTREMES).to_numpy()
    assert np.all((alive >= 0) & (alive <= 1))
    exp_ = m.expected_purchases(52, EXTREMES).to_numpy()
    assert np.all(np.isfinite(exp_) & (exp_ >= 0))


@pytest.mark.parametrize("params", [[0.5, 10.0, 0.6, 10.0], [0.5, 10.0, 0.6, 1e4], [0.5, 1e4, 0.6, 10.0]])
@pytest.mark.parametrize("row", [(10_000, 5.0, 10_000.0), (10_000, 9_999.0, 10_000.0), (0, 0.0, 10_000.0),
                                 (3, 0.4, 0.5)])
def test_extreme_rows_match_arbitrary_precision(params, row):
    """Frequency 10,000 and T = 10,000: the log-likelihood against mpmath's quadrature (no underflow)."""
    import mpmath as mp

    r, alpha, s, beta = (mp.mpf(v) for v in params)
    x, tx, T = (mp.mpf(v) for v in row)
    with mp.workdps(40):
        # the integrand falls by e per (alpha + t_x)/x near t_x: break the interval there
        cuts = [tx + (min(alpha, beta) + tx) * f for f in (1e-4, 1e-3, 1e-2, 0.1, 1.0)]
        points = [tx, *(c for c in cuts if c < T), T]
        dead = mp.quad(lambda t: (alpha + t) ** -(r + x) * (beta + t) ** -(s + 1), points)
        ref = (mp.loggamma(r + x) - mp.loggamma(r) + r * mp.log(alpha) + s * mp.log(beta)
               + mp.log((alpha + T) ** -(r + x) * (beta + T) ** -s + s * dead))
    ours = _log_likelihood(np.array(params), *(np.array([v], dtype=float) for v in row))[0]
    assert ours == pytest.approx(float(ref), rel=1e-10)


# ---------------------------------------------------------------------------------- properties
customers = st.tuples(st.integers(0, 300), st.floats(0.01, 1.0), st.floats(0.1, 500.0))
param_sets = st.tuples(*(st.floats(0.05, 50.0) for _ in range(4)))


@settings(max_examples=60, deadline=None)
@given(customers, param_sets)
def test_p_alive_bounded_and_increasing_in_recency(cust, params):
    x, _, T = cust
    m = ParetoNBD.from_params(**dict(zip(("r", "alpha", "s", "beta"), params)))
    rec = np.sort(np.array([0.05, 0.3, 0.7, 1.0]) * T) if x > 0 else np.zeros(4)
    d = pd.DataFrame({"frequency": float(x), "recency": rec, "T": T})
    alive = m.p_alive(d).to_numpy()
    assert np.all((alive >= 0) & (alive <= 1))
    assert np.all(np.diff(alive) >= -1e-12)


@settings(max_examples=60, deadline=None)
@given(customers, param_sets)
def test_expected_purchases_nonnegative_and_increasing(cust, params):
    x, frac, T = cust
    m = ParetoNBD.from_params(**dict(zip(("r", "alpha", "s", "beta"), params)))
    d = pd.DataFrame({"frequency": [float(x)], "recency": [frac * T if x else 0.0], "T": [T]})
    e = np.array([m.expected_purchases(t, d).iloc[0] for t in (0.0, 1.0, 10.0, 100.0, 1e4)])
    assert e[0] == 0 and np.all(e >= 0) and np.all(np.diff(e) >= -1e-12 * e[1:])
    assert np.all(np.diff(m.expected_purchases_new(np.array([1.0, 10.0, 100.0]))) >= 0)


@settings(max_examples=25, deadline=None)
@given(customers, st.tuples(st.floats(0.2, 5.0), st.floats(1.0, 30.0), st.floats(0.2, 5.0),
                            st.floats(1.0, 30.0)), st.floats(1.0, 60.0))
def test_pmf_sums_to_at_most_one_and_to_one_with_enough_terms(cust, params, t):
    x, frac, T = cust
    m = ParetoNBD.from_params(**dict(zip(("r", "alpha", "s", "beta"), params)))
    one = pd.DataFrame({"frequency": [float(x)], "recency": [frac * T if x else 0.0], "T": [T]})
    mean = m.expected_purchases(t, one).iloc[0]
    r, alpha = params[0] + x, params[1] + T  # posterior purchase rate ~ Gamma(r, alpha)
    n = np.arange(int(1.5 * t * gamma_dist.ppf(1 - 1e-12, r, scale=1 / alpha)) + 100)  # tail < 1e-9
    pmf = m.purchase_probability(n, t, one.loc[one.index.repeat(n.size)])
    assert np.all(pmf >= 0)
    assert pmf[:20].sum() <= 1 + 1e-9
    assert pmf.sum() == pytest.approx(1.0, abs=1e-6)
    assert (n * pmf).sum() == pytest.approx(mean, rel=1e-5, abs=1e-8)


def test_predictions_agree_with_lifetimes(published):
    """Values printed by lifetimes 0.11.3's ParetoNBDFitter (an independent implementation) with the
    published CDNOW parameters: conditional_probability_alive, conditional_expected_number_of_
    purchases_up_to_time, expected_number_of_purchases_up_to_time and
    conditional_probability_of_n_purchases_up_to_time."""
    d = pd.DataFrame({"frequency": [0, 2, 2, 3], "recency": [0.0, 5.0, 35.0, 5.0], "T": [39.0] * 4})
    np.testing.assert_allclose(published.p_alive(d), [0.29446703, 0.12913719, 0.94603171, 0.05704123],
                               rtol=1e-7)
    one = pd.DataFrame({"frequency": [2.0], "recency": [30.43], "T": [38.86]})
    assert published.expected_purchases(39, one).iloc[0] == pytest.approx(1.4551231932576019, rel=1e-10)
    np.testing.assert_allclose(published.expected_purchases_new([39, 78]), [1.21300284, 1.90939813], rtol=1e-8)
    hist = pd.DataFrame({"frequency": [4.0], "recency": [20.0], "T": [39.0]})
    pmf = [published.purchase_probability(k, 26.0, hist)[0] for k in range(3)]
    np.testing.assert_allclose(pmf, [0.6529961903148788, 0.10508796681806153, 0.08946320558914095], rtol=1e-10)


# ---------------------------------------------------------------------------------- Monte Carlo
def test_new_customer_pmf_and_mean_match_simulation(published):
    sim = simulate(400_000, *PUBLISHED.values(), T=39.0, seed=3)
    counts = np.bincount(sim["frequency"].astype(int), minlength=6)[:6] / len(sim)
    pmf = published.purchase_probability_new(np.arange(6), 39.0)
    np.testing.assert_allclose(pmf, counts, atol=3e-3)
    assert float(published.expected_purchases_new(39.0)) == pytest.approx(sim["frequency"].mean(), rel=0.02)


def test_conditional_predictions_match_simulation_from_posterior(published):
    """For one history, draw (lambda, mu) from the posterior and alive-ness, simulate the future."""
    hist = pd.DataFrame({"frequency": [4.0], "recency": [20.0], "T": [39.0]})
    r, alpha, s, beta = PUBLISHED.values()
    rng = np.random.default_rng(7)
    n = 400_000
    alive = rng.random(n) < published.p_alive(hist).iloc[0]
    lam, mu = rng.gamma(r + 4, 1 / (alpha + 39), n), rng.gamma(s, 1 / (beta + 39), n)
    life = np.where(alive, rng.exponential(1 / mu), 0.0)
    future = rng.poisson(lam * np.minimum(life, 26.0))
    pmf = [published.purchase_probability(k, 26.0, hist)[0] for k in range(4)]
    np.testing.assert_allclose(pmf, np.bincount(future, minlength=4)[:4] / n, atol=3e-3)
    assert published.expected_purchases(26.0, hist).iloc[0] == pytest.approx(future.mean(), rel=0.02)
    assert published.p_alive_at(26.0, hist).iloc[0] == pytest.approx(np.mean(life > 26.0), abs=3e-3)
    # next purchase: an exponential wait, unless death comes first (then never)
    first = rng.exponential(1 / lam)
    mc_wait = np.where(alive & (first < life), first, np.inf)
    q = published.next_purchase_time(hist, q=(0.1, 0.3, 0.9))
    assert q["q90"].iloc[0] == np.inf and np.mean(np.isfinite(mc_wait)) < 0.9
    for col, qq in (("q10", 0.1), ("q30", 0.3)):
        assert q[col].iloc[0] == pytest.approx(np.quantile(mc_wait, qq), rel=0.03)
    # supposing the customer alive at T: an own lifetime for every draw; death may still come first
    life_alive = rng.exponential(1 / mu)
    wait_alive = np.where(first < life_alive, first, np.inf)
    given = published.next_purchase_time(hist, q=(0.1, 0.3, 0.5, 0.95), given_alive=True).iloc[0]
    for qq, value in zip((0.1, 0.3, 0.5), given.iloc[:3]):
        assert value == pytest.approx(np.quantile(wait_alive, qq), rel=0.03)
    assert given.iloc[3] == np.inf and np.mean(np.isfinite(wait_alive)) < 0.95
    assert np.all(given.iloc[:2].to_numpy() <= q[["q10", "q30"]].iloc[0].to_numpy())


def test_p_alive_at_zero_and_next_purchase_cdf(published, cdnow_summary):
    d = cdnow_summary.iloc[:50]
    np.testing.assert_allclose(published.p_alive_at(0.0, d), published.p_alive(d), rtol=1e-12)
    assert np.all(np.diff(np.stack([published.p_alive_at(t, d) for t in (0, 10, 100)]), axis=0) <= 0)
    q = published.next_purchase_time(d)
    assert list(q.columns) == ["q10", "q50", "q90"] and q.index.equals(d.index)
    finite = q.to_numpy()[np.isfinite(q.to_numpy())]
    assert np.all(finite > 0)
    assert np.all(q["q10"] <= q["q50"]) and np.all(q["q50"] <= q["q90"])


# ---------------------------------------------------------------------------------- recovery, errors
@pytest.mark.slow
def test_parameter_recovery_from_simulated_data():
    """20k customers, 10 seeds: each true parameter inside the 95% interval in at least 9 fits."""
    truth = {"r": 0.6, "alpha": 8.0, "s": 0.8, "beta": 15.0}
    hits = np.zeros(4, dtype=int)
    for seed in range(10):
        rng = np.random.default_rng(100 + seed)
        T = np.round(rng.uniform(26, 78, 20_000) * 7) / 7
        table = ParetoNBD().fit(simulate(20_000, *truth.values(), T=T, seed=seed)).summary()
        hits += (table["lower_95"] < pd.Series(truth)) & (pd.Series(truth) < table["upper_95"])
    assert np.all(hits >= 9), dict(zip(truth, hits))


def test_bad_input_is_named():
    bad = pd.DataFrame({"frequency": [1.0, 2.0], "recency": [5.0, 50.0], "T": [10.0, 40.0]}, index=["a", "b"])
    with pytest.raises(InputError, match=r"recency > T.*'b'"):
        ParetoNBD().fit(bad)
    m = ParetoNBD.from_params(**PUBLISHED)
    with pytest.raises(InputError, match="strictly between 0 and 1"):
        m.next_purchase_time(bad.iloc[:1], q=(1.5,))
