"""Tests of read_transactions: every source format, detection rules and every bad-input message."""

from __future__ import annotations

import dataclasses
import datetime as dt
import sys

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ltvkit import InputError, MissingExtraError, ReadReport, Transactions, read_transactions

UTC = dt.UTC


def ts(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


def col(tx: Transactions, name: str) -> list:
    return tx.table.column(name).to_pylist()


def write(path, text: str, encoding: str = "utf-8"):
    path.write_bytes(text.encode(encoding))
    return path


# ---------------------------------------------------------------- bundled CDNOW files


def test_cdnow_master_one_call(data_dir):
    tx = read_transactions(data_dir / "CDNOW_master.txt", customer=0, date=1, amount=3)
    assert len(tx) == 69_659
    assert len(set(col(tx, "customer_id"))) == 23_570
    assert tx.table.schema.field("customer_id").type == pa.string()
    assert tx.table.schema.field("ts").type == pa.timestamp("us", tz="UTC")
    assert tx.table.schema.field("amount").type == pa.float64()
    assert tx.columns == ["customer_id", "ts", "amount", "number_of_cds"]
    assert col(tx, "customer_id")[0] == "00001"  # leading zeros kept
    # independent parse with pandas for the amounts and dates
    ref = pd.read_csv(data_dir / "CDNOW_master.txt", sep=r"\s+", dtype=str)
    np.testing.assert_allclose(col(tx, "amount"), ref["dollar_value"].astype(float))
    assert col(tx, "ts")[-1] == dt.datetime.strptime(ref["date"].iloc[-1], "%Y%m%d").replace(
        tzinfo=UTC)
    assert tx.report.n_rows == tx.report.n_kept == 69_659
    assert tx.report.n_bad == 0 and tx.report.unit == "line"
    assert tx.report.n_duplicates == len(ref) - len(ref.drop_duplicates())
    assert min(col(tx, "ts")) == ts(1997, 1, 1) and max(col(tx, "ts")) == ts(1998, 6, 30)


def test_cdnow_sample_no_header_positions(data_dir):
    tx = read_transactions(data_dir / "CDNOW_sample.txt", customer=0, date=2, amount=4)
    assert len(tx) == 6_919
    assert len(set(col(tx, "customer_id"))) == 2_357
    assert tx.columns == ["customer_id", "ts", "amount", "column1", "column3"]
    assert col(tx, "customer_id")[:2] == ["00004", "00004"]
    assert col(tx, "ts")[:2] == [ts(1997, 1, 1), ts(1997, 1, 18)]
    assert col(tx, "amount")[:2] == [29.33, 29.73]
    assert col(tx, "column1")[0] == "0001"
    assert "6,919 rows from CDNOW_sample.txt" in tx.report.messages()[0]


# ---------------------------------------------------------------- text formats

FRENCH = (
    "\ufeffN° client;Date de commande;Montant TTC (€);Canal\r\n"
    "001;31/12/2025 14:05;1 234,50 €;Web\r\n"
    "002;01/02/2025 09:30;12,00 €;Magasin\r\n"
    "001;15/03/2025 18:00:30;1\u00a0000,00;Web\r\n"
    "003;02/03/2025 08:00;2\u202f500,25;Téléphone\r\n"
    "002;04/04/2025 10:10;1.234,50;Web\r\n"
    "002;05/04/2025 11:11;-15,90 €;Web\r\n"
)


def test_french_export_bom_decimal_comma_day_first(tmp_path):
    path = write(tmp_path / "export.csv", FRENCH)
    tx = read_transactions(path, customer="N° client", date="Date de commande",
                           amount="Montant TTC (€)")
    assert col(tx, "customer_id") == ["001", "002", "001", "003", "002", "002"]
    assert col(tx, "amount") == [1234.5, 12.0, 1000.0, 2500.25, 1234.5, -15.9]
    assert col(tx, "ts")[:3] == [ts(2025, 12, 31, 14, 5), ts(2025, 2, 1, 9, 30),
                                 ts(2025, 3, 15, 18, 0, 30)]
    assert col(tx, "Canal")[3] == "Téléphone"
    assert tx.report.n_returns == 1


def test_cp1252_file_falls_back(tmp_path):
    text = "client;date;montant;ville\n1;2025-01-02;10,5;Besançon\n2;2025-01-03;7,0;Orléans €\n"
    path = write(tmp_path / "latin.csv", text, encoding="cp1252")
    with pytest.raises(UnicodeDecodeError):
        path.read_bytes().decode("utf-8")
    tx = read_transactions(path, customer="client", date="date", amount="montant")
    assert col(tx, "ville") == ["Besançon", "Orléans €"]
    assert col(tx, "amount") == [10.5, 7.0]


def test_tsv_with_header_and_int_positions(tmp_path):
    path = write(tmp_path / "orders.tsv",
                 "cust\twhen\tvalue\tcampaign\nA7\t2025-01-02\t3.5\tspring\nB8\t2025-01-04\t4\t\n")
    tx = read_transactions(path, customer=0, date=1, amount=2)  # ints allowed with a header
    assert col(tx, "customer_id") == ["A7", "B8"]
    assert col(tx, "amount") == [3.5, 4.0]
    assert col(tx, "campaign") == ["spring", None]


def test_comma_csv_thousands_comma_and_currency(tmp_path):
    path = write(tmp_path / "us.txt",
                 'id,date,amount\n1,2025-03-01,"$1,234.50"\n2,2025-03-02,$12.00\n'
                 '3,2025-03-03,"1,000,000"\n')
    tx = read_transactions(path, customer="id", date="date", amount="amount")
    assert col(tx, "amount") == [1234.5, 12.0, 1_000_000.0]


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["20250131", "20250201"], [ts(2025, 1, 31), ts(2025, 2, 1)]),
        (["31.01.2025", "01.02.2025"], [ts(2025, 1, 31), ts(2025, 2, 1)]),
        (["31-01-2025 10:00", "01-02-2025 11:30"], [ts(2025, 1, 31, 10), ts(2025, 2, 1, 11, 30)]),
        (["01/31/2025", "02/01/2025"], [ts(2025, 1, 31), ts(2025, 2, 1)]),  # month first
        (["2025/01/31", "2025/02/01"], [ts(2025, 1, 31), ts(2025, 2, 1)]),
        (["2025-01-31T10:00:00Z", "2025-02-01 12:00:00+02:00"],
         [ts(2025, 1, 31, 10), ts(2025, 2, 1, 10)]),  # offsets converted to UTC
        (["2025-01-31 10:00:00", "2025-02-01"], [ts(2025, 1, 31, 10), ts(2025, 2, 1)]),  # naive
    ],
)
def test_date_formats_detected(tmp_path, values, expected):
    path = write(tmp_path / "d.csv", "c;d;a\n" + "".join(f"x;{v};1\n" for v in values))
    assert col(read_transactions(path, "c", "d", "a"), "ts") == expected


