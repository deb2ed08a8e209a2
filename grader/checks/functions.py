"""Checks on small pieces students write: an activation (Swish), a weight penalty (L1), and
a learning-rate decay that lives in the training loop."""
from __future__ import annotations

from ..facts import Facts
from ..results import CheckResult
from ..rubric import Check, Rubric
from ..sourcescan import COMPUTED
from .common import explain, result, unavailable

TOLERANCE = 1e-6


def _outcome(check: Check, facts: Facts, op: str):
    return facts.probes.get((op, check.task.id))


SWISH_HINT = "Write it from torch.sigmoid and a product: x * torch.sigmoid(x)."


def activation_source(check: Check, facts: Facts, rubric: Rubric) -> CheckResult:
    fn = check.task.params["function"]
    problem = unavailable(check, facts, fn, _outcome(check, facts, "activation"))
    if problem:
        return problem
    res = _outcome(check, facts, "activation").result or {}
    if res.get("error"):
        return result(check, False, f"Not graded: {fn} does not run yet (see the check of its values).")
    # A getattr whose name is only known at run time is a hint; the run decides.
    found = [f for f in facts.source_findings.get(fn) or [] if COMPUTED not in f["what"]]
    ran = _silu_at_run_time(fn, res)
    tampered = res.get("watch_tampered") or []
    if found:
        first = found[0]
        also = f"; and when graded, {ran}" if ran else ""
        return result(check, False, f"{fn} uses torch's own SiLU ({first['what']} at {first['where']}: "
                                    f"`{first['code']}`){also}. The handout asks for Swish written yourself.", SWISH_HINT)
    if ran:
        return result(check, False, f"{fn} calls torch's SiLU when it runs: {ran}, though its source does not name it "
                                    "directly. The handout asks for Swish written yourself.", SWISH_HINT)
    if tampered:
        return result(check, False, f"{fn}(x) switched off the grader's kernel watch while it ran ({tampered[0]}), so "
                                    "the grader cannot confirm that it avoids torch's SiLU. Swish needs no such code.",
                      SWISH_HINT)
    return result(check, True, f"{fn} computes Swish itself: no SiLU in its source, and none called when it runs.")


def _silu_at_run_time(fn: str, res: dict) -> str:
    """What the worker saw of torch's SiLU while fn ran, in words naming the route; "" if nothing."""
    routes = res.get("silu_routes") or []
    graph = res.get("silu_graph") or []
    if not (routes or graph or res.get("silu_calls") or res.get("silu_module")):
        return ""
    # The forward call is the evidence to name; aten.silu_backward only follows from it.
    forward = [r for r in routes if r.get("kernel") in ("silu", "silu_")]
    kernel = f"aten.{forward[0]['kernel']}" if forward else "aten.silu"
    named = next((r for r in forward if r.get("route")), None)
    where = next((r["where"] for r in forward if r.get("where")), "")
    at = f" at {where}" if where else ""
    if named:
        how = f"reached through {named['route']}{at}"
    elif any(r.get("by") == "dispatch" for r in forward):
        how = f"seen at torch's dispatcher{at}, by a route that hid its Python name"
    elif forward:
        how = "recorded by torch's profiler where the grader's other watches had been switched off"
    elif graph:
        how = f"its result's autograd graph holds {graph[0]}, which only that kernel makes"
    elif routes:
        kernel, how = "aten.silu_backward", "in its backward pass"
    else:
        how = "an nn.SiLU module"
    if res.get("silu_module") and "nn.SiLU" not in how:
        how += ", from an nn.SiLU module"
    return f"{fn}(x) ran {kernel}, PyTorch's built-in SiLU kernel ({how})"


def activation_values(check: Check, facts: Facts, rubric: Rubric) -> CheckResult:
    fn = check.task.params["function"]
    outcome = _outcome(check, facts, "activation")
    problem = unavailable(check, facts, fn, outcome)
    if problem:
        return problem
    res = outcome.result or {}
    if res.get("error"):
        return result(check, False, explain(res["error"], f"{fn}(x)"))
    if not res.get("shape_ok"):
        return result(check, False, f"{fn}(x) changed the shape of x; an activation works element by element.")
    err, gerr = res.get("max_error"), res.get("grad_error")
    if err is None or err > TOLERANCE:
        w = res.get("worst") or {}
        return result(check, False, f"{fn}(x) differs from x * sigmoid(x) by up to {err:.3g}: at x = {w.get('x', 0):.3g} "
                                    f"it gives {w.get('got', 0):.4g}, Swish gives {w.get('want', 0):.4g}.",
                      "Swish is x * torch.sigmoid(x) (Ramachandran et al., with beta = 1).")
    if gerr is None:
        return result(check, False, f"{fn}(x) has the right values but no gradient flows through it (is it computed "
                                    "under torch.no_grad(), with .detach() or numpy?).")
    if gerr > TOLERANCE:
        return result(check, False, f"{fn}(x) has the right values, but its gradient differs from Swish's by {gerr:.3g}.")
    return result(check, True, f"{fn}(x) equals x * sigmoid(x) on 300 values from -8 to 8, and so does its gradient "
                               f"(largest difference {max(err, gerr):.1e}).")


def penalty_gradient(check: Check, facts: Facts, rubric: Rubric) -> CheckResult:
    fn = check.task.params["function"]
    outcome = _outcome(check, facts, "penalty")
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


CHECKS = {"activation_function.source": activation_source, "activation_function.values": activation_values,
          "weight_penalty.gradient": penalty_gradient, "lr_decay.decay": lr_decay,
          "companion_files.present": companion_files}
