"""Turn facts into verdicts. Each check kind is a function (check, facts, rubric) -> CheckResult.

When a check raises, who pays depends on what it read. Facts the worker reported may have
been forged or mangled by the submission (it runs in that process, can write to its reply
channel and replace its functions), so a check that read them and then raised fails as the
submission's failure, in words that say so, and never as a grader error a student could
provoke on purpose. A check that read only what the scoring process established itself
(predictions files, the source) and raised is a grader bug, reported as one. Either way
the traceback goes to the staff (details["staff_detail"], results.json extra_data).
"""
from __future__ import annotations

import traceback

from ..facts import Facts
from ..protocol import clip
from ..results import CheckResult, Status
from ..rubric import Check, Rubric
from .. import kinds
from . import functions, model, predictions, structure

# Kinds not yet moved to grader/kinds/<kind>/ keep their verdicts here; the moved ones come
# from the kinds' registry, looked up when a check is evaluated.
_REGISTRY = {**model.CHECKS, **predictions.CHECKS, **structure.CHECKS, **functions.CHECKS}

# Facts that come from the worker's replies (directly, or drawn from them as the images are).
WORKER_FACTS = frozenset({"load", "probes", "picks", "hazards", "images", "rejected_images", "artifacts", "captions",
                          "environment", "symbol", "module_of", "file_of"})
STAFF_DETAIL = 4_000  # characters of traceback kept for the staff
UNREADABLE = ("Not graded: the grading process sent a reply the grader could not read while checking {what}. This "
              "happens when the submission's code writes to the grader's channel or replaces the grader's "
              "functions. If your code does neither, tell the course staff: they have the details.")


class _Watched:
    """The facts, as a check sees them, noting whether it read any the worker reported."""

    def __init__(self, facts: Facts):
        object.__setattr__(self, "_facts", facts)
        object.__setattr__(self, "read_worker", False)

    def __getattr__(self, name: str):
        if name in WORKER_FACTS:
            object.__setattr__(self, "read_worker", True)
        return getattr(self._facts, name)

    def __setattr__(self, name: str, value) -> None:
        setattr(self._facts, name, value)


def manual(check: Check) -> CheckResult:
    points = check.manual.points
    return CheckResult(check.check_id, check.name, check.part, check.number, 0.0, 0.0, Status.MANUAL,
                       message=f"Graded by course staff ({points:g} points), not by the autograder.",
                       visibility=check.visibility, tags=[f"part-{check.part}", "manual"],
                       details={"manual_points": points})


def _subject(check: Check) -> str:
    """What the check is about, as the student names it: AlexNet, LSTMCell, analyze_model_kernels."""
    if check.model is not None:
        return check.model.symbol
    if check.cell is not None:
        return check.cell.symbol
    params = check.task.params if check.task is not None else {}
    return next((str(params[k]) for k in ("function", "symbol", "model") if k in params), f"'{check.name}'")


def _failed(check: Check, message: str, tag: str, details: dict) -> CheckResult:
    return CheckResult(check.check_id, check.name, check.part, check.number, check.points, 0.0, Status.FAILED,
                       message=message, visibility=check.visibility, tags=[f"part-{check.part}", tag], details=details)


def _mark_inside(check: Check, facts: Facts, result: CheckResult) -> CheckResult:
    """A model or cell the verifier could not measure was measured by the worker, in the process the
    submission controls. A failure stands; a pass is held for the course staff, with what
    was measured, since that process could have reported anything."""
    moved = kinds.runner_for(check.kind)
    key = (check.model.symbol, check.variant.suffix) if check.model is not None else \
        moved.inside_key(check) if moved is not None else None
    # ... or a verdict that rests on what only that process could tell says so itself
    why = (facts.measured_inside.get(key) if key else None) or result.details.get("measured_inside")
    if not why:
        return result
    result.details["measured_inside"] = why
    result.tags.append("measured-inside-submission")
    if result.passed:
        result.details["manual_points"] = result.max_points
        result.status, result.points = Status.MANUAL, 0.0
        result.message = (f"Held for the course staff ({result.max_points:g} points): as {why}, this check passed "
                          f"({result.message}), but the grader cannot confirm what that process reported.")
        result.hint = ("Change the code the message names, and the grader checks this itself: " + result.hint).strip()
    else:
        result.hint = f"{result.hint} (Measured inside the submission's process: {why}.)".strip()
    return result


def evaluate(check: Check, facts: Facts, rubric: Rubric) -> CheckResult:
    if check.kind == "manual":
        return manual(check)
    watched = _Watched(facts)
    try:
        verdict = _REGISTRY.get(check.kind) or kinds.verdicts()[check.kind]
        return _mark_inside(check, facts, verdict(check, watched, rubric))
    except Exception as exc:  # costs this one check; the traceback is kept for the staff
        staff = clip("".join(traceback.format_exception(type(exc), exc, exc.__traceback__, limit=-12)),
                     STAFF_DETAIL, tail=True)
        if watched.read_worker:
            # The exception's text may carry the forged data: the student sees none of it.
            return _failed(check, UNREADABLE.format(what=_subject(check)), "unreadable-reply",
                           {"unreadable_reply": True, "staff_detail": staff})
        detail = clip("".join(traceback.format_exception_only(type(exc), exc)).strip(), 300)
        return _failed(check, f"The grader could not evaluate this check (internal error: {detail}). "
                              "Please tell the course staff.", "grader-error",
                       {"grader_error": True, "staff_detail": staff})