def test_date_format_forced(tmp_path):
    path = write(tmp_path / "d.csv", "c,d,a\nx,01/02/2025,1\ny,03/04/2025,2\n")
    tx = read_transactions(path, "c", "d", "a", date_format="%m/%d/%Y")
    assert col(tx, "ts") == [ts(2025, 1, 2), ts(2025, 3, 4)]


def test_ambiguous_dates_ask_for_date_format(tmp_path):
    path = write(tmp_path / "amb.csv", "c,d,a\nx,01/02/2025,1\ny,03/04/2025,2\n")
    with pytest.raises(InputError) as err:
        read_transactions(path, "c", "d", "a")
    msg = str(err.value)
    assert "amb.csv" in msg and "'d'" in msg and "ambiguous" in msg
    assert "date_format='%d/%m/%Y'" in msg and "'%m/%d/%Y'" in msg


def test_unrecognised_dates(tmp_path):
    path = write(tmp_path / "d.csv", "c,d,a\nx,next tuesday,1\n")
    with pytest.raises(InputError, match="cannot recognise the date format.*next tuesday.*"
                                         "date_format="):
        read_transactions(path, "c", "d", "a")


def test_ambiguous_thousands_comma_asks_for_decimal(tmp_path):
    path = write(tmp_path / "m.csv", 'c;d;a\nx;2025-01-01;1,234\ny;2025-01-02;2,500\n')
    with pytest.raises(InputError, match=r"'1,234'.*decimal=','"):
        read_transactions(path, "c", "d", "a")
    tx = read_transactions(path, "c", "d", "a", decimal=",")
    assert col(tx, "amount") == [1.234, 2.5]


