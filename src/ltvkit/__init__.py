"""ltvkit: customer lifetime value from transaction logs or from a few business figures.

The public API is re-exported here. Names are imported lazily on first use so that
``import ltvkit`` and the ``ltv`` command start fast; ``__all__`` lists them all.

Examples
--------
>>> import ltvkit
>>> ltvkit.InputError.__mro__[1].__name__
'LtvError'
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from ltvkit.errors import (
    ConvergenceWarning,
    FitError,
    InputError,
    LtvError,
    MissingExtraError,
    NotFittedError,
)

__version__ = "0.1.0"

# public name -> module that defines it (modules themselves are listed with a value of None)
_LAZY: dict[str, str | None] = {
    # data layer
    "read_transactions": "ltvkit.data.transactions",
    "Transactions": "ltvkit.data.transactions",
    "ReadReport": "ltvkit.data.transactions",
    "rfm_summary": "ltvkit.data.summary",
    "calibration_holdout": "ltvkit.data.summary",
    "summary_statistics": "ltvkit.data.summary",
    "simulate_transactions": "ltvkit.data.synthetic",
    "datasets": None,
    # models
    "BGNBD": "ltvkit.models.bgnbd",
    "ParetoNBD": "ltvkit.models.paretonbd",
    "MBGNBD": "ltvkit.models.mbgnbd",
    "BGBB": "ltvkit.models.bgbb",
    "GammaGamma": "ltvkit.models.gammagamma",
    "SBG": "ltvkit.models.sbg",
    # value and decisions
    "lifetime_value": "ltvkit.value",
    "rfm_scores": "ltvkit.segments",
    "rfm_segments": "ltvkit.segments",
    "DEFAULT_SEGMENT_RULES": "ltvkit.segments",
    "SEGMENT_LABELS": "ltvkit.segments",
    "DEFAULT_TIERS": "ltvkit.segments",
    "TIER_LABELS": "ltvkit.segments",
    "value_tiers": "ltvkit.segments",
    "value_deciles": "ltvkit.segments",
    "value_shares": "ltvkit.segments",
    "lorenz_curve": "ltvkit.segments",
    "gini": "ltvkit.segments",
    "value_flags": "ltvkit.segments",
    "write_audiences": "ltvkit.segments",
    "next_purchase_dates": "ltvkit.timing",
    "next_purchase_window": "ltvkit.timing",
    "next_contact_dates": "ltvkit.timing",
    "purchase_habits": "ltvkit.timing",
    "purchase_rates": "ltvkit.timing",
    "purchase_seasonality": "ltvkit.timing",
    "acquisition": "ltvkit.cohorts",
    "cohort_value": "ltvkit.cohorts",
    "retention_curves": "ltvkit.cohorts",
    "read_spend": "ltvkit.cohorts",
    "channel_economics": "ltvkit.cohorts",
    # the pipeline: backtest, analysis, report
    "backtest": "ltvkit.evaluate",
    "Backtest": "ltvkit.evaluate",
    "analyze": "ltvkit.pipeline",
    "Analysis": "ltvkit.pipeline",
    "calculator": None,
}

_MODULE_PATHS = {"datasets": "ltvkit.data.datasets", "calculator": "ltvkit.calculator"}

__all__ = [
    "ConvergenceWarning",
    "FitError",
    "InputError",
    "LtvError",
    "MissingExtraError",
    "NotFittedError",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'ltvkit' has no attribute {name!r}")
    module_path = _LAZY[name]
    value = (
        import_module(_MODULE_PATHS[name])
        if module_path is None
        else getattr(import_module(module_path), name)
    )
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
