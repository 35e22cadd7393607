"""The activity tracker's sightings on local disk until a flush has written them to the database.

A group message's whole effect is a member's activity, which the tracker keeps in memory for up to
`ACTIVITY_FLUSH_SECONDS` after the update was acknowledged to Telegram: a killed process would lose
it for good. So every sighting is appended to a journal file first, with one `os.write` per batch
on an O_APPEND descriptor. No fsync: the page cache outlives a killed process (SIGKILL, out of
memory); only a crash of the machine loses what the disk had not yet got.

Layout, one directory per database (bot/core/config.py `journal_dir`):

    <root>/<owner>/lock           held (flock) while the owner process lives; the kernel lets go
                                  when it dies, however it dies
    <root>/<owner>/00000001.seg   JSON lines: a list of sightings, or {"erased": user id}
    <root>/<owner>/00000002.<dead owner>/   a dead process's directory, taken over whole

A flush seals the segment being written (`seal`) as it takes the tracker's buffer, and removes the
sealed entries once its transaction committed (`remove`); a failed flush leaves them for the next.
A process that starts, or looks again every few seconds, takes over every directory whose lock is
free by renaming it into its own (`adopt_dead`): of processes racing for one, one rename succeeds.
The flock says exactly whether the owner lives, on this host, with or without Redis, and a live
but slow process is never taken for dead.

An erasure (/forgetme) is written as a line too: replay drops the user's sightings that came
before it in the same directory, so what was erased stays erased after a crash.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

log = logging.getLogger(__name__)

LOCK = "lock"
SEGMENT = ".seg"
# Sightings carry the user's id at this index (bot/services/activity.py writes them).
USER_ID = 2

_encode = json.JSONEncoder(separators=(",", ":")).encode


class ActivityJournal:
    """This process's journal directory under `root`, named `owner`; opened at the first use."""

    def __init__(self, root: Path, owner: str) -> None:
        self.root, self.owner = Path(root), owner
        self.path = self.root / owner
        self._lock: int | None = None
        self._fd: int | None = None  # the segment being written; a new one at the first write after a seal
        self._segment: Path | None = None
        self._seq = 0
        # Written or taken over, and not yet known to be in the database: oldest first.
        self._sealed: list[Path] = []
        self._failing = False

    def open(self) -> None:
        if self._lock is not None:
            return
        self.root.mkdir(parents=True, exist_ok=True)
        # Locked under a hidden name, then renamed: a sweep never sees this directory unlocked.
        staging = Path(tempfile.mkdtemp(prefix=f".{self.owner}.", dir=self.root))
        lock = os.open(staging / LOCK, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.rename(staging, self.path)
        except OSError:
            os.close(lock)
            _remove_tree(staging)
            raise
        self._lock = lock

    def write(self, rows: list[list]) -> None:
        """Sightings, in one write."""
        self._append((_encode(rows) + "\n").encode())

    def write_erasure(self, user_id: int) -> None:
        self._append((_encode({"erased": user_id}) + "\n").encode())

    def _append(self, data: bytes) -> None:
        try:
            if self._fd is None:
                self.open()
                self._seq += 1
                segment = self.path / f"{self._seq:08d}{SEGMENT}"
                self._fd = os.open(segment, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
                self._segment = segment
            view = memoryview(data)
            while view:
                view = view[os.write(self._fd, view):]
        except OSError as exc:
            # The sightings still count in memory; only a crash before the next flush would lose
            # them. A segment cut short ends here, so its torn line is its last.
            self._close_segment()
            if not self._failing:
                log.error("could not write the activity journal in %s (%s): activity is kept in memory only "
                          "until it can be written again", self.root, exc)
            self._failing = True
            return
        if self._failing:
            log.warning("the activity journal is written again")
            self._failing = False

    def _close_segment(self) -> None:
        if self._segment is None:
            return
        if self._fd is not None:
            os.close(self._fd)
        self._sealed.append(self._segment)
        self._fd = self._segment = None

    def seal(self) -> tuple[Path, ...]:
        """The tracker's buffer is being taken: everything journaled so far is in it. Returns what
        to `remove` once it is in the database; later writes go to a new segment."""
        self._close_segment()
        return tuple(self._sealed)

    def remove(self, sealed: Iterable[Path]) -> None:
        """What a committed flush held. Oldest first: a crash midway leaves only newer entries, so
        an erasure is never removed before the sightings it cancels."""
        for path in sealed:
            try:
                _remove_tree(path)
            except OSError as exc:
                log.warning("could not remove %s from the activity journal (%s): it is tried again after the "
                            "next flush, and counted twice if this process is killed before that", path, exc)
                continue
            self._sealed.remove(path)

    def adopt_dead(self) -> list[list]:
        """Take over every directory whose owner is dead; their sightings, erasures applied, in order.

        What is taken is sealed at once: the caller must put the sightings into the buffer before
        the next flush (nothing awaits in between)."""
        self.open()
        rows: list[list] = []
        for name in sorted(os.listdir(self.root)):
            if name.startswith(".") or name == self.owner:
                continue
            taken = self._take(name)
            if taken is not None:
                rows.extend(read_tree(taken))
        return rows

    def _take(self, name: str) -> Path | None:
        source = self.root / name
        try:
            lock = os.open(source / LOCK, os.O_RDWR)
        except (FileNotFoundError, NotADirectoryError):
            return None  # taken by another process meanwhile, or not a journal
        try:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return None  # its owner lives (or another process is taking it over right now)
            # Sealed first, so that an erasure written later comes after what is taken, as in memory.
            self._close_segment()
            self._seq += 1
            target = self.path / f"{self._seq:08d}.{name}"
            try:
                os.rename(source, target)
            except FileNotFoundError:
                return None
        finally:
            os.close(lock)
        self._sealed.append(target)
        log.warning("taking over the activity journal of %s, which stopped without flushing it", name)
        return target

    def close(self) -> None:
        """Let go, as the kernel does when the process dies; a journal with nothing left in it goes."""
        if self._lock is None:
            return
        self._close_segment()
        if not self._sealed:
            try:
                os.remove(self.path / LOCK)
                os.rmdir(self.path)
            except OSError as exc:
                log.warning("could not remove the empty activity journal %s: %s", self.path, exc)
        os.close(self._lock)
        self._lock = None


def read_tree(path: Path) -> list[list]:
    """The sightings a journal directory holds, oldest first, each erasure applied to those before it."""
    rows: list[list] = []
    for entry in sorted(path.iterdir(), key=lambda p: p.name):
        if entry.is_dir():
            # Taken over from a dead process: its erasures were its own, applied within it.
            rows.extend(read_tree(entry))
        elif entry.name.endswith(SEGMENT):
            for line in entry.read_bytes().splitlines():
                try:
                    item = json.loads(line)
                except ValueError:
                    log.warning("a line of %s is cut short (the process died writing it) and is skipped", entry)
                    continue
                if isinstance(item, list):
                    rows.extend(row for row in item if isinstance(row, list) and len(row) > USER_ID)
                elif isinstance(item, dict) and "erased" in item:
                    erased = item["erased"]
                    rows = [row for row in rows if row[USER_ID] != erased]
    return rows


def _remove_tree(path: Path) -> None:
    if path.is_dir():
        for entry in sorted(path.iterdir(), key=lambda p: p.name):
            _remove_tree(entry)
        path.rmdir()
    else:
        path.unlink(missing_ok=True)
