"""What the writer checks know: the worker's raw texts (WriterReply), and what the scorer counts in
them (TextFacts). Both are decoded by grader.kinds.wire, field by field."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field


@dataclass(frozen=True)
class RawRun:
    """One call of the writer, as the worker saw it."""

    purpose: str  # first, start (another start string), repeat (the first again), seed (another seed)
    start: str
    seed: int
    type: str  # the type of what the writer returned
    text: str | None = None
    seconds: float = 0.0


@dataclass(frozen=True)
class SkippedRun:
    purpose: str
    start: str
    seconds_per_text: float


@dataclass(frozen=True)
class WriterReply:
    runs: list[RawRun] = field(default_factory=list)
    crafted: bool | None = None  # whether the worker could set the output layer (only it can tell)
    expected_length: int | None = None
    lowered: list[str] = field(default_factory=list)  # the submission's lengths the grader lowered
    skipped_runs: list[SkippedRun] = field(default_factory=list)
    served: dict = field(default_factory=dict)
    error: dict | None = None


@dataclass
class TextRun:
    """One text, counted by the scorer."""

    purpose: str
    start: str
    type: str
    length: int = 0
    starts: bool = False
    head: str = ""
    counts: dict[str, int] = field(default_factory=dict)  # favoured character -> how often it was generated
    other_chars: int = 0
    sample_of_others: str = ""
    same_as_first: bool | None = None  # for the repeat and the other seed: the very text of the first run


@dataclass
class TextFacts:
    crafted: bool
    probabilities: dict[str, float]  # the distribution drawn for this grade
    runs: list[TextRun] = field(default_factory=list)
    expected_length: int | None = None
    lowered: list[str] = field(default_factory=list)
    skipped_runs: list[SkippedRun] = field(default_factory=list)
    served: dict = field(default_factory=dict)
    error: dict | None = None

    def as_wire(self) -> dict:
        return dataclasses.asdict(self)

    def of(self, *purposes: str) -> list[TextRun]:
        return [r for r in self.runs if r.purpose in purposes] if purposes else list(self.runs)
