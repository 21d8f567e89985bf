"""Locale-aware number, money, percent and date formatting for the report (English and French).

A deliberately small formatter (no Babel dependency): English groups thousands with commas
and writes ``$1,234.50``; French groups with a narrow no-break space (U+202F), uses a
decimal comma and writes ``1 234,50 €`` and ``12 %`` with the same narrow space. Negative
numbers take a true minus sign (U+2212).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any

NNBSP = "\u202f"
MINUS = "\u2212"

_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "CAD": "CA$", "AUD": "A$", "CHF": "CHF"}
_MONTHS_FR = ["janv.", "févr.", "mars", "avr.", "mai", "juin", "juil.", "août", "sept.", "oct.",
              "nov.", "déc."]
_MONTHS_EN = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
_FULL_MONTHS_FR = ["janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre",
                   "octobre", "novembre", "décembre"]
_DAYS_FR = ["dimanche", "lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi"]


@dataclass(frozen=True)
class Formatter:
    """Format numbers for a language (``"en"`` or ``"fr"``) and a currency (ISO code).

    Examples
    --------
    >>> en, fr = Formatter("en", "USD"), Formatter("fr", "EUR")
    >>> en.money(1234.5), fr.money(1234.5) == "1\\u202f234,50\\u202f€"
    ('$1,234.50', True)
    >>> en.number(1653), en.percent(-0.1217), fr.percent(0.5) == "50\\u202f%"
    ('1,653', '−12%', True)
    >>> Formatter("en", "EUR").money(-3.2), Formatter("en", "SEK").money(10)
    ('−€3.20', '10.00 SEK')
    """

    lang: str = "en"
    currency: str = "USD"

    @property
    def _sep(self) -> tuple[str, str]:
        return (NNBSP, ",") if self.lang == "fr" else (",", ".")

    def number(self, value: Any, digits: int = 0) -> str:
        """A number with grouped thousands and ``digits`` decimals; "–" for missing values."""
        if value is None or (isinstance(value, float) and not math.isfinite(value)):
            return "–"
        rounded = round(float(value), digits)
        group, decimal = self._sep
        text = f"{abs(rounded):,.{digits}f}".replace(",", "\0").replace(".", decimal)
        return (MINUS if rounded < 0 else "") + text.replace("\0", group)

    def compact(self, value: Any) -> str:
        """Large numbers shortened: 1.2M / 1,2 M ; 45k ; small numbers as they are."""
        if value is None or not math.isfinite(float(value)):
            return "–"
        v = float(value)
        for size, (en, fr) in ((1e9, ("B", " Md")), (1e6, ("M", " M")), (1e3, ("k", " k"))):
            if abs(v) >= size:
                suffix = (fr.replace(" ", NNBSP) if self.lang == "fr" else en)
                return self.number(v / size, 1 if abs(v) < 10 * size else 0) + suffix
        return self.number(v, 0 if abs(v) >= 10 or v == int(v) else 1)

    def money(self, value: Any, digits: int = 2) -> str:
        """An amount in the report currency: ``$1,234.50`` / ``1 234,50 €``."""
        if value is None or (isinstance(value, float) and not math.isfinite(value)):
            return "–"
        rounded = round(float(value), digits)
        body = self.number(abs(rounded), digits)
        sign = MINUS if rounded < 0 else ""
        symbol = _SYMBOLS.get(self.currency.upper())
        if self.lang == "fr":
            return f"{sign}{body}{NNBSP}{symbol or self.currency.upper()}"
        if symbol is None or symbol.isalpha():
            return f"{sign}{body} {self.currency.upper()}"
        return f"{sign}{symbol}{body}"

    def money_short(self, value: Any) -> str:
        """Money without cents once it is large (for tables and headlines)."""
        return self.money(value, 0 if value is not None and abs(float(value)) >= 100 else 2)

    def percent(self, value: Any, digits: int = 0) -> str:
        """A ratio as a percentage: ``0.12`` → ``12%`` / ``12 %``."""
        if value is None or not math.isfinite(float(value)):
            return "–"
        text = self.number(100 * float(value), digits)
        return f"{text}{NNBSP}%" if self.lang == "fr" else f"{text}%"

    def signed_percent(self, value: Any, digits: int = 0) -> str:
        """Like :meth:`percent` with an explicit ``+`` for positive values."""
        text = self.percent(value, digits)
        return text if text.startswith((MINUS, "–")) or float(value) == 0 else "+" + text

    def date(self, value: Any) -> str:
        """A date: ``30 Sep 1997`` / ``30 sept. 1997``."""
        if value is None:
            return "–"
        d = value.date() if isinstance(value, dt.datetime) else value
        if not isinstance(d, dt.date):
            import pandas as pd

            d = pd.Timestamp(value).date()
        months = _MONTHS_FR if self.lang == "fr" else _MONTHS_EN
        return f"{d.day} {months[d.month - 1]} {d.year}"

    def month(self, value: Any) -> str:
        """A calendar month: ``Sep 1997`` / ``sept. 1997``.

        Examples
        --------
        >>> Formatter("fr").month("1998-07-01"), Formatter("en").month("1998-07-01")
        ('juil. 1998', 'Jul 1998')
        """
        return self.date(value).split(" ", 1)[1]

    def plotly_locale(self) -> dict[str, Any] | None:
        """The plotly.js locale for chart dates (month names in axis ticks and hovers), or None
        for English (plotly's own).

        Examples
        --------
        >>> Formatter("fr").plotly_locale()["format"]["shortMonths"][6]
        'juil.'
        """
        if self.lang != "fr":
            return None
        return {"moduleType": "locale", "name": "fr", "dictionary": {},
                "format": {"days": _DAYS_FR, "shortDays": [d[:3] + "." for d in _DAYS_FR],
                           "months": _FULL_MONTHS_FR, "shortMonths": _MONTHS_FR,
                           "date": "%d/%m/%Y", "decimal": ",", "thousands": NNBSP}}
