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
    module: str  # the first graded file, as the student knows it (a notebook's own name)
    load: dict | None = None  # what the loader reported: status, error, modules, symbols, notes
    load_problem: str | None = None  # the module could not be loaded at all, in words
    probes: dict[tuple, ProbeOutcome] = field(default_factory=dict)
    environment: dict = field(default_factory=dict)
    peak_tree_mb: float = 0.0
    load_seconds: float = 0.0
    load_peak_mb: float = 0.0
    images: dict[str, list[str]] = field(default_factory=dict)  # task id -> artifact keys, in call order
    rejected_images: dict[str, list[str]] = field(default_factory=dict)  # task id -> why files were not shown
    artifacts: dict[str, bytes] = field(default_factory=dict)  # artifact key -> PNG bytes, validated
    captions: dict[str, str] = field(default_factory=dict)  # artifact key -> what the image shows
    hazards: list[str] = field(default_factory=list)  # what the worker worked around, for the student
    source_findings: dict[str, list[dict] | None] = field(default_factory=dict)  # cell -> built-ins in its source

    def add_hazards(self, notes: list[str]) -> None:
        self.hazards += [n for n in notes if n not in self.hazards]

    predictions: dict[str, dict] = field(default_factory=dict)  # predictions item id -> what heldout.evaluate found
    labels_problems: dict[str, str] = field(default_factory=dict)  # predictions item id -> why it cannot be scored
    self_check: bool = False
    submitted_files: list[str] = field(default_factory=list)  # every staged file, relative
    code_findings: dict[str, list[dict]] = field(default_factory=dict)  # "lr_decay" | "l1_penalty" -> found in source
    picks: dict[str, dict] = field(default_factory=dict)  # rubric symbol -> {"name", "reason"}: the class graded for it
    displays: dict[str, str] = field(default_factory=dict)  # module path -> the name the student knows
    unresolved: dict[str, str] = field(default_factory=dict)  # symbol -> why no file was found for it
    handoffs: dict[str, dict] = field(default_factory=dict)  # task id -> grader.handoff.Handoff.as_dict(), from the source
    # (model symbol, variant suffix) -> why its facts were measured inside the submission's
    # process (export stopped); every other model was measured by grader.verifier.
    measured_inside: dict[tuple, str] = field(default_factory=dict)
    models_exported: int = 0  # models the verifier measured from an artefact
    verifier_peak_mb: float = 0.0  # the verifier's process tree, at its peak

    def symbol(self, name: str) -> dict:
        if not self.load:
            return {"kind": "unknown"}
        return self.load.get("symbols", {}).get(name, {"kind": "missing"})

    def module_of(self, name: str) -> dict:
        """The load result of the module a symbol comes from: status, error, name."""
        rel = self.symbol(name).get("module")
        return (self.load or {}).get("modules", {}).get(rel, {}) if rel else {}

    def file_of(self, name: str) -> str:
        rel = self.symbol(name).get("module")
        return self.displays.get(rel, rel) if rel else self.module
