"""What a task looks like in chat, and how a long reply is cut into messages Telegram takes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.handlers.reminders import span
from bot.keyboards import (
    field_keyboard,
    list_keyboard,
    task_keyboard,
    wizard_keyboard,
)
from bot.rendering import (
    MESSAGE_LIMIT,
    esc,
    plain,
    split_message,
    task_card,
    task_line,
    utf16_len,
    when,
)
from bot.sandbox.entities import parse_html
from core.models import Task, TaskStatus
from core.queries import TaskPage, View, tag_key

pytestmark = pytest.mark.timeout(30)

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
UTC_ZONE = ZoneInfo("UTC")


def _task(**changes: object) -> Task:
    base = Task(
        id=7,
        uid="u7",
        title="Pay rent",
        description="",
        priority=3,
        deadline=datetime(2026, 12, 5, 18, 0, tzinfo=UTC),
        tags=("home",),
        status=TaskStatus.OPEN,
        chat_id=1,
        author_id=1,
        assignee=None,
        created_at=NOW,
        updated_at=NOW,
    )
    return base.evolve(**changes)


def _assert_sendable(parts: list[str], limit: int) -> None:
    """Each part is within the limit and is HTML Telegram would parse."""
    for part in parts:
        assert utf16_len(part) <= limit, part
        visible, _ = parse_html(part)
        assert visible.strip()


# -- splitting ---------------------------------------------------------------------------------


def test_a_short_reply_stays_one_message() -> None:
    assert split_message("<b>Open tasks</b> (1)\n▫️ #1 Milk") == ["<b>Open tasks</b> (1)\n▫️ #1 Milk"]


def test_a_long_list_is_cut_between_lines_and_loses_no_line() -> None:
    lines = [f"▫️ <b>#{n}</b> task number {n} " + "x" * 60 for n in range(200)]
    parts = split_message("\n".join(lines))
    assert len(parts) > 1
    _assert_sendable(parts, MESSAGE_LIMIT)
    assert "\n".join(parts).split("\n") == lines


def test_one_overlong_line_is_hard_cut_and_its_tags_are_closed_and_reopened() -> None:
    body = "<b>" + "y" * 9000 + "</b>"
    parts = split_message(body)
    assert len(parts) == 3
    _assert_sendable(parts, MESSAGE_LIMIT)
    assert all(p.startswith("<b>") and p.endswith("</b>") for p in parts)
    assert "".join(parse_html(p)[0] for p in parts) == "y" * 9000


def test_a_cut_never_splits_an_html_entity() -> None:
    body = "&amp;" * 3000
    parts = split_message(body)
    _assert_sendable(parts, MESSAGE_LIMIT)
    assert "".join(parse_html(p)[0] for p in parts) == "&" * 3000


def test_emoji_count_twice_as_telegram_counts_them() -> None:
    assert utf16_len("🎉") == 2
    parts = split_message("🎉" * 3000)
    assert len(parts) == 2
    _assert_sendable(parts, MESSAGE_LIMIT)


def test_a_tag_open_across_lines_is_balanced_in_every_part() -> None:
    body = "<pre>" + "\n".join(f"line {n}" for n in range(40)) + "</pre>"
    parts = split_message(body, limit=100)
    assert len(parts) > 1
    _assert_sendable(parts, 100)


def test_blank_lines_never_become_an_empty_message() -> None:
    parts = split_message("text\n" + "\n" * 5000, limit=50)
    assert parts == ["text"]


@pytest.mark.parametrize("limit", [20, 57, 300])
def test_any_mix_of_markup_fits_any_limit(limit: int) -> None:
    body = "\n".join(f"<i>{n}</i> <b>bold &lt;{n}&gt;</b> 🎉 " + "w" * (n % 90) for n in range(60))
    _assert_sendable(split_message(body, limit=limit), limit)


# -- rendering ---------------------------------------------------------------------------------


def test_user_html_in_a_title_is_shown_as_text() -> None:
    line = task_line(_task(title="<b>x</b> & <script>"), UTC_ZONE)
    assert "&lt;b&gt;x&lt;/b&gt; &amp; &lt;script&gt;" in line
    assert parse_html(line)[0].startswith("▫️ #7 <b>x</b> & <script>")


def test_esc_leaves_quotes_and_escapes_markup() -> None:
    assert esc('<a href="x">&') == '&lt;a href="x"&gt;&amp;'


def test_a_very_long_title_is_shortened_in_a_list_but_whole_on_the_card() -> None:
    task = _task(title="t" * 256)
    assert "t" * 120 + "…" in task_line(task, UTC_ZONE)
    assert "t" * 256 in task_card(task, "en", UTC_ZONE)


def test_deadlines_show_in_the_readers_zone_and_language() -> None:
    deadline = datetime(2026, 12, 5, 18, 0, tzinfo=UTC)
    assert when(deadline, UTC_ZONE, "en") == "Sat 05.12 18:00"
    assert when(deadline, ZoneInfo("Europe/Moscow"), "ru") == "Сб 05.12 21:00"


def test_a_deadline_in_another_year_shows_the_year() -> None:
    deadline = datetime(2027, 1, 8, 9, 0, tzinfo=UTC)
    assert when(deadline, UTC_ZONE, "en", NOW) == "Fri 08.01.2027 09:00"


def test_an_overdue_open_task_is_marked_in_lists_and_on_its_card() -> None:
    task = _task(deadline=datetime(2026, 12, 3, 9, 0, tzinfo=UTC))
    assert "⚠️" in task_line(task, UTC_ZONE, "en", NOW)
    assert "overdue" in task_card(task, "en", UTC_ZONE, NOW)
    assert "просрочено" in task_card(task, "ru", UTC_ZONE, NOW)


def test_a_card_shows_description_assignee_and_a_finished_status() -> None:
    task = _task(description="Bank <transfer>", assignee="bob", status=TaskStatus.DONE)
    card = task_card(task, "en", UTC_ZONE, NOW)
    shown = parse_html(card)[0]
    assert "Bank <transfer>" in shown
    assert "@bob" in shown
    assert "Status: done" in shown


def test_plain_turns_a_reply_into_text_for_button_answers() -> None:
    assert plain("⏰ Task <b>#3</b> &lt;ok&gt;") == "⏰ Task #3 <ok>"


# -- buttons -----------------------------------------------------------------------------------


def test_every_button_fits_telegrams_64_bytes_even_for_the_largest_ids() -> None:
    big = _task(id=99_999_999_999)
    page = TaskPage([big] * 10, total=1000, page=5, pages=100)
    keyboards = [
        task_keyboard(big, "ru"),
        task_keyboard(big.evolve(status=TaskStatus.DONE), "ru"),
        list_keyboard(page, View.TAG, tag_key("очень-длинный-тег" * 10), "ru"),
        wizard_keyboard("deadline", "ru", skip=True),
        field_keyboard(big.id, "ru"),
    ]
    datas = [b.callback_data or "" for k in keyboards for row in k.inline_keyboard for b in row]
    assert len(datas) > 20
    assert all(0 < len(d.encode()) <= 64 for d in datas), max(datas, key=len)


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (40, "1 min"),
        (60, "1 min"),
        (3599.5, "1 h"),
        (3600, "1 h"),
        (90_061, "1 d 1 h"),
        (-5, "0 min"),
    ],
)
def test_time_left_is_rounded_up_to_the_minute(seconds: float, shown: str) -> None:
    assert span(timedelta(seconds=seconds), "en") == shown
