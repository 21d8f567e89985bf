"""Plain-language notes that the report can say in its own language: English text plus a locale key.

The pipeline's notes (skipped steps, fits that needed help, spend that matched no channel)
are read in the terminal and in JSON as plain English strings, and rendered in the report in
English or French. A :class:`Note` is both: a ``str`` holding the English sentence, carrying
the report's locale key and the parameters (numbers, dates, names) the locale template fills
in. Code that only wants text treats it as a string.
"""

from __future__ import annotations

from typing import Any, Self

__all__ = ["Note", "note_of", "tag"]


class Note(str):
    """An English sentence (the string itself) with a report locale ``key`` and its ``params``.

    Examples
    --------
    >>> n = Note("The backtest was skipped: it was switched off.", "skip.off")
    >>> n, n.key, n.params
    ('The backtest was skipped: it was switched off.', 'skip.off', {})
    >>> import pickle
    >>> pickle.loads(pickle.dumps(Note("x", "k", n=2))).params
    {'n': 2}
    """

    key: str
    params: dict[str, Any]

    def __new__(cls, text: str, key: str, **params: Any) -> Self:
        note = super().__new__(cls, text)
        note.key, note.params = key, params
        return note

    def __reduce__(self) -> tuple[Any, ...]:
        return _rebuild, (str(self), self.key, self.params)


def _rebuild(text: str, key: str, params: dict[str, Any]) -> Note:
    return Note(text, key, **params)


def note_of(error: BaseException, default_key: str, **params: Any) -> Note:
    """The note of an exception: its own ``note_key``/``note_params`` when it was tagged (see
    :func:`tag`), else ``default_key`` with ``detail`` (the English message) and ``params``.

    Examples
    --------
    >>> note_of(ValueError("boom"), "skip.other").params
    {'detail': 'boom'}
    >>> note_of(tag(ValueError("no repeat"), "skip.no_repeat", date="1997-09-30"), "skip.other").key
    'skip.no_repeat'
    """
    key = getattr(error, "note_key", None)
    if key is None:
        return Note(str(error), default_key, detail=str(error), **params)
    return Note(str(error), key, **{**params, **getattr(error, "note_params", {})})


def tag(error: BaseException, key: str, **params: Any) -> BaseException:
    """Attach a report locale key and parameters to an exception (its message stays English)."""
    error.note_key, error.note_params = key, params  # type: ignore[attr-defined]
    return error
