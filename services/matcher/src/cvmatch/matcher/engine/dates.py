"""Date ranges in CVs ("2019 – Present", "Jan 2018 to Mar 2020", "03/2017 - 06/2019") and their arithmetic.

Months are counted as integers (year * 12 + month - 1).  A range with month precision is inclusive of both
months (Jan-Mar is three months); a year-only range counts whole years between the years (2015-2018 is three
years), which is how readers of CVs count them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

_MONTHS = {
    "jan": 1,
    "feb": 2,
    "mar": 3,
    "apr": 4,
    "may": 5,
    "jun": 6,
    "jul": 7,
    "aug": 8,
    "sep": 9,
    "oct": 10,
    "nov": 11,
    "dec": 12,
}
_SEASONS = {"spring": 3, "summer": 6, "fall": 9, "autumn": 9, "winter": 12}
_MONTH_RE = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?"
    r"|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?"
)
_YEAR = r"(?:19[5-9]\d|20[0-4]\d)"


def _date(p: str) -> str:
    """Regex of one date with named groups prefixed by ``p`` (the range regex holds two dates)."""
    return (
        rf"(?:(?P<{p}mon>{_MONTH_RE}|spring|summer|fall|autumn|winter)[\s,]*(?P<{p}my>{_YEAR}|'\d\d)"
        rf"|(?P<{p}num>\d{{1,2}})\s*[/.-]\s*(?P<{p}ny>{_YEAR})"
        rf"|(?P<{p}iy>{_YEAR})-(?P<{p}im>\d{{2}})"
        rf"|(?P<{p}y>{_YEAR}))"
    )


_PRESENT = r"(?P<present>present|current(?:ly)?|now|today|to\s+date|date|ongoing|till\s+date)"
_SEP = r"\s*(?:-|–|—|−|~|\bto\b|\buntil\b|\btill\b|\bthrough\b|\bthru\b)\s*"
RANGE_RE = re.compile(
    r"(?<![\w/.-])" + _date("s_") + _SEP + "(?:" + _date("e_") + "|" + _PRESENT + r")(?![\w/])",
    re.IGNORECASE,
)
# "Since 2019": an open-ended range.
SINCE_RE = re.compile(r"\b(?:since|from)\s+" + _date("s_") + r"(?![\w/])", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class DateRange:
    """A date range found in text: character span and the half-open month interval it covers."""

    start: int
    end: int
    start_month: int
    end_month: int  # exclusive
    is_current: bool

    @property
    def months(self) -> int:
        return self.end_month - self.start_month


def month_index(d: date) -> int:
    return d.year * 12 + d.month - 1


def _year(text: str) -> int:
    if text.startswith("'"):
        yy = int(text[1:])
        return 2000 + yy if yy < 50 else 1900 + yy
    return int(text)


def _parse_date(m: re.Match[str], p: str) -> tuple[int, bool] | None:
    """Return (month index, has month precision) for the date captured under prefix ``p``."""
    g = m.groupdict()
    if g.get(p + "mon"):
        word = g[p + "mon"].lower().rstrip(".")
        month = _SEASONS.get(word) or _MONTHS.get(word[:3])
        if month is None:
            return None
        return _year(g[p + "my"]) * 12 + month - 1, True
    if g.get(p + "num"):
        month = int(g[p + "num"])
        if not 1 <= month <= 12:
            return None
        return int(g[p + "ny"]) * 12 + month - 1, True
    if g.get(p + "iy"):
        month = int(g[p + "im"])
        if not 1 <= month <= 12:
            return None
        return int(g[p + "iy"]) * 12 + month - 1, True
    if g.get(p + "y"):
        return int(g[p + "y"]) * 12, False
    return None


def find_date_ranges(text: str, today: date) -> list[DateRange]:
    """All plausible date ranges in ``text`` in document order; ranges ending in "Present" end at ``today``."""
    now = month_index(today)
    out: list[DateRange] = []
    for m in RANGE_RE.finditer(text):
        start = _parse_date(m, "s_")
        if start is None:
            continue
        s_month, s_precise = start
        if m.group("present"):
            e_month, current = now + 1, True
        else:
            end = _parse_date(m, "e_")
            if end is None:
                continue
            e_month, e_precise = end
            current = False
            # Month precision on either side: count both months; year-only: count the years between.
            if s_precise or e_precise:
                e_month += 1
            elif e_month == s_month:
                e_month += 12  # "2019 - 2019": a job within one year
        if e_month <= s_month or e_month > now + 13 or e_month - s_month > 50 * 12:
            continue
        out.append(DateRange(m.start(), m.end(), s_month, min(e_month, now + 1), current))
    for m in SINCE_RE.finditer(text):
        if any(r.start <= m.start() < r.end for r in out):
            continue
        start = _parse_date(m, "s_")
        if start is None or start[0] > now:
            continue
        out.append(DateRange(m.start(), m.end(), start[0], now + 1, True))
    out.sort(key=lambda r: (r.start, r.end))
    return out


def merge_intervals(intervals: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Union of half-open month intervals, so overlapping jobs are not counted twice."""
    merged: list[tuple[int, int]] = []
    for s, e in sorted(intervals):
        if merged and s <= merged[-1][1]:
            if e > merged[-1][1]:
                merged[-1] = (merged[-1][0], e)
        else:
            merged.append((s, e))
    return merged


def total_years(intervals: list[tuple[int, int]]) -> float:
    """Years covered by the union of ``intervals``, rounded to one decimal."""
    months = sum(e - s for s, e in merge_intervals(intervals))
    return round(months / 12.0, 1)
