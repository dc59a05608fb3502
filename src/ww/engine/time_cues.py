"""Time cues in a recall query: the window a relative expression names, and "the latest".

"What did I buy yesterday?" asked at ``at`` names the day before ``at``; "last month", "in
March", "two weeks ago" and "in 2022" name a month, a week or a year. ``dateparser`` finds
and resolves the expressions (English only, relative to ``at``, preferring the past: a
question about memory looks back); its ``period`` (day, week, month, year) gives the
window's width. The window is a soft ranking feature (see ``ww.engine.recall``), never a
filter: a wrongly read expression costs a little score, not the answer.

A few forms dateparser misreads or lacks are read here: rolling spans ("the past three
months", "the last few weeks", "the past week": from then up to ``at``), weekends ("last
weekend"), open ends ("before today", "until May", "since March", "after last Monday"), "in
a week ago" (dateparser: a week ahead) and a month joined to a month ("March and April").

"current", "latest", "now", "most recent"… ask for the newest of the memories that match.

Windows are cut in the asker's own zone: "yesterday" asked at 01:00+09:00 is the local day
before, converted to UTC. Only the first ``CUE_CHARS`` characters are read for expressions
(see there). Reading is a soft feature, so an expression that cannot be resolved (a date near
year 9999 whose month or year has no end a ``datetime`` can hold) is skipped, never raised.

dateparser works offline: it reads its bundled language data and the system clock only.
Most queries name no time, and searching one costs dateparser half a millisecond holding the
GIL, so a query is searched only if it holds a digit or a word of dateparser's own English
data that every date it finds contains (``may_name_time``).
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from functools import lru_cache

from dateparser.date import DateDataParser
from dateparser.languages.loader import default_loader
from dateparser.search import search_dates

__all__ = [
    "CUE_CHARS",
    "NO_CUE",
    "TimeCue",
    "Window",
    "may_name_time",
    "resolve",
    "resolve_beside",
    "warm",
    "window_closeness",
]

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
_MONTH_MARKERS = frozenset(
    {"in", "on", "during", "since", "last", "this", "next", "before", "after", "until", "till"}
)
_UNITS = frozenset(
    u for unit in ("year", "month", "week", "day", "hour", "minute") for u in (unit, unit + "s")
)
# "5 year" of "my 5 year plan" is a length, "two weeks ago" or "last 3 days" a time.
_SPAN_MARKERS = frozenset({"ago", "last", "this", "next", "past", "previous"})
_TIME_OF_DAY = re.compile(
    r"^(at|around|about|by|\d{1,2}([:.]\d{2})?(am|pm)?|am|pm|a\.m\.|p\.m\.|noon|midnight"
    r"|o'clock|morning|evening|afternoon)$"
)
# "before today": everything before the expression, "until May" up to its end; "since
# March", "after last Monday": from it up to the asking time.
_BEFORE = frozenset({"before", "prior"})
_UP_TO = _BEFORE | {"until", "till"}
_FROM = frozenset({"since", "after"})
# "March and April": a month right after a month, joined by one of these, is a month too.
_MONTH_JOINS = frozenset({"and", "or", "to", "through"})
# Rolling spans dateparser reads as one instant or not at all: "the past three months",
# "the last few weeks", "the past week" name everything from then up to the asking time.
_SPAN = re.compile(
    r"\b(?:past|last|previous)\s+(?:(\d{1,3}|a\s+few|few|a\s+couple\s+of|couple\s+of|several"
    r"|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve)\s+)?(day|week|month|year)(s?)\b"
)
_COUNTS = {
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "a few": 3,
    "few": 3,
    "a couple of": 2,
    "couple of": 2,
    "several": 4,
}
_UNIT_DAYS = {"day": 1.0, "week": 7.0, "month": 30.44, "year": 365.25}
_NEARLY_A_YEAR = timedelta(days=335)
# dateparser has no weekend: "last weekend", "this weekend", "the past weekend".
_WEEKEND = re.compile(r"\b(last|past|this|previous)\s+weekend\b")
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


# Keys of dateparser's English data that hold no word of a date.
_NOT_DATE_KEYS = frozenset({"name", "date_order", "skip", "pertain", "sentence_splitter_group"})
# Words of the data that appear only beside a number, a unit or a named day ("in 2 days",
# "less than a minute ago", "in the morning"): alone they name no time.
_CONNECTIVES = frozenset({"in", "after", "before", "from", "than", "less", "more"})
# Ordinal suffixes are skip words that dateparser still reads as a date on their own ("th").
_ORDINALS = frozenset({"st", "nd", "rd", "th"})


@lru_cache(maxsize=1)
def _date_words() -> frozenset[str]:
    """The words of dateparser's own English data any date it finds contains one of: a
    month, a weekday, a unit, "yesterday", "noon", "one"…."""
    info = default_loader.get_locale("en").info
    words: set[str] = set()
    pending: list[object] = [v for k, v in info.items() if k not in _NOT_DATE_KEYS]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            words.update(_WORD.findall(item.lower()))
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    skip = frozenset(w for w in info["skip"] + info["pertain"] if _WORD.fullmatch(w))
    letters = frozenset(w for w in words if len(w) == 1)
    # dateparser reads "a" and "an" as 1 ("a after" is a date), so they count.
    return frozenset(words - skip - _CONNECTIVES - letters) | _ORDINALS | {"a", "an"}


def may_name_time(lowered: str) -> bool:
    """Whether dateparser could find a date in ``lowered`` (lower-case text): it holds a
    digit or a word a date needs. Searching costs 0.4-0.5 ms a query, holding the GIL,
    and most queries name no time; a query without any of these is not searched."""
    return any(c.isdigit() for c in lowered) or not _date_words().isdisjoint(_WORD.findall(lowered))


def _found(head: str, base: datetime) -> list[tuple[str, datetime]]:
    return _search(head, base) if may_name_time(head.lower()) else []


def _search(head: str, base: datetime) -> list[tuple[str, datetime]]:
    """dateparser's expressions in ``head``, resolved against ``base``."""
    settings = {
        "RELATIVE_BASE": base,
        "PREFER_DATES_FROM": "past",
        "RETURN_AS_TIMEZONE_AWARE": False,
    }
    try:
        return search_dates(head, languages=_LANGUAGES, settings=settings) or []
    except (ValueError, OverflowError):  # "tomorrow" asked on 9999-12-31 and the like
        return []


