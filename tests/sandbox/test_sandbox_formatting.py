"""Unit checks of the emulator's parse modes and keyboard URL rules (no HTTP)."""

from __future__ import annotations

import pytest

from bot.sandbox.errors import ApiError
from bot.sandbox.formatting import parse_text
from bot.sandbox.markup import is_valid_button_url, parse_reply_markup


@pytest.mark.parametrize(
    ("raw", "mode", "text", "types"),
    [
        ("<b>Hi</b> &amp; <i>you</i>", "HTML", "Hi & you", ["bold", "italic"]),
        ('<a href="https://x.org/?a=1&amp;b=2">site</a>', "HTML", "site", ["text_link"]),
        ('<span class="tg-spoiler">s</span><tg-spoiler>t</tg-spoiler>', "HTML", "st", ["spoiler", "spoiler"]),
        ('<pre><code class="language-py">x = 1</code></pre>', "HTML", "x = 1", ["pre"]),
        ("&#128512; &#x41; &lt;3 &quot;q&quot;", "HTML", '😀 A <3 "q"', []),
        ("  \n<b>trimmed</b>\n ", "HTML", "trimmed", ["bold"]),
        ("*bold* _it_ __u__ ~s~ ||sp|| `c` 1\\.5\\!", "MarkdownV2", "bold it u s sp c 1.5!", None),
        ("[site](https://x.org/a\\)b)", "MarkdownV2", "site", ["text_link"]),
        ("```python\nprint(1)\n```", "MarkdownV2", "print(1)", ["pre"]),
        ("*bold* _it_ `code`", "Markdown", "bold it code", ["bold", "italic", "code"]),
        ("plain <b> & *", None, "plain <b> & *", []),
    ],
)
def test_valid_markup(raw, mode, text, types):
    parsed = parse_text(raw, mode)
    assert parsed.text == text
    if types is not None:
        assert [entity["type"] for entity in parsed.entities] == types


def test_entity_offsets_are_utf16():
    parsed = parse_text("😀 <b>x</b>", "HTML")
    assert parsed.entities == [{"type": "bold", "offset": 3, "length": 1}]


@pytest.mark.parametrize(
    ("raw", "mode", "detail"),
    [
        ("a < b", "HTML", 'Unsupported start tag "" at byte offset 2'),
        ("<br>", "HTML", 'Unsupported start tag "br" at byte offset 0'),
        ("<b>x", "HTML", 'Can\'t find end tag corresponding to start tag "b"'),
        ("<b><i>x</b></i>", "HTML", 'Unmatched end tag at byte offset 7, expected "</i>", found "</b>"'),
        ("x</b>", "HTML", "Unexpected end tag at byte offset 1"),
        ('<span class="x">s</span>', "HTML", 'Tag "span" must have class "tg-spoiler" at byte offset 0'),
        ("R&D", "HTML", "Character '&' at byte offset 1"),
        ("<b", "HTML", "Unclosed start tag at byte offset 0"),
        ("1.5", "MarkdownV2", "Character '.' is reserved"),
        ("a-b", "MarkdownV2", "Character '-' is reserved"),
        ("*bold", "MarkdownV2", "Can't find end of Bold entity at byte offset 0"),
        ("_x", "Markdown", "Can't find end of the entity starting at byte offset 0"),
    ],
)
def test_invalid_markup(raw, mode, detail):
    with pytest.raises(ApiError) as caught:
        parse_text(raw, mode)
    assert caught.value.code == 400
    assert caught.value.description.startswith("Bad Request: can't parse entities: ")
    assert detail in caught.value.description


def test_unknown_parse_mode():
    with pytest.raises(ApiError, match="unsupported parse_mode"):
        parse_text("x", "BBCode")


@pytest.mark.parametrize(
    ("url", "valid"),
    [
        ("https://example.com/path?q=1", True),
        ("t.me/community_test_bot?start=ref", True),
        ("tg://resolve?domain=community_test_bot", True),
        ("https://пример.рф", True),
        ("http://localhost:8080", False),
        ("https://127.0.0.1/x", False),
        ("ftp://example.com", False),
        ("https://exa mple.com", False),
        ("", False),
    ],
)
def test_button_urls(url, valid):
    assert is_valid_button_url(url) is valid


def test_empty_inline_keyboard_means_no_markup():
    assert parse_reply_markup({"inline_keyboard": [[]]}) is None
    with pytest.raises(ApiError, match="can't parse inline keyboard markup"):
        parse_reply_markup({"keyboard": [["a"]]}, inline_only=True)
