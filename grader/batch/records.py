"""What a class export holds, once read: who submitted what, and what could not be read.

Every input format (a Gradescope export, a Canvas download, a folder of submissions) is read
into these, and everything after (scheduling, the gradebook, the summary, the integrity
report) reads only these.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Person:
    id: str  # as the course knows them: Gradescope's SID, Canvas's user id, or the submission's own name
    name: str = ""
    email: str = ""


@dataclass
class Submission:
    key: str  # its folder under OUT: unique in the class, stable between runs, safe as a file name
    people: tuple[Person, ...]  # one student, or a group's members (who all get its grade)
    path: Path | None  # what `grade` is given (folder, zip, .py, .ipynb); None when nothing can be graded
    submitted_at: str = ""  # ISO 8601, when the export says
    late: bool = False
    source: str = ""  # where it came from in the export, for messages: "submission_123", "smithbob_1001_..."
    notes: list[str] = field(default_factory=list)  # what reading it noticed, for the summary
    problem: str = ""  # why it cannot be graded (unreadable archive, metadata with no folder), in words


@dataclass
class ClassExport:
    format: str  # "gradescope" | "canvas" | "folders"
    submissions: list[Submission]  # at most one per student: superseded ones are dropped, with a note
    problems: list[str] = field(default_factory=list)  # about the export as a whole, in words
    missing: list[Person] = field(default_factory=list)  # on the roster, with no submission
