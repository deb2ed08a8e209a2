"""Checks judged from the source and the files alone: a learning-rate decay that lives in the
training loop, and companion files (the activation and the penalty are grader/kinds/)."""
from __future__ import annotations

from ..facts import Facts
from ..results import CheckResult
from ..rubric import Check, Rubric
from .common import result

def lr_decay(check: Check, facts: Facts, rubric: Rubric) -> CheckResult:
    found = facts.code_findings.get("lr_decay") or []
    if not found:
        return result(check, False, "No learning-rate decay found: no lr_scheduler is created and no optimizer "
                                    "param group's 'lr' is changed in the submitted code.",
                      "Multiply each param_group['lr'] by DECAY every DECAY_EPOCHS epochs, or use "
                      "torch.optim.lr_scheduler.StepLR(optimizer, DECAY_EPOCHS, DECAY).")
    places = "; ".join(f"{f['what']} at {f['where']} (`{f['code']}`)" for f in found[:3])
    return result(check, True, f"Found {places}. Course staff read your observations about it.")


def companion_files(check: Check, facts: Facts, rubric: Rubric) -> CheckResult:
    wanted = tuple(e.lower() for e in check.task.params["extensions"])
    found = [f for f in facts.submitted_files if f.lower().endswith(wanted)]
    note = check.task.params.get("note", "")
    if found:
        return result(check, True, f"Found {', '.join(found[:3])}.")
    return result(check, False, f"No {' or '.join(wanted)} file in the submission. {note}".strip(),
                  "Export the notebook (File > Download as HTML, or print to PDF) and submit it beside the .ipynb.")


CHECKS = {"lr_decay.decay": lr_decay, "companion_files.present": companion_files}
