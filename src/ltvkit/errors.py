"""Exceptions and warnings raised by ltvkit, with messages a user can act on."""

from __future__ import annotations

__all__ = [
    "LtvError",
    "InputError",
    "NotFittedError",
    "FitError",
    "ConvergenceWarning",
    "MissingExtraError",
]


class LtvError(Exception):
    """Base class of every error ltvkit raises on purpose."""


class InputError(LtvError, ValueError):
    """The data or an argument is unusable; the message says where and how to fix it.

    Examples
    --------
    >>> try:
    ...     raise InputError("column 'amount' is missing")
    ... except ValueError as exc:
    ...     print(exc)
    column 'amount' is missing
    """


class NotFittedError(LtvError, AttributeError):
    """A model was asked for predictions before ``fit`` or ``from_params``."""


class FitError(LtvError, RuntimeError):
    """A model could not be fitted at all (for example, a non-finite likelihood everywhere)."""


class ConvergenceWarning(UserWarning):
    """A fit finished but did not converge; its estimates should not be trusted as they are."""


class MissingExtraError(LtvError, ImportError):
    """An optional dependency is needed: the message names the ``pip install`` extra to add."""
