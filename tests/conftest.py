"""Shared fixtures: the reference data sets shipped inside the package."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import ltvkit

DATA_DIR = Path(ltvkit.__file__).parent / "data" / "files"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """Folder of the bundled reference files (copies of the public CDNOW, donations, sBG data)."""
    return DATA_DIR


@pytest.fixture(scope="session")
def cdnow_summary() -> pd.DataFrame:
    """CDNOW calibration summary (weeks): frequency, recency, T for 2,357 customers."""
    return pd.read_csv(DATA_DIR / "cdnow_customers_summary.csv", index_col="ID")


@pytest.fixture(scope="session")
def cdnow_spend() -> pd.DataFrame:
    """CDNOW summary with mean repeat spend: columns frequency, recency, T, monetary_value."""
    df = pd.read_csv(DATA_DIR / "cdnow_customers_summary_with_transactions.csv", index_col="ID")
    return df.rename(columns={"x": "frequency", "t_x": "recency", "zbar": "monetary_value"})


@pytest.fixture(scope="session")
def donations() -> pd.DataFrame:
    """BG/BB donations data: frequency, recency, T (=6 opportunities) and weights (11,104 donors)."""
    return pd.read_csv(DATA_DIR / "donations.csv").rename(columns={"periods": "T"})


@pytest.fixture(scope="session")
def sbg_retention() -> pd.DataFrame:
    """Fader & Hardie (2007) Table 1: % of two cohorts alive at years 0..12."""
    return pd.read_csv(DATA_DIR / "sbg_retention.csv")
