"""What the sentiment and character models' checks know, as dataclasses decoded field by field
(grader.kinds.wire) from the verifier's reply, or the worker's where recording stopped."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class UnusedPart:
    """Parameter rows no input reaches the scores through (grader.worker.anatomy.unreachable_rows)."""

    name: str
    shape: list[int] = field(default_factory=list)
    whole: bool = False
    rows: list[list[int]] = field(default_factory=list)  # [first, last] runs, inclusive


@dataclass(frozen=True)
class SentimentFacts:
    error: dict | None = None  # where the measurement stopped: grader.worker.failures' form
    shape: list[int] | None = None  # of the scores for 4 padded reviews; absent: forward never returned
    finite: bool = False
    padding_invariant: bool | None = None  # None: not measured (an earlier stage stopped)
    reads_last_token: bool | None = None
    unreachable: list[UnusedPart] = field(default_factory=list)
    no_gradient: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class GenerationFacts:
    error: dict | None = None
    returns: str | None = None  # "pair" for (logits, state), else the type forward returned
    shape: list[int] | None = None
    finite: bool = False
    continues: bool | None = None  # the two halves with the state carried over equal the whole
    no_gradient: list[str] | None = None  # None: the backward pass never ran
    unreachable: list[UnusedPart] = field(default_factory=list)
