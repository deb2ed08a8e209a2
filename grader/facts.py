"""What the sandboxed run established about a submission: plain data for the checks."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class ProbeOutcome:
    result: dict | None = None  # the probe's measurements
    error: dict | None = None  # an exception the probe could not attribute to a stage
    crash: str | None = None  # the worker stopped (timeout, memory, exit): in words
    crash_reason: str | None = None  # timeout | memory | died | protocol
    skipped: str | None = None  # not run, and why
    seconds: float = 0.0
    peak_mb: float = 0.0


@dataclass
class Facts:
    module: str  # the graded file, relative to the submission
    load: dict | None = None  # what the loader reported: status, error, symbols, notes
    load_problem: str | None = None  # the module could not be loaded at all, in words
    probes: dict[tuple, ProbeOutcome] = field(default_factory=dict)
    environment: dict = field(default_factory=dict)
    peak_tree_mb: float = 0.0
    load_seconds: float = 0.0
    load_peak_mb: float = 0.0
    images: dict[str, list[str]] = field(default_factory=dict)  # task id -> artifact keys, in call order
    rejected_images: dict[str, list[str]] = field(default_factory=dict)  # task id -> why files were not shown
    artifacts: dict[str, bytes] = field(default_factory=dict)  # artifact key -> PNG bytes, validated
    hazards: list[str] = field(default_factory=list)  # what the worker worked around, for the student

    def add_hazards(self, notes: list[str]) -> None:
        self.hazards += [n for n in notes if n not in self.hazards]

    def symbol(self, name: str) -> dict:
        if not self.load:
            return {"kind": "unknown"}
        return self.load.get("symbols", {}).get(name, {"kind": "missing"})
