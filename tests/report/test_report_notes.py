"""Notes in the report (reader counts, skipped steps, fallbacks) are written in the report's language."""

from __future__ import annotations

import html
import re

import pandas as pd
import pytest

import ltvkit
from ltvkit.data.transactions import _reason
from ltvkit.evaluate import resolve_holdout
from ltvkit.notes import Note, note_of
from ltvkit.report.format import Formatter
from ltvkit.report.render import Translator, note_text, render_html


@pytest.fixture(scope="module")
def noisy(tmp_path_factory: pytest.TempPathFactory) -> ltvkit.Analysis:
    """An 8-week log (too short for the calculator) with a bad row, a duplicate, a return, a row
    after the observation end, spend for a channel nobody came from, and no backtest."""
    log = ltvkit.simulate_transactions(1500, duration_weeks=8, acquisition_weeks=2,
                                       channels={"search": 0.6, "email": 0.4}, seed=3)
    log["ts"] = log["ts"].dt.strftime("%Y-%m-%d")
    log["channel"] = log["channel"].astype(str)
    extra = pd.DataFrame({"customer_id": [1, 2, 3, 4], "ts": [log["ts"].iloc[0], "2024-01-20", "2024-01-21",
                                                           "2024-03-30"],
                          "amount": [log["amount"].iloc[0], "abc", -5.0, 10.0],
                          "channel": [log["channel"].iloc[0], "search", "search", "search"]})
    extra.loc[0, "customer_id"] = log["customer_id"].iloc[0]  # an exact duplicate of the first row
    path = tmp_path_factory.mktemp("notes") / "orders.csv"
    pd.concat([log.astype({"amount": object}), extra]).to_csv(path, index=False)
    with pytest.warns(UserWarning, match="1 row with an unusable value"):
        return ltvkit.analyze(path, "customer_id", "ts", "amount", on_bad_rows="skip",
                              observation_end="2024-02-26", run_backtest=False,
                              spend={"search": 1000.0, "email": 500.0, "tv": 800.0})


def _text(page: str) -> str:
    body = re.sub(r"<script.*?</script>", " ", page, flags=re.DOTALL)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", body)))


def test_the_noisy_log_produces_every_kind_of_note(noisy: ltvkit.Analysis) -> None:
    r = noisy.read_report
    assert (r.n_bad, r.n_duplicates, r.n_returns, r.n_after_end) == (1, 1, 1, 1)
    assert r.bad_rows[0].line == r.n_rows - 1  # line 1 is the header; two rows follow the bad one
    assert {n.key for n in noisy.notes} >= {"note.spend_unmatched", "note.calculator_left_out"}
    assert noisy.settings["backtest_skipped"].key == "skip.off"


def test_french_report_has_no_english_note(noisy: ltvkit.Analysis) -> None:
    english = [*noisy.read_messages, *map(str, noisy.notes), str(noisy.settings["backtest_skipped"])]
    assert len(english) >= 6
    text = _text(render_html(noisy, lang="fr", currency="EUR"))
    for sentence in english:
        assert sentence not in text
        assert sentence[:25] not in text, sentence  # not even its beginning
    for french in ("1 ligne avec une valeur inutilisable a été exclue",
                   "ligne 1949, colonne « amount », valeur « abc » : le montant n’est pas un nombre",
                   "1 ligne est le doublon exact", "1 ligne a un montant négatif",
                   "1 ligne datée après la fin de la période observée a été exclue",
                   "canaux sans aucun client : tv.",
                   "Le calculateur descendant a été omis : il faut au moins deux mois civils complets",
                   "n’a pas pu être mené : il a été désactivé."):
        assert french in text, french
    for word in ("rows", "were", "excluded", "duplicate", "Spend was", "left out", "switched off"):
        assert not re.search(rf"\b{word}\b", text), word


def test_english_report_says_the_same_notes(noisy: ltvkit.Analysis) -> None:
    text = _text(render_html(noisy, lang="en"))
    for sentence in (("1 row with an unusable value was excluded (first: line 1949, column “amount”, "
                      "value “abc”: amount is not a number)."),
                     "1 row is an exact duplicate of an earlier row",
                     "1 row has a negative amount (a return or refund); it was kept.",
                     "1 row dated after the observation end was excluded.",
                     "Spend was given for channels without any customer: tv.",
                     "The backtest could not be run: it was switched off."):
        assert sentence in text, sentence


@pytest.mark.parametrize(("key", "value"), [("customer_id", None), ("customer_id", "x1"), ("ts", ""),
                                            ("ts", "31/02/2024"), ("amount", None), ("amount", "abc")])
def test_every_reason_of_the_reader_has_a_translation(key: str, value: str | None) -> None:
    kind, reason = _reason(key, value, "%d/%m/%Y")
    assert kind != "other", reason
    for lang in ("en", "fr"):
        assert f"read.reason.{kind}" in Translator(lang).strings, (lang, kind)


def test_tagged_backtest_errors_and_fit_notes_are_translated() -> None:
    t, fmt = Translator("fr"), Formatter("fr", "EUR")
    start, end = pd.Timestamp("2024-01-01", tz="UTC"), pd.Timestamp("2024-06-30", tz="UTC")
    with pytest.raises(ltvkit.InputError) as caught:
        resolve_holdout(start, end, "2023-01-01")
    reason = note_of(caught.value, "skip.other")
    assert note_text(reason, t, fmt) == ("l’historique (du 1 janv. 2024 au 30 juin 2024) est trop court "
                                         "pour en réserver le dernier quart au test.")
    penalized = Note("BG/NBD was fitted with a small penalty (0.01) ...", "note.penalized",
                     label="BG/NBD", penalty=0.01)
    assert note_text(penalized, t, fmt).startswith("BG/NBD a été ajusté avec une légère pénalité (0,01)")
    untagged = note_of(ValueError("boom"), "skip.other")
    assert note_text(untagged, t, fmt) == "erreur technique (boom)."
    assert note_text("plain text", t, fmt) == "plain text"


def test_french_dates_in_tables_and_charts(noisy: ltvkit.Analysis) -> None:
    cdnow = ltvkit.analyze(ltvkit.datasets.load_cdnow(sample=True), model="bgnbd", run_backtest=False)
    page = render_html(cdnow, lang="fr", currency="EUR")
    text = _text(page)
    forecast_table = text[text.index("Nouveaux clients", text.index("Période")):]
    assert forecast_table.startswith("Nouveaux clients juil. 1998 ")  # forecast months by name
    assert "janv. 1997" in text and "1997-01" not in text  # cohorts by month name
    assert '"shortMonths":["janv.",' in page  # plotly's date ticks in French
    assert "var locale = null;" in render_html(cdnow, lang="en")  # plotly's own English
    # periods that do not start on the 1st are shown by their first day
    assert "27 févr. 2024" in _text(render_html(noisy, lang="fr"))
