"""Quick-add parsing against a fixed clock: Friday 2026-12-04 15:00 in Moscow (UTC+3, no DST)."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from core.errors import InputError
from core.quickadd import ParsedTask, QuickAddError, Recurrence, parse_quick_add

MOSCOW = ZoneInfo("Europe/Moscow")
BERLIN = ZoneInfo("Europe/Berlin")
NOW = datetime(2026, 12, 4, 15, 0, tzinfo=MOSCOW)


def utc(year: int, month: int, day: int, hour: int, minute: int) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def parse(text: str, max_title: int = 256) -> ParsedTask:
    return parse_quick_add(text, now=NOW, tz=MOSCOW, max_title=max_title)


def test_the_fixed_clock_is_a_friday() -> None:
    assert NOW.weekday() == 4


@pytest.mark.parametrize(
    ("text", "title", "deadline"),
    [
        ("Pay rent tomorrow 18:00 #home !1", "Pay rent", utc(2026, 12, 5, 15, 0)),
        ("Call mom in 2 hours", "Call mom", utc(2026, 12, 4, 14, 0)),
        ("Call back in 30 min", "Call back", utc(2026, 12, 4, 12, 30)),
        ("Call back in an hour", "Call back", utc(2026, 12, 4, 13, 0)),
        ("Call back in half an hour", "Call back", utc(2026, 12, 4, 12, 30)),
        ("Read book in 3 days", "Read book", utc(2026, 12, 7, 6, 0)),
        ("Read book in 2 weeks at 18:00", "Read book", utc(2026, 12, 18, 15, 0)),
        ("Report next friday", "Report", utc(2026, 12, 11, 6, 0)),
        ("Report friday 16:00", "Report", utc(2026, 12, 4, 13, 0)),
        ("Report friday 10:00", "Report", utc(2026, 12, 11, 7, 0)),
        ("Report friday", "Report", utc(2026, 12, 11, 6, 0)),
        ("Report next friday 16:00", "Report", utc(2026, 12, 11, 13, 0)),
        ("Report this sunday", "Report", utc(2026, 12, 6, 6, 0)),
        ("Party 31.12 23:59", "Party", utc(2026, 12, 31, 20, 59)),
        ("Party 31.12.2026 23:00", "Party", utc(2026, 12, 31, 20, 0)),
        ("Party 31.12.26", "Party", utc(2026, 12, 31, 6, 0)),
        ("Party on 01.03", "Party", utc(2027, 3, 1, 6, 0)),
        ("Party 04.12", "Party", utc(2026, 12, 4, 20, 59)),
        ("Submit 2026-12-31 10:00", "Submit", utc(2026, 12, 31, 7, 0)),
        ("Trip 5 january", "Trip", utc(2027, 1, 5, 6, 0)),
        ("Dinner dec 31st 7pm", "Dinner", utc(2026, 12, 31, 16, 0)),
        ("Buy milk today 20:00", "Buy milk", utc(2026, 12, 4, 17, 0)),
        ("Buy milk today", "Buy milk", utc(2026, 12, 4, 20, 59)),
        ("dentist on monday at 9am", "dentist", utc(2026, 12, 7, 6, 0)),
        ("Gym tonight", "Gym", utc(2026, 12, 4, 17, 0)),
        ("Call tonight at 9", "Call", utc(2026, 12, 4, 18, 0)),
        ("Call 18:00", "Call", utc(2026, 12, 4, 15, 0)),
        ("Call at 9", "Call", utc(2026, 12, 5, 6, 0)),
        ("Call 9 pm", "Call", utc(2026, 12, 4, 18, 0)),
        ("Call at 12am", "Call", utc(2026, 12, 4, 21, 0)),
        ("Lunch at noon", "Lunch", utc(2026, 12, 5, 9, 0)),
        ("Sleep at midnight", "Sleep", utc(2026, 12, 4, 21, 0)),
        ("Walk the dog day after tomorrow", "Walk the dog", utc(2026, 12, 6, 6, 0)),
        ("Plan the week this evening", "Plan the week", utc(2026, 12, 4, 16, 0)),
        ("Позвонить маме завтра в 9", "Позвонить маме", utc(2026, 12, 5, 6, 0)),
        ("Отчёт через 3 дня #work", "Отчёт", utc(2026, 12, 7, 6, 0)),
        ("Встреча в пятницу в 15:30 !2", "Встреча", utc(2026, 12, 4, 12, 30)),
        ("Встреча в следующую пятницу", "Встреча", utc(2026, 12, 11, 6, 0)),
        ("Купить хлеб сегодня", "Купить хлеб", utc(2026, 12, 4, 20, 59)),
        ("Задача на завтра", "Задача", utc(2026, 12, 5, 6, 0)),
        ("Позвонить через час", "Позвонить", utc(2026, 12, 4, 13, 0)),
        ("Позвонить через 2 часа", "Позвонить", utc(2026, 12, 4, 14, 0)),
        ("Позвонить через 5 часов", "Позвонить", utc(2026, 12, 4, 17, 0)),
        ("Позвонить через минуту", "Позвонить", utc(2026, 12, 4, 12, 1)),
        ("Позвонить через 10 минут", "Позвонить", utc(2026, 12, 4, 12, 10)),
        ("Позвонить через полчаса", "Позвонить", utc(2026, 12, 4, 12, 30)),
        ("Отчёт через неделю", "Отчёт", utc(2026, 12, 11, 6, 0)),
        ("Отчёт через 2 недели", "Отчёт", utc(2026, 12, 18, 6, 0)),
        ("Отчёт через день", "Отчёт", utc(2026, 12, 5, 6, 0)),
        ("Отчёт послезавтра", "Отчёт", utc(2026, 12, 6, 6, 0)),
        ("Отчёт в понедельник", "Отчёт", utc(2026, 12, 7, 6, 0)),
        ("Отчёт во вторник", "Отчёт", utc(2026, 12, 8, 6, 0)),
        ("Отчёт в среду", "Отчёт", utc(2026, 12, 9, 6, 0)),
        ("Отчёт в четверг", "Отчёт", utc(2026, 12, 10, 6, 0)),
        ("Отчёт в субботу", "Отчёт", utc(2026, 12, 5, 6, 0)),
        ("Отчёт в воскресенье", "Отчёт", utc(2026, 12, 6, 6, 0)),
        ("Ужин завтра вечером", "Ужин", utc(2026, 12, 5, 16, 0)),
        ("Ужин завтра в 9 вечера", "Ужин", utc(2026, 12, 5, 18, 0)),
        ("Ужин сегодня вечером в 8", "Ужин", utc(2026, 12, 4, 17, 0)),
        ("Обед в 4 дня", "Обед", utc(2026, 12, 4, 13, 0)),
        ("Пробежка утром", "Пробежка", utc(2026, 12, 5, 6, 0)),
        ("Проверить сервер в 2 ночи", "Проверить сервер", utc(2026, 12, 4, 23, 0)),
        ("Обед в полдень", "Обед", utc(2026, 12, 5, 9, 0)),
        ("Ужин 31 декабря в 18:00", "Ужин", utc(2026, 12, 31, 15, 0)),
        ("Встреча к 18:00", "Встреча", utc(2026, 12, 4, 15, 0)),
    ],
)
def test_a_date_phrase_becomes_an_exact_utc_deadline_and_leaves_the_title(
    text: str, title: str, deadline: datetime
) -> None:
    task = parse(text)
    assert (task.title, task.deadline) == (title, deadline)
    assert task.recurrence is None


@pytest.mark.parametrize(
    ("text", "tags", "priority", "assignee"),
    [
        ("Pay rent tomorrow 18:00 #home !1", ("home",), 1, None),
        ("Встреча в пятницу в 15:30 !2", (), 2, None),
        ("Review @alice #work", ("work",), None, "alice"),
        ("Plan #Work #work #дом #a_b-c !5", ("work", "дом", "a_b-c"), 5, None),
        ("Ask @Bob_1, then @carol", (), None, "bob_1"),
    ],
)
def test_tags_priority_and_assignee_are_lifted_out_of_the_title(
    text: str, tags: tuple[str, ...], priority: int | None, assignee: str | None
) -> None:
    task = parse(text)
    assert (task.tags, task.priority, task.assignee) == (tags, priority, assignee)
    assert "#" not in task.title and "!" not in task.title


def test_a_line_without_a_date_phrase_has_no_deadline() -> None:
    task = parse("Review @alice #work")
    assert task == ParsedTask("Review", ("work",), None, None, "alice", None)


def test_a_later_mention_stays_in_the_title_as_written() -> None:
    task = parse("Ask @Bob_1, then @carol")
    assert (task.assignee, task.title) == ("bob_1", "Ask , then @carol")


@pytest.mark.parametrize(
    ("text", "title", "recurrence", "deadline"),
    [
        (
            "Standup every monday 9:00",
            "Standup",
            Recurrence("weekly", 9, 0, weekday=0),
            utc(2026, 12, 7, 6, 0),
        ),
        ("Витамины каждый день в 8", "Витамины", Recurrence("daily", 8, 0), utc(2026, 12, 5, 5, 0)),
        (
            "Pay bills every month on the 1st",
            "Pay bills",
            Recurrence("monthly", 9, 0, day_of_month=1),
            utc(2027, 1, 1, 6, 0),
        ),
        (
            "Pay every 1st of the month",
            "Pay",
            Recurrence("monthly", 9, 0, day_of_month=1),
            utc(2027, 1, 1, 6, 0),
        ),
        (
            "Rent on the 15th of each month",
            "Rent",
            Recurrence("monthly", 9, 0, day_of_month=15),
            utc(2026, 12, 15, 6, 0),
        ),
        (
            "Йога по понедельникам в 19:00",
            "Йога",
            Recurrence("weekly", 19, 0, weekday=0),
            utc(2026, 12, 7, 16, 0),
        ),
        (
            "Уборка каждую неделю",
            "Уборка",
            Recurrence("weekly", 9, 0, weekday=4),
            utc(2026, 12, 11, 6, 0),
        ),
        (
            "Полить цветы каждую среду вечером",
            "Полить цветы",
            Recurrence("weekly", 19, 0, weekday=2),
            utc(2026, 12, 9, 16, 0),
        ),
        (
            "Платёж каждое 15 число",
            "Платёж",
            Recurrence("monthly", 9, 0, day_of_month=15),
            utc(2026, 12, 15, 6, 0),
        ),
        (
            "Water plants daily at 7pm",
            "Water plants",
            Recurrence("daily", 19, 0),
            utc(2026, 12, 4, 16, 0),
        ),
    ],
)
def test_a_recurring_task_gets_its_rule_and_its_first_occurrence_as_deadline(
    text: str, title: str, recurrence: Recurrence, deadline: datetime
) -> None:
    task = parse(text)
    assert (task.title, task.recurrence, task.deadline) == (title, recurrence, deadline)


def test_tomorrow_at_nine_across_the_spring_switch_stays_nine_local() -> None:
    task = parse_quick_add(
        "Call tomorrow 09:00", now=datetime(2026, 3, 28, 12, 0, tzinfo=BERLIN), tz=BERLIN
    )
    assert task.deadline == utc(2026, 3, 29, 7, 0)


def test_hours_across_the_spring_switch_count_elapsed_time_not_wall_clock() -> None:
    task = parse_quick_add(
        "Call in 24 hours", now=datetime(2026, 3, 28, 12, 0, tzinfo=BERLIN), tz=BERLIN
    )
    assert task.deadline == utc(2026, 3, 29, 11, 0)


def test_a_wall_time_inside_the_spring_gap_moves_forward_by_the_gap() -> None:
    task = parse_quick_add(
        "Call tomorrow 02:30", now=datetime(2026, 3, 28, 12, 0, tzinfo=BERLIN), tz=BERLIN
    )
    assert task.deadline == utc(2026, 3, 29, 1, 30)
    assert task.deadline.astimezone(BERLIN).hour == 3


@pytest.mark.parametrize(
    ("rule", "after", "expected"),
    [
        (Recurrence("daily"), datetime(2026, 3, 28, 10, 0, tzinfo=BERLIN), utc(2026, 3, 29, 7, 0)),
        (
            Recurrence("daily"),
            datetime(2026, 10, 24, 10, 0, tzinfo=BERLIN),
            utc(2026, 10, 25, 8, 0),
        ),
        (
            Recurrence("weekly", weekday=6),
            datetime(2026, 3, 22, 9, 0, tzinfo=BERLIN),
            utc(2026, 3, 29, 7, 0),
        ),
        (
            Recurrence("monthly", day_of_month=31),
            datetime(2027, 2, 1, 9, 0, tzinfo=BERLIN),
            utc(2027, 2, 28, 8, 0),
        ),
        (
            Recurrence("monthly", day_of_month=29),
            datetime(2026, 12, 30, 9, 0, tzinfo=BERLIN),
            utc(2027, 1, 29, 8, 0),
        ),
    ],
)
def test_next_after_keeps_the_local_wall_clock_across_dst_and_short_months(
    rule: Recurrence, after: datetime, expected: datetime
) -> None:
    assert rule.next_after(after, BERLIN) == expected


def test_next_after_is_strictly_after_and_chains_into_a_series() -> None:
    rule = Recurrence("weekly", 9, 0, weekday=0)
    first = rule.next_after(NOW, MOSCOW)
    second = rule.next_after(first, MOSCOW)
    assert (first, second) == (utc(2026, 12, 7, 6, 0), utc(2026, 12, 14, 6, 0))
    assert second.tzinfo is UTC


@pytest.mark.parametrize(
    "kwargs",
    [{"freq": "weekly"}, {"freq": "monthly", "day_of_month": 32}, {"freq": "daily", "hour": 24}],
)
def test_an_incomplete_or_impossible_recurrence_is_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="invalid recurrence"):
        Recurrence(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("\x00\x07", "empty"),
        ("tomorrow", "no_title"),
        ("завтра в 9", "no_title"),
        ("#home !1", "no_title"),
        ("Task !0", "bad_priority"),
        ("Task !9", "bad_priority"),
        ("Task !1 !2", "bad_priority"),
        ("Party 31.02", "bad_date"),
        ("Party 31.02.2027 18:00", "bad_date"),
        ("Call 25:00", "bad_date"),
        ("Call 13pm", "bad_date"),
        ("Pay every month on the 32nd", "bad_date"),
        ("Встреча в 9.30", "bad_date"),
        ("Call yesterday 10:00", "date_in_past"),
        ("Позвонить вчера", "date_in_past"),
        ("Party 01.01.2020", "date_in_past"),
        ("Submit 2026-12-04 10:00", "date_in_past"),
        ("Buy milk today 10:00", "date_in_past"),
        ("Party 12/31", "ambiguous_date"),
        ("Party 03/04", "ambiguous_date"),
        ("Meet tomorrow friday", "ambiguous_date"),
        ("Call in 2 hours 18:00", "ambiguous_date"),
        ("Standup every monday tomorrow", "ambiguous_date"),
        ("x" * 5000, "too_long"),
        ("y" * 257, "too_long"),
    ],
)
def test_a_line_the_parser_cannot_trust_is_refused_with_a_code_and_a_suggestion(
    text: str, code: str
) -> None:
    with pytest.raises(QuickAddError) as caught:
        parse(text)
    assert caught.value.code == code
    assert caught.value.suggestion


def test_an_ambiguous_slash_date_suggests_the_day_month_form() -> None:
    with pytest.raises(QuickAddError) as caught:
        parse("Party 12/31")
    assert caught.value.suggestion is not None
    assert caught.value.suggestion.startswith("31.12")


def test_a_past_time_today_suggests_the_same_time_tomorrow() -> None:
    with pytest.raises(QuickAddError) as caught:
        parse("Buy milk today 10:00")
    assert caught.value.suggestion == "tomorrow 10:00"


def test_quick_add_errors_belong_to_the_input_family_and_to_value_error() -> None:
    error = QuickAddError("empty", "nothing", "x")
    assert isinstance(error, InputError)
    assert isinstance(error, ValueError)


def test_a_title_of_exactly_max_title_characters_is_accepted() -> None:
    assert parse("y" * 256).title == "y" * 256
    assert parse("y" * 10, max_title=10).title == "y" * 10


def test_html_in_a_title_is_kept_verbatim_for_the_renderer_to_escape() -> None:
    task = parse("<b>x</b> & <script>alert(1)</script> tomorrow")
    assert task.title == "<b>x</b> & <script>alert(1)</script>"


def test_an_html_entity_is_not_mistaken_for_a_tag() -> None:
    assert parse("Fix &#39;quotes&#39; #bug").tags == ("bug",)


@pytest.mark.parametrize(
    ("text", "title"),
    [
        ("Купить 🍕 tomorrow #food", "Купить 🍕"),
        ("Say hi 👨‍👩‍👧 today 20:00", "Say hi 👨‍👩‍👧"),
        ("Pay\x00 rent\ttomorrow\n18:00", "Pay rent"),
        ("\u202eevil\u202c plan", "evil plan"),
        ("Learn C# #dev", "Learn C#"),
        ("mail bob@example.com", "mail bob@example.com"),
        ("Meeting, tomorrow", "Meeting"),
    ],
)
def test_hostile_or_unusual_text_keeps_a_clean_title(text: str, title: str) -> None:
    assert parse(text).title == title


def test_a_naive_now_is_a_programming_error_not_a_user_error() -> None:
    with pytest.raises(ValueError, match="timezone-aware") as caught:
        parse_quick_add("Call tomorrow", now=datetime(2026, 12, 4, 15, 0), tz=MOSCOW)  # noqa: DTZ001
    assert not isinstance(caught.value, QuickAddError)


def test_deadlines_are_returned_in_utc() -> None:
    deadline = parse("Call tomorrow 18:00").deadline
    assert deadline is not None
    assert deadline.utcoffset() is not None
    assert deadline.tzinfo is UTC
