"""The scoring side of the character model: the sentiment model's plan, with its own ops."""
from __future__ import annotations

from ...facts import ProbeOutcome
from ..sentiment_model.run import EXPORTED, after, measure_calls, request, required_symbols  # noqa: F401

OP = "generation"
RANKS = {OP: 2}
VERIFIED = True
ARTEFACT = "generation"
EXPORT, VERIFY = "export_generation", "verify_generation"
RESULTS = {EXPORT: EXPORTED}


def probe_key(check) -> tuple:
    return (OP, check.task.id)


def inside_key(check) -> tuple:
    return probe_key(check)


def measure(runner, key: tuple, check, timeout: float) -> ProbeOutcome | None:
    return measure_calls(runner, check, timeout, EXPORT, VERIFY, ARTEFACT, inside_key(check))
