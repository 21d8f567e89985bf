"""Read a transaction log from a file, a frame or a DuckDB query into validated ``Transactions``.

One call reads CSV/TSV/whitespace text, Parquet, Excel, pandas/polars/pyarrow frames or a DuckDB
query, detects the delimiter, header, encoding, number format and date format from the data, and
returns a pyarrow table with ``customer_id``, ``ts`` (UTC), ``amount`` and any extra columns.
Unusable rows raise :class:`~ltvkit.errors.InputError` naming the file, line, column and value, or
with ``on_bad_rows="skip"`` are excluded, counted and reported; nothing is dropped silently.

All parsing runs vectorised in an in-process DuckDB connection opened and driven through
:mod:`ltvkit.engines.duckdb` (which also translates DuckDB's errors); only the few bad rows are
ever looked at in Python.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import os
import re
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ltvkit.engines import duckdb as engine
from ltvkit.engines.duckdb import Connection
from ltvkit.errors import InputError, MissingExtraError

__all__ = ["BadRow", "ReadReport", "Transactions", "read_transactions"]

ColumnRef = str | int | None
_SAMPLE_BYTES = 1 << 20
_MAX_BAD_SHOWN = 10
_EXCEL_SUFFIXES = {".xlsx", ".xlsm"}
_PARQUET_SUFFIXES = {".parquet", ".pq"}
_FILE_SUFFIX = re.compile(r"\.(csv|tsv|txt|dat|parquet|pq|xlsx|xlsm)$", re.IGNORECASE)
_SQL_START = re.compile(r"^\s*(select|from|with|table|values|\()\b", re.IGNORECASE)
_NUMERIC_LOOKING = re.compile(r"^[\s+\-€$£]*\d[\d\s.,:/\-+TZ€$£\u00a0\u202f]*$")
_CUSTOMER_NAMES = ("customer_id", "customer", "customerid", "client_id", "client", "id")
_DATE_NAMES = ("ts", "date", "timestamp", "datetime", "order_date", "purchase_date")
_OUT = ("customer_id", "ts", "amount")


class BadRow(NamedTuple):
    """One excluded (or offending) row: where it is, which column, the raw value and why."""

    line: int
    column: str
    value: str | None
    reason: str
    #: stable name of the reason (``missing_id``, ``bad_id``, ``missing_date``, ``bad_date``,
    #: ``missing_amount``, ``bad_amount``) for front ends that say it in another language
    kind: str = "other"


@dataclass(frozen=True)
class ReadReport:
    """What :func:`read_transactions` read, kept and excluded.

    Attributes
    ----------
    source : str
        File name, ``"pandas DataFrame"``, the SQL query, ...
    n_rows : int
        Rows read (header and blank lines not counted).
    n_kept : int
        Rows in the resulting :class:`Transactions`.
    n_bad : int
        Rows excluded because a customer id, date or amount was unusable (``on_bad_rows="skip"``).
    bad_rows : tuple of BadRow
        The first (at most 10) excluded rows as ``(line, column, value, reason)``.
    n_duplicates : int
        Rows identical to an earlier kept row in every column; they are KEPT.
    n_returns : int
        Kept rows with a negative amount (returns, refunds); they are KEPT.
    n_after_end : int
        Rows dated after ``observation_end``; they are excluded.
    unit : str
        ``"line"`` (1-based line of a text file, header included) or ``"row"`` (0-based position
        in a frame or query result; 1-based row of an Excel sheet).
    """

    source: str
    n_rows: int
    n_kept: int
    n_bad: int = 0
    bad_rows: tuple[BadRow, ...] = ()
    n_duplicates: int = 0
    n_returns: int = 0
    n_after_end: int = 0
    unit: str = "line"

    def messages(self) -> list[str]:
        """Plain-English sentences describing what was read, kept and excluded.

        Examples
        --------
        >>> report = ReadReport("orders.csv", n_rows=10, n_kept=9, n_after_end=1, n_returns=2)
        >>> for message in report.messages():
        ...     print(message)
        Read 10 rows from orders.csv and kept 9.
        2 rows have a negative amount (returns or refunds); they were kept.
        1 row dated after the observation end was excluded.
        """
        out = [f"Read {self.n_rows:,} rows from {self.source} and kept {self.n_kept:,}."]
        if self.n_bad:
            out.append(_bad_sentence(self.n_bad, self.bad_rows, self.unit))
        if self.n_duplicates:
            out.append(f"{_rows(self.n_duplicates)} {_be(self.n_duplicates)} an exact duplicate of "
                       "an earlier row; duplicates were kept (remove them first if they are "
                       "double-counted orders).")
        if self.n_returns:
            out.append(f"{_rows(self.n_returns)} {_have(self.n_returns)} a negative amount "
                       "(returns or refunds); they were kept.")
        if self.n_after_end:
            out.append(f"{_rows(self.n_after_end)} dated after the observation end "
                       f"{_were(self.n_after_end)} excluded.")
        return out


def _rows(n: int) -> str:
    return f"{n:,} row" if n == 1 else f"{n:,} rows"


def _were(n: int) -> str:
    return "was" if n == 1 else "were"


def _be(n: int) -> str:
    return "is" if n == 1 else "are"


def _have(n: int) -> str:
    return "has" if n == 1 else "have"


def _bad_sentence(n_bad: int, bad_rows: Sequence[BadRow], unit: str) -> str:
    shown = "; ".join(f"{unit} {b.line}, column {b.column!r}, value {b.value!r}: {b.reason}"
                      for b in bad_rows)
    return f"{_rows(n_bad)} with an unusable value {_were(n_bad)} excluded (first: {shown})."


_NOT_COUNTED = -1  # n_duplicates placeholder until Transactions.report is first read


class Transactions:
    """A validated transaction log: one row a purchase.

    ``table`` is a pyarrow Table with ``customer_id`` (text from text files, int64 or text from
    typed sources), ``ts`` (``timestamp[us, tz=UTC]``), ``amount`` (float64, absent when no amount
    column was named: then ``has_amount`` is False) and the extra columns of the source (an extra
    column called like an output column gets the suffix ``_original``).

    ``observation_end`` is the UTC datetime passed to :func:`read_transactions` (midnight for a
    date-only value, whose whole day was kept), or None. ``report`` is a :class:`ReadReport`;
    exact duplicates are counted when it is first read (a pass over every column).

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"id": [1, 1, 2], "day": ["2025-01-01", "2025-02-01", "2025-01-05"],
    ...                    "paid": [10.0, -2.5, 7.0]})
    >>> tx = read_transactions(df, customer="id", date="day", amount="paid")
    >>> tx
    Transactions(3 rows, 2 customers, 2025-01-01 → 2025-02-01, source='pandas DataFrame')
    >>> tx.columns
    ['customer_id', 'ts', 'amount']
    >>> tx.report.n_returns
    1
    """

    def __init__(self, table: pa.Table, report: ReadReport | None = None,
                 observation_end: dt.datetime | None = None) -> None:
        self.table = table
        self._report = report or ReadReport(
            "pyarrow Table", n_rows=table.num_rows, n_kept=table.num_rows,
            n_duplicates=_NOT_COUNTED, n_returns=_count_returns(table), unit="row")
        self.observation_end = observation_end

    @property
    def report(self) -> ReadReport:
        """What was read, kept and excluded (duplicates are counted on first access)."""
        if self._report.n_duplicates == _NOT_COUNTED:
            self._report = replace(self._report, n_duplicates=_count_duplicates(self.table))
        return self._report

    @property
    def source(self) -> str:
        """Where the data came from (file name, frame kind or query)."""
        return self._report.source

    @property
    def has_amount(self) -> bool:
        """Whether an ``amount`` column was read (``amount=None`` leaves it out)."""
        return "amount" in self.table.column_names

    @property
    def columns(self) -> list[str]:
        """Column names of ``table``."""
        return list(self.table.column_names)

    def __len__(self) -> int:
        return self.table.num_rows

    def to_pandas(self) -> Any:
        """The table as a pandas DataFrame (``ts`` is ``datetime64[us, UTC]``)."""
        return self.table.to_pandas()

    def __repr__(self) -> str:
        n_customers = pc.count_distinct(self.table.column("customer_id")).as_py()
        span = ""
        if self.table.num_rows:
            lo, hi = pc.min_max(self.table.column("ts")).values()
            span = f", {lo.as_py():%Y-%m-%d} → {hi.as_py():%Y-%m-%d}"
        return (f"Transactions({len(self):,} rows, {n_customers:,} customers{span}, "
                f"source={self.source!r})")


# --------------------------------------------------------------------------------------------
# sources


@dataclass
class _Source:
    """A source registered in the connection as the view/table ``src``.

    ``reread`` re-creates the rows in file order for locating bad rows; ``locate`` maps 0-based
    record indices to the line/row numbers shown to the user.
    """

    name: str
    unit: str
    columns: list[str]
    types: list[str]
    text: bool
    reread: str
    locate: Any = field(default=lambda idx: idx)
    has_header: bool = True


def _fetch(con: Connection, sql: str, src: _Source | str) -> list[tuple[Any, ...]]:
    """Rows of ``sql``; DuckDB errors become ltvkit errors naming the source."""
    name = src if isinstance(src, str) else src.name
    return engine.query_rows(con, sql, context=f"{name}: reading the data")


def _open(source: Any, con: Connection, opts: dict[str, Any],
          refs: Sequence[ColumnRef]) -> _Source:
    if isinstance(source, (str, os.PathLike)) and not _is_query(source, opts):
        path = Path(source)
        if not _is_file(str(path)):
            raise InputError(f"{path}: file not found (and it is not a SQL query or a table of "
                             "the DuckDB connection)")
        suffix = path.suffix.lower()
        if suffix in _PARQUET_SUFFIXES:
            return _open_parquet(path, con)
        if suffix in _EXCEL_SUFFIXES:
            table, header = _excel_table(path, opts, refs)
            return _open_frame(table, con, path.name, first_row=2 if header else 1)
        return _open_text(path, con, opts, refs)
    if isinstance(source, str):
        return _open_frame(_query_table(source, opts.get("connection")), con, _short(source))
    return _open_frame(_frame_table(source), con, _frame_name(source))


def _short(query: str) -> str:
    query = " ".join(query.split())
    return f"DuckDB query {query[:60] + '…' if len(query) > 60 else query!r}"


def _is_query(source: Any, opts: dict[str, Any]) -> bool:
    if not isinstance(source, str) or _is_file(source) or _FILE_SUFFIX.search(source):
        return False
    if _SQL_START.match(source):
        return True
    con = opts.get("connection")
    if con is None or not re.fullmatch(r"[\w.]+", source):
        return False
    names = engine.table_names(con)
    return source.lower() in names or source.split(".")[-1].lower() in names


def _is_file(text: str) -> bool:
    try:
        return Path(text).is_file()
    except (OSError, ValueError):  # names too long or with NUL bytes are not files
        return False


def _query_table(query: str, connection: Any) -> pa.Table:
    sql = query if _SQL_START.match(query) else f"SELECT * FROM {query}"
    context = f"{_short(query)}: reading the data"
    if connection is not None:
        return engine.query_arrow(connection, sql, context=context)
    with engine.session(preserve_order=True) as con:
        return engine.query_arrow(con, sql, context=context)


def _frame_name(frame: Any) -> str:
    module = type(frame).__module__.split(".")[0]
    names = {"pandas": "pandas DataFrame", "polars": "polars DataFrame",
             "pyarrow": "pyarrow Table", "duckdb": "DuckDB relation"}
    return names.get(module, type(frame).__name__)


def _frame_table(frame: Any) -> pa.Table:
    if isinstance(frame, pa.Table):
        return frame
    if isinstance(frame, pa.RecordBatch):
        return pa.Table.from_batches([frame])
    module = type(frame).__module__.split(".")[0]
    if module == "pandas" and hasattr(frame, "columns"):
        try:
            return pa.Table.from_pandas(frame, preserve_index=False)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise InputError(f"pandas DataFrame: a column mixes kinds of values ({exc}); convert "
                             "it to one type first, e.g. df[col].astype(str)") from exc
    if module == "polars" and hasattr(frame, "to_arrow"):
        return frame.to_arrow()
    if module == "duckdb" and hasattr(frame, "to_arrow_table"):
        return frame.to_arrow_table()
    raise InputError(f"cannot read transactions from a {type(frame).__name__}: pass a file path, "
                     "a pandas/polars DataFrame, a pyarrow Table or a DuckDB SQL query")


def _describe(con: Connection, name: str) -> tuple[list[str], list[str]]:
    rows = _fetch(con, "DESCRIBE src", name)
    return [r[0] for r in rows], [r[1] for r in rows]


def _open_frame(table: pa.Table, con: Connection, name: str,
                first_row: int = 0) -> _Source:
    """Register an Arrow table; bad rows are shown as positions counted from ``first_row``."""
    engine.register(con, "src", table)
    columns, types = _describe(con, name)
    return _Source(name, "row", columns, types, text=False, reread="SELECT * FROM src",
                   locate=lambda idx: idx + first_row)


def _open_parquet(path: Path, con: Connection) -> _Source:
    scan = f"read_parquet({_lit(str(path))})"
    _fetch(con, f"CREATE VIEW src AS SELECT * FROM {scan}", path.name)
    columns, types = _describe(con, path.name)
    return _Source(path.name, "row", columns, types, text=False,
                   reread=f"SELECT * FROM {scan}")


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# ---- text files


def _open_text(path: Path, con: Connection, opts: dict[str, Any],
               refs: Sequence[ColumnRef]) -> _Source:
    name = path.name
    path, sample = _utf8_file(path, opts.get("encoding"), opts["tmpdir"])
    if len(sample) >= _SAMPLE_BYTES // 4:  # the last sampled line may be cut
        sample = sample[: sample.rfind("\n") + 1]
    lines = [ln for ln in sample.splitlines() if ln.strip()][:200]
    if not lines:
        raise InputError(f"{name}: the file is empty")
    sep = opts.get("sep") or _sniff_sep(lines)
    whitespace = sep in (" ", r"\s+", "whitespace")
    rows = [ln.split() for ln in lines[:50]] if whitespace else list(
        csv.reader(lines[:50], delimiter=sep))
    header = opts.get("header")
    if header is None:
        header = any(isinstance(r, str) for r in refs) or _looks_like_header(rows)
    names = [n.lstrip("\ufeff").strip() for n in rows[0]] if header else None

    def scan_of(file: Path) -> str:
        if whitespace:
            return _whitespace_lists(file, sample, header)
        return (f"read_csv({_lit(str(file))}, delim={_lit(sep)}, header={str(header).lower()}, "
                "all_varchar=true, null_padding=true, strict_mode=false, encoding='utf-8', "
                "skip=0, comment='')")

    scan = scan_of(path)
    try:
        _fetch(con, f"CREATE TABLE raw AS SELECT * FROM {scan}", name)
    except InputError as exc:
        if opts.get("encoding") or "unicode" not in str(exc).lower():
            raise InputError(_csv_error(name, path, sep, len(rows[0]), exc)) from exc
        # valid UTF-8 at the start only: fall back to cp1252 for the whole file
        path = _utf8_file(path, "cp1252", opts["tmpdir"])[0]
        scan = scan_of(path)
        _fetch(con, f"CREATE TABLE raw AS SELECT * FROM {scan}", name)
    fields = "*"
    if whitespace:  # one column a field, as many as the widest line
        width = _fetch(con, "SELECT max(len(f)) FROM raw", name)[0][0] or 0
        names = (names or [])[:width]
        names += [f"column{i}" for i in range(len(names), width)]
        fields = ", ".join(f"f[{i + 1}] AS {_ident(n)}" for i, n in enumerate(names))
    _fetch(con, f"CREATE VIEW src AS SELECT {fields} FROM raw", name)
    columns, types = _describe(con, name)
    return _Source(name, "line", columns, types, text=True,
                   reread=f"SELECT {fields} FROM {scan}",
                   locate=lambda idx: _data_lines(path, header)[idx], has_header=header)


def _csv_error(name: str, path: Path, sep: str, width: int, exc: InputError) -> str:
    """Message for a file DuckDB cannot parse, naming the first line with too many fields."""
    with open(path, encoding="utf-8", errors="replace", newline="") as fh:
        reader = csv.reader(fh, delimiter=sep)
        for row in reader:
            if len(row) > width:
                return (f"{name}, line {reader.line_num}: {len(row)} fields separated by {sep!r} "
                        f"where the first line has {width}: {sep.join(row)!r}. Fix that line "
                        "(quote values that contain the delimiter), or pass sep= if the "
                        "delimiter was detected wrongly")
    return str(exc)


def _utf8_file(path: Path, encoding: str | None, tmpdir: Path) -> tuple[Path, str]:
    """A UTF-8 readable path (cp1252 or other files are transcoded into ``tmpdir``) and a sample."""
    with open(path, "rb") as fh:
        head = fh.read(_SAMPLE_BYTES)
    if encoding is None:
        try:
            return path, codecs.getincrementaldecoder("utf-8-sig")().decode(head, final=False)
        except UnicodeDecodeError:
            encoding = "cp1252"
    if codecs.lookup(encoding).name in ("utf-8", "utf-8-sig"):
        return path, head.decode(encoding, errors="replace")
    target = tmpdir / path.name
    try:
        with open(path, encoding=encoding, newline="") as src, \
                open(target, "w", encoding="utf-8", newline="") as dst:
            dst.writelines(iter(lambda: src.read(_SAMPLE_BYTES), ""))
    except UnicodeDecodeError as exc:
        raise InputError(f"{path.name}: cannot decode the file as UTF-8 or {encoding}; pass "
                         "encoding= (for example encoding='latin-1')") from exc
    return target, target.read_text(encoding="utf-8")[:_SAMPLE_BYTES]


def _sniff_sep(lines: list[str]) -> str:
    """The delimiter giving the same (largest) number of fields on every sampled line.

    Failing that, runs of white space when every line has several fields, else a comma.
    """
    best, best_n = None, 1
    for sep in ("\t", ";", "|", ","):
        counts = {len(r) for r in csv.reader(lines, delimiter=sep)}
        if len(counts) == 1 and (n := counts.pop()) > best_n:
            best, best_n = sep, n
    if best is not None:
        return best
    if all(len(ln.split()) > 1 for ln in lines):
        return "whitespace"
    return ","


def _looks_like_header(rows: list[list[str]]) -> bool:
    if len(rows) < 2:
        return not any(_NUMERIC_LOOKING.match(v) for v in rows[0])
    first = sum(bool(_NUMERIC_LOOKING.match(v)) for v in rows[0])
    rest = max(sum(bool(_NUMERIC_LOOKING.match(v)) for v in r) for r in rows[1:])
    return first < rest


def _whitespace_lists(path: Path, sample: str, header: bool) -> str:
    """SQL reading each non-blank line as the list of its white-space separated fields."""
    skip = 0
    if header:
        for skip, line in enumerate(sample.split("\n"), start=1):  # noqa: B007 (used after the loop)
            if line.strip():
                break
    lines = (f"read_csv({_lit(str(path))}, columns={{'line': 'VARCHAR'}}, delim='\x01', "
             f"quote='', escape='', header=false, auto_detect=false, skip={skip}, "
             "strict_mode=false, encoding='utf-8')")
    return (f"(SELECT string_split_regex(trim(line, ' \t\r'), '\\s+') AS f "
            f"FROM {lines} WHERE line IS NOT NULL)")


def _data_lines(path: Path, header: bool) -> np.ndarray:
    """1-based line numbers of the data records of a text file (blank lines and header skipped)."""
    data = np.fromfile(path, dtype=np.uint8)
    ends = np.flatnonzero(data == 10)
    if not len(data) or data[-1] != 10:
        ends = np.append(ends, len(data))
    starts = np.concatenate(([0], ends[:-1] + 1))
    length = ends - starts
    cr_only = (length == 1) & (data[np.minimum(starts, len(data) - 1)] == 13)
    lines = np.flatnonzero((length > 0) & ~cr_only) + 1
    return lines[1:] if header else lines


# ---- Excel


def _excel_table(path: Path, opts: dict[str, Any],
                 refs: Sequence[ColumnRef]) -> tuple[pa.Table, bool]:
    """The sheet as an Arrow table (one type per column, else text) and whether it had a header."""
    try:
        import openpyxl
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MissingExtraError("reading Excel files needs openpyxl: pip install 'ltvkit[excel]'") \
            from exc
    book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    try:
        sheet = opts.get("sheet") or 0
        try:
            ws = book.worksheets[sheet] if isinstance(sheet, int) else book[sheet]
        except (IndexError, KeyError) as exc:
            raise InputError(f"{path.name}: no sheet {sheet!r}; the sheets are "
                             f"{book.sheetnames}") from exc
        rows = list(ws.iter_rows(values_only=True))
    finally:
        book.close()
    while rows and all(v is None for v in rows[-1]):
        rows.pop()
    if not rows:
        raise InputError(f"{path.name}: the sheet is empty")
    header = opts.get("header")
    if header is None:
        header = any(isinstance(r, str) for r in refs) or (
            all(isinstance(v, str) or v is None for v in rows[0])
            and any(not isinstance(v, str) and v is not None for r in rows[1:] for v in r))
    width = max(len(r) for r in rows)
    names = ([str(v) if v is not None else f"column{i}" for i, v in enumerate(rows[0])]
             if header else [f"column{i}" for i in range(width)])
    body = rows[1:] if header else rows
    cols = [_excel_column([r[i] if i < len(r) else None for r in body]) for i in range(width)]
    return pa.table(dict(zip(names, cols))), header


def _excel_column(values: list[Any]) -> pa.Array:
    kinds = {type(v) for v in values if v is not None}
    if kinds <= {int, float} or kinds <= {dt.datetime, dt.date}:
        try:
            return pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            pass
    return pa.array([None if v is None else str(v) for v in values], type=pa.string())


# --------------------------------------------------------------------------------------------
# column resolution and parsing expressions


def _resolve(ref: ColumnRef, role: str, src: _Source, defaults: Sequence[str]) -> str | None:
    cols = src.columns
    if ref is None:
        lower = {c.lower(): c for c in cols}
        for name in defaults:
            if name in lower:
                return lower[name]
        if not defaults:
            return None
        raise InputError(f"{src.name}: no {role} column was named and none is called "
                         f"{' / '.join(defaults[:3])}; pass {role}= with one of the columns: "
                         f"{cols}")
    if isinstance(ref, (int, np.integer)) and not isinstance(ref, bool):
        if not 0 <= ref < len(cols):
            raise InputError(f"{src.name}: {role}={ref} is not a column position; the data has "
                             f"{len(cols)} columns (0 to {len(cols) - 1}): {cols}")
        return cols[int(ref)]
    if ref in cols:
        return str(ref)
    matches = [c for c in cols if c.strip().lower() == str(ref).strip().lower()]
    if len(matches) == 1:
        return matches[0]
    hint = "" if src.has_header else " (the file has no header: pass column positions, e.g. 0)"
    raise InputError(f"{src.name}: column {ref!r} ({role}=) not found; the columns are {cols}"
                     f"{hint}")


_INT_TYPES = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "UTINYINT", "USMALLINT", "UINTEGER",
              "UBIGINT", "HUGEINT", "UHUGEINT"}
_FLOAT_TYPES = {"FLOAT", "DOUBLE"}
_TIME_TYPES = {"DATE", "TIMESTAMP", "TIMESTAMP_S", "TIMESTAMP_MS", "TIMESTAMP_NS",
               "TIMESTAMP WITH TIME ZONE"}


def _is_numeric(typ: str) -> bool:
    return typ in _INT_TYPES or typ in _FLOAT_TYPES or typ.startswith("DECIMAL")


def _customer_expr(col: str, typ: str, text: bool) -> str:
    c = _ident(col)
    if not text and typ in _INT_TYPES:
        return f"CAST({c} AS BIGINT)"
    if not text and typ in _FLOAT_TYPES:
        return f"CASE WHEN {c} = round({c}) THEN TRY_CAST({c} AS BIGINT) END"
    return f"NULLIF({_trimmed(f'CAST({c} AS VARCHAR)')}, '')"


def _trimmed(v: str) -> str:
    """``trim(v)`` computed only for values that need it (trimming every value is slow)."""
    return f"CASE WHEN starts_with({v}, ' ') OR ends_with({v}, ' ') THEN trim({v}) ELSE {v} END"


def _amount_expr(col: str, typ: str, text: bool, con: Connection,
                 src: _Source, decimal: str | None) -> tuple[str, str]:
    """SQL parsing the amount column to DOUBLE and a format description.

    The value is NULL when unusable; NaN and infinities are rejected later (see ``_final``).
    """
    c = _ident(col)
    if not text and _is_numeric(typ):
        return f"CAST({c} AS DOUBLE)", "number"
    raw = f"CAST({c} AS VARCHAR)"
    clean = f"regexp_replace({raw}, '[\\s\u00a0\u202f€$£¥]', '', 'g')"
    if decimal is None:
        decimal = _detect_decimal(con, raw, src, col)
    thousands = "," if decimal == "." else "."
    t, d = re.escape(thousands), re.escape(decimal)
    shape = rf"[-+]?(\d{{1,3}}({t}\d{{3}})+|\d*)({d}\d*)?([eE][-+]?\d+)?"
    fast = (f"TRY_CAST({raw} AS DOUBLE)" if decimal == "." else
            f"CASE WHEN NOT contains({raw}, '.') "
            f"THEN TRY_CAST(replace({raw}, ',', '.') AS DOUBLE) END")
    slow = (f"CASE WHEN regexp_full_match({clean}, '{shape}') THEN TRY_CAST(replace(replace("
            f"{clean}, '{thousands}', ''), ',', '.') AS DOUBLE) END")
    example = "1,234.50" if decimal == "." else "1 234,50"
    return f"COALESCE({fast}, {slow})", f"numbers like {example}"


def _detect_decimal(con: Connection, raw: str, src: _Source, col: str) -> str:
    """Decide the decimal mark from the whole column; raise when it cannot be told.

    A value votes for a decimal comma when a comma follows the last dot (``1.234,5``), when it
    has several dots (``1.234.567``) or a comma not followed by exactly three digits (``12,5``);
    symmetrically for the dot. Values like ``1,234`` alone cannot be told apart.
    """
    plain = f"""
        SELECT count_if(ok AND contains(v, '.')), count_if(NOT ok)
        FROM (SELECT v, TRY_CAST(v AS DOUBLE) IS NOT NULL AS ok FROM (SELECT {raw} AS v FROM src)
              WHERE v IS NOT NULL)"""
    dot_plain, n_other = _fetch(con, plain, src)[0]
    if not n_other:  # every value is a plain number like 12.5
        return "."
    strip = _lit(" \t€$£¥\u00a0\u202f")
    sql = f"""
        SELECT count_if(c AND d AND lc > ld) + count_if(d AND NOT c AND ld <> fd)
                 + count_if(c AND NOT d AND n - lc <> 3),
               count_if(c AND d AND ld > lc) + count_if(c AND NOT d AND lc <> fc)
                 + count_if(d AND NOT c AND n - ld <> 3),
               count_if(c AND NOT d), any_value(v) FILTER (WHERE c AND NOT d)
        FROM (SELECT v, c, d, n, strpos(v, ',') AS fc, strpos(v, '.') AS fd,
                     n + 1 - strpos(reverse(v), ',') AS lc, n + 1 - strpos(reverse(v), '.') AS ld
              FROM (SELECT v, contains(v, ',') AS c, contains(v, '.') AS d, length(v) AS n
                    FROM (SELECT trim({raw}, {strip}) AS v FROM src
                          WHERE TRY_CAST({raw} AS DOUBLE) IS NULL)))"""
    comma, dot, n_comma_only, example = _fetch(con, sql, src)[0]
    dot += dot_plain
    if comma and dot:
        return "," if comma >= dot else "."
    if comma:
        return ","
    if dot or not n_comma_only:
        return "."
    raise InputError(f"{src.name}: column {col!r}: cannot tell whether {example!r} uses a "
                     "decimal comma or a thousands comma; pass decimal=',' or decimal='.'")


_TIMES = {"": "", "hm": " %H:%M", "hms": " %H:%M:%S", "hmsf": " %H:%M:%S.%f"}
_TIME_PART = r"(?:[ T](?P<time>\d{1,2}:\d{2}(?P<sec>:\d{2}(?P<frac>\.\d+)?)?))?"
_FAMILIES = {
    "iso": re.compile(r"\d{4}-\d{1,2}-\d{1,2}(?:[ T].*)?"),
    "compact": re.compile(r"\d{8}"),
    "ymd": re.compile(r"\d{4}(?P<sep>[/.])\d{1,2}[/.]\d{1,2}" + _TIME_PART),
    "dmy": re.compile(r"\d{1,2}(?P<sep>[/.-])\d{1,2}[/.-](?P<year>\d{4}|\d{2})" + _TIME_PART),
}
_SAMPLE_ROWS = 20_000


def _date_expr(col: str, typ: str, text: bool, con: Connection, src: _Source,
               date_format: str | None) -> tuple[str, str, bool]:
    """SQL parsing the date column (NULL when unusable), the format used and whether it is tz-aware.

    A naive result is a TIMESTAMP holding UTC (casting to TIMESTAMPTZ in DuckDB is slow).
    """
    c = _ident(col)
    if not text and typ == "TIMESTAMP WITH TIME ZONE":
        return c, "date", True
    if not text and typ in _TIME_TYPES:
        return f"CAST({c} AS TIMESTAMP)", "date", False
    raw = _trimmed(f"CAST({c} AS VARCHAR)")
    if date_format is not None:
        return _strptime(raw, [date_format]), date_format, "%z" in date_format
    sample = [r[0] for r in _fetch(
        con, f"SELECT v FROM (SELECT {raw} AS v FROM src) WHERE v <> '' LIMIT {_SAMPLE_ROWS}", src)]
    if not sample:
        return f"TRY_CAST({raw} AS TIMESTAMP)", "ISO 8601", False
    family, matches = _date_family(sample, src, col)
    if family == "iso":
        tz = _has_offsets(con, raw, src)
        return (f"TRY_CAST({raw} AS {'TIMESTAMPTZ' if tz else 'TIMESTAMP'})",
                "ISO 8601 (YYYY-MM-DD[ HH:MM[:SS]][+HH:MM])", tz)
    if family == "compact":
        return _strptime(raw, ["%Y%m%d"]), "%Y%m%d", False
    variants = _variants(matches)
    if family == "ymd":
        fmts = [f"%Y{s}%m{s}%d{_TIMES[t]}" for s, _, t in variants if s in "/."]
    else:
        day, month = _day_month_order(con, raw, src, col, sample)
        fmts = [f"{day}{s}{month}{s}{y}{_TIMES[t]}" for s, y, t in variants]
    return _strptime(raw, fmts), fmts[0], False


def _date_family(sample: list[str], src: _Source, col: str) -> tuple[str, list[re.Match[str]]]:
    """The date family most sampled values match, with their matches."""
    found = {name: [m for v in sample if (m := rx.fullmatch(v))] for name, rx in _FAMILIES.items()}
    family = max(found, key=lambda name: len(found[name]))
    if not found[family]:
        raise InputError(f"{src.name}: column {col!r}: cannot recognise the date format of values "
                         f"like {sample[0]!r}; pass date_format= (strptime syntax, e.g. "
                         "date_format='%d/%m/%Y %H:%M')")
    return family, found[family]


def _variants(matches: list[re.Match[str]]) -> list[tuple[str, str, str]]:
    """Every (separator, year, time) format variant, the most frequent in the sample first."""
    def key(m: re.Match[str]) -> tuple[str, str, str]:
        year = "%y" if len(m.groupdict().get("year") or "2025") == 2 else "%Y"
        time = "hmsf" if m["frac"] else "hms" if m["sec"] else "hm" if m["time"] else ""
        return m["sep"], year, time

    counts: dict[tuple[str, str, str], int] = {}
    for m in matches:
        counts[key(m)] = counts.get(key(m), 0) + 1
    everything = [(s, y, t) for s in "/.-" for y in ("%Y", "%y") for t in _TIMES]
    return sorted(everything, key=lambda v: -counts.get(v, 0))


def _has_offsets(con: Connection, raw: str, src: _Source) -> bool:
    """Whether any ISO value of the whole column carries a time zone offset or ``Z``."""
    sql = (f"SELECT count_if(contains(v, '+') OR ends_with(v, 'Z') OR ends_with(v, 'UTC') "
           f"OR v LIKE '%:%-%') FROM (SELECT {raw} AS v FROM src)")
    return bool(_fetch(con, sql, src)[0][0])


def _day_month_order(con: Connection, raw: str, src: _Source, col: str,
                     sample: list[str]) -> tuple[str, str]:
    """Day first or month first, from the largest first and second numbers of the whole column."""
    sql = f"""
        SELECT max(a), max(b), count_if(a > 12), count_if(b > 12)
        FROM (SELECT TRY_CAST(split_part(x, '/', 1) AS INTEGER) AS a,
                     TRY_CAST(split_part(x, '/', 2) AS INTEGER) AS b
              FROM (SELECT translate({raw}, '.-', '//') AS x FROM src))
        WHERE a <= 31 AND b <= 31"""
    max1, max2, over1, over2 = _fetch(con, sql, src)[0]
    if (max1 or 0) <= 12 and (max2 or 0) <= 12:
        example = next(v for v in sample if _FAMILIES["dmy"].fullmatch(v))
        sep = _FAMILIES["dmy"].fullmatch(example)["sep"]
        raise InputError(f"{src.name}: column {col!r}: dates like {example!r} are ambiguous (day "
                         "and month are both 12 or less in every row); pass date_format="
                         f"'%d{sep}%m{sep}%Y' for day first or '%m{sep}%d{sep}%Y' for month first")
    return ("%d", "%m") if over1 >= over2 else ("%m", "%d")


def _strptime(raw: str, fmts: list[str]) -> str:
    return f"try_strptime({raw}, [{', '.join(_lit(f) for f in fmts)}])"


# --------------------------------------------------------------------------------------------
# the read


def _parse_end(end: Any) -> tuple[dt.datetime | None, dt.datetime | None]:
    """(observation end as UTC datetime, exclusive upper bound for ``ts``)."""
    if end is None:
        return None, None
    import pandas as pd

    try:
        stamp = pd.Timestamp(end)
    except (ValueError, TypeError) as exc:
        raise InputError(f"observation_end={end!r} is not a date; pass e.g. '1997-09-30'") from exc
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    date_only = (isinstance(end, dt.date) and not isinstance(end, dt.datetime)) or (
        isinstance(end, str) and len(end.strip()) <= 10)
    bound = stamp + pd.Timedelta(days=1) if date_only else stamp + pd.Timedelta(microseconds=1)
    return stamp.to_pydatetime(), bound.to_pydatetime()


def read_transactions(
    source: Any,
    customer: ColumnRef = None,
    date: ColumnRef = None,
    amount: ColumnRef = None,
    *,
    sep: str | None = None,
    header: bool | None = None,
    encoding: str | None = None,
    date_format: str | None = None,
    decimal: str | None = None,
    on_bad_rows: Literal["raise", "skip"] = "raise",
    observation_end: Any = None,
    sheet: str | int | None = None,
    connection: Connection | None = None,
) -> Transactions:
    """Read and validate a transaction log (one row a purchase) from almost any source.

    Parameters
    ----------
    source : path, DataFrame, Table, str or Transactions
        A text file (CSV/TSV/``;``/``|``/white-space separated, any extension), a Parquet file,
        an Excel ``.xlsx`` file (needs the ``[excel]`` extra), a pandas or polars DataFrame, a
        pyarrow Table, a DuckDB SQL query or table name (see ``connection``), or a
        ``Transactions`` (returned unchanged).
    customer, date, amount : str or int, optional
        Column names, or 0-based positions (the only way for text files without a header).
        ``customer`` defaults to a column called customer_id/customer/id, ``date`` to
        ts/date/timestamp. ``amount=None`` reads no amount: the result has no ``amount`` column
        and ``has_amount`` is False.
    sep : str, optional
        Delimiter of a text file; detected by default (``,`` ``;`` tab ``|`` or runs of spaces,
        which can be forced with ``sep="whitespace"``).
    header : bool, optional
        Whether a text file or sheet starts with a header line; detected by default (always
        True when a column is named by a string).
    encoding : str, optional
        Text encoding; by default UTF-8 (with or without BOM), falling back to cp1252.
    date_format : str, optional
        strptime format of the date column (e.g. ``"%d/%m/%Y %H:%M"``); detected from the whole
        column by default. Ambiguous day/month columns raise and ask for it.
    decimal : {".", ","}, optional
        Decimal mark of a text amount column; detected from the whole column by default.
        Thousands separators (space, U+00A0, U+202F, ``.`` or ``,``) and currency symbols are
        removed.
    on_bad_rows : {"raise", "skip"}
        What to do with rows whose customer id is missing, date unusable or amount not a
        number: raise :class:`InputError` naming file, line, column and value, or exclude them,
        report them on ``.report`` and warn.
    observation_end : date-like, optional
        Rows after it are excluded and counted. A date without a time includes that whole day.
    sheet : str or int, optional
        Excel sheet name or 0-based index (default: the first sheet).
    connection : duckdb connection, optional
        Connection that runs ``source`` when it is a SQL query or table name.

    Returns
    -------
    Transactions
        ``table`` with ``customer_id``, ``ts`` (UTC; naive times are taken as UTC), ``amount``
        and the extra columns, and ``report`` (:class:`ReadReport`). Negative amounts and exact
        duplicate rows are kept and counted.

    Raises
    ------
    InputError
        Missing file or column, undetectable or ambiguous format, or a bad row with
        ``on_bad_rows="raise"``.
    MissingExtraError
        An Excel file was given and openpyxl is not installed.

    Examples
    --------
    >>> from importlib.resources import files
    >>> path = files("ltvkit") / "data" / "files" / "CDNOW_sample.txt"
    >>> tx = read_transactions(path, customer=0, date=2, amount=4)
    >>> len(tx), tx.table["customer_id"][0].as_py(), str(tx.table["ts"][0].as_py().date())
    (6919, '00004', '1997-01-01')
    >>> tx.report.messages()[0]
    'Read 6,919 rows from CDNOW_sample.txt and kept 6,919.'
    """
    if isinstance(source, Transactions):
        return source
    if on_bad_rows not in ("raise", "skip"):
        raise InputError(f"on_bad_rows={on_bad_rows!r}: use 'raise' or 'skip'")
    if decimal not in (None, ".", ","):
        raise InputError(f"decimal={decimal!r}: use '.' or ','")
    end, bound = _parse_end(observation_end)
    opts = {"sep": sep, "header": header, "encoding": encoding, "sheet": sheet,
            "connection": connection}
    with engine.session(preserve_order=True) as con, \
            tempfile.TemporaryDirectory(prefix="ltvkit-") as tmpdir:
        opts["tmpdir"] = Path(tmpdir)
        src = _open(source, con, opts, (customer, date, amount))
        table, report = _read(src, con, (customer, date, amount), date_format, decimal,
                              on_bad_rows, bound)
    return Transactions(table, report, end)


@dataclass
class _Plan:
    """How to parse a source: SQL per output column, where each comes from, formats used."""

    exprs: dict[str, str]  # output name -> SQL parsing the source column (NULL when unusable)
    columns: dict[str, str | None]  # output name -> source column
    formats: dict[str, str]
    tz: bool  # whether the ts expression is TIMESTAMPTZ (else TIMESTAMP holding UTC)
    extras: dict[str, str]  # source column -> output name


def _plan(src: _Source, con: Connection, refs: Sequence[ColumnRef],
          date_format: str | None, decimal: str | None) -> _Plan:
    cust = _resolve(refs[0], "customer", src, _CUSTOMER_NAMES)
    date = _resolve(refs[1], "date", src, _DATE_NAMES)
    amount = _resolve(refs[2], "amount", src, ()) if refs[2] is not None else None
    typ = dict(zip(src.columns, src.types))
    exprs = {"customer_id": _customer_expr(cust, typ[cust], src.text)}
    exprs["ts"], date_fmt, tz = _date_expr(date, typ[date], src.text, con, src, date_format)
    formats = {"ts": date_fmt}
    if amount is not None:
        exprs["amount"], formats["amount"] = _amount_expr(amount, typ[amount], src.text, con,
                                                          src, decimal)
    extras = {c: f"{c}_original" if c in _OUT else c for c in src.columns
              if c not in (cust, date, amount)}
    return _Plan(exprs, {"customer_id": cust, "ts": date, "amount": amount}, formats, tz, extras)


def _read(src: _Source, con: Connection, refs: Sequence[ColumnRef],
          date_format: str | None, decimal: str | None, on_bad_rows: str,
          bound: dt.datetime | None) -> tuple[pa.Table, ReadReport]:
    """Parse every row in one vectorised query; look at bad rows only when there are some."""
    plan = _plan(src, con, refs, date_format, decimal)
    parsed = [f"{e} AS {k}" for k, e in plan.exprs.items()]
    parsed += [f"{_ident(c)} AS {_ident(out)}" for c, out in plan.extras.items()]
    final = ", ".join([_final(k) for k in plan.exprs] + [_ident(o) for o in plan.extras.values()])
    bad = " OR ".join(f"{k} IS NULL" for k in plan.exprs)
    late = "false"
    if bound is not None:
        stamp = bound.isoformat() if plan.tz else bound.replace(tzinfo=None).isoformat()
        late = f"ts >= {'TIMESTAMPTZ' if plan.tz else 'TIMESTAMP'} {_lit(stamp)}"
    sql = (f"SELECT *, ({bad}) AS __bad, (NOT ({bad}) AND {late}) AS __late "
           f"FROM (SELECT {final} FROM (SELECT {', '.join(parsed)} FROM src))")
    table = engine.query_arrow(con, sql, context=f"{src.name}: reading the data")
    n_rows = table.num_rows
    n_bad = pc.sum(table["__bad"]).as_py() or 0
    n_late = pc.sum(table["__late"]).as_py() or 0
    bad_rows: tuple[BadRow, ...] = ()
    if n_bad:
        found = _locate_bad(src, con, plan, 1 if on_bad_rows == "raise" else _MAX_BAD_SHOWN)
        if on_bad_rows == "raise":
            raise InputError(_raise_message(src, *found[0], n_bad))
        bad_rows = tuple(b for _, b in found)
    if n_bad or n_late:
        table = table.filter(pc.invert(pc.or_(table["__bad"], table["__late"])))
    table = table.drop_columns(["__bad", "__late"])
    # naive TIMESTAMP values hold UTC: attaching the zone only changes metadata
    table = table.set_column(1, "ts", table["ts"].cast(pa.timestamp("us", tz="UTC")))
    report = ReadReport(
        source=src.name, n_rows=n_rows, n_kept=table.num_rows, n_bad=n_bad, bad_rows=bad_rows,
        n_duplicates=_NOT_COUNTED, n_returns=_count_returns(table), n_after_end=n_late,
        unit=src.unit)
    if n_bad:
        warnings.warn(f"{src.name}: {_bad_sentence(n_bad, bad_rows, src.unit)}", UserWarning,
                      stacklevel=3)
    return table, report


def _final(key: str) -> str:
    """Outer-query expression of a parsed column (amounts must be finite)."""
    if key == "amount":
        return "CASE WHEN isfinite(amount) THEN amount END AS amount"
    return key


def _count_returns(table: pa.Table) -> int:
    if "amount" not in table.column_names:
        return 0
    return pc.sum(pc.less(table["amount"], 0)).as_py() or 0


def _count_duplicates(table: pa.Table) -> int:
    """Rows equal to an earlier row in every column.

    A 64-bit hash per row is sorted in numpy (much faster than a DISTINCT over all columns);
    only rows whose hash occurs more than once are then compared exactly in DuckDB.
    """
    if table.num_rows < 2:
        return 0
    context = "counting duplicate rows"
    with engine.session() as con:
        engine.register(con, "t", table)
        row_hash = f"hash({', '.join(_ident(c) for c in table.column_names)})"
        hashes = np.sort(engine.query_arrow(con, f"SELECT {row_hash} AS h FROM t", context=context)
                         .column("h").to_numpy())
        repeated = np.unique(hashes[1:][hashes[1:] == hashes[:-1]])
        if not len(repeated):
            return 0
        engine.register(con, "repeated", pa.table({"h": repeated}))
        n, n_distinct = engine.query_rows(
            con, f"SELECT count(*), (SELECT count(*) FROM (SELECT DISTINCT * FROM t "
            f"WHERE {row_hash} IN (SELECT h FROM repeated))) "
            f"FROM t WHERE {row_hash} IN (SELECT h FROM repeated)", context=context)[0]
    return n - n_distinct


def _locate_bad(src: _Source, con: Connection, plan: _Plan,
                limit: int) -> list[tuple[str, BadRow]]:
    """Re-read the source in order (one thread) to find where the first bad rows are."""
    exprs, cols = plan.exprs, plan.columns
    parsed = ", ".join(f"{e} AS {k}" for k, e in exprs.items())
    raws = ", ".join(f"CAST({_ident(cols[k])} AS VARCHAR) AS raw_{k}" for k in exprs)
    finals = ", ".join(_final(k) for k in exprs)
    raw_names = ", ".join(f"raw_{k}" for k in exprs)
    checks = ", ".join(f"{k} IS NULL AS bad_{k}" for k in exprs)
    any_bad = " OR ".join(f"{k} IS NULL" for k in exprs)
    sql = (f"SELECT idx, {checks}, {raw_names} FROM (SELECT idx, {finals}, {raw_names} FROM "
           f"(SELECT row_number() OVER () - 1 AS idx, {parsed}, {raws} FROM ({src.reread}) AS src))"
           f" WHERE {any_bad} ORDER BY idx LIMIT {limit}")
    with engine.setting(con, "threads", 1):
        rows = _fetch(con, sql, src)
    lines = src.locate(np.array([r[0] for r in rows], dtype=np.int64))
    keys = list(exprs)
    out = []
    for line, row in zip(lines, rows):
        flags, values = row[1:1 + len(keys)], row[1 + len(keys):]
        k = keys[flags.index(True)]
        value = values[keys.index(k)]
        kind, reason = _reason(k, value, plan.formats.get(k, ""))
        out.append((k, BadRow(int(line), cols[k], value, reason, kind)))
    return out


def _reason(key: str, value: str | None, fmt: str) -> tuple[str, str]:
    """(kind, plain-English reason) why ``value`` is unusable in column ``key``."""
    missing = value is None or not str(value).strip() or str(value).lower() == "nan"
    if key == "customer_id":
        return ("missing_id", "missing customer id") if missing else \
            ("bad_id", "customer id is not a whole number")
    if key == "ts":
        return ("missing_date", "missing date") if missing else \
            ("bad_date", f"not a valid date in the format {fmt} (malformed or impossible, like 31/02)")
    return ("missing_amount", "missing amount") if missing else \
        ("bad_amount", f"amount is not a number ({fmt} expected)")


_FIXES = {
    "customer_id": "fill in the customer id",
    "ts": "fix the date, or pass date_format= (strptime syntax, e.g. date_format='%d/%m/%Y') if "
          "the format was detected wrongly,",
    "amount": "fix the amount, or pass decimal=',' or decimal='.' if the decimal mark was "
              "detected wrongly,",
}


def _raise_message(src: _Source, key: str, bad: BadRow, n_bad: int) -> str:
    return (f"{src.name}, {src.unit} {bad.line}, column {bad.column!r}: {bad.reason}: value "
            f"{bad.value!r} ({_rows(n_bad)} in all {_have(n_bad)} an unusable value). To go on, "
            f"{_FIXES[key]} or pass on_bad_rows='skip' to exclude such rows (they are counted "
            "and reported).")
