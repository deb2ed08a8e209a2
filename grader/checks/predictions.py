"""Checks on a submitted predictions file: it reads, and how accurate it is."""
from __future__ import annotations

from ..facts import Facts
from ..predictions import points_for
from ..results import CheckResult, Status
from ..rubric import Check, Rubric
from .common import result


def _facts(check: Check, facts: Facts) -> dict:
    return facts.predictions.get(check.predictions.id) or {}


def _missing(check: Check, found: dict) -> CheckResult:
    spec = check.predictions
    others = [f for f in found.get("others", []) if f]
    seen = f" The submission has these CSV files: {', '.join(others)}." if others else ""
    if found.get("refused"):
        seen = " " + " ".join(found["refused"])
    return result(check, False, f"{spec.file} is not in the submission.{seen}",
                  f"Submit the predictions your notebook writes as {spec.file} (header Id,Label, one row per "
                  f"image), beside your notebooks.")


def format_check(check: Check, facts: Facts, rubric: Rubric) -> CheckResult:
    spec = check.predictions
    found = _facts(check, facts)
    if not found.get("file"):
        return _missing(check, found)
    if found.get("error"):
        ids = f" ({spec.ids.start}-{spec.ids.stop - 1:,})" if spec.ids else ""
        return result(check, False, found["error"],
                      f"Compare your file with the sample: the first line is Id,Label, then one line per image "
                      f"with its id{ids} and the predicted class index (0-{spec.num_classes - 1}).")
    rows = found.get("rows", 0)
    parts = [f"{found['file']} reads: {rows:,} rows, labels 0-{spec.num_classes - 1}."]
    parts += found.get("notes", [])
    histogram = found.get("histogram") or []
    if histogram and rows > 1 and max(histogram) == rows:
        parts.append(f"Every row predicts class {spec.class_name(histogram.index(rows))}: is the model trained, "
                     "and are the predictions taken with argmax over the class scores?")
    if facts.self_check:
        parts.append("Its accuracy is computed at grading time, against held-out labels that this self-check "
                     "does not have.")
    return result(check, True, " ".join(parts))


def accuracy_check(check: Check, facts: Facts, rubric: Rubric) -> CheckResult:
    spec = check.predictions
    found = _facts(check, facts)
    if not found.get("file"):
        return result(check, False, f"Not scored: {spec.file} is not in the submission.")
    if found.get("error"):
        return result(check, False, f"Not scored: {spec.file} cannot be read (see its format check).")
    problem = facts.labels_problems.get(spec.id)
    if problem or found.get("score") is None:
        res = result(check, False, f"Not scored: {problem or 'the held-out labels are not available'}. "
                                   "The course staff has been told; this is not a problem with your file.")
        res.tags.append("grader-error")
        res.details["grader_error"] = True
        return res
    sc = found["score"]
    accuracy = sc["accuracy"]
    points = points_for(accuracy, list(spec.thresholds))
    scale = ", ".join(f"{minimum:.0%} gives {pts:g}" for minimum, pts in spec.thresholds)
    message = (f"Accuracy on the {sc['total']:,} held-out images: {accuracy:.2%} ({sc['correct']:,} correct). "
               f"Points: {points:g} of {spec.points:g} (accuracy needed: {scale}).")
    hint = ""
    shift = found.get("shift")
    if shift:
        o = shift["offset"]
        hint = (f"Your labels match the true labels {shift['accuracy']:.0%} of the time once shifted by {abs(o)} "
                f"row{'s' if abs(o) > 1 else ''}: the label written for Id j is right for image j{-o:+d}. The "
                "predictions are out of step with the ids (an off-by-one where the file is written, or a test loader "
                "that skips or shuffles images). Keep the test loader unshuffled and write row i for image i.")
    elif points < spec.points:
        nxt = next(m for m, p in spec.thresholds if p > points)
        hint = f"The next step is {nxt:.0%} accuracy."
    details = {"predictions": {**sc, "thresholds": [list(t) for t in spec.thresholds], "file": found["file"]}}
    if spec.leaderboard:
        details["leaderboard"] = {"name": spec.leaderboard, "value": round(accuracy * 100, 2), "order": "desc"}
    return CheckResult(check.check_id, check.name, check.part, check.number, check.points, points,
                       Status.PASSED if points >= check.points else Status.FAILED, message=message, hint=hint,
                       visibility=check.visibility, tags=[f"part-{check.part}", "predictions"], details=details)


CHECKS = {"predictions.format": format_check, "predictions.accuracy": accuracy_check}
