"""The one results model every output is rendered from (results.json, HTML, terminal).

A grader failure is an ordinary GradeReport with `grader_error` set, so every path
through the grader ends in the same renderers.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

VISIBILITIES = ("hidden", "after_due_date", "after_published", "visible")


class Status(str, enum.Enum):
    PASSED = "passed"
    FAILED = "failed"
    MANUAL = "manual"  # graded by course staff; carries no automatic points


@dataclass
class CheckResult:
    check_id: str  # stable across runs, e.g. "alexnet.architecture.nc4"
    name: str  # what a student reads, e.g. "AlexNet (7 classes): layers match the Part A table"
    part: str  # handout part, e.g. "A"
    number: str  # Gradescope's test number, e.g. "1.3"
    max_points: float
    points: float
    status: Status
    message: str = ""  # what was expected, what was found
    hint: str = ""  # what to look at
    visibility: str = "visible"
    tags: list[str] = field(default_factory=list)
    # Structured evidence for the renderers: {"table": TableDiff-as-dict} or {"images": [artifact keys]}.
    details: dict[str, Any] = field(default_factory=dict)
    seconds: float | None = None  # wall time of the sandbox work behind this check
    peak_mb: float | None = None  # worker peak RSS while doing it

    @property
    def passed(self) -> bool:
        return self.status is Status.PASSED


@dataclass
class Note:
    level: str  # "info" | "warning" | "error"
    text: str


@dataclass
class Artifact:
    """A file the report embeds (kernel images). Bytes never go into results.json."""

    media_type: str  # "image/png"
    data: bytes
    caption: str = ""


@dataclass
class GradeReport:
    assignment: str
    title: str
    submission: str  # display name of what was graded
    checks: list[CheckResult] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
    graded_files: list[str] = field(default_factory=list)
    student_output: str = ""  # what the submission printed, cut to a bounded size
    environment: dict[str, str] = field(default_factory=dict)
    artifacts: dict[str, Artifact] = field(default_factory=dict)
    self_check: bool = False
    seconds: float = 0.0
    grader_error: str | None = None  # set when the grader itself could not finish
    hidden_checks: int = 0  # checks left out of a self-check
    timings: dict[str, Any] = field(default_factory=dict)  # seconds and peak MB per sandbox probe

    @property
    def score(self) -> float:
        return round(sum(c.points for c in self.checks), 4)

    @property
    def max_score(self) -> float:
        return round(sum(c.max_points for c in self.checks), 4)

    @property
    def manual_points(self) -> float:
        """Points graded by people, listed in the report but not in the automatic total."""
        return sum(float(c.details.get("manual_points", 0)) for c in self.checks if c.status is Status.MANUAL)

    @property
    def check_errors(self) -> list[dict]:
        """Checks that raised while being evaluated, for the staff: which, how it was counted
        ("unreadable_reply": the submission's failure; "grader_error": ours) and the traceback
        (grader.checks.evaluate keeps it in details["staff_detail"], bounded)."""
        return [{"check_id": c.check_id, "counted_as": "unreadable_reply" if c.details.get("unreadable_reply")
                 else "grader_error", "detail": str(c.details["staff_detail"])}
                for c in self.checks if isinstance(c.details, dict) and c.details.get("staff_detail")]

    def note(self, level: str, text: str) -> None:
        self.notes.append(Note(level, text))
