"""Reference data sets bundled with ltvkit: CDNOW, donations (BG/BB) and sBG retention.

The files are copies of the public data shipped with lifetimes 0.11.3 (see
``ltvkit/data/files/README.md``); they are found with :mod:`importlib.resources`, so
they work from an installed wheel too.

Examples
--------
>>> from ltvkit import datasets
>>> tx = datasets.load_cdnow()
>>> len(tx), tx.table.num_columns
(6919, 5)
>>> datasets.load_cdnow_summary().shape
(2357, 4)
"""

from __future__ import annotations

from importlib.resources import as_file, files
from importlib.resources.abc import Traversable

import pandas as pd
import pyarrow as pa

from ltvkit.data.transactions import Transactions, read_transactions

__all__ = ["load_cdnow", "load_cdnow_summary", "load_donations", "load_sbg_retention", "path"]


def path(name: str) -> Traversable:
    """Location of a bundled file (e.g. ``"CDNOW_sample.txt"``) inside the installed package.

    Examples
    --------
    >>> path("donations.csv").name
    'donations.csv'
    """
    return files("ltvkit") / "data" / "files" / name


def load_cdnow(sample: bool = True) -> Transactions:
    """CDNOW transaction log: customers whose first purchase was in 1997 Q1, to 1998-06-30.

    Parameters
    ----------
    sample : bool
        ``True`` (default): the 1/10 systematic sample of Fader, Hardie & Lee (2005)
        (6,919 rows, 2,357 customers numbered 1…2357 as in the reference summary).
        ``False``: the full log (69,659 rows, 23,570 customers).

    Returns
    -------
    Transactions
        ``customer_id`` (int64), ``ts``, ``amount`` (USD) and the extra column ``n_cds``
        (number of CDs); the sample also keeps ``master_id`` (the id in the full log).

    Examples
    --------
    >>> tx = load_cdnow()
    >>> tx.table.column_names
    ['customer_id', 'ts', 'amount', 'master_id', 'n_cds']
    >>> round(sum(tx.table["amount"].to_pylist()), 2)
    244091.94
    """
    name = "CDNOW_sample.txt" if sample else "CDNOW_master.txt"
    # sample: master id, sample id, YYYYMMDD, CDs, USD (no header); master: id, date, CDs, USD
    cols = {"customer": 1, "date": 2, "amount": 4} if sample else {"customer": 0, "date": 1, "amount": 3}
    with as_file(path(name)) as local:
        tx = read_transactions(local, **cols, sep="whitespace", date_format="%Y%m%d")
    table = tx.table
    extra = dict(zip(["master_id", "n_cds"] if sample else ["n_cds"], table.column_names[3:]))
    columns = {
        "customer_id": table["customer_id"].cast(pa.int64()),
        "ts": table["ts"],
        "amount": table["amount"],
        **{name: table[source] for name, source in extra.items()},
    }
    columns["n_cds"] = columns["n_cds"].cast(pa.int32())
    return Transactions(pa.table(columns), tx.report, tx.observation_end)


def load_cdnow_summary() -> pd.DataFrame:
    """Reference calibration summary of the CDNOW sample (weeks, calibration to 1997-09-30).

    Columns ``frequency``, ``recency``, ``T`` (from ``cdnow_customers_summary.csv``) and
    ``monetary_value`` (mean repeat spend in USD, ``zbar`` of
    ``cdnow_customers_summary_with_transactions.csv``), indexed by ``customer_id`` 1…2357.
    Times are rounded to 0.01 week and spends to the cent, as published.

    Examples
    --------
    >>> s = load_cdnow_summary()
    >>> int(s["frequency"].sum()), float(s.loc[s["frequency"] > 0, "monetary_value"].mean().round(2))
    (2457, 35.08)
    """
    rfm = pd.read_csv(path("cdnow_customers_summary.csv").open(), index_col="ID")
    spend = pd.read_csv(path("cdnow_customers_summary_with_transactions.csv").open(), index_col="ID")
    rfm["monetary_value"] = spend["zbar"]
    return rfm.rename_axis("customer_id")


def load_donations() -> pd.DataFrame:
    """Donor cohort of Fader, Hardie & Shang (2010) in compressed form, for the BG/BB model.

    Columns ``frequency`` and ``recency`` (repeat donations, year of the last one), ``T``
    (6 annual opportunities) and ``weights`` (number of donors with that pattern; 11,104).

    Examples
    --------
    >>> d = load_donations()
    >>> list(d.columns), int(d["weights"].sum())
    (['frequency', 'recency', 'T', 'weights'], 11104)
    """
    return pd.read_csv(path("donations.csv").open()).rename(columns={"periods": "T"})


def load_sbg_retention() -> pd.DataFrame:
    """Share (%) of two subscriber cohorts still active at years 0–12 (Fader & Hardie 2007, Table 1).

    Examples
    --------
    >>> r = load_sbg_retention()
    >>> r.loc[r["year"] == 1, ["regular_pct_alive", "highend_pct_alive"]].values.tolist()
    [[63.1, 86.9]]
    """
    return pd.read_csv(path("sbg_retention.csv").open())
