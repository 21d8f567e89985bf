"""The HTML report: locale formatting, translations, self-containment, and rendering in headless Chromium."""

from __future__ import annotations

import json
import re
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

import ltvkit
from ltvkit.errors import InputError
from ltvkit.report.format import MINUS, NNBSP, Formatter
from ltvkit.report.render import LANGUAGES, load_locale, render_html, write_html

CHROMIUM = Path("/usr/bin/chromium")


# ---------------------------------------------------------------------- formatting
@pytest.mark.parametrize(
    ("lang", "currency", "value", "expected"),
    [
        ("en", "USD", 1234.5, "$1,234.50"),
        ("en", "USD", -1234.5, f"{MINUS}$1,234.50"),
        ("en", "EUR", 0.004, "€0.00"),
        ("en", "GBP", 1e6, "£1,000,000.00"),
        ("en", "SEK", 12.5, "12.50 SEK"),
        ("fr", "EUR", 1234.5, f"1{NNBSP}234,50{NNBSP}€"),
        ("fr", "EUR", -1234567.891, f"{MINUS}1{NNBSP}234{NNBSP}567,89{NNBSP}€"),
        ("fr", "USD", 5, f"5,00{NNBSP}$"),
    ],
)
def test_money(lang: str, currency: str, value: float, expected: str) -> None:
    assert Formatter(lang, currency).money(value) == expected


def test_numbers_percent_and_dates() -> None:
    en, fr = Formatter("en"), Formatter("fr", "EUR")
    assert en.number(1653.4) == "1,653" and fr.number(1653.4) == f"1{NNBSP}653"
    assert en.number(0.5, 2) == "0.50" and fr.number(0.5, 2) == "0,50"
    assert en.percent(-0.1217) == f"{MINUS}12%" and fr.percent(-0.1217) == f"{MINUS}12{NNBSP}%"
    assert en.signed_percent(0.05) == "+5%" and en.signed_percent(-0.05) == f"{MINUS}5%"
    assert en.number(float("nan")) == "–" and en.money(None) == "–"
    assert en.compact(2_600_000) == "2.6M" and fr.compact(45_000) == f"45{NNBSP}k"
    assert en.date("1997-09-30") == "30 Sep 1997" and fr.date("1997-09-30") == "30 sept. 1997"
    assert en.money_short(123456.78) == "$123,457" and en.money_short(12.3) == "$12.30"


def test_locales_have_the_same_keys_and_placeholders() -> None:
    en, fr = load_locale("en"), load_locale("fr")
    assert set(en) == set(fr)
    fields = re.compile(r"\{(\w+)\}")
    for key in en:
        assert set(fields.findall(en[key])) == set(fields.findall(fr[key])), key
    with pytest.raises(InputError, match="en, fr"):
        load_locale("de")


def test_every_segment_and_tier_key_is_translated() -> None:
    from ltvkit.segments import SEGMENT_LABELS, TIER_LABELS

    for lang in LANGUAGES:
        strings = load_locale(lang)
        for key in SEGMENT_LABELS:
            assert f"segment.{key}" in strings and f"segment.{key}.action" in strings
        for key in TIER_LABELS:
            assert f"tier.{key}" in strings


# ---------------------------------------------------------------------- rendering
@pytest.fixture(scope="module")
def analysis() -> ltvkit.Analysis:
    return ltvkit.analyze(ltvkit.datasets.load_cdnow(), holdout="1997-09-30", model="bgnbd")


@pytest.fixture(scope="module")
def html_en(analysis: ltvkit.Analysis) -> str:
    return render_html(analysis)


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: list[str] = []
        self.external: list[str] = []
        self.body: dict[str, str | None] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if a.get("id"):
            self.ids.append(str(a["id"]))
        if tag == "body":
            self.body = a
        for name in ("src", "href"):
            value = a.get(name) or ""
            if tag in ("script", "link", "img", "iframe") and value and not value.startswith("#"):
                self.external.append(value)


def test_report_is_self_contained_with_plotly_inlined_once(html_en: str) -> None:
    from plotly.offline import get_plotlyjs

    js = get_plotlyjs()
    assert html_en.count(js[:300]) == 1  # the library, once
    assert html_en.count("<script") == 3  # error recorder, plotly.js, the page's figures
    parsed = _Collector()
    parsed.feed(html_en)
    assert parsed.external == []  # nothing fetched: opens offline
    figures = json.loads(re.search(r"var figures = (\{.*?\});\n", html_en, re.DOTALL).group(1))
    assert set(figures) <= set(parsed.ids)  # every figure has its container
    assert int(parsed.body["data-charts-expected"]) == len(figures) >= 8
    assert {"chart-tracking", "chart-calibration", "chart-deciles", "chart-orders",
            "chart-revenue", "chart-lorenz", "chart-segments"} <= set(figures)