# ---------------------------------------------------------------- bad rows and line numbers


def test_impossible_date_names_file_line_column_value(tmp_path):
    path = write(tmp_path / "shop.csv", "client;date;montant\n1;30/01/2025;1\n2;31/01/2025;2\n"
                                        "3;31/02/2025;3\n")
    with pytest.raises(InputError) as err:
        read_transactions(path, "client", "date", "montant")
    msg = str(err.value)
    assert "shop.csv, line 4, column 'date'" in msg
    assert "'31/02/2025'" in msg and "%d/%m/%Y" in msg
    assert "on_bad_rows='skip'" in msg and "date_format=" in msg


def test_line_numbers_without_header_and_with_blank_lines(tmp_path):
    text = "\n 1 19970101 10\r\n\r\n 2 19970102 20\n\n\n 3 19970230 30\n 4 19970104 40\n"
    path = write(tmp_path / "ws.txt", text)
    with pytest.raises(InputError, match=r"ws.txt, line 7, column 'column1'.*'19970230'"):
        read_transactions(path, customer=0, date=1, amount=2)
    csv_path = write(tmp_path / "blank.csv", "id,d,a\n\n1,2025-01-01,5\n\n2,2025-01-01,x\n")
    with pytest.raises(InputError, match=r"blank.csv, line 5, column 'a'.*not a number.*value 'x'"):
        read_transactions(csv_path, "id", "d", "a")


def test_missing_customer_and_non_numeric_amount(tmp_path):
    path = write(tmp_path / "t.csv", "id,d,a\n1,2025-01-01,5\n,2025-01-02,6\n")
    with pytest.raises(InputError, match=r"t.csv, line 3, column 'id': missing customer id"):
        read_transactions(path, "id", "d", "a")
    path = write(tmp_path / "u.csv", "id,d,a\n1,2025-01-01,5\n2,2025-01-02,abc\n")
    with pytest.raises(InputError) as err:
        read_transactions(path, "id", "d", "a")
    msg = str(err.value)
    assert "u.csv, line 3, column 'a'" in msg and "'abc'" in msg and "not a number" in msg


def test_wrong_decimal_style_row_is_bad_not_silently_misread(tmp_path):
    path = write(tmp_path / "mix.csv", "c;d;a\nx;2025-01-01;12,50\ny;2025-01-02;11.77\n")
    with pytest.raises(InputError, match=r"line 3, column 'a'.*'11.77'.*decimal="):
        read_transactions(path, "c", "d", "a")


def test_skip_mode_counts_warns_and_reports(tmp_path):
    rows = ["id,d,a", "1,2025-01-01,5", "2,2025-02-30,6", ",2025-01-03,7", "4,2025-01-04,zz",
            "5,2025-01-05,8"]
    path = write(tmp_path / "s.csv", "\n".join(rows) + "\n")
    with pytest.warns(UserWarning, match=r"s.csv: 3 rows with an unusable value were excluded"):
        tx = read_transactions(path, "id", "d", "a", on_bad_rows="skip")
    assert col(tx, "customer_id") == ["1", "5"]
    rep = tx.report
    assert (rep.n_rows, rep.n_kept, rep.n_bad) == (5, 2, 3)
    assert [(b.line, b.column, b.value) for b in rep.bad_rows] == [
        (3, "d", "2025-02-30"), (4, "id", None), (5, "a", "zz")]
    assert "line 3, column 'd', value '2025-02-30'" in rep.messages()[1]