def _rolling(lowered: str, base: datetime) -> tuple[list[tuple[datetime, datetime]], list[range]]:
    """Rolling spans ("the past three months") and weekends in ``lowered``, as local
    windows, with the character ranges they cover."""
    found: list[tuple[datetime, datetime]] = []
    covered: list[range] = []
    for m in _SPAN.finditer(lowered):
        count, unit, plural = m.group(1), m.group(2), m.group(3)
        # "last week", "last month" without a count are calendar periods: dateparser's; "the
        # previous day" is usually the day before some other event, not before ``at``.
        if count is None and (
            plural or unit == "day" or not m.group(0).startswith(("past", "previous"))
        ):
            continue
        n = 1.0 if count is None else float(_COUNTS.get(" ".join(count.split()), 0) or count)
        covered.append(range(m.start(), m.end()))
        start = _shift(base, -timedelta(days=n * _UNIT_DAYS[unit]))
        if start < base:
            found.append((start, base))
    for m in _WEEKEND.finditer(lowered):
        day = base.replace(hour=0, minute=0, second=0, microsecond=0)
        back = (day.weekday() - 5) % 7
        if m.group(1) in ("last", "previous") and day.weekday() >= 5:
            back += 7  # "last weekend" said on a Sunday: the one before
        saturday = _shift(day, -timedelta(days=back))
        covered.append(range(m.start(), m.end()))
        if saturday > datetime.min:  # a weekend before year 1 has no window
            found.append((saturday, _shift(saturday, 2 * _DAY)))
    return found, covered


def _next_year(instant: datetime) -> datetime:
    try:
        return instant.replace(year=instant.year + 1)
    except ValueError:  # 29 February, or year 9999
        return _shift(instant, timedelta(days=365))


