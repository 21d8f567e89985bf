"""DuckDB engine: the one place of the data layer that talks to DuckDB.

It opens in-process connections with sane defaults (UTC, bounded threads and memory),
registers Arrow tables or data frames as views, runs SQL to Arrow, pandas or Python rows,
and turns DuckDB's exceptions into :class:`~ltvkit.errors.InputError` / :class:`~ltvkit.errors.LtvError`
with a message a user can act on.

Examples
--------
>>> import pyarrow as pa
>>> with session() as con:
...     register(con, "t", pa.table({"x": [1, 2, 3]}))
...     query_arrow(con, "SELECT max(x) AS m FROM t").to_pylist()
[{'m': 3}]
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa

from ltvkit.errors import InputError, LtvError

__all__ = [
    "Connection",
    "connect",
    "query_arrow",
    "query_df",
    "query_rows",
    "register",
    "session",
    "setting",
    "table_names",
    "translate_errors",
]

Connection = duckdb.DuckDBPyConnection
"""Type of a DuckDB connection (for annotations outside this module)."""

DEFAULT_THREADS = 2


def default_memory_limit() -> str:
    """Half of the machine's physical memory (at least 1 GiB), as a DuckDB size string.

    DuckDB's own default is 80 %; half leaves room for the pandas/numpy side of the pipeline.

    Examples
    --------
    >>> default_memory_limit().endswith("MiB")
    True
    """
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, OSError, ValueError):  # pragma: no cover - non-POSIX
        total = 8 * 2**30
    return f"{max(total // 2, 2**30) // 2**20}MiB"


def connect(
    threads: int = DEFAULT_THREADS, memory_limit: str | None = None, preserve_order: bool = False
) -> Connection:
    """Open an in-memory DuckDB connection set up for ltvkit.

    Parameters
    ----------
    threads : int
        Worker threads DuckDB may use (default 2).
    memory_limit : str, optional
        DuckDB size string such as ``"4GB"``; default :func:`default_memory_limit`.
    preserve_order : bool
        Keep the rows of a scan in source order in query results (needed when reading a
        log whose row order is part of the result); off by default (faster, less memory:
        ltvkit sorts explicitly where order matters).

    Returns
    -------
    duckdb.DuckDBPyConnection
        Time zone UTC, progress bar off.

    Examples
    --------
    >>> con = connect(threads=1)
    >>> con.execute("SELECT current_setting('TimeZone')").fetchone()[0]
    'UTC'
    >>> con.close()
    """
    if threads < 1:
        raise InputError(f"threads must be at least 1, got {threads}")
    config = {
        "threads": threads,
        "memory_limit": memory_limit or default_memory_limit(),
        "preserve_insertion_order": preserve_order,
    }
    with translate_errors("opening DuckDB", hint="Check the threads and memory_limit values."):
        con = duckdb.connect(":memory:", config=config)
        con.execute("SET TimeZone = 'UTC'; SET enable_progress_bar = false")
    return con


@contextmanager
def session(
    threads: int = DEFAULT_THREADS, memory_limit: str | None = None, preserve_order: bool = False
) -> Iterator[Connection]:
    """Context manager around :func:`connect` (same arguments) that closes the connection afterwards.

    Examples
    --------
    >>> with session() as con:
    ...     con.execute("SELECT 42").fetchone()[0]
    42
    """
    con = connect(threads=threads, memory_limit=memory_limit, preserve_order=preserve_order)
    try:
        yield con
    finally:
        con.close()


def register(con: Connection, name: str, data: Any) -> None:
    """Expose an Arrow table, pandas or polars frame as the view ``name`` (zero copy for Arrow).

    Examples
    --------
    >>> import pandas as pd
    >>> with session() as con:
    ...     register(con, "f", pd.DataFrame({"a": [1.5]}))
    ...     con.execute("SELECT a FROM f").fetchone()[0]
    1.5
    """
    if not isinstance(data, (pa.Table, pa.RecordBatchReader, pd.DataFrame)) and not hasattr(
        data, "to_arrow"
    ):
        raise InputError(
            f"cannot use a {type(data).__name__} as a table; pass a pandas or polars DataFrame "
            "or a pyarrow Table"
        )
    if hasattr(data, "to_arrow") and not isinstance(data, pa.Table):  # polars
        data = data.to_arrow()
    with translate_errors(f"registering table {name!r}"):
        con.register(name, data)


def query_arrow(
    con: Connection,
    sql: str,
    params: Sequence[Any] | dict[str, Any] | None = None,
    context: str = "running a query",
) -> pa.Table:
    """Run ``sql`` (with optional ``?``/``$name`` parameters) and return an Arrow table.

    Examples
    --------
    >>> with session() as con:
    ...     query_arrow(con, "SELECT ? + 1 AS y", [1]).column("y").to_pylist()
    [2]
    """
    with translate_errors(context):
        return con.sql(sql, params=params).to_arrow_table()


def query_df(
    con: Connection,
    sql: str,
    params: Sequence[Any] | dict[str, Any] | None = None,
    context: str = "running a query",
) -> pd.DataFrame:
    """Run ``sql`` and return a pandas DataFrame (through Arrow).

    Examples
    --------
    >>> with session() as con:
    ...     query_df(con, "SELECT 1 AS a, 'x' AS b").to_dict("records")
    [{'a': 1, 'b': 'x'}]
    """
    return query_arrow(con, sql, params, context).to_pandas()


def query_rows(
    con: Connection,
    sql: str,
    params: Sequence[Any] | dict[str, Any] | None = None,
    context: str = "running a query",
) -> list[tuple[Any, ...]]:
    """Run ``sql`` (a query or a statement such as ``CREATE VIEW``) and return its rows as tuples.

    Examples
    --------
    >>> with session() as con:
    ...     query_rows(con, "CREATE VIEW v AS SELECT 1 AS a")
    ...     query_rows(con, "SELECT a, a + 1 FROM v")
    []
    [(1, 2)]
    """
    with translate_errors(context):
        return con.execute(sql, params).fetchall()


def table_names(con: Connection) -> set[str]:
    """Lower-cased names of the tables and views of the connection's catalog.

    Examples
    --------
    >>> with session() as con:
    ...     query_rows(con, "CREATE TABLE Orders (x INTEGER)")
    ...     table_names(con)
    []
    {'orders'}
    """
    rows = query_rows(con, "SELECT table_name FROM information_schema.tables",
                      context="listing the tables")
    return {r[0].lower() for r in rows}


@contextmanager
def setting(con: Connection, name: str, value: Any) -> Iterator[None]:
    """Change a DuckDB setting (e.g. ``threads``) for the block, then restore it.

    Examples
    --------
    >>> with session(threads=2) as con:
    ...     with setting(con, "threads", 1):
    ...         print(query_rows(con, "SELECT current_setting('threads')")[0][0])
    ...     print(query_rows(con, "SELECT current_setting('threads')")[0][0])
    1
    2
    """
    if not name.isidentifier():
        raise InputError(f"{name!r} is not a DuckDB setting name")
    before = query_rows(con, "SELECT current_setting(?)", [name])[0][0]
    query_rows(con, f"SET {name} = ?", [value], context=f"setting {name}")
    try:
        yield
    finally:
        query_rows(con, f"SET {name} = ?", [before], context=f"restoring {name}")


_INPUT_ERRORS: tuple[type[Exception], ...] = (
    duckdb.ConversionException,
    duckdb.InvalidInputException,
    duckdb.BinderException,
    duckdb.CatalogException,
    duckdb.IOException,
    duckdb.OutOfRangeException,
    duckdb.TypeMismatchException,
    duckdb.ParserException,
)


_DATA_HINT = (
    "Check the file or column named above (separator, date format, column names) and try again."
)


@contextmanager
def translate_errors(context: str, hint: str = _DATA_HINT) -> Iterator[None]:
    """Turn DuckDB exceptions raised inside the block into ltvkit errors.

    Problems with the data or the file (unreadable value, missing column or file, value
    out of range) become :class:`InputError`; running out of memory and anything else
    become :class:`LtvError`. The message says what ltvkit was doing (``context``), what
    DuckDB reported (first lines, without its SQL echo) and how to proceed (``hint``).

    Examples
    --------
    >>> with session() as con:
    ...     try:
    ...         with translate_errors("reading orders.csv"):
    ...             con.sql("SELECT 'abc'::INTEGER").fetchall()
    ...     except InputError as exc:
    ...         print(str(exc).splitlines()[0])
    reading orders.csv failed: Conversion Error: Could not convert string 'abc' to INT32
    """
    try:
        yield
    except duckdb.OutOfMemoryException as exc:
        raise LtvError(
            f"{context} ran out of memory: {_short(exc)}\nFree memory, pass a larger "
            "memory_limit, or summarise a smaller extract of the data."
        ) from exc
    except duckdb.InterruptException as exc:
        raise LtvError(f"{context} was interrupted") from exc
    except _INPUT_ERRORS as exc:
        raise InputError(f"{context} failed: {_short(exc)}\n{hint}") from exc
    except duckdb.Error as exc:
        raise LtvError(
            f"{context} failed inside DuckDB: {_short(exc)}\nRerun with --debug (CLI) for "
            "details and report it if the data look fine."
        ) from exc


def _short(exc: Exception) -> str:
    """DuckDB's message without the echoed SQL (``LINE n: ...`` and caret lines)."""
    lines = str(exc).strip().splitlines()
    kept = []
    for line in lines:
        if line.startswith("LINE ") or not line.strip():
            break
        kept.append(line.strip())
    return " ".join(kept) if kept else str(exc)
