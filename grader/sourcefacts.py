"""What the scoring process reads from the submission's source before any of it runs.

Parsed, never imported: evidence for parts that live in code the grader does not run
(codescan), and how the submission's own code takes the files the grader hands it
(handoff). Both are trusted facts, since the student's process never touches them.
"""
from __future__ import annotations

import dataclasses

from . import codescan, handoff
from .rubric import Rubric


def read(rubric: Rubric, staged) -> tuple[dict[str, list[dict]], dict[str, dict]]:
    """(code findings, handoffs), from one parse of the submission's .py files and notebook cells."""
    if not any(t.kind in HANDOFF_TASKS or t.kind in ("lr_decay", "weight_penalty") for t in rubric.tasks):
        return {}, {}
    code = codescan.sources(staged.root, staged.files)
    return code_findings(rubric, code), handoffs(rubric, code)


def code_findings(rubric: Rubric, code: list) -> dict[str, list[dict]]:
    """Evidence in the source for parts that live in code the grader does not run."""
    kinds = {t.kind for t in rubric.tasks}
    if not kinds & {"lr_decay", "weight_penalty"}:
        return {}
    return {"lr_decay": [dataclasses.asdict(f) for f in codescan.find_lr_decay(code)],
            "l1_penalty": [dataclasses.asdict(f) for f in codescan.find_l1_penalty(code)]}


HANDOFF_TASKS = {"kernel_visualization": {}, "text_generator": {"checkpoint_argument": True, "lengths": True}}


def handoffs(rubric: Rubric, code: list) -> dict[str, dict]:
    """For each task that hands student code a checkpoint: the layout the submission's own
    code reads or saves, how it calls the function, what sets its length (grader.handoff)."""
    tasks = [t for t in rubric.tasks if t.kind in HANDOFF_TASKS]
    if not tasks:
        return {}
    out = {}
    for task in tasks:
        try:
            found = handoff.read_handoff(code, task.params["function"], **HANDOFF_TASKS[task.kind])
        except (RecursionError, ValueError, TypeError, AttributeError):  # source no reading expects: the default
            found = handoff.Handoff(task.params["function"])
        out[task.id] = found.as_dict()
    return out
