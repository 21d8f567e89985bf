"""RFM scores, rule-table segments, value tiers, concentration and audience files."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import ltvkit
from ltvkit.errors import InputError
from ltvkit.segments import (
    DEFAULT_SEGMENT_RULES,
    SEGMENT_LABELS,
    gini,
    lorenz_curve,
    rfm_scores,
    rfm_segments,
    value_deciles,
    value_flags,
    value_shares,
    value_tiers,
    write_audiences,
)


def _summary(frequency, since_last, monetary, T=50.0):
    """Summary with the given repeat counts, time since last purchase and mean spend."""
    since_last = np.asarray(since_last, dtype=float)
    return pd.DataFrame(
        {
            "frequency": frequency,
            "recency": T - since_last,
            "T": T,
            "monetary_value": np.asarray(monetary, dtype=float),
        },
        index=pd.Index([f"c{i}" for i in range(len(since_last))], name="customer_id"),
    )


# ---------------------------------------------------------------- RFM scores


def test_scores_of_ten_distinct_customers_are_two_per_class():
    s = _summary(np.arange(10), since_last=np.arange(10), monetary=np.arange(10) * 10.0)
    scores = rfm_scores(s)
    assert scores["f_score"].tolist() == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert scores["m_score"].tolist() == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    # recency is scored on time since the last purchase: the most recent (0) gets 5
    assert scores["r_score"].tolist() == [5, 5, 4, 4, 3, 3, 2, 2, 1, 1]
    assert scores.loc["c0", "rfm_code"] == "511"
    assert scores.loc["c9", "rfm_code"] == "155"


def test_score_boundary_is_the_share_strictly_below():
    # 1 + floor(5 * share strictly below): with 4 customers, shares 0, .25, .5, .75
    s = _summary([0, 1, 2, 3], since_last=[3, 2, 1, 0], monetary=[1, 2, 3, 4])
    assert rfm_scores(s)["f_score"].tolist() == [1, 2, 3, 4]
    assert rfm_scores(s, bins=4)["f_score"].tolist() == [1, 2, 3, 4]
    assert rfm_scores(s, bins=2)["f_score"].tolist() == [1, 1, 2, 2]


def test_ties_get_equal_scores_whatever_the_row_order():
    rng = np.random.default_rng(1)
    freq = rng.integers(0, 4, 200)
    since = rng.integers(0, 10, 200).astype(float)
    money = rng.choice([10.0, 20.0, 35.5], 200)
    s = _summary(freq, since, money)
    scores = rfm_scores(s)
    for col, values in (("f_score", freq), ("r_score", since), ("m_score", money)):
        per_value = scores.groupby(values)[col].nunique()
        assert (per_value == 1).all(), col
    shuffled = rfm_scores(s.sample(frac=1.0, random_state=3))
    pd.testing.assert_frame_equal(shuffled.loc[scores.index], scores)


def test_cdnow_one_time_buyers_all_score_one_on_frequency(cdnow_spend):
    scores = rfm_scores(cdnow_spend)
    one_timers = cdnow_spend["frequency"] == 0
    share_one_timers = one_timers.mean()  # 1,410 of 2,356 ≈ 60%
    assert 0.55 < share_one_timers < 0.65
    assert (scores.loc[one_timers, "f_score"] == 1).all()
    # the next class starts at 1 + floor(5 × 0.60) = 4: scores 2 and 3 are unused
    assert scores.loc[~one_timers, "f_score"].min() == 1 + int(5 * share_one_timers)
    assert scores.loc[cdnow_spend["frequency"].idxmax(), "f_score"] == 5
    # monotone in the raw values
    order = np.argsort(cdnow_spend["frequency"].to_numpy(), kind="stable")
    assert np.all(np.diff(scores["f_score"].to_numpy()[order]) >= 0)
    since = (cdnow_spend["T"] - cdnow_spend["recency"]).to_numpy()
    order = np.argsort(-since, kind="stable")
    assert np.all(np.diff(scores["r_score"].to_numpy()[order]) >= 0)
    assert scores["rfm_code"].str.fullmatch(r"[1-5]{3}").all()


def test_monetary_uses_mean_order_value_when_totals_are_known():
    s = _summary([0, 0, 1], since_last=[1, 1, 1], monetary=[0, 0, 5])
    s["total_revenue"] = [100.0, 10.0, 20.0]
    s["n_orders"] = [1, 1, 2]
    # mean order value 100, 10, 10: the big one-time buyer ranks top
    assert rfm_scores(s)["m_score"].tolist() == [4, 1, 1]


def test_bad_summaries_raise_input_error():
    s = _summary([0, 1], since_last=[1, 1], monetary=[0, 5])
    with pytest.raises(InputError, match="'frequency'"):
        rfm_scores(s.drop(columns="frequency"))
    s.loc["c1", "monetary_value"] = np.nan
    with pytest.raises(InputError, match="c1"):
        rfm_scores(s)
    with pytest.raises(InputError, match="bins"):
        rfm_scores(s.fillna(0), bins=1)


# ---------------------------------------------------------------- segments


@pytest.mark.parametrize(
    ("r", "f", "key"),
    [
        (5, 5, "champions"),
        (5, 4, "champions"),
        (4, 5, "loyal"),
        (3, 4, "loyal"),
        (5, 2, "potential_loyalists"),
        (4, 3, "potential_loyalists"),
        (5, 1, "new"),
        (4, 1, "promising"),
        (3, 3, "need_attention"),
        (3, 1, "about_to_sleep"),
        (2, 4, "at_risk"),
        (1, 3, "at_risk"),
        (1, 5, "cannot_lose"),
        (2, 2, "hibernating"),
        (1, 1, "lost"),
    ],
)
def test_hand_picked_scores_map_to_their_segment(r, f, key):
    out = rfm_segments(pd.DataFrame({"r_score": [r], "f_score": [f], "m_score": [3]}))
    assert out["segment_key"].iloc[0] == key
    assert out["segment"].iloc[0] == SEGMENT_LABELS[key]["segment"]
    assert out["action"].iloc[0] == SEGMENT_LABELS[key]["action"]


def test_default_rules_cover_the_grid_with_eleven_segments():
    grid = pd.DataFrame(
        [(r, f, 1) for r in range(1, 6) for f in range(1, 6)],
        columns=["r_score", "f_score", "m_score"],
    )
    out = rfm_segments(grid)
    assert (out["segment_key"] != "unassigned").all()
    assert set(out["segment_key"]) == set(DEFAULT_SEGMENT_RULES["key"])
    assert len(set(out["segment_key"])) == 11
    # every action names a lever of customer value
    assert set(DEFAULT_SEGMENT_RULES["lever"]) == {"frequency", "recency", "monetary"}


def test_segments_from_a_summary_on_hand_made_customers():
    # c0 recent and frequent, c1 frequent but long gone, c2 recent one-timer, c3 gone one-timer
    s = _summary(
        [9, 8, 0, 0, 3, 2, 1, 5, 6, 4],
        since_last=[0, 45, 1, 49, 20, 10, 30, 5, 3, 15],
        monetary=np.arange(10.0),
    )
    out = rfm_segments(s)
    assert out.loc["c1", ["r_score", "f_score"]].tolist() == [1, 5]
    assert out.loc[["c0", "c1", "c2", "c3"], "segment_key"].tolist() == [
        "champions",
        "cannot_lose",
        "new",
        "lost",
    ]


def test_custom_rules_first_match_wins_and_unmatched_are_reported():
    rules = [
        {"key": "big_spenders", "segment": "Big spenders", "m_min": 5, "action": "VIP desk"},
        {"key": "champions", "r_min": 4, "r_max": 5, "f_min": 4, "f_max": 5},
        {"key": "anyone_recent", "r_min": 4, "r_max": 5},
    ]
    scores = pd.DataFrame(
        {"r_score": [5, 5, 5, 1], "f_score": [5, 5, 1, 1], "m_score": [5, 1, 1, 1]},
        index=["a", "b", "c", "d"],
    )
    out = rfm_segments(scores, rules=rules)
    assert out["segment_key"].tolist() == [
        "big_spenders",
        "champions",
        "anyone_recent",
        "unassigned",
    ]
    assert out.loc["a", "action"] == "VIP desk"
    assert out.loc["b", "segment"] == "Champions"  # known keys take the default labels
    assert out.loc["c", "segment"] == "anyone_recent"  # unknown keys default to the key
    with pytest.raises(InputError, match="'key'"):
        rfm_segments(scores, rules=[{"segment": "No key", "r_min": 1}])
    with pytest.raises(InputError, match="'odd': r_max must be a score number, got 'high'"):
        rfm_segments(scores, rules=[{"key": "odd", "r_max": "high"}])


def test_rules_can_be_replaced_by_an_edited_default_table():
    rules = DEFAULT_SEGMENT_RULES.copy()
    rules.loc[rules["key"] == "champions", "r_min"] = 4  # 4/5 are champions too now
    out = rfm_segments(pd.DataFrame({"r_score": [4], "f_score": [5], "m_score": [1]}), rules=rules)
    assert out["segment_key"].iloc[0] == "champions"
    assert DEFAULT_SEGMENT_RULES.loc[0, "r_min"] == 5  # the default was not modified


# ---------------------------------------------------------------- value


def test_default_tiers_split_1000_customers_1_9_40_50():
    clv = pd.Series(np.arange(1000.0)[::-1], index=[f"c{i}" for i in range(1000)])
    tiers = value_tiers(clv)
    assert tiers.value_counts().to_dict() == {
        "top_1": 10,
        "top_10": 90,
        "next_40": 400,
        "bottom_50": 500,
    }
    assert tiers["c0"] == "top_1" and tiers["c999"] == "bottom_50"
    shares = value_shares(clv, tiers)
    assert shares["value_share"].sum() == pytest.approx(1.0)
    assert shares["customer_share"].sum() == pytest.approx(1.0)
    # top 1% = 990..999 ⇒ sum 9,945 of 499,500
    assert shares.loc["top_1", "value_share"] == pytest.approx(9945 / 499500)
    assert list(shares.index) == ["top_1", "top_10", "next_40", "bottom_50"]


def test_tied_customers_share_a_tier_and_custom_tiers():
    tiers = value_tiers([5.0, 5.0, 5.0, 1.0], tiers=[("top", 0.5), ("rest", 1.0)])
    assert tiers.tolist() == ["top", "top", "top", "rest"]
    with pytest.raises(InputError, match="1.0"):
        value_tiers([1.0, 2.0], tiers=[("a", 0.5), ("b", 0.9)])


def test_shares_sum_to_one_on_skewed_values_by_decile_and_segment():
    rng = np.random.default_rng(7)
    clv = pd.Series(rng.lognormal(3, 1.5, 5000))
    deciles = value_deciles(clv)
    assert deciles.value_counts().tolist() == [500] * 10
    by_decile = value_shares(clv, deciles)
    assert by_decile["value_share"].sum() == pytest.approx(1.0)
    assert (
        by_decile.loc[1, "mean_value"]
        > by_decile.loc[2, "mean_value"]
        > by_decile.loc[10, "mean_value"]
    )
    segments = pd.Series(rng.choice(list(SEGMENT_LABELS)[:11], 5000))
    assert value_shares(clv, segments)["value_share"].sum() == pytest.approx(1.0)


def test_gini_matches_the_mean_absolute_difference_formula():
    rng = np.random.default_rng(0)
    x = rng.gamma(0.5, 10.0, 400)
    mad = np.abs(x[:, None] - x[None, :]).mean()
    assert gini(x) == pytest.approx(mad / (2 * x.mean()), rel=1e-12)
    assert gini(np.full(10, 3.0)) == pytest.approx(0.0, abs=1e-12)
    curve = lorenz_curve(x)
    assert curve.iloc[0].tolist() == [0.0, 0.0] and curve.iloc[-1].tolist() == [1.0, 1.0]
    assert (np.diff(curve["value_share"]) >= 0).all()
    assert (curve["value_share"] <= curve["customer_share"] + 1e-12).all()  # below the diagonal


def test_negative_or_missing_clv_is_an_input_error_naming_the_customer():
    with pytest.raises(InputError, match="'bob'"):
        value_tiers(pd.Series([1.0, -2.0], index=["ann", "bob"]))
    with pytest.raises(InputError, match="no group label"):
        value_shares([1.0, 2.0], pd.Series(["a", None]))
    with pytest.raises(InputError, match="3 labels for 2"):
        value_shares([1.0, 2.0], ["a", "b", "c"])


def test_value_shares_align_on_customer_ids():
    clv = pd.Series([10.0, 1.0], index=["x", "y"])
    groups = pd.Series(["small", "big"], index=["y", "x"])  # other order
    assert value_shares(clv, groups)["value"].to_dict() == {"big": 10.0, "small": 1.0}
    with pytest.raises(InputError, match="'y'"):
        value_shares(clv, pd.Series(["big"], index=["x"]))


def test_value_flags():
    clv = [100.0, 95.0, 90.0, 5.0, 4.0, 3.0, 2.0, 1.0, 1.0, 0.5]
    alive = [0.3, 0.9, 0.9, 0.1, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9]
    before = [0.3, 0.95, 0.5, 0.1, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9]
    out = value_flags(clv, alive, p_alive_before=before, top_share=0.3)
    # c0: top and P(alive) < .5; c1: top, fell by .05 only; c2: top, rose; c3: risky but not top
    assert out["high_value_at_risk"].tolist() == [True] + [False] * 9
    out = value_flags(clv, alive, p_alive_before=[0.3, 1.0] + before[2:], top_share=0.3)
    assert out["high_value_at_risk"].tolist()[:3] == [True, True, False]
    rates = value_flags(
        clv[:3], alive[:3], rate_recent=[0.2, 0.0, 0.1], rate_before=[0.1, 0.0, np.nan]
    )
    assert rates["rising"].tolist() == [True, False, False]
    # Series are aligned on customer ids, whatever their order
    ids = [f"c{i}" for i in range(10)]
    out = value_flags(pd.Series(clv, index=ids), pd.Series(alive, index=ids)[::-1], top_share=0.3)
    assert out["high_value_at_risk"].tolist() == [True] + [False] * 9
    with pytest.raises(InputError, match="p_alive has 2 values for 10"):
        value_flags(clv, [0.5, 0.5])


# ---------------------------------------------------------------- audiences


def _customers():
    s = _summary([9, 8, 0, 0, 3], since_last=[0, 45, 0, 49, 20], monetary=[50, 40, 0, 0, 20])
    out = rfm_segments(s)
    out["clv"] = [500.0, 300.004, 40.0, 1.0, 60.0]
    out["p_alive"] = [0.99, 0.2, 1.0, 0.05, 0.7]
    out["tier"] = value_tiers(out["clv"], tiers=[("top", 0.4), ("rest", 1.0)])
    out["next_contact_date"] = pd.to_datetime(["2024-02-01"] * 5)
    return out


def test_write_audiences_one_file_per_segment_and_tier(tmp_path):
    customers = _customers()
    paths = write_audiences(customers, tmp_path)
    names = [p.name for p in paths]
    expected_segments = sorted(f"segment_{k}.csv" for k in set(customers["segment_key"]))
    assert names == expected_segments + ["tier_rest.csv", "tier_top.csv"]
    top = pd.read_csv(tmp_path / "tier_top.csv")
    assert top["customer_id"].tolist() == ["c0", "c1"]
    assert list(top.columns) == [
        "customer_id",
        "segment",
        "tier",
        "clv",
        "p_alive",
        "next_contact_date",
        "rfm_code",
    ]
    assert top["next_contact_date"].tolist() == ["2024-02-01"] * 2
    assert top["clv"].tolist() == [500.0, 300.0]  # to the cent
    total = sum(len(pd.read_csv(p)) for p in paths if p.name.startswith("segment_"))
    assert total == len(customers)


def test_write_audiences_refuses_to_overwrite_without_force(tmp_path):
    customers = _customers()
    write_audiences(customers, tmp_path)
    before = (tmp_path / "tier_top.csv").read_text()
    customers["clv"] = 0.0
    with pytest.raises(InputError, match="force"):
        write_audiences(customers, tmp_path)
    assert (tmp_path / "tier_top.csv").read_text() == before
    write_audiences(customers, tmp_path, force=True)
    assert (tmp_path / "tier_top.csv").read_text() != before
    assert not list(tmp_path.glob(".*tmp"))  # no temp files left behind


def test_public_names():
    assert ltvkit.rfm_segments is rfm_segments
    assert ltvkit.write_audiences is write_audiences
    assert ltvkit.DEFAULT_SEGMENT_RULES is DEFAULT_SEGMENT_RULES