def test_skip_mode_keeps_at_most_ten_examples(tmp_path):
    body = "".join(f"{i},2025-01-01,{'bad' if i % 2 else i}\n" for i in range(40))
    path = write(tmp_path / "many.csv", "id,d,a\n" + body)
    with pytest.warns(UserWarning):
        tx = read_transactions(path, "id", "d", "a", on_bad_rows="skip")
    assert tx.report.n_bad == 20 and len(tx.report.bad_rows) == 10
    assert [b.line for b in tx.report.bad_rows] == list(range(3, 42, 2))[:10]


def test_missing_column_lists_columns(tmp_path):
    path = write(tmp_path / "t.csv", "id,d,a\n1,2025-01-01,5\n")
    with pytest.raises(InputError, match=r"column 'amount'.*not found.*\['id', 'd', 'a'\]"):
        read_transactions(path, "id", "d", "amount")
    with pytest.raises(InputError, match=r"amount=7 is not a column position.*3 columns"):
        read_transactions(path, 0, 1, 7)


def test_bad_arguments_and_missing_file(tmp_path):
    with pytest.raises(InputError, match="file not found"):
        read_transactions(tmp_path / "nope.csv", 0, 1, 2)
    with pytest.raises(InputError, match="on_bad_rows='drop'"):
        read_transactions(tmp_path / "nope.csv", 0, 1, 2, on_bad_rows="drop")
    with pytest.raises(InputError, match="cannot read transactions from a list"):
        read_transactions([1, 2, 3])


# ---------------------------------------------------------------- report contents


def test_duplicates_returns_and_observation_end(tmp_path):
    path = write(tmp_path / "t.csv", "id,d,a,chan\n1,2025-01-01,5,web\n1,2025-01-01,5,web\n"
                                     "1,2025-01-01,5,shop\n2,2025-01-31 23:59,-3,web\n"
                                     "2,2025-02-01,4,web\n")
    tx = read_transactions(path, "id", "d", "a", observation_end="2025-01-31")
    rep = tx.report
    assert (rep.n_rows, rep.n_kept, rep.n_after_end) == (5, 4, 1)
    assert rep.n_duplicates == 1  # the channel makes the third row different
    assert rep.n_returns == 1
    assert tx.observation_end == ts(2025, 1, 31)
    assert max(col(tx, "ts")) == ts(2025, 1, 31, 23, 59)  # a date-only end includes its day
    tx2 = read_transactions(path, "id", "d", "a", observation_end=ts(2025, 1, 31, 12))
    assert tx2.report.n_after_end == 2
    msgs = rep.messages()
    assert any("1 row is an exact duplicate" in m for m in msgs)
    assert any("1 row dated after the observation end was excluded" in m for m in msgs)
    assert any("negative amount" in m for m in msgs)


def test_transactions_object_api(tmp_path):
    path = write(tmp_path / "t.csv", "id,d,a\n1,2025-01-01,5\n2,2025-01-03,6\n")
    tx = read_transactions(path, "id", "d", "a")
    assert read_transactions(tx) is tx
    assert repr(tx) == ("Transactions(2 rows, 2 customers, 2025-01-01 → 2025-01-03, "
                        "source='t.csv')")
    df = tx.to_pandas()
    assert list(df.columns) == tx.columns and str(df["ts"].dt.tz) == "UTC"
    assert tx.source == "t.csv" and tx.has_amount and tx.observation_end is None
    assert isinstance(tx.report, ReadReport)
    with pytest.raises(dataclasses.FrozenInstanceError):
        tx.report.n_rows = 3


def test_no_amount_column(tmp_path):
    path = write(tmp_path / "t.csv", "id,d,channel\n1,2025-01-01,web\n")
    tx = read_transactions(path, customer="id", date="d")
    assert not tx.has_amount and tx.columns == ["customer_id", "ts", "channel"]
    assert tx.report.n_returns == 0


