"""Reading time expressions of a recall query into windows, relative to when it is asked."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta, timezone
from unittest.mock import patch

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ww.engine import time_cues
from ww.engine.time_cues import Window, resolve, window_closeness

AT = datetime(2023, 5, 30, 23, 42, tzinfo=UTC)
# Questions are asked between 2000 and 2035, at any minute.
instants = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2035, 12, 31), timezones=st.just(UTC)
).map(lambda d: d.replace(second=0, microsecond=0))


def _only(query: str, at: datetime = AT) -> Window:
    cue = resolve(query, at)
    assert len(cue.windows) == 1, cue
    return cue.windows[0]


def _day(y: int, m: int, d: int) -> datetime:
    return datetime(y, m, d, tzinfo=UTC)


@pytest.mark.parametrize(
    ("query", "start", "end"),
    [
        ("What did I buy yesterday?", _day(2023, 5, 29), _day(2023, 5, 30)),
        ("What did I do last month?", _day(2023, 4, 1), _day(2023, 5, 1)),
        ("Where did I go in March?", _day(2023, 3, 1), _day(2023, 4, 1)),
        ("What happened in 2022?", _day(2022, 1, 1), _day(2023, 1, 1)),
        ("What did I say on Saturday?", _day(2023, 5, 27), _day(2023, 5, 28)),
    ],
)
def test_calendar_expressions(query: str, start: datetime, end: datetime) -> None:
    assert _only(query) == Window(start, end)


@pytest.mark.parametrize(
    ("query", "days_back"),
    [("What did I read last week?", 7), ("What did I cook two weeks ago?", 14)],
)
def test_week_expressions_span_seven_days_around_the_instant(query: str, days_back: int) -> None:
    w = _only(query)
    assert w.end - w.start == timedelta(days=7)
    assert w.start < AT - timedelta(days=days_back) < w.end


@pytest.mark.parametrize(
    "query",
    [
        "How may I help my sister?",
        "May I ask about my sister?",
        "I mentioned a second-hand car",
        "What was the amount I was pre-approved for?",
        "Where did I redeem a $5 coupon?",
        "What did I do after the Sunday mass?",
        "How often do I swim, once a week?",
        "What is my 5 year plan?",
        "Where was the meeting at 3 pm?",
        "Who won March Madness?",
        "What is the price now 20 are sold?",
        "What did I say at 10:30?",
    ],
)
def test_words_that_only_look_like_dates_name_no_window(query: str) -> None:
    assert resolve(query, AT).windows == ()


@pytest.mark.parametrize(
    ("query", "latest"),
    [
        ("What is my current job?", True),
        ("Where do I live now?", True),
        ("What is the most recent book I read?", True),
        ("What did I read last week?", False),
        ("What is my cat called?", False),
    ],
)
def test_latest_cue(query: str, latest: bool) -> None:
    assert resolve(query, AT).latest is latest
    assert bool(resolve(query, AT)) is (latest or bool(resolve(query, AT).windows))


@settings(max_examples=40, deadline=None)
@given(at=instants, n=st.integers(min_value=2, max_value=20))
def test_days_ago_is_the_day_n_days_before(at: datetime, n: int) -> None:
    w = _only(f"what did I do {n} days ago", at)
    day = (at - timedelta(days=n)).replace(hour=0, minute=0)
    assert w == Window(day, day + timedelta(days=1))


@settings(max_examples=40, deadline=None)
@given(at=instants)
def test_yesterday_and_last_month_precede_the_asking_time(at: datetime) -> None:
    y = _only("what did I eat yesterday", at)
    assert y.start == (at - timedelta(days=1)).replace(hour=0, minute=0)
    m = _only("what did I buy last month", at)
    first = at.replace(day=1, hour=0, minute=0)
    assert m.end == first
    assert m.start == (first - timedelta(days=1)).replace(day=1)


@given(
    outside=st.floats(min_value=0.0, max_value=1e4), width=st.floats(min_value=0.01, max_value=400)
)
def test_closeness_is_one_inside_and_falls_with_distance(outside: float, width: float) -> None:
    c = window_closeness(outside, width)
    assert 0.0 < c <= 1.0
    assert window_closeness(outside + width, width) < c or c < 1e-3
    assert window_closeness(0.0, width) == 1.0
    assert window_closeness(width, width) == pytest.approx(0.5)


def test_warm_loads_the_parser_by_resolving_a_real_expression() -> None:
    time_cues._parser.cache_clear()
    cue = time_cues.warm()
    assert len(cue.windows) == 1
    assert time_cues._parser.cache_info().currsize == 1


@pytest.mark.parametrize(
    "query",
    [
        "What happened in 9999?",
        "What did I do in December 9999?",
        "What did I do on 9999-12-31?",
        "What happened in 0001?",
    ],
)
def test_a_date_at_the_edge_of_the_calendar_never_raises(query: str) -> None:
    for w in resolve(query, AT).windows:
        assert w.start <= w.end


def test_this_year_asked_at_the_last_instant_ends_at_the_last_instant() -> None:
    at = datetime.max.replace(tzinfo=UTC)
    assert _only("What did I do this year?", at) == Window(
        _day(9999, 1, 1), datetime.max.replace(tzinfo=UTC)
    )


@pytest.mark.parametrize(
    ("query", "start", "end"),
    [
        ("What did I do during March 2022?", _day(2022, 3, 1), _day(2022, 4, 1)),
        ("Where was I on May 3?", _day(2023, 5, 3), _day(2023, 5, 4)),
        ("What did I buy 3 days ago?", _day(2023, 5, 27), _day(2023, 5, 28)),
    ],
)
def test_marked_months_and_spans_still_count(query: str, start: datetime, end: datetime) -> None:
    assert _only(query) == Window(start, end)


@pytest.mark.parametrize(
    ("query", "start", "end"),
    [
        # Everything up to the expression, or from it up to the asking time.
        ("Which airlines did I fly with before today?", datetime.min, _day(2023, 5, 30)),
        ("What did I buy until yesterday?", datetime.min, _day(2023, 5, 30)),  # yesterday too
        # Asked in May, "before June" is the June to come, not last year's.
        ("What did I do before June?", datetime.min, _day(2023, 6, 1)),
        ("What did I do after March?", _day(2023, 4, 1), AT),
        ("What did I do since March?", _day(2023, 3, 1), AT),
        ("What did I cook after last Monday?", _day(2023, 5, 30), AT),  # Monday was the 29th
        # Rolling spans dateparser reads as one instant ("three months") or not at all.
        ("What trips did I take in the past three months?", AT - timedelta(days=91.32), AT),
        ("What did I watch in the last 2 weeks?", AT - timedelta(days=14), AT),
        ("How many videos did I watch in the past few weeks?", AT - timedelta(days=21), AT),
        ("What did I read the past week?", AT - timedelta(days=7), AT),
        ("What did I eat in the past month?", AT - timedelta(days=30.44), AT),
        # Asked on a Tuesday: the Saturday and Sunday just gone.
        ("Which bike did I service the past weekend?", _day(2023, 5, 27), _day(2023, 5, 29)),
        ("What did I do last weekend?", _day(2023, 5, 27), _day(2023, 5, 29)),
    ],
)
def test_open_ended_windows_spans_and_weekends(query: str, start: datetime, end: datetime) -> None:
    w = _only(query)
    assert abs(w.start - start.replace(tzinfo=UTC)) < timedelta(minutes=1)
    assert abs(w.end - end.replace(tzinfo=UTC)) < timedelta(minutes=1)


def test_last_weekend_said_on_a_weekend_is_the_one_before() -> None:
    sunday = datetime(2023, 6, 4, 18, 0, tzinfo=UTC)
    last, this = _day(2023, 5, 27), _day(2023, 6, 3)
    assert _only("What did I do last weekend?", sunday) == Window(last, _day(2023, 5, 29))
    assert _only("What did I do this weekend?", sunday) == Window(this, _day(2023, 6, 5))


def test_in_before_ago_still_looks_back() -> None:
    # dateparser reads "participated in a week ago" as "in a week": a week ahead.
    assert _only("What did I participate in a week ago?") == _only("What did I do a week ago?")
    assert _only("Which event did I go to in a month ago?").end <= AT


def test_a_month_joined_to_a_month_is_one_too() -> None:
    cue = resolve("Which airline did I fly with the most in March and April?", AT)
    assert cue.windows == (
        Window(_day(2023, 3, 1), _day(2023, 4, 1)),
        Window(_day(2023, 4, 1), _day(2023, 5, 1)),
    )
    assert resolve("Did Tom and April go hiking?", AT).windows == ()
    assert resolve("What was the song by April?", AT).windows == ()


@pytest.mark.parametrize("query", ["the past week", "since today", "since this month"])
def test_a_window_before_the_first_utc_instant_is_dropped_not_empty(query: str) -> None:
    # Noon on 1 January of year 1 at +12:00 is midnight UTC: nothing before it exists.
    at = datetime(1, 1, 1, 12, tzinfo=timezone(timedelta(hours=12)))
    assert all(w.start < w.end for w in resolve(query, at).windows)


def test_yesterday_is_the_askers_local_day() -> None:
    # 01:00 on 10 May in Tokyo is 16:00 on 9 May in UTC: yesterday there is 9 May local.
    at = datetime(2024, 5, 10, 1, 0, tzinfo=timezone(timedelta(hours=9)))
    assert _only("What did I buy yesterday?", at) == Window(
        datetime(2024, 5, 8, 15, tzinfo=UTC), datetime(2024, 5, 9, 15, tzinfo=UTC)
    )


def test_only_the_head_of_a_long_query_is_read() -> None:
    filler = "word " * (time_cues.CUE_CHARS // 5)
    assert resolve("What did I buy yesterday? " + filler, AT).windows
    assert resolve(filler + " What did I buy yesterday?", AT).windows == ()


@settings(max_examples=200, deadline=None)
@given(
    query=st.text(max_size=80)
    | st.lists(
        st.sampled_from(
            [
                "in",
                "on",
                "9999",
                "0001",
                "December",
                "12-31",
                "yesterday",
                "tomorrow",
                "next",
                "last",
                "this",
                "year",
                "month",
                "week",
                "ago",
                "3",
                "now",
                "9999-12-31",
                "at",
                "weekend",
                "past",
                "few",
                "since",
                "before",
                "and",
                "April",
            ]
        ),
        max_size=6,
    ).map(" ".join),
    at=st.datetimes(
        min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31), timezones=st.just(UTC)
    ).map(
        lambda d: d.replace(
            tzinfo=timezone(timedelta(minutes=(d.hour * 60 + d.minute) % 2879 - 1439))
        )
    )
    | st.sampled_from([datetime.max.replace(tzinfo=UTC), datetime.min.replace(tzinfo=UTC)]),
)
def test_resolve_never_raises(query: str, at: datetime) -> None:
    cue = resolve(query, at)
    for w in cue.windows:
        assert w.start.tzinfo is UTC
        assert w.end.tzinfo is UTC
        assert w.start < w.end


# Words dateparser's data uses beside a date but never as one (skip words, connectives, its
# one-letter units), words that look like times but are not in its data, and separators.
_NO_DATE_WORDS = sorted(
    {"about", "and", "at", "by", "from", "just", "m", "of", "on", "the", "in", "after"}
    | {"before", "than", "less", "more", "b", "d", "h", "s", "w", "y", "x", "i", "it's"}
    | {"soon", "eve", "quarter", "half", "past", "dawn", "end", "first", "once", "while"}
    | {"recently", "earlier", "twice", "dozen", "weekend", "summer", "christmas", "lunch"}
)
_SEPARATORS = [" ", ", ", " - ", "/", ".", ":", "-", "+", "'", "\n", "?"]
no_date_text = st.lists(
    st.tuples(st.sampled_from(_NO_DATE_WORDS), st.sampled_from(_SEPARATORS)), max_size=6
).map(lambda parts: "".join(w + s for w, s in parts))


@settings(max_examples=400, deadline=None)
@given(text=no_date_text)
def test_text_skipped_as_naming_no_time_holds_no_date_dateparser_finds(text: str) -> None:
    if not time_cues.may_name_time(text.lower()):
        assert time_cues._search(text, AT.replace(tzinfo=None)) == []


@pytest.mark.parametrize(
    "text",
    [
        "yesterday",
        "tonight",
        "at noon",
        "a week ago",
        "one year",
        "in 2022",
        "march",
        "the 5th",
        "about/a",
        "next wed",
        "this mo",
    ],
)
def test_every_form_dateparser_reads_is_searched(text: str) -> None:
    assert time_cues._search(text, AT.replace(tzinfo=None)), text  # dateparser reads it…
    assert time_cues.may_name_time(text)  # …so it is not skipped


@settings(max_examples=150, deadline=None)
@given(
    query=st.lists(
        st.sampled_from([*_NO_DATE_WORDS, "yesterday", "last", "month", "March", "a", "3", "ago"]),
        max_size=6,
    ).map(" ".join),
    at=instants,
)
def test_skipping_changes_no_cue(query: str, at: datetime) -> None:
    skipped = resolve(query, at)
    with patch.object(time_cues, "may_name_time", autospec=True, return_value=True):
        assert resolve(query, at) == skipped


async def test_resolve_beside_uses_a_thread_only_for_dateparser() -> None:
    seen: list[str] = []
    real = time_cues.resolve

    def on_thread(query: str, at: datetime) -> time_cues.TimeCue:
        seen.append(threading.current_thread().name)
        return real(query, at)

    with patch.object(time_cues, "resolve", autospec=True, side_effect=on_thread):
        dated = await time_cues.resolve_beside("What did I buy yesterday?", AT)
        plain = await time_cues.resolve_beside("What is Kofi's latest job?", AT)
    assert dated == real("What did I buy yesterday?", AT) and dated.windows
    assert plain == real("What is Kofi's latest job?", AT) and plain.latest
    main = threading.current_thread().name
    assert seen[0] != main and seen[1] == main
