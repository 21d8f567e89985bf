"""End to end through the CLI on a French spreadsheet export: ';', UTF-8 BOM, decimal comma, day first."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

import ltvkit
from ltvkit.cli import main
from ltvkit.report.format import NNBSP

CHANNELS = {"Moteur de recherche": 0.5, "E-mail": 0.3, "Réseaux sociaux": 0.2}


def _french_amount(x: float) -> str:
    """1234.5 -> '1 234,50' (space-grouped thousands, decimal comma), as French spreadsheets export."""
    return f"{x:,.2f}".replace(",", " ").replace(".", ",")


@pytest.fixture(scope="module")
def french_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    log = ltvkit.simulate_transactions(600, duration_weeks=52, channels=CHANNELS, seed=11)
    log["amount"] = log["amount"] * 40  # some orders above 1 000 €, so thousands are grouped
    table = pd.DataFrame({
        "N° client": log["customer_id"].map(lambda i: f"C-{i:05d}"),
        "Date de commande": log["ts"].dt.strftime("%d/%m/%Y"),
        "Montant TTC (€)": log["amount"].map(_french_amount),
        "Canal": log["channel"].astype(str),
    })
    path = tmp_path_factory.mktemp("fr") / "commandes.csv"
    path.write_bytes(table.to_csv(sep=";", index=False).encode("utf-8-sig"))
    return path, log


def test_the_file_is_a_french_export(french_file: tuple[Path, pd.DataFrame]) -> None:
    path, log = french_file
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    lines = raw.decode("utf-8-sig").splitlines()
    assert lines[0] == "N° client;Date de commande;Montant TTC (€);Canal"
    assert any(" " in line.split(";")[2] for line in lines[1:])  # "1 234,50"
    assert (log["amount"] >= 1000).any() and log["ts"].dt.day.gt(12).any()  # day-first is decidable


def test_cli_analyze_french_file(french_file: tuple[Path, pd.DataFrame], tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    path, log = french_file
    out = tmp_path / "rapport"
    args = ["analyze", str(path), "--customer", "N° client", "--date", "Date de commande",
            "--amount", "Montant TTC (€)", "--lang", "fr", "--currency", "EUR", "--out", str(out),
            "--channel", "Canal", "--model", "bgnbd", "--json"]
    try:
        main(args)
    except SystemExit as exc:
        assert exc.code in (0, None), capsys.readouterr().err
    payload = json.loads(capsys.readouterr().out)
    assert payload["customers"] == log["customer_id"].nunique() and payload["bad_rows"] == 0
    assert payload["currency"] == "EUR"

    customers = pd.read_parquet(out / "customers.parquet")
    assert customers["customer_id"].str.fullmatch(r"C-\d{5}").all()
    assert set(customers["channel"]) <= set(CHANNELS)
    # amounts were read with the decimal comma and the grouped thousands
    revenue = customers.set_index("customer_id")["total_revenue"].sort_index()
    expected = log.assign(customer_id=log["customer_id"].map(lambda i: f"C-{i:05d}")).groupby(
        "customer_id")["amount"].sum().round(2).sort_index()
    assert revenue.to_numpy() == pytest.approx(expected.to_numpy(), abs=0.01)
    # dates were read day first
    first = customers.set_index("customer_id")["first_purchase"].sort_index()
    assert (pd.to_datetime(first).dt.date.to_numpy() == log.assign(
        customer_id=log["customer_id"].map(lambda i: f"C-{i:05d}")).groupby("customer_id")["ts"].min()
        .dt.date.sort_index().to_numpy()).all()
    assert sorted(p.name for p in out.glob("segment_*.csv"))  # audiences were written

    page = (out / "report.html").read_text("utf-8")
    assert '<html lang="fr"' in page
    total = payload["total_clv"]
    euros = f"{round(total):,}".replace(",", NNBSP) + f"{NNBSP}€"
    assert euros in page  # e.g. "1 234 567 €": the headline total in French format
    assert "Valeur totale prévue" in page and "commandes.csv" in page


def test_unknown_channel_column_is_a_clear_error(french_file: tuple[Path, pd.DataFrame]) -> None:
    path, _ = french_file
    with pytest.raises(ltvkit.InputError, match=r"channel column 'Source' is not in the log.*Canal"):
        ltvkit.analyze(path, "N° client", "Date de commande", "Montant TTC (€)", channel="Source")
