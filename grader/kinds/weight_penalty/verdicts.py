"""The penalty kind's verdict: an L1 penalty, whose gradient is strength * sign(w)."""
from __future__ import annotations

from ...checks.common import explain, result, unavailable
from ...facts import Facts
from ...results import CheckResult
from ...rubric import Check, Rubric


def _outcome(check: Check, facts: Facts):
    return facts.probes.get(("penalty", check.task.id))


def penalty_gradient(check: Check, facts: Facts, rubric: Rubric) -> CheckResult:
    fn = check.task.params["function"]
    outcome = _outcome(check, facts)
    if facts.symbol(fn).get("kind") == "missing" and not facts.load_problem:
        return _penalty_from_source(check, facts, fn)
    problem = unavailable(check, facts, fn, outcome)
    if problem:
        return problem
    res = outcome.result or {}
    if res.get("error"):
        return result(check, False, explain(res["error"], f"{fn}"),
                      f"The grader calls {fn}(model, strength), then {fn}(model); it must return a 0-d tensor.")
    if res.get("no_grad"):
        return result(check, False, f"{fn} returned {res.get('value'):.4g}, but no gradient flows from it to the weights "
                                    "(.item(), .detach(), numpy or torch.no_grad() cut it off).")
    params = res.get("params", [])
    weights = [p for p in params if p["name"].endswith("weight")]
    missing = [p["name"] for p in weights if not p["grad"] or p["zero"]]
    if missing:
        return result(check, False, f"{fn} does not penalise {', '.join(missing)}: its gradient there is zero.")
    low, high = min(p["min"] for p in weights), max(p["max"] for p in weights)
    if low <= 0 or (high - low) > 1e-4 * abs(high):
        return result(check, False, f"The gradient of {fn} is not a constant times sign(w) (gradient / sign(w) ranges "
                                    f"from {low:.3g} to {high:.3g}); an L1 penalty's is strength * sign(w).",
                      "Sum |w| (w.abs().sum()) over the weights; a sum of squares is the L2 penalty.")
    strength = check.task.params.get("strength", 1e-3)
    called = res.get("call")
    scale = f"strength {high:.3g}"
    if called == "f(model, strength)" and abs(high - strength) > 1e-6 * strength:
        return result(check, False, f"{fn}(model, {strength:g}) has gradient {high:.3g} * sign(w), not {strength:g} * sign(w): "
                                    "the strength passed in is not what scales the penalty.")
    biases = [p for p in params if p["name"].endswith("bias")]
    bias_note = ""
    if biases:
        bias_note = " Biases are penalised too." if all(p["grad"] and not p["zero"] for p in biases) else " Biases are left out."
    return result(check, True, f"{fn} called as {called}: its gradient is {scale} * sign(w) on every weight.{bias_note}")


def _penalty_from_source(check: Check, facts: Facts, fn: str) -> CheckResult:
    found = facts.code_findings.get("l1_penalty") or []
    if found:
        first = found[0]
        return result(check, True, f"No function {fn}; an L1 penalty over the weights is in the training code at "
                                   f"{first['where']} (`{first['code']}`). Checked from the source only: it is not run "
                                   "while grading.")
    return result(check, False, f"No L1 penalty found: {fn} is not defined, and no training code takes |w| (abs() or an "
                                "L1 norm) of the model's weights.",
                  f"Add strength * sum(p.abs().sum() for p in model.parameters()) to the loss, or define {fn}(model, strength).")


CHECKS = {"gradient": penalty_gradient}
