"""Turn facts into verdicts. Each check kind is a function (check, facts, rubric) -> CheckResult."""
from __future__ import annotations

import traceback

from ..facts import Facts
from ..results import CheckResult, Status
from ..rubric import Check, Rubric
from . import activations, cells, functions, kernels, model, predictions, sequence, structure

_REGISTRY = {**model.CHECKS, **kernels.CHECKS, **cells.CHECKS, **sequence.CHECKS, **predictions.CHECKS, **structure.CHECKS, **functions.CHECKS, **activations.CHECKS}


def manual(check: Check) -> CheckResult:
    points = check.manual.points
    return CheckResult(check.check_id, check.name, check.part, check.number, 0.0, 0.0, Status.MANUAL,
                       message=f"Graded by course staff ({points:g} points), not by the autograder.",
                       visibility=check.visibility, tags=[f"part-{check.part}", "manual"],
                       details={"manual_points": points})


def evaluate(check: Check, facts: Facts, rubric: Rubric) -> CheckResult:
    if check.kind == "manual":
        return manual(check)
    try:
        return _REGISTRY[check.kind](check, facts, rubric)
    except Exception as exc:  # a grader bug costs this one check, and says so
        detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        return CheckResult(check.check_id, check.name, check.part, check.number, check.points, 0.0, Status.FAILED,
                           message=f"The grader could not evaluate this check (internal error: {detail}). "
                                   "Please tell the course staff.",
                           visibility=check.visibility, tags=[f"part-{check.part}", "grader-error"],
                           details={"grader_error": True})
