"""Time cues in a recall query: the window a relative expression names, and "the latest".

"What did I buy yesterday?" asked at ``at`` names the day before ``at``; "last month", "in
March", "two weeks ago" and "in 2022" name a month, a week or a year. ``dateparser`` finds
and resolves the expressions (English only, relative to ``at``, preferring the past: a
question about memory looks back); its ``period`` (day, week, month, year) gives the
window's width. The window is a soft ranking feature (see ``ww.engine.recall``), never a
filter: a wrongly read expression costs a little score, not the answer.

"current", "latest", "now", "most recent"… ask for the newest of the memories that match.

Windows are cut in the asker's own zone: "yesterday" asked at 01:00+09:00 is the local day
before, converted to UTC. Only the first ``CUE_CHARS`` characters are read for expressions
(see there). Reading is a soft feature, so an expression that cannot be resolved (a date near
year 9999 whose month or year has no end a ``datetime`` can hold) is skipped, never raised.

dateparser works offline: it reads its bundled language data and the system clock only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from functools import lru_cache

from dateparser.date import DateDataParser
from dateparser.search import search_dates

__all__ = ["CUE_CHARS", "NO_CUE", "TimeCue", "Window", "resolve", "warm", "window_closeness"]

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
# search_dates costs about linear time in the text, all of it holding the GIL: 0.1-0.3 s for a
# 4,000-character query, which stalls every other request on the event loop's threads. A
# question names its time early ("what did I buy yesterday"), so only this many characters
# are read for expressions; "latest" words are a cheap scan of the whole query.
CUE_CHARS = 300
_MONTHS = frozenset(
    m
    for full in [
        "january",
        "february",
        "march",
        "april",
        "may",
        "june",
        "july",
        "august",
        "september",
        "october",
        "november",
        "december",
    ]
    for m in (full, full[:3])
) | {"sept"}
# A month name alone ("March Madness") is a date only after one of these, or beside a number.
_MONTH_MARKERS = frozenset({"in", "on", "during", "since", "last", "this", "next"})
_UNITS = frozenset(
    u for unit in ("year", "month", "week", "day", "hour", "minute") for u in (unit, unit + "s")
)
# "5 year" of "my 5 year plan" is a length, "two weeks ago" or "last 3 days" a time.
_SPAN_MARKERS = frozenset({"ago", "last", "this", "next", "past", "previous"})
_TIME_OF_DAY = re.compile(
    r"^(at|around|about|by|\d{1,2}([:.]\d{2})?(am|pm)?|am|pm|a\.m\.|p\.m\.|noon|midnight"
    r"|o'clock|morning|evening|afternoon)$"
)
_MAX = datetime.max.replace(tzinfo=UTC)
_MIN = datetime.min.replace(tzinfo=UTC)
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


def _shift(instant: datetime, delta: timedelta) -> datetime:
    """``instant + delta``, held at the ends of what a ``datetime`` can hold."""
    try:
        return instant + delta
    except OverflowError:
        return datetime.max if delta > timedelta(0) else datetime.min


def _window(instant: datetime, period: str) -> tuple[datetime, datetime]:
    """The local (naive) ``start, end`` of the ``period`` around ``instant``."""
    day = instant.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "day":
        return day, _shift(day, _DAY)
    if period == "month":
        start = day.replace(day=1)
        if start.month == 12:
            return start, _year_after(start)
        return start, start.replace(month=start.month + 1)
    if period == "year":
        start = day.replace(month=1, day=1)
        return start, _year_after(start)
    half = _HALF.get(period, _HALF["week"])
    return _shift(instant, -half), _shift(instant, half)


def _year_after(start: datetime) -> datetime:
    if start.year == datetime.max.year:
        return datetime.max
    return start.replace(year=start.year + 1, month=1, day=1)


def _to_utc(local: datetime, zone: tzinfo) -> datetime:
    try:
        return local.replace(tzinfo=zone).astimezone(UTC)
    except OverflowError:  # a local end near year 1 or 9999 with no UTC equivalent
        return _MAX if local.year > 1 else _MIN


def _is_expression(text: str, before: str) -> bool:
    """Whether ``text``, found by dateparser after the word ``before``, names a time."""
    words = text.strip().lower().split()
    if not words or words[0] == "now":  # "now 20": "now" is a latest cue, not a date
        return False
    if all(_TIME_OF_DAY.match(w) for w in words):
        # "at 3 pm" alone names an hour of some day, not a stretch memories fall in.
        return False
    if _UNITS.intersection(words) and not _SPAN_MARKERS.intersection(words):
        return False
    if _MONTHS.intersection(words) and not any(c.isdigit() for c in text):
        marked = words[0] in _MONTH_MARKERS or before in _MONTH_MARKERS
        if not marked:
            return False
        if len(words) == 1:
            return True
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


def _head(query: str) -> str:
    """The first ``CUE_CHARS`` characters of ``query``, not cutting a word in two."""
    if len(query) <= CUE_CHARS:
        return query
    head = query[:CUE_CHARS]
    return head.rsplit(None, 1)[0] if query[CUE_CHARS].isalnum() and " " in head else head


def _found(head: str, base: datetime) -> list[tuple[str, datetime]]:
    settings = {
        "RELATIVE_BASE": base,
        "PREFER_DATES_FROM": "past",
        "RETURN_AS_TIMEZONE_AWARE": False,
    }
    try:
        return search_dates(head, languages=_LANGUAGES, settings=settings) or []
    except (ValueError, OverflowError):  # "tomorrow" asked on 9999-12-31 and the like
        return []


def resolve(query: str, at: datetime) -> TimeCue:
    """The time cues of ``query`` asked at ``at`` (aware; windows come back in UTC).

    Calendar windows are cut in ``at``'s own zone, so give ``at`` the asker's offset."""
    zone = at.tzinfo or UTC
    head = _head(query)
    lowered = head.lower()
    windows: list[Window] = []
    cursor = 0
    for text, instant in _found(head, at.replace(tzinfo=None)):
        where = lowered.find(text.lower(), cursor)
        cursor = max(cursor, where + len(text)) if where >= 0 else cursor
        before = _WORD.findall(lowered[: max(where, 0)])[-1:] if where > 0 else []
        if not _is_expression(text, before[0] if before else ""):
            continue
        try:
            # get_date_data resolves against the real now; search_dates already resolved
            # the instant against ``at``, so only its period is taken from here.
            period = _parser().get_date_data(text)["period"] or "day"
            start, end = _window(instant, period)
        except (ValueError, OverflowError):
            continue
        windows.append(Window(_to_utc(start, zone), _to_utc(end, zone)))
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
