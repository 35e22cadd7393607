"""Telegram's parse modes: HTML, MarkdownV2 and legacy Markdown.

The parsers follow the rules (and error wording) of TDLib, which the real Bot
API server uses, so markup that Telegram rejects is rejected here too. They
return the *visible* text plus Bot API entities; length limits are applied to
the visible text, like Telegram does. One deliberate strictness: a bare `&`
that does not start an HTML entity is an error (the Bot API documentation
requires escaping it, and other implementations enforce that).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .errors import ApiError, bad_request

HTML_TAGS = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
    "a": "text_link",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}
HTML_NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
MARKDOWN_V2_RESERVED = frozenset("_*[]()~`>#+-=|{}.!")
TDLIB_TYPE_NAMES = {
    "bold": "Bold",
    "italic": "Italic",
    "underline": "Underline",
    "strikethrough": "Strikethrough",
    "spoiler": "Spoiler",
    "code": "Code",
    "pre": "Pre",
    "text_link": "TextUrl",
    "custom_emoji": "CustomEmoji",
}


@dataclass(frozen=True)
class FormattedText:
    text: str
    entities: list[dict[str, Any]]


def utf16_len(text: str) -> int:
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


def parse_error(detail: str) -> ApiError:
    return bad_request(f"can't parse entities: {detail}")


def byte_offset(text: str, index: int) -> int:
    return len(text[:index].encode("utf-8"))


@dataclass
class _Builder:
    """Accumulates visible text, tracking the UTF-16 offset entities use."""

    parts: list[str] = field(default_factory=list)
    offset: int = 0
    entities: list[dict[str, Any]] = field(default_factory=list)

    def add(self, text: str) -> None:
        self.parts.append(text)
        self.offset += utf16_len(text)

    def entity(self, kind: str, start: int, **extra: Any) -> None:
        if self.offset > start:
            self.entities.append({"type": kind, "offset": start, "length": self.offset - start, **extra})

    def result(self) -> FormattedText:
        self.entities.sort(key=lambda e: (e["offset"], -e["length"]))
        return FormattedText("".join(self.parts), self.entities)


def parse_text(raw: str, parse_mode: str | None) -> FormattedText:
    """Parse `raw` per `parse_mode`, then trim surrounding whitespace as Telegram does."""
    mode = (parse_mode or "").lower()
    if mode == "html":
        parsed = _parse_html(raw)
    elif mode == "markdownv2":
        parsed = _parse_markdown_v2(raw)
    elif mode == "markdown":
        parsed = _parse_markdown(raw)
    elif mode:
        raise bad_request("unsupported parse_mode")
    else:
        parsed = FormattedText(raw, [])
    return _trim(parsed)


def _trim(parsed: FormattedText) -> FormattedText:
    text = parsed.text.strip()
    if text == parsed.text:
        return parsed
    shift = utf16_len(parsed.text[: len(parsed.text) - len(parsed.text.lstrip())])
    end = utf16_len(text)
    entities = []
    for entity in parsed.entities:
        start = max(entity["offset"] - shift, 0)
        stop = min(entity["offset"] + entity["length"] - shift, end)
        if stop > start:
            entities.append({**entity, "offset": start, "length": stop - start})
    return FormattedText(text, entities)


def _decode_html_entity(raw: str, i: int) -> tuple[str, int] | None:
    """Decode the entity starting at raw[i] == '&'; return (char, next index)."""
    j = i + 1
    if raw.startswith("#", j):
        j += 1
        hexadecimal = raw[j : j + 1] in ("x", "X")
        j += hexadecimal
        digits = "0123456789abcdefABCDEF" if hexadecimal else "0123456789"
        start = j
        while j < len(raw) and raw[j] in digits:
            j += 1
        if j == start:
            return None
        code = int(raw[start:j], 16 if hexadecimal else 10)
        if code == 0 or code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
            return None
        char = chr(code)
    else:
        start = j
        while j < len(raw) and raw[j].isascii() and raw[j].isalpha():
            j += 1
        char = HTML_NAMED_ENTITIES.get(raw[start:j])
        if char is None:
            return None
    if raw.startswith(";", j):
        j += 1
    return char, j


def _html_amp(raw: str, i: int) -> tuple[str, int]:
    decoded = _decode_html_entity(raw, i)
    if decoded is None:
        raise parse_error(
            f"Character '&' at byte offset {byte_offset(raw, i)} does not start an HTML entity; escape it as &amp;"
        )
    return decoded


@dataclass
class _OpenTag:
    name: str
    start: int
    attributes: dict[str, str]
    language: str | None = None


def _parse_html_tag(raw: str, i: int) -> tuple[str, dict[str, str], int]:
    """Parse a start tag at raw[i] == '<'; return (name, attributes, index after '>')."""
    n = len(raw)

    def where() -> str:
        return f"at byte offset {byte_offset(raw, i)}"

    j = i + 1
    while j < n and not raw[j].isspace() and raw[j] != ">":
        j += 1
    if j >= n:
        raise parse_error(f"Unclosed start tag {where()}")
    name = raw[i + 1 : j].lower()
    if name not in HTML_TAGS:
        raise parse_error(f'Unsupported start tag "{name}" {where()}')
    attributes: dict[str, str] = {}
    while True:
        while j < n and raw[j].isspace():
            j += 1
        if j >= n:
            raise parse_error(f"Unclosed start tag {where()}")
        if raw[j] == ">":
            return name, attributes, j + 1
        attr_start = j
        while j < n and not raw[j].isspace() and raw[j] not in "=>":
            j += 1
        attribute = raw[attr_start:j].lower()
        if not attribute:
            raise parse_error(f'Empty attribute name in the tag "{name}" {where()}')
        while j < n and raw[j].isspace():
            j += 1
        if j >= n:
            raise parse_error(f"Unclosed start tag {where()}")
        if raw[j] != "=":
            attributes[attribute] = ""
            continue
        j += 1
        while j < n and raw[j].isspace():
            j += 1
        if j >= n:
            raise parse_error(f'Unclosed start tag "{name}" {where()}')
        if raw[j] in "\"'":
            quote = raw[j]
            j += 1
            value: list[str] = []
            while j < n and raw[j] != quote:
                if raw[j] == "&":
                    char, j = _html_amp(raw, j)
                    value.append(char)
                else:
                    value.append(raw[j])
                    j += 1
            if j >= n:
                raise parse_error(f"Unclosed start tag {where()}")
            j += 1
            attributes[attribute] = "".join(value)
        else:
            token_start = j
            while j < n and (raw[j].isalnum() or raw[j] in ".-"):
                j += 1
            if j < n and not raw[j].isspace() and raw[j] != ">":
                raise parse_error(f"Unexpected end of name token at byte offset {byte_offset(raw, token_start)}")
            attributes[attribute] = raw[token_start:j].lower()


def _close_html_tag(out: _Builder, tag: _OpenTag, stack: list[_OpenTag]) -> None:
    kind = HTML_TAGS[tag.name]
    if kind == "text_link":
        if tag.attributes.get("href"):
            out.entity("text_link", tag.start, url=tag.attributes["href"])
    elif (
        kind == "code" and tag.attributes.get("class", "").startswith("language-") and stack and stack[-1].name == "pre"
    ):
        stack[-1].language = tag.attributes["class"][len("language-") :]
    elif kind == "pre":
        out.entity("pre", tag.start, **({"language": tag.language} if tag.language else {}))
    elif kind == "blockquote":
        out.entity("expandable_blockquote" if "expandable" in tag.attributes else "blockquote", tag.start)
    elif kind == "custom_emoji":
        out.entity("custom_emoji", tag.start, custom_emoji_id=tag.attributes["emoji-id"])
    else:
        out.entity(kind, tag.start)


def _parse_html(raw: str) -> FormattedText:
    out = _Builder()
    stack: list[_OpenTag] = []
    n = len(raw)
    i = 0
    while i < n:
        char = raw[i]
        if char == "&":
            decoded, i = _html_amp(raw, i)
            out.add(decoded)
            continue
        if char != "<":
            out.add(char)
            i += 1
            continue
        if raw.startswith("</", i):
            where = f"at byte offset {byte_offset(raw, i)}"
            if not stack:
                raise parse_error(f"Unexpected end tag {where}")
            j = i + 2
            while j < n and raw[j] != ">" and not raw[j].isspace():
                j += 1
            name = raw[i + 2 : j].lower()
            while j < n and raw[j].isspace():
                j += 1
            if j >= n or raw[j] != ">":
                raise parse_error(f"Unclosed end tag {where}")
            tag = stack.pop()
            if name and name != tag.name:
                raise parse_error(f'Unmatched end tag {where}, expected "</{tag.name}>", found "</{name}>"')
            _close_html_tag(out, tag, stack)
            i = j + 1
            continue
        tag_index = i
        name, attributes, i = _parse_html_tag(raw, i)
        if name == "span" and attributes.get("class") != "tg-spoiler":
            raise parse_error(f'Tag "span" must have class "tg-spoiler" at byte offset {byte_offset(raw, tag_index)}')
        if name == "tg-emoji" and not attributes.get("emoji-id", "").isdigit():
            raise parse_error("Invalid custom emoji identifier specified")
        stack.append(_OpenTag(name, out.offset, attributes))
    if stack:
        raise parse_error(f'Can\'t find end tag corresponding to start tag "{stack[-1].name}"')
    return out.result()


@dataclass
class _OpenMarkdown:
    kind: str
    start: int
    index: int
    language: str | None = None


def _markdown_v2_link_target(raw: str, i: int) -> tuple[str, int]:
    """Read `(url)` after a closing `]` at raw[i]; return (url, index after it)."""
    if not raw.startswith("(", i + 1):
        return "", i + 1
    j = i + 2
    url: list[str] = []
    while j < len(raw) and raw[j] != ")":
        if raw[j] == "\\" and j + 1 < len(raw) and 0 < ord(raw[j + 1]) <= 126:
            j += 1
        url.append(raw[j])
        j += 1
    if j >= len(raw):
        raise parse_error(f"Can't find end of a URL at byte offset {byte_offset(raw, i + 1)}")
    return "".join(url), j + 1


def _markdown_v2_closes(kind: str, raw: str, i: int) -> bool:
    char = raw[i]
    if kind == "bold":
        return char == "*"
    if kind == "italic":
        return char == "_" and (not raw.startswith("__", i) or raw.startswith("___", i))
    if kind == "underline":
        return raw.startswith("__", i)
    if kind == "strikethrough":
        return char == "~"
    if kind == "spoiler":
        return raw.startswith("||", i)
    return char == "]"  # text_link, custom_emoji


def _markdown_v2_open(raw: str, i: int) -> tuple[str, int, str | None]:
    """Start an entity at raw[i]; return (kind, index after the marker, pre language)."""
    char = raw[i]
    if char == "_":
        return ("underline", i + 2, None) if raw.startswith("__", i) else ("italic", i + 1, None)
    if char == "*":
        return "bold", i + 1, None
    if char == "~":
        return "strikethrough", i + 1, None
    if char == "|" and raw.startswith("||", i):
        return "spoiler", i + 2, None
    if char == "[":
        return "text_link", i + 1, None
    if char == "!" and raw.startswith("![", i):
        return "custom_emoji", i + 2, None
    if raw.startswith("```", i):
        j = i + 3
        newline = raw.find("\n", j)
        closing = raw.find("```", j)
        if newline != -1 and (closing == -1 or newline < closing):
            language = raw[j:newline]
            if language and not any(c.isspace() for c in language):
                return "pre", newline + 1, language
        return "pre", j, None
    if char == "`":
        return "code", i + 1, None
    raise parse_error(f"Character '{char}' is reserved and must be escaped with the preceding '\\'")


def _parse_markdown_v2(raw: str) -> FormattedText:
    out = _Builder()
    stack: list[_OpenMarkdown] = []
    quote_start: int | None = None
    n = len(raw)
    i = 0
    while i < n:
        char = raw[i]
        if char == "\\" and i + 1 < n and 0 < ord(raw[i + 1]) <= 126:
            out.add(raw[i + 1])
            i += 2
            continue
        top = stack[-1] if stack else None
        if top is not None and top.kind in ("code", "pre"):
            marker = "```" if top.kind == "pre" else "`"
            if raw.startswith(marker, i):
                stack.pop()
                out.entity(top.kind, top.start, **({"language": top.language} if top.language else {}))
                i += len(marker)
            else:
                out.add(char)
                i += 1
            continue
        if char == "\n" and quote_start is not None and not raw.startswith(">", i + 1):
            out.entity("blockquote", quote_start)
            quote_start = None
        if char == ">" and (i == 0 or raw[i - 1] == "\n") and not stack:
            if quote_start is None:
                quote_start = out.offset
            i += 1
            continue
        if char not in MARKDOWN_V2_RESERVED:
            out.add(char)
            i += 1
            continue
        if top is not None and _markdown_v2_closes(top.kind, raw, i):
            stack.pop()
            if top.kind in ("text_link", "custom_emoji"):
                target, i = _markdown_v2_link_target(raw, i)
                if top.kind == "custom_emoji":
                    emoji_id = target.removeprefix("tg://emoji?id=")
                    if not emoji_id.isdigit():
                        raise parse_error("Invalid custom emoji identifier specified")
                    out.entity("custom_emoji", top.start, custom_emoji_id=emoji_id)
                elif target:
                    out.entity("text_link", top.start, url=target)
                continue
            out.entity(top.kind, top.start)
            i += 2 if top.kind in ("underline", "spoiler") else 1
            continue
        kind, after, language = _markdown_v2_open(raw, i)
        stack.append(_OpenMarkdown(kind, out.offset, i, language))
        i = after
    if stack:
        top = stack[-1]
        raise parse_error(
            f"Can't find end of {TDLIB_TYPE_NAMES[top.kind]} entity at byte offset {byte_offset(raw, top.index)}"
        )
    if quote_start is not None:
        out.entity("blockquote", quote_start)
    return out.result()


def _parse_markdown(raw: str) -> FormattedText:
    """Legacy Markdown: *bold*, _italic_, `code`, ```pre```, [text](url); no nesting."""
    out = _Builder()
    n = len(raw)
    i = 0
    while i < n:
        char = raw[i]
        if char == "\\" and i + 1 < n and raw[i + 1] in "_*`[":
            out.add(raw[i + 1])
            i += 2
            continue
        if char not in "_*`[":
            out.add(char)
            i += 1
            continue
        begin = i
        is_pre = raw.startswith("```", i)
        end_marker = "```" if is_pre else ("]" if char == "[" else char)
        i += len(end_marker) if is_pre else 1
        language = None
        if is_pre:
            newline = raw.find("\n", i)
            closing = raw.find("```", i)
            if newline != -1 and (closing == -1 or newline < closing) and raw[i:newline].strip():
                language = raw[i:newline].strip()
                i = newline + 1
        end = raw.find(end_marker, i)
        if end == -1:
            raise parse_error(f"Can't find end of the entity starting at byte offset {byte_offset(raw, begin)}")
        start = out.offset
        out.add(raw[i:end])
        i = end + len(end_marker)
        if char == "[":
            if raw.startswith("(", i):
                close = raw.find(")", i)
                if close == -1:
                    raise parse_error(f"Can't find end of the entity starting at byte offset {byte_offset(raw, begin)}")
                out.entity("text_link", start, url=raw[i + 1 : close])
                i = close + 1
        elif is_pre:
            out.entity("pre", start, **({"language": language} if language else {}))
        else:
            out.entity({"*": "bold", "_": "italic", "`": "code"}[char], start)
    return out.result()
