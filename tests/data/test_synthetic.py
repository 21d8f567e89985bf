"""Synthetic logs: the simulated processes have the moments the model formulas predict."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.special import hyp2f1

from ltvkit import InputError
from ltvkit.data.synthetic import simulate_transactions

N = 60_000


def bgnbd_expected(t, r, alpha, a, b):
    """E[X(t)] of BG/NBD, Fader, Hardie & Lee (2005) eq. (9)."""
    z = t / (alpha + t)
    return (a + b - 1) / (a - 1) * (1 - (alpha / (alpha + t)) ** r * hyp2f1(r, b, a + b - 1, z))


def paretonbd_expected(t, r, alpha, s, beta):
    """E[X(t)] of Pareto/NBD, Schmittlein, Morrison & Colombo (1987)."""
    return r * beta / (alpha * (s - 1)) * (1 - (beta / (beta + t)) ** (s - 1))


def _check_mean(observed: np.ndarray, expected: np.ndarray) -> None:
    se = observed.std() / np.sqrt(observed.size)
    assert abs(observed.mean() - expected.mean()) < 4 * se, (observed.mean(), expected.mean(), se)


@pytest.mark.parametrize(
    "params",
    [
        {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426},  # CDNOW (a < 1)
        {"r": 1.5, "alpha": 8.0, "a": 2.5, "b": 6.0},
    ],
)
def test_bgnbd_mean_purchases_match_theory(params):
    log, truth = simulate_transactions(N, params=params, seed=11, return_truth=True)
    counts = np.bincount(log["customer_id"].to_numpy())[1:] - 1
    np.testing.assert_array_equal(counts, truth["n_repeat"].to_numpy())
    _check_mean(counts.astype(float), bgnbd_expected(truth["T"].to_numpy(), **params))


def test_paretonbd_mean_purchases_match_theory():
    params = {"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669}
    _, truth = simulate_transactions(N, model="paretonbd", seed=12, return_truth=True)
    counts = truth["n_repeat"].to_numpy().astype(float)
    _check_mean(counts, paretonbd_expected(truth["T"].to_numpy(), **params))
    # P(alive at T) = (beta / (beta + T))^s
    alive = truth["alive"].to_numpy()
    p_alive = (params["beta"] / (params["beta"] + truth["T"].to_numpy())) ** params["s"]
    _check_mean(alive.astype(float), p_alive)


def test_times_spend_and_channels():
    log, truth = simulate_transactions(
        20_000, spend=(6.25, 3.74, 15.44), start="2023-03-01", acquisition_weeks=10,
        duration_weeks=52, channels={"search": 2, "email": 1, "social": 1}, seed=3,
        return_truth=True,
    )
    start = pd.Timestamp("2023-03-01", tz="UTC")
    first = log.groupby("customer_id")["ts"].min()
    assert first.min() >= start and first.max() < start + pd.Timedelta(weeks=10)
    assert log["ts"].max() <= start + pd.Timedelta(weeks=52)
    assert (first == truth["first_purchase"]).all()
    assert (log.groupby("customer_id")["ts"].diff().dropna() >= pd.Timedelta(0)).all()
    # Gamma-Gamma: a transaction's mean is p / nu; the population mean is p*gamma/(q-1)
    assert log["amount"].mean() == pytest.approx(6.25 * 15.44 / 2.74, rel=0.05)
    per_customer = log.groupby("customer_id")["amount"].mean()
    assert np.corrcoef(per_customer, truth["mean_spend"])[0, 1] > 0.5
    # channel of the first purchase, kept on later purchases, shares as asked
    assert (log.groupby("customer_id")["channel"].nunique() == 1).all()
    shares = truth["channel"].value_counts(normalize=True)
    assert shares["search"] == pytest.approx(0.5, abs=0.02)
    assert shares["email"] == pytest.approx(0.25, abs=0.02)


def test_seeded_and_vectorised_shapes():
    a = simulate_transactions(500, seed=5)
    b = simulate_transactions(500, seed=5)
    c = simulate_transactions(500, seed=6)
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(c)
    assert str(a["ts"].dtype) == "datetime64[us, UTC]"
    assert a["customer_id"].min() == 1 and a["customer_id"].max() == 500
    no_spend = simulate_transactions(10, spend=None, seed=0)
    assert "amount" not in no_spend.columns
    tx, truth = simulate_transactions(500, seed=5, as_transactions=True, return_truth=True)
    assert tx.table.num_rows == len(a) and tx.table["amount"].to_pylist() == a["amount"].tolist()
    assert len(truth) == 500


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"model": "gamma"}, "model must be"),
        ({"params": {"r": 1.0}}, "needs parameters"),
        ({"params": {"r": -1.0, "alpha": 1.0, "a": 1.0, "b": 1.0}}, "positive"),
        ({"acquisition_weeks": 100}, "acquisition_weeks"),
        ({"spend": (1.0, 2.0)}, "three positive"),
        ({"channels": {"a": -1}}, "non-negative"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(InputError, match=message):
        simulate_transactions(10, **kwargs)
    with pytest.raises(InputError, match="positive integer"):
        simulate_transactions(0)
