"""The bot says the same things in every language, and every text is HTML Telegram accepts."""

from __future__ import annotations

import re
import string
from datetime import UTC, datetime

import pytest

from bot.handlers.errors import localized_example
from bot.sandbox.entities import parse_html
from bot.texts import LANGUAGES, MENU_COMMANDS, command_menu, pick_language, text
from core.quickadd import QuickAddError, parse_quick_add

pytestmark = pytest.mark.timeout(30)


def _placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def test_every_language_has_exactly_the_english_keys() -> None:
    english = set(LANGUAGES["en"])
    for lang, texts in LANGUAGES.items():
        assert set(texts) - english == set(), f"{lang} has keys English lacks"
        assert english - set(texts) == set(), f"{lang} lacks keys English has"


def test_each_text_takes_the_same_placeholders_in_every_language() -> None:
    for key, english in LANGUAGES["en"].items():
        for lang, texts in LANGUAGES.items():
            assert _placeholders(texts[key]) == _placeholders(english), f"{lang}:{key}"


@pytest.mark.parametrize("lang", sorted(LANGUAGES))
def test_every_text_is_html_telegram_accepts_once_filled_in(lang: str) -> None:
    for key, template in LANGUAGES[lang].items():
        filled = template.format(**dict.fromkeys(_placeholders(template), "x"))
        visible, _ = parse_html(filled)  # raises on a bare '<' or an unclosed tag
        assert visible.strip(), f"{lang}:{key} shows nothing"


@pytest.mark.parametrize("lang", sorted(LANGUAGES))
def test_the_command_menu_fits_telegrams_rules_in_every_language(lang: str) -> None:
    menu = command_menu(lang)
    assert [name for name, _ in menu] == list(MENU_COMMANDS)
    for name, description in menu:
        assert name.islower() and len(name) <= 32
        assert 1 <= len(description) <= 256
        assert "<" not in description  # menu descriptions are plain text


def test_telegram_language_codes_map_to_a_language_we_speak() -> None:
    assert pick_language("ru-RU") == "ru"
    assert pick_language("en-GB") == "en"
    assert pick_language("de") == "en"
    assert pick_language(None) == "en"


def test_a_text_in_russian_is_russian_and_takes_its_values() -> None:
    assert text("ru", "not_found", id=7) == "Не нахожу задачу #7 в этом чате."
    assert text("en", "not_found", id=7) == "I can't find task #7 here."


@pytest.mark.parametrize(
    "line",
    ["", "#home", "Report 01.01.2020 10:00", "Rent every month on the 32nd", "Call 13pm"],
)
def test_a_quick_add_example_reaches_a_russian_user_in_russian_and_works_as_typed(
    line: str,
) -> None:
    now = datetime(2026, 12, 4, 12, tzinfo=UTC)
    with pytest.raises(QuickAddError) as refused:
        parse_quick_add(line, now=now, tz=UTC)
    assert refused.value.suggestion is not None

    example = localized_example(refused.value.suggestion, "ru")

    assert example != refused.value.suggestion
    assert not re.search(r"[A-Za-z]{3,}", example)  # no English words left
    parsed = parse_quick_add(f"Задача {example}", now=now, tz=UTC)
    assert parsed.deadline is not None or parsed.title == "Оплатить аренду"


def test_an_example_for_an_english_user_is_left_as_the_parser_wrote_it() -> None:
    assert localized_example("tomorrow 10:00", "en") == "tomorrow 10:00"
    assert localized_example("31.12 18:00", "ru") == "31.12 18:00"  # no words to translate
