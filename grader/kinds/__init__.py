"""Check kinds as units of code: one folder per kind, one registry.

A kind's folder holds everything about it: its rubric table (`spec`), its typed facts
(`facts`), what the worker hands over (`export`, and `probe` where export fails), what
the verifier measures (`measure`), the scoring side's plan (`run`) and its verdicts and
wording (`verdicts`). Its `__init__` describes it with a `Kind`, naming those parts by
"module:function", so that each process imports only its own side: the scorer never
imports torch, and the verifier never imports the checks.

The tables that predate this (grader.checks' registry, the worker's and the verifier's
handler tables, grader.replies.RESULTS, grader.checks.common.PRIMARY_KINDS, the
runner's probe keys) read the kinds from here; kinds not yet moved still sit in them.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from functools import cache


@dataclass(frozen=True)
class Kind:
    name: str  # its checks' kinds are "<name>.<check>", and its check ids "<symbol>.<check>"
    checks: tuple[str, ...]  # the checks a rubric may give points to
    verdicts: str  # module whose CHECKS maps each check to verdict(check, facts, rubric)
    primary: tuple[str, ...] = ()  # checks that say in full why a symbol is missing (the others refer to them)
    worker: dict[str, str] = field(default_factory=dict)  # worker op -> "module:function"
    verifier: dict[str, str] = field(default_factory=dict)  # verifier op -> "module:function"
    results: str = ""  # module whose RESULTS give grader.replies the shape of the worker's results
    run: str = ""  # module the runner asks for probe keys, requests and the verifier's measurement
    spec: str = ""  # module with the rubric table's fields (CHECK_KINDS, PARAMS) and the checks' names
    table: str = "task"  # the rubric table it is written in: [[task]] with kind = name, or its own
    # Set while its facts are still measured in the submission's process with no trusted path:
    # why, for the mark its verdicts carry (grader.checks.evaluate).
    unverified: str = ""


def _kinds() -> tuple[Kind, ...]:
    from .activation_function import KIND as activation_function
    from .activation_maps import KIND as activation_maps
    from .cell import KIND as cell
    from .kernel_visualization import KIND as kernel_visualization
    from .next_char_model import KIND as next_char_model
    from .sentiment_model import KIND as sentiment_model
    from .text_generator import KIND as text_generator
    from .weight_penalty import KIND as weight_penalty

    return (cell, activation_function, weight_penalty, text_generator, kernel_visualization, sentiment_model,
            next_char_model, activation_maps)


KINDS = {kind.name: kind for kind in _kinds()}


def resolve(ref: str):
    """"package.module:name" -> the object; "package.module" -> the module."""
    module, _, name = ref.partition(":")
    loaded = importlib.import_module(module)
    return getattr(loaded, name) if name else loaded


def of_check(check_kind: str) -> Kind | None:
    """The kind a check kind ("cell.memory") belongs to."""
    return KINDS.get(check_kind.split(".", 1)[0]) if "." in check_kind else None


@cache
def verdicts() -> dict:
    """Check kind -> verdict function, for every registered kind."""
    out = {}
    for kind in KINDS.values():
        for check, verdict in resolve(kind.verdicts).CHECKS.items():
            out[f"{kind.name}.{check}"] = verdict
    return out


def primary_checks() -> tuple[str, ...]:
    return tuple(f"{kind.name}.{check}" for kind in KINDS.values() for check in kind.primary)


def worker_handlers() -> dict:
    return {op: resolve(ref) for kind in KINDS.values() for op, ref in kind.worker.items()}


def verifier_handlers() -> dict:
    return {op: resolve(ref) for kind in KINDS.values() for op, ref in kind.verifier.items()}


@cache
def results() -> dict:
    """Worker op -> the shape of its result, for the ops the scorer reads outside the checks."""
    return {op: shape for kind in KINDS.values() if kind.results for op, shape in resolve(kind.results).RESULTS.items()}


def runner_for(check_kind: str):
    """The run module of the kind a check belongs to, or None for kinds not yet moved."""
    kind = of_check(check_kind)
    return resolve(kind.run) if kind is not None and kind.run else None


def task_kinds() -> dict[str, tuple]:
    """[[task]] kinds: name -> (the checks it may give points to, its parameters and their types)."""
    out = {}
    for kind in KINDS.values():
        if kind.table == "task" and kind.spec:
            spec = resolve(kind.spec)
            out[kind.name] = (spec.CHECK_KINDS, spec.PARAMS)
    return out


def check_name(task, check: str) -> str | None:
    """What a task's check is called in the report, from its kind's spec (None: not moved)."""
    kind = KINDS.get(task.kind)
    return resolve(kind.spec).check_name(task, check) if kind is not None and kind.spec else None


def runners() -> list:
    return [resolve(kind.run) for kind in KINDS.values() if kind.run]


def probe_ranks() -> dict[str, int]:
    """Probe op -> its place in the runner's order (cheap ones first)."""
    return {op: rank for run in runners() for op, rank in run.RANKS.items()}


def verified(check_kind: str) -> bool:
    """Whether the check's facts come from the verifier (then the runner starts it early)."""
    run = runner_for(check_kind)
    return bool(run is not None and run.VERIFIED)


def artefact_folders() -> list[str]:
    """The folders, under the worker's artefacts/, that kinds hand their artefacts over in."""
    return [run.ARTEFACT for run in runners() if getattr(run, "ARTEFACT", None)]
