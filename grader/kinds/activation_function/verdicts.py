"""The activation kind's verdicts: Swish written from scratch, and its values and gradient."""
from __future__ import annotations

from ...checks.common import explain, result, unavailable
from ...facts import Facts
from ...results import CheckResult
from ...rubric import Check, Rubric
from ...sourcescan import COMPUTED

TOLERANCE = 1e-6


def _outcome(check: Check, facts: Facts):
    return facts.probes.get(("activation", check.task.id))


SWISH_HINT = "Write it from torch.sigmoid and a product: x * torch.sigmoid(x)."


def activation_source(check: Check, facts: Facts, rubric: Rubric) -> CheckResult:
    fn = check.task.params["function"]
    problem = unavailable(check, facts, fn, _outcome(check, facts))
    if problem:
        return problem
    res = _outcome(check, facts).result or {}
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
    outcome = _outcome(check, facts)
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


CHECKS = {"source": activation_source, "values": activation_values}
