"""Time cues in a recall query: the window a relative expression names, and "the latest".

"What did I buy yesterday?" asked at ``at`` names the day before ``at``; "last month", "in
March", "two weeks ago" and "in 2022" name a month, a week or a year. ``dateparser`` finds
and resolves the expressions (English only, relative to ``at``, preferring the past: a
question about memory looks back); its ``period`` (day, week, month, year) gives the
window's width. The window is a soft ranking feature (see ``ww.engine.recall``), never a
filter: a wrongly read expression costs a little score, not the answer.

"current", "latest", "now", "most recent"… ask for the newest of the memories that match.

dateparser works offline: it reads its bundled language data and the system clock only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from dateparser.date import DateDataParser
from dateparser.search import search_dates

__all__ = ["NO_CUE", "TimeCue", "Window", "resolve", "warm", "window_closeness"]

_LANGUAGES = ["en"]
_WORD = re.compile(r"[a-z]+")
# A single word is a time expression only if it is one of these: dateparser also reads
# "may", "second", "$5", "10th" and the "Sunday" of "Sunday mass" as dates. "On Sunday" and
# "in June" still count.
_LONE_WORDS = frozenset({"yesterday", "today", "tonight"})
_RATE_WORDS = frozenset({"a", "an", "one", "per", "every", "each", "the"})
_LATEST = frozenset({"current", "currently", "latest", "now", "newest", "nowadays", "recent"})
_LATEST_PHRASES = ("most recent", "these days", "at the moment", "right now", "up to date")
_DAY = timedelta(days=1)
# Half-widths around the resolved instant for periods that are not calendar units.
_HALF = {"week": timedelta(days=3.5), "time": timedelta(hours=1)}


@dataclass(frozen=True, slots=True)
class Window:
    """``start <= t < end``: the stretch of time a query's expression names."""

    start: datetime
    end: datetime

    @property
    def width_days(self) -> float:
        return max((self.end - self.start).total_seconds() / 86_400.0, 1.0 / 24.0)


@dataclass(frozen=True, slots=True)
class TimeCue:
    windows: tuple[Window, ...] = ()
    latest: bool = False

    def __bool__(self) -> bool:
        return bool(self.windows) or self.latest


NO_CUE = TimeCue()


def _window(instant: datetime, period: str) -> Window:
    day = instant.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "day":
        return Window(day, day + _DAY)
    if period == "month":
        start = day.replace(day=1)
        nxt = (start + timedelta(days=32)).replace(day=1)
        return Window(start, nxt)
    if period == "year":
        start = day.replace(month=1, day=1)
        return Window(start, start.replace(year=start.year + 1))
    half = _HALF.get(period, _HALF["week"])
    return Window(instant - half, instant + half)


def _is_expression(text: str) -> bool:
    words = text.strip().lower().split()
    if len(words) == 1:
        return words[0] in _LONE_WORDS
    # "a week" in "once a week" is a rate, "the Sunday" of "the Sunday mass" a name.
    return words[-2] not in _RATE_WORDS


@lru_cache(maxsize=1)
def _parser() -> DateDataParser:
    return DateDataParser(languages=_LANGUAGES)


def _latest(query: str) -> bool:
    lowered = query.lower()
    return bool(_LATEST.intersection(_WORD.findall(lowered))) or any(
        p in lowered for p in _LATEST_PHRASES
    )


def resolve(query: str, at: datetime) -> TimeCue:
    """The time cues of ``query`` asked at ``at`` (aware; windows come back in UTC)."""
    base = at.astimezone(UTC).replace(tzinfo=None)
    settings = {
        "RELATIVE_BASE": base,
        "PREFER_DATES_FROM": "past",
        "RETURN_AS_TIMEZONE_AWARE": False,
    }
    found = search_dates(query, languages=_LANGUAGES, settings=settings) or []
    windows: list[Window] = []
    for text, instant in found:
        if not _is_expression(text):
            continue
        data = _parser().get_date_data(text)
        # get_date_data resolves against the real now; search_dates already resolved the
        # instant against ``at``, so only its period is taken from here.
        period = data["period"] or "day"
        w = _window(instant, period)
        windows.append(Window(w.start.replace(tzinfo=UTC), w.end.replace(tzinfo=UTC)))
    latest = _latest(query)
    return TimeCue(tuple(windows), latest) if windows or latest else NO_CUE


def warm() -> TimeCue:
    """Resolve one expression so dateparser loads its language data now (about half a
    second) rather than inside the first recall that names a date."""
    return resolve("what happened yesterday", datetime.now(UTC))


def window_closeness(days_outside: float, width_days: float) -> float:
    """1 inside the window, falling to 0.5 one window-width outside it (and on)."""
    if days_outside <= 0.0:
        return 1.0
    return 1.0 / (1.0 + days_outside / width_days)