def test_default_column_names():
    df = pd.DataFrame({"customer_id": ["a"], "date": ["2025-01-01"], "amount": [1.0]})
    tx = read_transactions(df, amount="amount")
    assert col(tx, "customer_id") == ["a"]
    with pytest.raises(InputError, match=r"no customer column.*\['x', 'date'\]"):
        read_transactions(pd.DataFrame({"x": [1], "date": ["2025-01-01"]}))


# ---------------------------------------------------------------- typed sources


def frame_data() -> dict:
    return {"cid": [7, 7, 9], "when": pd.to_datetime(["2025-01-01 10:00", "2025-01-05 00:00",
                                                      "2025-02-01 00:00"]),
            "paid": [10.0, 2.5, -1.0], "chan": ["web", "web", "shop"]}


def check_typed(tx: Transactions, name: str) -> None:
    assert tx.table.schema.field("customer_id").type == pa.int64()
    assert col(tx, "customer_id") == [7, 7, 9]
    assert col(tx, "ts") == [ts(2025, 1, 1, 10), ts(2025, 1, 5), ts(2025, 2, 1)]
    assert col(tx, "amount") == [10.0, 2.5, -1.0]
    assert col(tx, "chan") == ["web", "web", "shop"]
    assert tx.source == name and tx.report.n_returns == 1


def test_pandas_frame():
    tx = read_transactions(pd.DataFrame(frame_data()), "cid", "when", "paid")
    check_typed(tx, "pandas DataFrame")


def test_pandas_tz_aware_converted_to_utc():
    when = pd.to_datetime(["2025-01-01 10:00"]).tz_localize("Europe/Paris")
    tx = read_transactions(pd.DataFrame({"c": ["x"], "w": when, "a": [1]}), "c", "w", "a")
    assert col(tx, "ts") == [ts(2025, 1, 1, 9)]
    assert col(tx, "customer_id") == ["x"]


def test_polars_frame():
    pl = pytest.importorskip("polars")
    tx = read_transactions(pl.DataFrame(frame_data()), "cid", "when", "paid")
    check_typed(tx, "polars DataFrame")


def test_pyarrow_table_and_parquet(tmp_path):
    table = pa.table(frame_data())
    check_typed(read_transactions(table, "cid", "when", "paid"), "pyarrow Table")
    pq.write_table(table, tmp_path / "orders.parquet")
    check_typed(read_transactions(tmp_path / "orders.parquet", "cid", "when", "paid"),
                "orders.parquet")


def test_parquet_with_text_columns_and_bad_row(tmp_path):
    table = pa.table({"c": ["01", "02", "03"], "d": ["20250101", "20250102", "20250199"],
                      "a": ["1,5", "2,0", "3,5"]})
    pq.write_table(table, tmp_path / "t.parquet")
    with pytest.raises(InputError, match=r"t.parquet, row 2, column 'd'.*'20250199'"):
        read_transactions(tmp_path / "t.parquet", "c", "d", "a")
    with pytest.warns(UserWarning):
        tx = read_transactions(tmp_path / "t.parquet", "c", "d", "a", on_bad_rows="skip")
    assert col(tx, "customer_id") == ["01", "02"] and col(tx, "amount") == [1.5, 2.0]


def test_frame_bad_rows_are_reported_by_row_position():
    df = pd.DataFrame({"c": [1, 2, 3], "d": pd.to_datetime(["2025-01-01", None, "2025-01-03"]),
                       "a": [1.0, 2.0, np.nan]})
    with pytest.raises(InputError, match=r"pandas DataFrame, row 1, column 'd': missing date"):
        read_transactions(df, "c", "d", "a")
    with pytest.warns(UserWarning, match="2 rows"):
        tx = read_transactions(df, "c", "d", "a", on_bad_rows="skip")
    assert [(b.line, b.column, b.reason) for b in tx.report.bad_rows] == [
        (1, "d", "missing date"), (2, "a", "missing amount")]