def _direction(text: str, before: str) -> tuple[str, str]:
    """``text`` less a leading "before"/"since"/… (dateparser keeps "before today" whole),
    and which of them applies, if any."""
    words = text.split(None, 1)
    if len(words) == 2 and words[0].lower() in _UP_TO | _FROM:
        return words[1], words[0].lower()
    return text, before if before in _UP_TO | _FROM else ""


def _ago(text: str, instant: datetime, base: datetime) -> tuple[str, datetime]:
    """dateparser reads "participated in a week ago" as "in a week" ago, a week ahead: an
    expression that ends in "ago" is read again without the "in"."""
    words = text.lower().split()
    if len(words) > 2 and words[0] == "in" and words[-1] == "ago":
        again = _found(text.split(None, 1)[1], base)
        if again:
            return again[0]
    return text, instant


def _is_month(text: str) -> bool:
    return text.strip().lower() in _MONTHS


def resolve(query: str, at: datetime) -> TimeCue:
    """The time cues of ``query`` asked at ``at`` (aware; windows come back in UTC).

    Calendar windows are cut in ``at``'s own zone, so give ``at`` the asker's offset."""
    zone = at.tzinfo or UTC
    head = _head(query)
    lowered = head.lower()
    base = at.replace(tzinfo=None)
    local, covered = _rolling(lowered, base)
    cursor = 0
    after_month = False
    for text, instant in _found(head, base):
        where = lowered.find(text.lower(), cursor)
        cursor = max(cursor, where + len(text)) if where >= 0 else cursor
        if any(where in span for span in covered):
            after_month = False
            continue  # inside a rolling span read above ("three months" of "past three months")
        before = _WORD.findall(lowered[: max(where, 0)])[-1:] if where > 0 else []
        word = before[0] if before else ""
        text, direction = _direction(text, word)
        text, instant = _ago(text, instant, base)
        joined = after_month and word in _MONTH_JOINS and _is_month(text)
        if not (joined or _is_expression(text, direction or word)):
            after_month = False
            continue
        try:
            # get_date_data resolves against the real now; search_dates already resolved
            # the instant against ``at``, so only its period is taken from here.
            period = _parser().get_date_data(text)["period"] or "day"
            start, end = _window(instant, period)
        except (ValueError, OverflowError):
            after_month = False
            continue
        if direction in _UP_TO:
            if start < _shift(base, -_NEARLY_A_YEAR) and not any(c.isdigit() for c in text):
                # "before June" asked in May: next June, not the one dateparser's "prefer the
                # past" picked, which would leave out the whole year before it.
                start, end = _next_year(start), _next_year(end)
            start, end = datetime.min, start if direction in _BEFORE else end
        elif direction in _FROM:
            start, end = (start if direction == "since" else end), base
        if end <= start:
            continue
        local.append((start, end))
        after_month = _is_month(text)
    # Near year 1 a local window can fall wholly before the first UTC instant and collapse.
    utc = (Window(_to_utc(a, zone), _to_utc(b, zone)) for a, b in local)
    windows = tuple(w for w in utc if w.start < w.end)
    latest = _latest(query)
    return TimeCue(windows, latest) if windows or latest else NO_CUE


async def resolve_beside(query: str, at: datetime) -> TimeCue:
    """:func:`resolve` for a coroutine: on a thread when dateparser has a word to read (half
    a millisecond of pure Python, which the thread keeps beside the query's embedding),
    inline when it has none (about 10 µs, less than the hop)."""
    if may_name_time(_head(query).lower()):
        return await asyncio.to_thread(resolve, query, at)
    return resolve(query, at)


def warm() -> TimeCue:
    """Resolve one expression so dateparser loads its language data now (about half a
    second) rather than inside the first recall that names a date."""
    return resolve("what happened yesterday", datetime.now(UTC))


def window_closeness(days_outside: float, width_days: float) -> float:
    """1 inside the window, falling to 0.5 one window-width outside it (and on)."""
    if days_outside <= 0.0:
        return 1.0
    return 1.0 / (1.0 + days_outside / width_days)