def test_report_says_the_backtest_in_plain_words(analysis: ltvkit.Analysis, html_en: str) -> None:
    assert ("Over the last 39 weeks the model predicted 1,653 repeat purchases; 1,882 happened "
            f"({MINUS}12%).") in html_en
    assert "CLV is an estimate, not a fact" in html_en
    h = analysis.headline()
    assert Formatter("en").money_short(h["total_clv"]) in html_en
    for label in ("Champions", "Who to contact first", "Lorenz curve", "Gamma-Gamma", "Calculator"):
        assert label in html_en


def test_french_report_in_euros(analysis: ltvkit.Analysis) -> None:
    html = render_html(analysis, lang="fr", currency="EUR")
    assert '<html lang="fr">' in html
    assert "Sur les 39 semaines de la période de test, le modèle prévoyait 1\u202f653 achats répétés" in html
    assert re.search(r"\d{1,3}(\u202f\d{3})*,\d\d\u202f€", html)  # e.g. 1 234,50 €
    assert "$" not in re.sub(r"<script>.*?</script>", "", html, flags=re.DOTALL)
    assert "Fidèles" in html and "À risque" in html and "Qui contacter en premier" in html


def test_write_html_is_atomic_and_never_overwrites(analysis: ltvkit.Analysis, tmp_path: Path) -> None:
    target = tmp_path / "report.html"
    write_html(analysis, target)
    first = target.read_text("utf-8")
    with pytest.raises(InputError, match="already exists"):
        write_html(analysis, target, lang="fr")
    assert target.read_text("utf-8") == first
    write_html(analysis, target, lang="fr", force=True)
    assert '<html lang="fr">' in target.read_text("utf-8")
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]  # no temporary file left


# ---------------------------------------------------------------------- headless Chromium
needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="Chromium is not installed (CI installs Debian's 'chromium' "
    "package); the report's rendering in a browser is not checked")


def _render_in_chromium(page: Path, profile: Path) -> tuple[dict[str, str], str, str]:
    """Load ``page`` with the network off; return <body> attributes after load, DOM and stderr."""
    cmd = [
        str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
        "--proxy-server=127.0.0.1:9", "--host-resolver-rules=MAP * ~NOTFOUND",  # network off
        "--enable-logging=stderr", "--v=0", "--virtual-time-budget=20000", "--dump-dom", page.as_uri(),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    body = re.search(r"<body([^>]*)>", done.stdout)
    assert body, done.stdout[:500]
    return dict(re.findall(r'([\w-]+)="([^"]*)"', body.group(1))), done.stdout, done.stderr


@needs_chromium
def test_report_renders_in_headless_chromium(analysis: ltvkit.Analysis, tmp_path: Path) -> None:
    """One browser run (about 6 s): the French report, whose number separators differ."""
    page = tmp_path / "report.html"
    write_html(analysis, page, lang="fr", currency="EUR")
    attrs, dom, stderr = _render_in_chromium(page, tmp_path / "profile")
    assert attrs["data-js-errors"] == ""
    assert int(attrs["data-charts-expected"]) >= 8
    assert attrs["data-charts-rendered"] == attrs["data-charts-expected"]  # every chart drew
    assert [line for line in stderr.splitlines() if ":CONSOLE" in line] == []  # nothing logged
    assert dom.count('class="main-svg"') >= 2 * int(attrs["data-charts-expected"])
    assert "janv. 1998</text>" in dom and "Jan 1998" not in dom  # date ticks in French


@needs_chromium
@pytest.mark.slow
def test_chromium_check_catches_broken_pages(html_en: str, tmp_path: Path) -> None:
    """The checks above can fail: a missing chart container and a console error are recorded."""
    broken = html_en.replace('id="chart-lorenz"', 'id="renamed"').replace(
        "</body>", "<script>console.error('deliberate failure')</script></body>")
    page = tmp_path / "broken.html"
    page.write_text(broken, encoding="utf-8")
    attrs, _, stderr = _render_in_chromium(page, tmp_path / "profile")
    assert "no element for chart chart-lorenz" in attrs["data-js-errors"]
    assert "deliberate failure" in attrs["data-js-errors"]
    assert int(attrs["data-charts-rendered"]) == int(attrs["data-charts-expected"]) - 1
    assert any("deliberate failure" in line for line in stderr.splitlines() if ":CONSOLE" in line)
