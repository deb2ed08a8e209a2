"""The bounds staging keeps while it writes a submission out: files, entries and the bytes
really written (archive headers can lie), and a log of what was left out that a hostile
archive cannot flood."""
from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING

from grader import zipindex
from grader.errors import InputError
from grader.results import Note

if TYPE_CHECKING:
    from grader.intake import IntakeLimits

_MB = 1024 * 1024
_CHUNK = 64 * 1024
# Past this many per-entry warnings, the rest are summarised in one note.
_MAX_SKIP_NOTES = 10
# Names longer than this are shortened in notes: a report is no place for a 1,000-character path.
_MAX_SHOWN_NAME = 120


class SkipLog:
    """Collects what was left out, without letting a hostile archive flood the report."""

    def __init__(self) -> None:
        self.notes: list[Note] = []
        self.skipped = 0
        self.junk = 0

    def skip(self, name: str, reason: str) -> None:
        self.skipped += 1
        if self.skipped <= _MAX_SKIP_NOTES:
            self.notes.append(Note("warning", f"skipped {shown(name)}: {reason}"))

    def finish(self) -> list[Note]:
        notes = list(self.notes)
        if self.skipped > _MAX_SKIP_NOTES:
            notes.append(Note("warning", f"skipped {self.skipped - _MAX_SKIP_NOTES} more entries for the same kinds of reasons"))
        if self.junk:
            notes.append(Note("info", f"ignored {self.junk} system or cache file(s) "
                                      "(__MACOSX, .DS_Store, __pycache__, *.pyc, hidden files)"))
        return notes


class Budget:
    """Counts files and the bytes really written, so lying archive headers cannot pass the limits."""

    def __init__(self, limits: IntakeLimits, source: str, verb: str) -> None:
        self.limits = limits
        self.source = source
        self.subject = f"{source} {verb}"  # e.g. "hw4.zip expands to" / "the folder hw4 holds"
        self.files = 0
        self.entries = 0
        self.total = 0

    def count_entry(self) -> None:
        self.entries += 1
        if self.entries > self.limits.max_entries:
            raise InputError(f"{self.subject} more than {self.limits.max_entries:,} entries"
                             f"{zipindex.ENTRIES_TEXT}; submit only your code and results")

    def count_file(self) -> None:
        self.files += 1
        if self.files > self.limits.max_files:
            raise InputError(f"{self.subject} more than {self.limits.max_files} files; submit only your code and results")

    def check_filesize_text(self, name: str, size: int) -> None:
        if size > self.limits.max_file_bytes:
            where = "" if name == self.source else f" in {self.source}"
            raise InputError(f"{shown(name)}{where} is larger than {size_text(self.limits.max_file_bytes)}, "
                             "the limit for one file; leave datasets and checkpoints out")

    def count_bytes(self, name: str, file_bytes: int, added: int) -> None:
        self.check_filesize_text(name, file_bytes)
        self.total += added
        if self.total > self.limits.max_total_bytes:
            raise InputError(f"{self.subject} more than {size_text(self.limits.max_total_bytes)} in all; "
                             "leave datasets and checkpoints out")


def copy_stream(src, target: Path, name: str, budget: Budget) -> None:
    # O_EXCL and O_NOFOLLOW: never overwrite, and never write through a link.
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    written = 0
    with os.fdopen(fd, "wb") as out:
        while chunk := src.read(_CHUNK):
            written += len(chunk)
            budget.count_bytes(name, written, len(chunk))
            out.write(chunk)


def copy_regular_file(path: Path, target: Path, name: str, budget: Budget) -> None:
    # O_NONBLOCK so a file swapped for a FIFO cannot hang us; fstat proves what was opened.
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as src:
        if not stat.S_ISREG(os.fstat(src.fileno()).st_mode):
            raise InputError(f"{shown(name)} is not a regular file")
        budget.check_filesize_text(name, os.fstat(src.fileno()).st_size)
        copy_stream(src, target, name, budget)


def shown(name: str) -> str:
    # Names go into reports and terminals: escape anything that is not plainly printable.
    shown = name if name.isprintable() else ascii(name)
    if len(shown) > _MAX_SHOWN_NAME:
        half = _MAX_SHOWN_NAME // 2
        shown = f"{shown[:half]}...{shown[-half:]}"
    return shown


def size_text(n: int) -> str:
    for unit, scale in (("GB", 1024 * _MB), ("MB", _MB), ("KB", 1024)):
        if n >= scale and n % scale == 0:
            return f"{n // scale} {unit}"
    return f"{n} bytes"
