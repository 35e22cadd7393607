"""A human-readable log of what happened in the simulated chats.

Tests assert on the model; people read the transcript. It records user and
bot messages (with their inline buttons), edits, deletions, button presses,
callback answers and membership/payment notices, and renders them as:

    [Green Valley Group] Alice: /checkin
    [Green Valley Group] bot: Alice checked in — day 3 streak
                           [ Buy ] [ Share ↗ ]
    [private Alice] Alice pressed [ Buy ]
    [private Alice] bot (toast): Added
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TextIO


@dataclass(frozen=True)
class TranscriptEvent:
    kind: str  # message | edit | delete | press | answer | notice
    chat: str
    actor: str
    text: str
    buttons: list[list[str]] = field(default_factory=list)

    def render(self) -> str:
        prefix = f"[{self.chat}] "
        if self.kind == "notice":
            head = f"{prefix}· "
        elif self.kind == "press":
            head = f"{prefix}{self.actor} pressed "
        elif self.kind == "edit":
            head = f"{prefix}{self.actor} (edited): "
        elif self.kind == "delete":
            head = f"{prefix}{self.actor} deleted: "
        else:
            head = f"{prefix}{self.actor}: "
        lines = self.text.split("\n")
        out = [head + lines[0], *(" " * len(head) + line for line in lines[1:])]
        indent = " " * (len(prefix) + 2)
        out.extend(indent + " ".join(row) for row in self.buttons)
        return "\n".join(out)


class Transcript:
    def __init__(self, enabled: bool = True):
        self.enabled = enabled
        self.events: list[TranscriptEvent] = []

    def add(self, kind: str, chat: str, actor: str, text: str, buttons: list[list[str]] | None = None) -> None:
        if self.enabled:
            self.events.append(TranscriptEvent(kind, chat, actor, text, buttons or []))

    def __len__(self) -> int:
        return len(self.events)

    def __iter__(self) -> Iterator[TranscriptEvent]:
        return iter(self.events)

    def __getitem__(self, index: int) -> TranscriptEvent:
        return self.events[index]

    def render(self, since: int = 0) -> str:
        """Everything from event index `since` (e.g. a saved `len(transcript)`)."""
        return "\n".join(event.render() for event in self.events[since:])

    def print(self, since: int = 0, file: TextIO | None = None) -> None:
        print(self.render(since), file=file or sys.stdout)
