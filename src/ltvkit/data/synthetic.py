"""Seeded synthetic transaction logs from BG/NBD or Pareto/NBD with Gamma-Gamma spend.

Used for tests (parameter recovery), demos and benchmarks. Everything is vectorised over
customers; the cost grows with the number of transactions generated, so ten million
rows take a few seconds.

Generative story (time in weeks, as in the CDNOW papers):

* each customer makes a first purchase at a time spread uniformly over the first
  ``acquisition_weeks`` after ``start``; the log ends ``duration_weeks`` after ``start``;
* while active, repeat purchases arrive as a Poisson process with rate
  λ ~ Gamma(r, rate α);
* BG/NBD (Fader, Hardie & Lee 2005, Marketing Science 24(2)): after each repeat purchase
  the customer drops out with probability p ~ Beta(a, b);
  Pareto/NBD (Schmittlein, Morrison & Colombo 1987, Management Science 33(1)): the
  customer is active for an exponential lifetime with rate μ ~ Gamma(s, rate β);
* every purchase's amount is Gamma(p, rate ν) with ν ~ Gamma(q, rate γ) per customer
  (the Gamma-Gamma model, Fader & Hardie 2013, note 025), so the customer's mean spend
  is p/ν.

Arrival times are drawn without a loop over purchases: given n Poisson arrivals in
(0, τ], their times are uniform order statistics, and the k-th of n is
``τ · S_k / (S_k' + G)`` with S the running sum of unit exponentials and
G ~ Gamma(n + 1 - m) standing in for the arrivals that are not kept (Devroye 1986,
"Non-uniform random variate generation", ch. V.2).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from ltvkit.errors import InputError

__all__ = ["DEFAULT_PARAMS", "DEFAULT_SPEND", "simulate_transactions"]

DEFAULT_PARAMS: dict[str, dict[str, float]] = {
    # CDNOW estimates, weeks (Fader, Hardie & Lee 2005)
    "bgnbd": {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426},
    "paretonbd": {"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669},
}
DEFAULT_SPEND: tuple[float, float, float] = (6.25, 3.74, 15.44)  # CDNOW p, q, gamma (note 025)

_US_PER_WEEK = 7 * 86_400 * 1_000_000
_MIN_P = 1e-12  # a dropout probability of 0 would give an infinite geometric draw


def simulate_transactions(
    n_customers: int,
    *,
    model: str = "bgnbd",
    params: Mapping[str, float] | None = None,
    spend: tuple[float, float, float] | None = DEFAULT_SPEND,
    start: Any = "2024-01-01",
    acquisition_weeks: float = 12,
    duration_weeks: float = 78,
    channels: Mapping[str, float] | None = None,
    seed: int | None = 0,
    return_truth: bool = False,
    as_transactions: bool = False,
) -> Any:
    """Simulate a transaction log (one row a purchase) for ``n_customers`` new customers.

    Parameters
    ----------
    n_customers : int
        Number of customers (each makes at least the first purchase).
    model : {"bgnbd", "paretonbd"}
        Purchase and dropout process.
    params : mapping, optional
        Model parameters in weeks: BG/NBD ``r, alpha, a, b``; Pareto/NBD ``r, alpha, s,
        beta``. Default: the CDNOW estimates (:data:`DEFAULT_PARAMS`).
    spend : (p, q, gamma) or None
        Gamma-Gamma spend parameters (default near CDNOW's); ``None`` leaves out ``amount``.
    start : date-like
        Calendar start (UTC) of the log.
    acquisition_weeks : float
        First purchases are spread uniformly over this many weeks after ``start``.
    duration_weeks : float
        Length of the log; purchases after ``start + duration_weeks`` are not generated.
    channels : mapping of name to share, optional
        Adds a ``channel`` column (categorical): each customer's acquisition channel, drawn
        with these shares (normalised), repeated on all of the customer's rows.
    seed : int or None
        Seed of the random generator; the same seed gives the same log.
    return_truth : bool
        Also return the per-customer truth (see Returns).
    as_transactions : bool
        Return the log as validated :class:`~ltvkit.Transactions` (through
        :func:`~ltvkit.read_transactions`) instead of a DataFrame.

    Returns
    -------
    pandas.DataFrame, Transactions, or a tuple (log, truth)
        The log: ``customer_id`` (int64 from 1), ``ts`` (UTC), ``amount`` (rounded to
        cents), optionally ``channel``; sorted by customer then time. With
        ``return_truth``, also a frame indexed by ``customer_id`` with ``first_purchase``,
        ``T`` (weeks observed after the first purchase), ``lam`` and ``p`` (BG/NBD) or ``mu``
        (Pareto/NBD), ``alive`` (still active at the end), ``n_repeat`` (repeat purchases
        in the log) and, with spend, ``nu`` and ``mean_spend`` (= p/ν).

    Examples
    --------
    >>> log = simulate_transactions(1000, seed=1, channels={"search": 0.5, "social": 0.5})
    >>> list(log.columns)
    ['customer_id', 'ts', 'amount', 'channel']
    >>> int(log["customer_id"].nunique()), bool((log["amount"] > 0).all())
    (1000, True)
    >>> log.equals(simulate_transactions(1000, seed=1, channels={"search": 0.5, "social": 0.5}))
    True
    """
    model, theta = _check(n_customers, model, params, acquisition_weeks, duration_weeks)
    rng = np.random.default_rng(seed)
    n = int(n_customers)
    first = rng.uniform(0.0, acquisition_weeks, n)
    horizon = duration_weeks - first  # weeks observed after the first purchase
    lam = rng.gamma(theta["r"], 1.0 / theta["alpha"], n)
    truth: dict[str, np.ndarray] = {"T": horizon, "lam": lam}
    if model == "bgnbd":
        p = np.maximum(rng.beta(theta["a"], theta["b"], n), _MIN_P)
        arrivals = rng.poisson(lam * horizon)
        lifetime_purchases = rng.geometric(p)  # repeat purchases until the one after which they leave
        kept = np.minimum(arrivals, lifetime_purchases)
        truth.update(p=p, alive=lifetime_purchases > arrivals)
        window = horizon
    else:
        mu = rng.gamma(theta["s"], 1.0 / theta["beta"], n)
        lifetime = rng.exponential(1.0 / mu)
        window = np.minimum(lifetime, horizon)
        arrivals = rng.poisson(lam * window)
        kept = arrivals
        truth.update(mu=mu, alive=lifetime > horizon)
    repeat_times = _order_statistics(rng, arrivals, kept, window)
    truth["n_repeat"] = kept

    per_customer = kept + 1
    owner = np.repeat(np.arange(n), per_customer)
    offsets = np.zeros(owner.size)
    starts = np.cumsum(per_customer) - per_customer  # index of each customer's first row
    repeat_rows = np.ones(owner.size, dtype=bool)
    repeat_rows[starts] = False
    offsets[repeat_rows] = repeat_times
    weeks = first[owner] + offsets

    origin = pd.Timestamp(start)
    origin = origin.tz_localize("UTC") if origin.tzinfo is None else origin.tz_convert("UTC")
    micros = np.round(weeks * _US_PER_WEEK).astype("int64") + origin.value // 1000  # .value is in ns
    ts = pd.DatetimeIndex(micros.view("datetime64[us]"), tz="UTC")
    log = pd.DataFrame({"customer_id": owner.astype("int64") + 1, "ts": ts})
    if spend is not None:
        p_spend, q_spend, gamma_spend = _check_spend(spend)
        nu = rng.gamma(q_spend, 1.0 / gamma_spend, n)
        log["amount"] = np.round(rng.gamma(p_spend, 1.0, owner.size) / nu[owner], 2)
        truth.update(nu=nu, mean_spend=p_spend / nu)
    if channels:
        names, shares = _check_channels(channels)
        chosen = rng.choice(len(names), size=n, p=shares)
        log["channel"] = pd.Categorical.from_codes(chosen[owner], categories=names)
        truth["channel"] = pd.Categorical.from_codes(chosen, categories=names)
    first_ts = ts[starts]
    if as_transactions:
        from ltvkit.data.transactions import read_transactions

        amount = "amount" if spend is not None else None
        log = read_transactions(log, customer="customer_id", date="ts", amount=amount)
    if not return_truth:
        return log
    table = pd.DataFrame(truth, index=pd.RangeIndex(1, n + 1, name="customer_id"))
    table.insert(0, "first_purchase", pd.Series(first_ts, index=table.index))
    return log, table


def _order_statistics(
    rng: np.random.Generator, arrivals: np.ndarray, kept: np.ndarray, window: np.ndarray
) -> np.ndarray:
    """First ``kept[i]`` of ``arrivals[i]`` sorted uniform times on (0, window[i]], concatenated."""
    total = int(kept.sum())
    owner = np.repeat(np.arange(kept.size), kept)
    running = np.cumsum(rng.standard_exponential(total))
    ends = np.cumsum(kept)
    before = np.concatenate(([0.0], running))[ends - kept]  # running sum before each customer
    partial = running - before[owner]  # S_k within the customer
    last = np.zeros(kept.size)
    has = kept > 0
    last[has] = partial[ends[has] - 1]
    rest = rng.standard_gamma(arrivals - kept + 1.0)  # S_{n+1} - S_m
    return window[owner] * partial / (last + rest)[owner]


def _check(
    n_customers: int,
    model: str,
    params: Mapping[str, float] | None,
    acquisition_weeks: float,
    duration_weeks: float,
) -> tuple[str, dict[str, float]]:
    if model not in DEFAULT_PARAMS:
        raise InputError(f"model must be 'bgnbd' or 'paretonbd', got {model!r}")
    if int(n_customers) != n_customers or n_customers < 1:
        raise InputError(f"n_customers must be a positive integer, got {n_customers!r}")
    theta = dict(DEFAULT_PARAMS[model] if params is None else params)
    expected = set(DEFAULT_PARAMS[model])
    if set(theta) != expected:
        raise InputError(
            f"{model} needs parameters {sorted(expected)}, got {sorted(theta)}; e.g. "
            f"params={DEFAULT_PARAMS[model]}"
        )
    bad = {k: v for k, v in theta.items() if not (np.isfinite(v) and v > 0)}
    if bad:
        raise InputError(f"parameters must be positive and finite, got {bad}")
    if not 0 < acquisition_weeks <= duration_weeks:
        raise InputError(
            f"need 0 < acquisition_weeks <= duration_weeks, got {acquisition_weeks} and "
            f"{duration_weeks}"
        )
    return model, theta


def _check_spend(spend: tuple[float, float, float]) -> tuple[float, float, float]:
    values = tuple(float(v) for v in spend)
    if len(values) != 3 or not all(np.isfinite(v) and v > 0 for v in values):
        raise InputError(f"spend must be three positive numbers (p, q, gamma), got {spend!r}")
    return values  # type: ignore[return-value]


def _check_channels(channels: Mapping[str, float]) -> tuple[list[str], np.ndarray]:
    names = [str(k) for k in channels]
    shares = np.asarray(list(channels.values()), dtype=float)
    if not (np.all(np.isfinite(shares)) and np.all(shares >= 0) and shares.sum() > 0):
        raise InputError(f"channel shares must be non-negative numbers, got {dict(channels)}")
    return names, shares / shares.sum()
