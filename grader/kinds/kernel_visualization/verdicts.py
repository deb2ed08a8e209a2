"""The kernel visualization's verdicts: every conv layer of the grader's checkpoint drawn, and saved.

The checkpoint is the student's own model, its first-layer kernels oriented stripes, so the
images in the report show whether the right weights were drawn.
"""
from __future__ import annotations

from ...checks.common import explain, result, unavailable
from ...facts import Facts
from ...handoff import given_text
from ...results import CheckResult
from ...rubric import Check, Rubric
from ..wire import decode
from .facts import KernelFacts


def _outcome(check: Check, facts: Facts):
    return facts.probes.get(("kernels", check.task.id))


def _facts(check: Check, facts: Facts) -> KernelFacts:
    return decode(KernelFacts, _outcome(check, facts).result)


def given(check: Check, facts: Facts) -> str:
    """Which checkpoint layout the function was handed, and why (read from its source)."""
    handoff = facts.handoffs.get(check.task.id) or {}
    text = given_text(handoff)
    outcome = _outcome(check, facts)
    served = decode(KernelFacts, outcome.result).served if outcome and outcome.result else {}
    loads = [str(p) for p in served.get("loads", []) if isinstance(p, str)]
    if len(loads) > 1:
        text += f" Each of its {len(loads)} torch.load calls got that checkpoint."
    adapted = served.get("adapted") or []
    if adapted:
        text += (f" Loaded into a model with other output sizes, {', '.join(map(str, adapted[:3]))} kept the "
                 "model's own values.")
    for note in handoff.get("notes", []):
        text += f" {note}"
    return text


def _prerequisite(check: Check, facts: Facts) -> CheckResult | None:
    task = check.task
    fn = task.params["function"]
    outcome = _outcome(check, facts)
    problem = unavailable(check, facts, fn, outcome)
    if problem:
        return problem
    error = _facts(check, facts).error or {}
    if error.get("stage") == "lookup":
        return result(check, False, f"Not graded: {error.get('message')}.",
                      f"Keep the starter's {task.params['helper']} and call it from {fn}.")
    if error.get("stage") == "construct":
        return result(check, False, "Not graded: the grader builds your "
                      f"{task.params['model']} to write the checkpoint {fn} reads, and that failed: "
                      + explain(error, task.params["model"]))
    return None


def calls(check: Check, facts: Facts, rubric: Rubric) -> CheckResult:
    task = check.task
    fn, helper = task.params["function"], task.params["helper"]
    problem = _prerequisite(check, facts)
    if problem:
        return problem
    res = _facts(check, facts)
    convs = len(res.conv_shapes)
    made = res.calls
    matched = sorted({c.matches for c in made if c.matches is not None})
    error_text = explain(res.error, f"{fn}()") + " " if res.error else ""
    if not made:
        return result(check, False, error_text + f"{fn}() never called {helper}. {given(check, facts)}",
                      f"Load the checkpoint named by FLAGS.model_checkpoint and call {helper} for each conv layer.")
    if not matched:
        return result(check, False, error_text + f"{fn}() called {helper} {len(made)} times, but none of the weights "
                      f"it passed are in the checkpoint the grader gave it. {given(check, facts)}",
                      "Load the checkpoint named by FLAGS.model_checkpoint, then pass each conv layer's weight "
                      "(from the checkpoint, or from the model you loaded it into).")
    listing = ", ".join(f"{c.name} {c.shape}" for c in made[:8])
    if len(matched) < convs:
        missing = [str(i + 1) for i in range(convs) if i not in matched]
        return result(check, False, error_text + f"{fn}() visualized {len(matched)} of the {convs} conv layers; "
                      f"conv layer {', '.join(missing)} {'was' if len(missing) == 1 else 'were'} not drawn. "
                      f"Calls: {listing}. {given(check, facts)}", "Draw every convolution, as the handout asks.")
    if res.error:
        return result(check, False, error_text + f"(It had drawn all {convs} conv layers before that.) "
                      + given(check, facts))
    return result(check, True, f"{fn}() loaded the grader's checkpoint and drew all {convs} conv layers. Calls: {listing}. "
                  + given(check, facts))


def images(check: Check, facts: Facts, rubric: Rubric) -> CheckResult:
    task = check.task
    fn = task.params["function"]
    problem = _prerequisite(check, facts)
    if problem:
        return problem
    res = _facts(check, facts)
    convs = len(res.conv_shapes)
    keys = facts.images.get(task.id, [])
    rejected = facts.rejected_images.get(task.id, [])
    note = f" Not shown: {'; '.join(rejected[:3])}." if rejected else ""
    made = [f[:300] for f in res.made_folders][:3]
    if made:
        note += (f" The folder{'s' if len(made) > 1 else ''} {', '.join(made)} did not exist; the grader created "
                 f"{'them' if len(made) > 1 else 'it'}, as you did when you ran it.")
    if res.fewer_channels:
        note += (f" The grids show at most {res.fewer_channels} input and output channels, to keep grading "
                 "quick; your own run draws the sizes your code asks for.")
    if len(keys) >= convs:
        return result(check, True, f"{fn}() saved {len(keys)} kernel images; they are shown below.{note}",
                      images=keys)
    if keys:
        return result(check, False, f"{fn}() saved {len(keys)} kernel image(s) for {convs} conv layers.{note}",
                      "One image per conv layer is expected, as the starter's visualize_kernels saves them.", images=keys)
    return result(check, False, f"{fn}() saved no PNG images.{note}",
                  "visualize_kernels saves <saving_prefix>/<name>.png; keep that behaviour.")


CHECKS = {"calls": calls, "images": images}
