"""Bundled data sets load with the documented shapes and facts."""

from __future__ import annotations

import pyarrow.compute as pc

from ltvkit import datasets


def test_cdnow_sample_facts():
    """REFERENCES.md: 6,919 rows, 2,357 customers, 1997-01-01 to 1998-06-30, first purchases in Q1."""
    tx = datasets.load_cdnow()
    table = tx.table
    assert table.num_rows == 6919
    assert table.column_names == ["customer_id", "ts", "amount", "master_id", "n_cds"]
    assert pc.count_distinct(table["customer_id"]).as_py() == 2357
    lo, hi = pc.min_max(table["ts"]).values()
    assert (str(lo.as_py().date()), str(hi.as_py().date())) == ("1997-01-01", "1998-06-30")
    assert table["n_cds"][0].as_py() == 2 and table["master_id"][0].as_py() == "00004"
    first = table.group_by("customer_id").aggregate([("ts", "min")])
    assert str(pc.max(first["ts_min"]).as_py().date()) <= "1997-03-31"
    assert tx.report.n_kept == 6919


def test_cdnow_master_facts():
    tx = datasets.load_cdnow(sample=False)
    assert tx.table.num_rows == 69659
    assert pc.count_distinct(tx.table["customer_id"]).as_py() == 23570
    assert tx.table.column_names == ["customer_id", "ts", "amount", "n_cds"]
    # the sample is a subset of the master log: same customers, dates and amounts
    sample = datasets.load_cdnow().to_pandas()
    sample["customer_id"] = sample["master_id"].astype("int64")
    keys = ["customer_id", "ts", "amount", "n_cds"]
    matched = sample[keys].merge(tx.to_pandas()[keys].drop_duplicates(), on=keys, how="inner")
    assert len(matched) == len(sample)


def test_reference_tables(cdnow_summary, cdnow_spend, donations, sbg_retention):
    s = datasets.load_cdnow_summary()
    assert list(s.columns) == ["frequency", "recency", "T", "monetary_value"]
    assert s.index.name == "customer_id" and len(s) == 2357
    assert (s[["frequency", "recency", "T"]].to_numpy() == cdnow_summary.to_numpy()).all()
    assert (s["monetary_value"].to_numpy() == cdnow_spend["monetary_value"].to_numpy()).all()
    assert datasets.load_donations().equals(donations)
    assert datasets.load_sbg_retention().equals(sbg_retention)
    assert datasets.path("CDNOW_master.txt").is_file()