def test_duckdb_query_and_table_name():
    con = duckdb.connect()
    con.execute("CREATE TABLE orders AS SELECT * FROM (VALUES (1, DATE '2025-01-01', 9.5), "
                "(2, DATE '2025-01-02', 3.0)) t(cid, day, amt)").fetchall()
    tx = read_transactions("SELECT * FROM orders WHERE amt > 5", "cid", "day", "amt",
                           connection=con)
    assert col(tx, "customer_id") == [1] and col(tx, "ts") == [ts(2025, 1, 1)]
    assert tx.source.startswith("DuckDB query")
    tx = read_transactions("orders", "cid", "day", "amt", connection=con)
    assert len(tx) == 2
    tx = read_transactions("select 'a' as c, '2025-01-01' as d, '3,5' as a", "c", "d", "a")
    assert col(tx, "amount") == [3.5]
    with pytest.raises(InputError, match="reading the data failed.*missing_table"):
        read_transactions("SELECT * FROM missing_table", "c", "d", "a", connection=con)


def test_excel_with_openpyxl(tmp_path):
    openpyxl = pytest.importorskip("openpyxl")
    book = openpyxl.Workbook()
    ws = book.active
    ws.append(["Client", "Date", "Montant", "Canal"])
    ws.append(["001", dt.datetime(2025, 1, 2, 10, 30), 12.5, "Web"])
    ws.append(["002", dt.datetime(2025, 1, 3), 7, "Magasin"])
    ws.append(["003", None, 3, "Web"])
    book.save(tmp_path / "ventes.xlsx")
    with pytest.raises(InputError, match=r"ventes.xlsx, row 4, column 'Date': missing date"):
        read_transactions(tmp_path / "ventes.xlsx", "Client", "Date", "Montant")
    with pytest.warns(UserWarning):
        tx = read_transactions(tmp_path / "ventes.xlsx", "Client", "Date", "Montant",
                               on_bad_rows="skip")
    assert col(tx, "customer_id") == ["001", "002"]
    assert col(tx, "ts") == [ts(2025, 1, 2, 10, 30), ts(2025, 1, 3)]
    assert col(tx, "amount") == [12.5, 7.0] and col(tx, "Canal") == ["Web", "Magasin"]


def test_excel_without_openpyxl_asks_for_extra(tmp_path, monkeypatch):
    (tmp_path / "x.xlsx").write_bytes(b"PK")
    monkeypatch.setitem(sys.modules, "openpyxl", None)
    with pytest.raises(MissingExtraError, match=r"pip install 'ltvkit\[excel\]'"):
        read_transactions(tmp_path / "x.xlsx", 0, 1, 2)


def test_line_numbers_in_a_large_file_read_in_parallel(tmp_path):
    n = 300_000
    days = np.array([f"2025-01-{d:02d}" for d in range(1, 29)])[np.arange(n) % 28]
    days[[150_000, 299_998]] = ["2025-13-01", "2025-02-30"]
    body = "\n".join(f"{i},{d},{i % 97}.5" for i, d in enumerate(days))
    path = write(tmp_path / "big.csv", "id,day,amount\n" + body + "\n")
    with pytest.warns(UserWarning):
        tx = read_transactions(path, "id", "day", "amount", on_bad_rows="skip")
    # data row i is on line i + 2 (the header is line 1)
    assert [(b.line, b.value) for b in tx.report.bad_rows] == [
        (150_002, "2025-13-01"), (300_000, "2025-02-30")]
    assert len(tx) == n - 2
    assert col(tx, "customer_id")[-1] == str(n - 1)  # file order kept


