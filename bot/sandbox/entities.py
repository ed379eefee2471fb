"""Turn Bot API HTML into plain text plus entities, failing where Telegram would.

Only the tags Telegram documents are accepted, they must nest and close properly, and a bare
`<` or `&` is an error. Offsets and lengths count UTF-16 code units, as the Bot API does.
"""

from __future__ import annotations

import html
import re
from typing import Any

_TOKEN = re.compile(
    r"<(?P<close>/?)(?P<tag>[a-zA-Z][a-zA-Z0-9-]*)(?P<attrs>[^<>]*)>"
    r"|&(?P<entity>#[0-9]+|#x[0-9a-fA-F]+|[a-zA-Z]+);"
    r"|(?P<bare>[<&])"
)
_ATTR = re.compile(r"""([a-zA-Z-]+)\s*=\s*(?:"([^"]*)"|'([^']*)'|(\S+))""")
_NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_TAG_TYPES = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "a": "text_link",
    "code": "code",
    "pre": "pre",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
    "blockquote": "blockquote",
}


class HtmlParseError(ValueError):
    """Raised with the wording Telegram puts after "can't parse entities: "."""


def utf16_len(text: str) -> int:
    """Measure text the way Bot API entity offsets do."""
    return len(text.encode("utf-16-le")) // 2


def parse_html(source: str) -> tuple[str, list[dict[str, Any]]]:
    """Return the text a user would see and the entities Telegram would attach to it."""
    parts: list[str] = []
    length = 0
    stack: list[tuple[str, int, dict[str, Any]]] = []
    entities: list[dict[str, Any]] = []
    position = 0
    for match in _TOKEN.finditer(source):
        plain = source[position : match.start()]
        parts.append(plain)
        length += utf16_len(plain)
        position = match.end()
        offset = _ByteOffset(source, match.start())
        if match["bare"]:
            raise HtmlParseError(_bare_error(match["bare"], offset))
        if match["entity"]:
            char = _decode_entity(match["entity"], offset)
            parts.append(char)
            length += utf16_len(char)
        elif match["close"]:
            tag = match["tag"].lower()
            if not stack or stack[-1][0] != tag:
                expected = stack[-1][0] if stack else ""
                raise HtmlParseError(
                    f'Unmatched end tag at byte offset {offset}, expected "</{expected}>", '
                    f'found "</{tag}>"'
                )
            _, start, entity = stack.pop()
            if length > start:
                entities.append({**entity, "offset": start, "length": length - start})
        else:
            tag = match["tag"].lower()
            entity = _open_tag(tag, match["attrs"], offset, stack)
            stack.append((tag, length, entity))
    parts.append(source[position:])
    if stack:
        raise HtmlParseError(f'Can\'t find end tag corresponding to start tag "{stack[-1][0]}"')
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return "".join(parts), entities


class _ByteOffset:
    """Defer counting UTF-8 bytes to the error path, keeping valid messages linear."""

    def __init__(self, source: str, index: int) -> None:
        self._source, self._index = source, index

    def __str__(self) -> str:
        return str(len(self._source[: self._index].encode()))


def _bare_error(char: str, offset: _ByteOffset) -> str:
    if char == "<":
        return f"Unsupported start tag at byte offset {offset}"
    return f"Can't find end of the entity starting at byte offset {offset}"


def _decode_entity(name: str, offset: _ByteOffset) -> str:
    if name.startswith("#"):
        return html.unescape(f"&{name};")
    if name.lower() not in _NAMED_ENTITIES:
        raise HtmlParseError(f'Unsupported HTML entity "&{name};" at byte offset {offset}')
    return _NAMED_ENTITIES[name.lower()]


def _open_tag(
    tag: str,
    raw_attrs: str,
    offset: _ByteOffset,
    stack: list[tuple[str, int, dict[str, Any]]],
) -> dict[str, Any]:
    if tag not in _TAG_TYPES:
        raise HtmlParseError(f'Unsupported start tag "{tag}" at byte offset {offset}')
    attrs = {m[1].lower(): m[2] or m[3] or m[4] or "" for m in _ATTR.finditer(raw_attrs)}
    entity: dict[str, Any] = {"type": _TAG_TYPES[tag]}
    if tag == "a":
        if not attrs.get("href"):
            raise HtmlParseError(f"Can't find href in <a> tag at byte offset {offset}")
        entity["url"] = html.unescape(attrs["href"])
    elif tag == "span" and attrs.get("class") != "tg-spoiler":
        raise HtmlParseError(f'Tag "span" must have class "tg-spoiler" at byte offset {offset}')
    elif tag == "blockquote" and "expandable" in raw_attrs:
        entity["type"] = "expandable_blockquote"
    elif tag == "code" and stack and stack[-1][0] == "pre" and "class" in attrs:
        language = attrs["class"].removeprefix("language-")
        stack[-1][2]["language"] = language
    return entity
