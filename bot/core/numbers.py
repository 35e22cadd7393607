"""Whole numbers as people type them: the one rule for every number read from a message, a link
or a form.

The digits are 0-9. Full-width ０-９ are read as those same digits, because that is what a Chinese
or Japanese keyboard types. Nothing else is a digit: `str.isdigit()`, `int()` and a regex `\\d`
each accept their own, different sets of Unicode digits ("①" and "²" pass `isdigit()` and then
crash `int()`), so nothing that reads a person's number uses them; it asks here.
"""

from __future__ import annotations

import re

DIGITS = re.compile(r"[0-9]+")
_FULL_WIDTH = re.compile("[０-９]")
_FULL_WIDTH_OFFSET = ord("０") - ord("0")
# Far more digits than any number the bot accepts. A longer one reads as 10**MAX_DIGITS, which every
# range check refuses as too large; int() itself fails on digit strings past 4300 characters.
MAX_DIGITS = 30


def ascii_digits(text: str) -> str:
    """`text` with full-width digits written as ASCII ones; other characters as they were."""
    return _FULL_WIDTH.sub(lambda digit: chr(ord(digit[0]) - _FULL_WIDTH_OFFSET), text)


def is_digits(text: str) -> bool:
    return DIGITS.fullmatch(ascii_digits(text)) is not None


def whole_number(text: str) -> int | None:
    """`text` (digits only, nothing around them) as a number; None for anything else."""
    if not is_digits(text):
        return None
    significant = ascii_digits(text).lstrip("0")
    return int(significant or "0") if len(significant) <= MAX_DIGITS else 10**MAX_DIGITS
