"""Turn a quick-add line ("Pay rent tomorrow 18:00 #home !1") into a task draft.

Pure and free of I/O: the caller passes `now` and the user's zone, so every rule can be tested
against a fixed clock. Date words are resolved on the local wall clock and only then converted
to UTC, so "tomorrow 09:00" stays 09:00 local across a DST switch. The parser refuses rather
than guesses: an impossible, past or ambiguous date raises `QuickAddError` with a suggestion.

Rules, in English and Russian:
- A date without a time means 09:00 local; a date that is today ("today", "сегодня", today's
  "04.12") without a time means 23:59, the end of that day.
- A time alone ("18:00", "at 9", "вечером") means today if still ahead, otherwise tomorrow.
- A weekday means its next occurrence. Today's weekday counts as today only with an explicit
  time still ahead; "next friday" / "в следующую пятницу" is the coming friday, never today.
- "in 2 hours" / "через 30 минут" count elapsed time from now; "in 3 days" / "через неделю"
  move the date and take the default time unless one is given.
- A date without a year is this year's, or next year's once it has passed.
- A bare hour ("at 9", "в 9") is on the 24-hour clock; am/pm, "утра/дня/вечера/ночи" and
  dayparts ("вечером в 8", "tonight at 9") shift it to the afternoon when needed.
- "12/31" is rejected as ambiguous; "31.12", "31.12.2026", "2026-12-31", "31 декабря" work.
- A wall time inside a spring-forward gap moves forward by the gap (PEP 495, fold=0).
- A recurring task's deadline is its first occurrence after `now`.

LIMIT: numbers must be digits ("через 2 часа", not "через два часа"); word numerals and
unknown date words ("next week", "через месяц") stay in the title unparsed. A numeral table and
a few more rules per language would lift it.
LIMIT: "at 3" / "в 3" always reads as a time, even in "Купить билет в 3 ряд". Requiring a
following boundary word would cost "Meet at 9 with Bob"; we chose the time.
LIMIT: suggestions are English; the bot localises the reply by `code`.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import ClassVar, Literal
from zoneinfo import ZoneInfo

from core.errors import InputError

Freq = Literal["daily", "weekly", "monthly"]

DEFAULT_TIME = (9, 0)  # a date named without a time
END_OF_DAY = (23, 59)  # today named without a time: 09:00 would usually be past already
_MAX_TEXT = 2048  # bounds regex work per message; Telegram itself allows 4096 characters
_EXAMPLE = "Pay rent tomorrow 18:00"


class QuickAddError(InputError, ValueError):
    """A quick-add line the parser refuses rather than guess; `code` picks the reply."""

    def __init__(self, code: str, message: str, suggestion: str | None) -> None:
        super().__init__(message, code=code, suggestion=suggestion)


@dataclass(frozen=True)
class Recurrence:
    """A repeat rule kept in wall-clock terms, so 09:00 stays 09:00 across DST switches."""

    freq: Freq
    hour: int = DEFAULT_TIME[0]
    minute: int = DEFAULT_TIME[1]
    weekday: int | None = None  # 0 = Monday; weekly only
    day_of_month: int | None = None  # 1..31, clamped to the last day of short months

    def __post_init__(self) -> None:
        valid = (
            0 <= self.hour <= 23
            and 0 <= self.minute <= 59
            and (self.freq != "weekly" or self.weekday in range(7))
            and (self.freq != "monthly" or self.day_of_month in range(1, 32))
            and self.freq in ("daily", "weekly", "monthly")
        )
        if not valid:
            raise ValueError(f"invalid recurrence: {self!r}")

    # RFC 5545 weekday codes, Monday first like `date.weekday()`.
    _DAYS: ClassVar[tuple[str, ...]] = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")

    def to_text(self) -> str:
        """The rule as an RRULE subset for `tasks.recurrence`, readable by calendar tools."""
        parts = [f"FREQ={self.freq.upper()}"]
        if self.weekday is not None:
            parts.append(f"BYDAY={self._DAYS[self.weekday]}")
        if self.day_of_month is not None:
            parts.append(f"BYMONTHDAY={self.day_of_month}")
        parts += [f"BYHOUR={self.hour}", f"BYMINUTE={self.minute}"]
        return ";".join(parts)

    @classmethod
    def from_text(cls, text: str) -> Recurrence:
        """Read what `to_text` wrote; anything else is a ValueError, never a guess."""
        try:
            fields = dict(part.split("=", 1) for part in text.strip().upper().split(";"))
            freqs: dict[str, Freq] = {"DAILY": "daily", "WEEKLY": "weekly", "MONTHLY": "monthly"}
            unknown = fields.keys() - {"FREQ", "BYDAY", "BYMONTHDAY", "BYHOUR", "BYMINUTE"}
            if unknown:
                raise ValueError(f"unsupported parts {sorted(unknown)}")
            day = fields.get("BYDAY")
            month_day = fields.get("BYMONTHDAY")
            return cls(
                freqs[fields["FREQ"]],
                int(fields.get("BYHOUR", DEFAULT_TIME[0])),
                int(fields.get("BYMINUTE", DEFAULT_TIME[1])),
                None if day is None else cls._DAYS.index(day),
                None if month_day is None else int(month_day),
            )
        except (KeyError, ValueError) as exc:
            raise ValueError(f"not a recurrence rule: {text!r}") from exc

    def next_after(self, dt: datetime, tz: ZoneInfo) -> datetime:
        """Return the first occurrence strictly after `dt`, computed in `tz`, as UTC."""
        _require_aware(dt)
        start = dt.astimezone(tz).date()
        for step in range(3):  # the second candidate always lies ahead; one spare
            at = _wall(self._day(start, step), (self.hour, self.minute), tz)
            if at > dt:
                return at
        raise AssertionError("unreachable: a later occurrence always exists")

    def _day(self, start: date, step: int) -> date:
        if self.freq == "daily":
            return start + timedelta(days=step)
        if self.freq == "weekly":
            assert self.weekday is not None
            return start + timedelta(days=(self.weekday - start.weekday()) % 7 + 7 * step)
        assert self.day_of_month is not None
        months = start.month - 1 + step
        year, month = start.year + months // 12, months % 12 + 1
        return date(year, month, min(self.day_of_month, calendar.monthrange(year, month)[1]))


@dataclass(frozen=True)
class ParsedTask:
    """What a quick-add line asks for; the deadline is aware and in UTC."""

    title: str
    tags: tuple[str, ...]
    priority: int | None
    deadline: datetime | None
    assignee: str | None
    recurrence: Recurrence | None


@dataclass
class _When:
    """What the date rules found so far; each slot may be filled once."""

    today: date
    offset: int | None = None  # days from today
    weekday: int | None = None
    skip_today: bool = False  # "next friday"
    ymd: tuple[int | None, int, int] | None = None
    delta: timedelta | None = None  # elapsed time: "in 2 hours"
    clock: tuple[int, int] | None = None
    fixed_clock: bool = False  # am/pm or noon: dayparts must not shift it
    daypart: str | None = None
    repeat: tuple[Freq, int | None, int | None] | None = None
    claimed: set[str] = field(default_factory=set)

    def claim(self, *slots: str) -> None:
        if self.claimed.intersection(slots):
            raise QuickAddError("ambiguous_date", "two dates or times in one line", _EXAMPLE)
        self.claimed.update(slots)


_Handler = Callable[[re.Match[str], _When], None]
_Rule = tuple[re.Pattern[str], _Handler, frozenset[str]]


def _table(spec: str) -> dict[str, str]:
    """Read "key: word, word | key: word" into {word: key}, so word lists stay one glance."""
    pairs = (entry.split(":") for entry in spec.split("|"))
    return {word.strip(): key.strip() for key, words in pairs for word in words.split(",")}


_WEEKDAYS = _table(
    "0: mon, пон | 1: tue, вт | 2: wed, ср | 3: thu, чет | 4: fri, пят | 5: sat, суб | 6: sun, вос"
)
_EN_WD = "monday|tuesday|wednesday|thursday|friday|saturday|sunday"
_RU_WD = "понедельник|вторник|сред[ау]|четверг|пятниц[ау]|суббот[ау]|воскресенье"
_RU_WD_PL = "понедельникам|вторникам|средам|четвергам|пятницам|субботам|воскресеньям"
_MONTHS = _table(
    "1: january, jan, января | 2: february, feb, февраля | 3: march, mar, марта"
    " | 4: april, apr, апреля | 5: may, мая | 6: june, jun, июня | 7: july, jul, июля"
    " | 8: august, aug, августа | 9: september, sept, sep, сентября | 10: october, oct, октября"
    " | 11: november, nov, ноября | 12: december, dec, декабря"
)
_MONTH_RX = "|".join(sorted(_MONTHS, key=len, reverse=True))
_OFFSETS = _table(
    "-2: позавчера | -1: yesterday, вчера | 0: today, сегодня | 1: tomorrow, tmrw, завтра"
    " | 2: day after tomorrow, послезавтра"
)
_DAYPARTS = _table(
    "morning: morning, утром, утра | afternoon: afternoon, днём, днем, дня"
    " | evening: evening, вечером, вечера | night: ночью, ночи"
)
_DAYPART_HOURS = {"morning": 9, "afternoon": 13, "evening": 19, "tonight": 20, "night": 23}
_NAMED_HOURS = _table("12: noon, midday, полдень | 0: midnight, полночь")

# A connector word right before a matched phrase ("on 31.12", "в 9:30") is cut out with it.
_AT = "at в во к"
_ON = "on by в во на до к"
_PART_SUFFIX = r"(?:\s+(утра|дня|вечера|ночи)\b)?"
_PRIORITY_RX = re.compile(r"(?<!\S)!(\d{1,3})(?!\S)")
_TAG_RX = re.compile(r"(?<![\w#&])#(\w[\w-]*)")
_ASSIGNEE_RX = re.compile(r"(?<![\w@.])@([A-Za-z0-9_]{1,32})(?!\w)")
# Bidi overrides are dropped with the C0/C1 controls: they can make a title read backwards.
_CONTROL_RX = re.compile(r"[\x00-\x08\x0e-\x1f\x7f-\x84\x86-\x9f\u202a-\u202e\u2066-\u2069]")
_RESIDUE = " ,;:-–—"  # punctuation left dangling once a date phrase is cut out


def _first(m: re.Match[str]) -> str:
    return next(group for group in m.groups() if group is not None)


def _opt_int(text: str | None) -> int | None:
    return None if text is None else int(text)


def _weekday(word: str) -> int:
    return next(int(day) for stem, day in _WEEKDAYS.items() if word.startswith(stem))


def _repeat(w: _When, freq: Freq, weekday: int | None, day_of_month: int | None) -> None:
    w.claim("date")
    w.repeat = (freq, weekday, day_of_month)


def _on_monthly_day(m: re.Match[str], w: _When) -> None:
    day = int(_first(m))
    if not 1 <= day <= 31:
        raise QuickAddError("bad_date", f"no month has a day {day}", "every month on the 1st")
    _repeat(w, "monthly", None, day)


def _on_relative(m: re.Match[str], w: _When) -> None:
    """Minutes and hours are elapsed time; days and weeks move the date and keep its default."""
    count, unit = (m[1], m[2]) if m[2] is not None else (m[3], m[4])
    number = int(count) if count is not None and count.isdigit() else 1
    if unit.startswith(("d", "д", "w", "нед")):
        w.claim("date")
        w.offset = number * (7 if unit.startswith(("w", "нед")) else 1)
    else:
        _elapse(w, timedelta(minutes=number * (60 if unit.startswith(("h", "час")) else 1)))


def _elapse(w: _When, delta: timedelta) -> None:
    w.claim("date", "time", "daypart")
    w.delta = delta


def _set_date(w: _When, day: int, month: int, year: int | None) -> None:
    w.claim("date")
    w.ymd = (year + 2000 if year is not None and year < 100 else year, month, day)


def _on_iso_date(m: re.Match[str], w: _When) -> None:
    _set_date(w, int(m[3]), int(m[2]), int(m[1]))


def _on_dotted_date(m: re.Match[str], w: _When) -> None:
    _set_date(w, int(m[1]), int(m[2]), _opt_int(m[3]))


def _on_month_name_date(m: re.Match[str], w: _When) -> None:
    """Both orders: "31 december" / "31 декабря" (groups 1-3) and "dec 31st" (groups 4-6)."""
    if m[1] is not None:
        _set_date(w, int(m[1]), int(_MONTHS[m[2]]), _opt_int(m[3]))
    else:
        _set_date(w, int(m[5]), int(_MONTHS[m[4]]), _opt_int(m[6]))


def _on_slash_date(m: re.Match[str], w: _When) -> None:
    first, second = int(m[1]), int(m[2])
    day, month = (second, first) if second > 12 >= first else (first, second)
    raise QuickAddError(
        "ambiguous_date",
        f"{m[0].strip()} could be day/month or month/day",
        f"{day}.{month:02d} 18:00",
    )


def _on_day_word(m: re.Match[str], w: _When) -> None:
    w.claim("date")
    w.offset = int(_OFFSETS[" ".join(m[1].split())])


def _on_tonight(m: re.Match[str], w: _When) -> None:
    w.claim("date", "daypart")
    w.offset, w.daypart = 0, "tonight"


def _on_weekday(m: re.Match[str], w: _When) -> None:
    w.claim("date")
    w.weekday = _weekday(m[2])
    w.skip_today = (m[1] or "").startswith(("next", "следующ"))


def _set_clock(w: _When, hour: int, minute: int, part: str | None) -> None:
    if hour > 23 or minute > 59:
        raise QuickAddError("bad_date", f"{hour}:{minute:02d} is not a time of day", "18:00")
    w.claim("time")
    w.clock = (hour, minute)
    if part is not None:
        _set_daypart(w, part)


def _set_daypart(w: _When, word: str) -> None:
    w.claim("daypart")
    w.daypart = _DAYPARTS[word]


def _on_ampm(m: re.Match[str], w: _When) -> None:
    hour, minute = int(m[1]), int(m[2] or 0)
    if not 1 <= hour <= 12 or minute > 59:
        raise QuickAddError("bad_date", f"{m[0].strip()} is not a time of day", "9am")
    w.claim("time")
    w.clock = (hour % 12 + (12 if m[3] == "p" else 0), minute)
    w.fixed_clock = True


def _on_named_time(m: re.Match[str], w: _When) -> None:
    w.claim("time")
    w.clock, w.fixed_clock = (int(_NAMED_HOURS[m[1]]), 0), True


def _rule(pattern: str, handle: _Handler, lead: str = "") -> _Rule:
    return re.compile(pattern), handle, frozenset(lead.split())


# Order matters: recurrences before the weekdays they contain, elapsed time before bare
# numbers, dates before times, am/pm before bare hours. Patterns see the lowercased line (no
# IGNORECASE: it makes these alternations several times slower); each match is cut out.
_RULES = (
    _rule(
        rf"\bevery\s+({_EN_WD})s?\b|\bкажд\w*\s+({_RU_WD})\b|\bпо\s+({_RU_WD_PL})\b",
        lambda m, w: _repeat(w, "weekly", _weekday(_first(m)), None),
    ),
    _rule(
        r"\b(?:every\s+month|monthly)\s+(?:on\s+)?(?:the\s+)?(\d{1,2})(?:st|nd|rd|th)?\b"
        r"|\bon\s+the\s+(\d{1,2})(?:st|nd|rd|th)?\s+of\s+(?:every|each)\s+month\b"
        r"|\bevery\s+(\d{1,2})(?:st|nd|rd|th)\s+(?:day\s+)?of\s+(?:the\s+|each\s+)?month\b"
        r"|\bкаждое\s+(\d{1,2})(?:-?е)?\s+число\b|\bкаждый\s+месяц\s+(\d{1,2})(?:-?го)?\s+числа\b",
        _on_monthly_day,
    ),
    _rule(
        r"\b(?:every\s*day|daily|каждый\s+день|ежедневно)\b",
        lambda m, w: _repeat(w, "daily", None, None),
    ),
    _rule(
        r"\b(?:every\s+week|weekly|каждую\s+неделю|еженедельно)\b",
        lambda m, w: _repeat(w, "weekly", w.today.weekday(), None),
    ),
    _rule(
        r"\b(?:every\s+month|monthly|каждый\s+месяц|ежемесячно)\b",
        lambda m, w: _repeat(w, "monthly", None, w.today.day),
    ),
    _rule(
        r"\bin\s+(\d{1,4}|an?|one)\s+(min(?:ute)?s?|h(?:ou)?rs?|days?|weeks?)\b"
        r"|\bчерез\s+(?:(\d{1,4})\s+)?(мин(?:ут[уы]?)?|час(?:а|ов)?|д(?:ень|ня|ней)|недел[юиь])\b",
        _on_relative,
    ),
    _rule(
        r"\b(?:in\s+half\s+an\s+hour|через\s+полчаса)\b",
        lambda m, w: _elapse(w, timedelta(minutes=30)),
    ),
    _rule(r"(?<![\w-])(\d{4})-(\d{1,2})-(\d{1,2})(?![\w-])", _on_iso_date, _ON),
    _rule(r"(?<![\w.])(\d{1,2})\.(\d{1,2})(?:\.(\d{4}|\d{2}))?(?!\w|\.\d)", _on_dotted_date, _ON),
    _rule(r"(?<![\w/])(\d{1,2})/(\d{1,2})(?:/(\d{2,4}))?(?![\w/])", _on_slash_date, _ON),
    _rule(
        rf"\b(\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?({_MONTH_RX})\b\.?(?:\s+(\d{{4}})\b)?"
        rf"|\b({_MONTH_RX})\.?\s+(\d{{1,2}})(?:st|nd|rd|th)?\b(?:,?\s+(\d{{4}})\b)?",
        _on_month_name_date,
        _ON,
    ),
    _rule(
        r"\b(day\s+after\s+tomorrow|tomorrow|tmrw|today|yesterday"
        r"|послезавтра|позавчера|завтра|сегодня|вчера)\b",
        _on_day_word,
        "by до к на",
    ),
    _rule(r"\btonight\b", _on_tonight),
    _rule(rf"\b(?:(this|next|coming)\s+)?({_EN_WD})\b", _on_weekday, "on"),
    _rule(rf"\bво?\s+(?:(эт\w*|следующ\w*|ближайш\w*)\s+)?({_RU_WD})\b", _on_weekday),
    _rule(
        r"\b(?:in\s+the|this)\s+(morning|afternoon|evening)\b|\b(утром|днём|днем|вечером|ночью)\b",
        lambda m, w: _set_daypart(w, _first(m)),
    ),
    _rule(r"\b(noon|midday|midnight|полдень|полночь)\b", _on_named_time, _AT),
    _rule(r"(?<![\d:.])(\d{1,2})(?::(\d{2}))?\s*([ap])\.?m\b\.?", _on_ampm, _AT),
    _rule(
        rf"(?<![\d:.])(\d{{1,2}}):(\d{{2}})(?![\d:]){_PART_SUFFIX}",
        lambda m, w: _set_clock(w, int(m[1]), int(m[2]), m[3]),
        _AT,
    ),
    _rule(
        rf"\b(?:at|в|во|к)\s+(\d{{1,2}}){_PART_SUFFIX}(?![\w:]|\.\d)",
        lambda m, w: _set_clock(w, int(m[1]), 0, m[2]),
    ),
)


def parse_quick_add(
    text: str,
    *,
    now: datetime,
    tz: ZoneInfo,
    max_title: int = 256,
) -> ParsedTask:
    """Turn one quick-add line into a task draft, or refuse with a code the bot can explain."""
    _require_aware(now)
    if len(text) > _MAX_TEXT:
        raise QuickAddError("too_long", f"{len(text)} characters", _shorter(max_title))
    rest = _CONTROL_RX.sub("", text)
    if not rest.strip():
        raise QuickAddError("empty", "nothing to add", _EXAMPLE)
    rest, priority = _take_priority(rest)
    rest, tags = _take_tags(rest)
    rest, assignee = _take_assignee(rest)
    when = _When(today=now.astimezone(tz).date())
    low = _lower(rest)
    for pattern, handle, lead in _RULES:
        while (m := pattern.search(low)) is not None:
            handle(m, when)
            start, end = _lead_start(low, m.start(), lead), m.end()
            rest, low = _cut(rest, start, end), _cut(low, start, end)
    deadline, recurrence = _resolve(when, now, tz)
    title = " ".join(rest.split()).strip(_RESIDUE)
    if not title:
        raise QuickAddError("no_title", "the line has no title", _EXAMPLE)
    if len(title) > max_title:
        raise QuickAddError("too_long", f"title of {len(title)} characters", _shorter(max_title))
    return ParsedTask(title, tags, priority, deadline, assignee, recurrence)


def _shorter(max_title: int) -> str:
    return f"a title of at most {max_title} characters, e.g. {_EXAMPLE}"


def _require_aware(dt: datetime) -> None:
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError("datetime must be timezone-aware")


def _lower(text: str) -> str:
    """Lowercase without moving any character, so a match on it can be cut from the original."""
    low = text.lower()
    if len(low) == len(text):
        return low
    return "".join(char.lower()[0] for char in text)  # "İ" lowercases to two code points


def _lead_start(low: str, start: int, lead: frozenset[str]) -> int:
    """Where the cut begins: before a connector word ("on", "в") if one precedes the phrase."""
    head = low[:start].rstrip()
    if not lead or not head or len(head) == start:
        return start
    word = head.rsplit(None, 1)[-1]
    return len(head) - len(word) if word in lead else start


def _cut(text: str, start: int, end: int) -> str:
    return f"{text[:start]} {text[end:]}"


def _take_priority(text: str) -> tuple[str, int | None]:
    found = {int(value) for value in _PRIORITY_RX.findall(text)}
    if not found:
        return text, None
    if len(found) > 1 or not 1 <= (priority := found.pop()) <= 5:
        raise QuickAddError("bad_priority", "priority is one of !1 (highest) to !5", "!1")
    return _PRIORITY_RX.sub(" ", text), priority


def _take_tags(text: str) -> tuple[str, tuple[str, ...]]:
    tags = tuple(dict.fromkeys(tag.lower() for tag in _TAG_RX.findall(text)))
    return _TAG_RX.sub(" ", text), tags


def _take_assignee(text: str) -> tuple[str, str | None]:
    """Take the first @mention as the assignee; later ones stay in the title as written."""
    m = _ASSIGNEE_RX.search(text)
    if m is None:
        return text, None
    return _cut(text, m.start(), m.end()), m[1].lower()


def _resolve(w: _When, now: datetime, tz: ZoneInfo) -> tuple[datetime | None, Recurrence | None]:
    clock = _clock(w)
    if w.repeat is not None:
        freq, weekday, day_of_month = w.repeat
        hour, minute = clock or DEFAULT_TIME
        recurrence = Recurrence(freq, hour, minute, weekday, day_of_month)
        return recurrence.next_after(now, tz), recurrence
    if w.delta is not None:
        # Add in UTC: adding to a zoneinfo datetime is wall-clock arithmetic, and "in 24 hours"
        # across a DST switch would land an hour off.
        return _ahead(now.astimezone(UTC) + w.delta, now, tz), None
    day = _day(w, clock, now, tz)
    if day is None:
        return None, None
    default = END_OF_DAY if day == w.today else DEFAULT_TIME
    return _ahead(_wall(day, clock or default, tz), now, tz), None


def _clock(w: _When) -> tuple[int, int] | None:
    """The requested local time, with a daypart ("вечером в 8") moving a bare hour to 20:00."""
    if w.clock is None:
        return None if w.daypart is None else (_DAYPART_HOURS[w.daypart], 0)
    hour, minute = w.clock
    if w.daypart in ("afternoon", "evening", "tonight") and not w.fixed_clock and hour < 12:
        hour += 12
    elif w.daypart == "night" and not w.fixed_clock:
        hour = 0 if hour == 12 else hour + 12 if 6 <= hour < 12 else hour
    return hour, minute


def _day(w: _When, clock: tuple[int, int] | None, now: datetime, tz: ZoneInfo) -> date | None:
    if w.offset is not None:
        return w.today + timedelta(days=w.offset)
    if w.ymd is not None:
        return _calendar_day(w.ymd, w.today)
    if w.weekday is not None:
        day = w.today + timedelta(days=(w.weekday - w.today.weekday()) % 7)
        if day == w.today and (w.skip_today or clock is None or _wall(day, clock, tz) <= now):
            day += timedelta(days=7)
        return day
    if clock is not None:
        ahead = _wall(w.today, clock, tz) > now
        return w.today if ahead else w.today + timedelta(days=1)
    return None


def _calendar_day(ymd: tuple[int | None, int, int], today: date) -> date:
    year, month, day = ymd
    try:
        if year is not None:
            return date(year, month, day)
        this_year = date(today.year, month, day)
        return this_year if this_year >= today else date(today.year + 1, month, day)
    except ValueError as exc:
        raise QuickAddError(
            "bad_date", f"{day:02d}.{month:02d} is not a date", "31.12 18:00"
        ) from exc


def _ahead(at: datetime, now: datetime, tz: ZoneInfo) -> datetime:
    if at <= now:
        example = f"tomorrow {at.astimezone(tz):%H:%M}"
        raise QuickAddError("date_in_past", "that moment has already passed", example)
    return at


def _wall(day: date, clock: tuple[int, int], tz: ZoneInfo) -> datetime:
    """The UTC instant of a local wall-clock time; zoneinfo applies DST for that very day."""
    return datetime(day.year, day.month, day.day, *clock, tzinfo=tz).astimezone(UTC)