def test_forced_sep_header_and_encoding(tmp_path):
    path = write(tmp_path / "f.dat", "7|20250102|3,5\n8|20250103|4,0\n", encoding="latin-1")
    tx = read_transactions(path, 0, 1, 2, sep="|", header=False, encoding="latin-1")
    assert col(tx, "customer_id") == ["7", "8"] and col(tx, "amount") == [3.5, 4.0]
    path = write(tmp_path / "h.csv", "1,2,3\n7,20250102,3\n")
    tx = read_transactions(path, "1", "2", "3", header=True)  # numeric-looking header names
    assert col(tx, "customer_id") == ["7"]
    with pytest.raises(InputError, match=r"column 'x' \(customer=\) not found.*no header"):
        read_transactions(write(tmp_path / "n.csv", "7,20250102,3\n"), "x", 1, 2, header=False)


def test_transactions_from_a_table_reports_itself():
    table = pa.table({"customer_id": ["a", "a"], "ts": pa.array(
        [ts(2025, 1, 1)] * 2, pa.timestamp("us", tz="UTC")), "amount": [1.0, -1.0]})
    tx = Transactions(table)
    assert (tx.report.n_rows, tx.report.n_duplicates, tx.report.n_returns) == (2, 0, 1)


def test_mixed_object_column_in_pandas():
    df = pd.DataFrame({"c": [1, "x"], "d": ["2025-01-01"] * 2, "a": [1, 2]}, dtype=object)
    with pytest.raises(InputError, match="pandas DataFrame: a column mixes"):
        read_transactions(df, "c", "d", "a")


def test_cp1252_bytes_after_the_sampled_start(tmp_path):
    path = tmp_path / "late.csv"
    path.write_bytes(b"id,d,a,city\n" + b"1,2025-01-01,2,Paris\n" * 60_000
                     + b"2,2025-01-02,3,Besan\xe7on\n")
    tx = read_transactions(path, "id", "d", "a")
    assert len(tx) == 60_001 and col(tx, "city")[-1] == "Besançon"


def test_whitespace_lines_wider_than_the_header_keep_every_field(tmp_path):
    path = write(tmp_path / "w.txt", "id date amount\n1 20250101 5\n2 20250102 6 promo\n")
    tx = read_transactions(path, "id", "date", "amount")
    assert tx.columns == ["customer_id", "ts", "amount", "column3"]
    assert col(tx, "column3") == [None, "promo"]


def test_line_with_too_many_fields(tmp_path):
    path = write(tmp_path / "ragged.csv", "id,date,amount\n1,2025-01-01,4\n\n2,2025-01-01,5,9\n")
    with pytest.raises(InputError, match=r"ragged.csv, line 4: 4 fields separated by ','.*has 3"):
        read_transactions(path, "id", "date", "amount")
    short = write(tmp_path / "short.csv", "id,date,amount\n1,2025-01-01\n")
    with pytest.raises(InputError, match=r"short.csv, line 2, column 'amount': missing amount"):
        read_transactions(short, "id", "date", "amount")


def test_extra_column_named_like_an_output_is_renamed():
    df = pd.DataFrame({"cid": ["a"], "ts": ["2025-01-01"], "amount": [3.0]})
    tx = read_transactions(df, customer="cid", date="ts")  # amount=None: no amount read
    assert tx.columns == ["customer_id", "ts", "amount_original"] and not tx.has_amount


def test_excel_sheet_choice(tmp_path):
    openpyxl = pytest.importorskip("openpyxl")
    book = openpyxl.Workbook()
    book.active.append(["ignored"])
    ws = book.create_sheet("orders")
    ws.append(["id", "day", "paid"])
    ws.append([11, "31/12/2025", "1 234,50"])
    book.save(tmp_path / "two.xlsx")
    tx = read_transactions(tmp_path / "two.xlsx", "id", "day", "paid", sheet="orders")
    assert col(tx, "customer_id") == [11] and col(tx, "ts") == [ts(2025, 12, 31)]
    assert col(tx, "amount") == [1234.5]
    with pytest.raises(InputError, match=r"no sheet 'nope'; the sheets are \['Sheet', 'orders'\]"):
        read_transactions(tmp_path / "two.xlsx", "id", "day", "paid", sheet="nope")
