"""Checks on a recurrent cell: its contract, its size, no built-ins, its behaviour, its memory."""
from __future__ import annotations

from ..facts import Facts
from ..results import CheckResult
from ..rubric import CellSpec, Check, Rubric
from .common import explain, result, unavailable

# The sizes the handout fixes for the parameter count.
INPUT, HIDDEN = 128, 100
GATE = HIDDEN * (INPUT + HIDDEN) + HIDDEN  # one gate: weights over [h, x] and a bias: 22,900
STATE = {"gru": "h", "lstm": "(h, c)", "peephole": "(h, c)", "coupled": "(h, c)"}
GATES = {"gru": 3, "lstm": 4, "peephole": 4, "coupled": 3}
FAMILY_NAMES = {"gru": "GRU", "lstm": "LSTM", "peephole": "peephole LSTM", "coupled": "coupled LSTM"}


def _probe(check: Check, facts: Facts, kind: str = "cell"):
    outcome = facts.probes.get((kind, check.cell.symbol))
    problem = unavailable(check, facts, check.cell.symbol, outcome)
    return (None, problem) if problem else (outcome.result, None)


def _stopped_before(res: dict, stages: tuple[str, ...]) -> bool:
    return bool(res.get("error")) and res["error"].get("stage") in stages


def contract(check: Check, facts: Facts, rubric: Rubric) -> CheckResult:
    cell = check.cell
    res, problem = _probe(check, facts)
    if problem:
        return problem
    error = res.get("error") or {}
    name = cell.symbol
    if error.get("stage") == "construct":
        return result(check, False, explain(error, f"{name}(128, 100, True)"),
                      f"The starter's signature is {name}(input_size, hidden_size, bias=False); keep it.")
    if error.get("stage") == "keywords":
        return result(check, False, explain(error, f"{name}(input_size=128, hidden_size=100, bias=True)"),
                      "The models build cells with these keyword names, as the starter's do.")
    if res.get("params_default_bias") != res.get("params_without_bias"):
        return result(check, False, f"bias defaults to True: {name}(128, 100) has {res['params_default_bias']:,} "
                                    f"parameters, {name}(128, 100, False) has {res['params_without_bias']:,}.",
                      f"Keep the starter's default, bias=False.")
    if error.get("stage") == "forward":
        return result(check, False, explain(error, f"{name}(7, 5, True) on a batch of 3"))
    want = "pair" if cell.has_cell_state else "tensor"
    shown = {"pair": "the pair (h, c)", "tensor": "the tensor h"}
    for which in ("state_kind", "second_state_kind"):
        got = res.get(which)
        if got != want:
            when = "from prev_state None" if which == "state_kind" else "when given its own state back"
            return result(check, False, f"forward {when} returned {shown.get(got, got)}; {name} should return "
                                        f"{shown[want]}.", f"The state of this cell is {STATE[cell.family]}.")
    shapes = res.get("state_shapes", [])
    if any(s != [3, 5] for s in shapes):
        return result(check, False, f"For input size 7, hidden size 5 and a batch of 3, the state has shapes {shapes}; "
                                    f"each part should be [3, 5].", "Sizes come from the constructor's arguments, not constants.")
    return result(check, True, f"{name}(7, 5, True) on a batch of 3 returns {STATE[cell.family]} shaped [3, 5], from "
                               "prev_state None and from its own state; keywords work and bias defaults to False.")


def parameters(check: Check, facts: Facts, rubric: Rubric) -> CheckResult:
    cell = check.cell
    res, problem = _probe(check, facts)
    if problem:
        return problem
    if "params" not in res:
        return result(check, False, "Not graded: the cell could not be built (see its contract check).")
    got, want = res["params"], cell.params
    reported = res.get("count_parameters") or {}
    if got != want:
        message = f"{cell.symbol}(128, 100, True) has {got:,} parameters; {want:,} were expected."
        if got in cell.deviations:
            return result(check, False, message + f" {got:,} is the variant where {cell.deviations[got]}.",
                          "Follow the handout's equations for which gates see the cell state.")
        return result(check, False, message, _count_hint(cell, got, want, res.get("params_without_bias")))
    if not reported.get("present"):
        return result(check, False, f"{got:,} parameters, as expected, but count_parameters is missing.",
                      "Keep the starter's count_parameters method; the handout asks you to print the counts.")
    if reported.get("value") != got:
        said = reported.get("value")
        return result(check, False, f"{got:,} parameters, as expected, but count_parameters reports "
                                    f"{'nothing' if said is None else f'{said:,}'}.",
                      "count_parameters should print (or return) the number of learnable parameters.")
    return result(check, True, f"{got:,} parameters at input 128, hidden 100, bias=True; count_parameters agrees.")


def _count_hint(cell: CellSpec, got: int, want: int, without_bias: int | None) -> str:
    gates = GATES[cell.family]
    if got == want - GATE:
        return f"That is one gate ({GATE:,} parameters) short: a {cell.family} cell has {gates} sets of gate weights."
    if got == want + GATE:
        return f"That is one gate ({GATE:,} parameters) too many."
    if without_bias is not None and got == without_bias:
        return "bias=True added no parameters: each gate needs its own bias vector when bias is True."
    if got == want - gates * HIDDEN + HIDDEN or got == want - (gates - 1) * HIDDEN:
        return "The gates seem to share one bias; the starter uses one bias per gate."
    return "Check each gate's weight shape: [hidden, hidden + input] over the concatenation of h and x."


def builtins(check: Check, facts: Facts, rubric: Rubric) -> CheckResult:
    cell = check.cell
    res, problem = _probe(check, facts)
    if problem:
        return problem
    found = facts.source_findings.get(cell.symbol)
    runtime = list(res.get("builtin_calls", []))
    memory = facts.probes.get(("memory", cell.symbol))
    if memory and memory.result:
        runtime += memory.result.get("builtin_calls", [])
    modules = res.get("builtin_modules", [])
    if _stopped_before(res, ("construct",)) and not found:
        return result(check, False, "Not graded: the cell could not be built (see its contract check).")
    parts = []
    by_line = {}
    for f in found or []:
        by_line.setdefault(f["where"], f)
    for f in list(by_line.values())[:3]:
        parts.append(f"{f['what']} at {f['where']} (`{f['code'][:80]}`)")
    for m in modules[:2]:
        parts.append(f"the built-in module {m} inside the cell")
    for call in runtime[:2]:
        parts.append(f"torch's {call['kernel']} kernel, called from {call['where'] or 'inside torch'} while the cell ran")
    if parts:
        return result(check, False, f"{cell.symbol} uses torch's built-in recurrent code: " + "; ".join(parts) + ".",
                      "The handout forbids nn.LSTMCell and the other built-in RNN modules: build the gates from "
                      "parameters (or nn.Linear) with torch.sigmoid and torch.tanh.")
    note = "" if found is not None else " (its source could not be parsed; only the run was watched)"
    return result(check, True, f"No built-in recurrent module or kernel in {cell.symbol}'s source or while it ran{note}.")


def behaviour(check: Check, facts: Facts, rubric: Rubric) -> CheckResult:
    cell = check.cell
    res, problem = _probe(check, facts)
    if problem:
        return problem
    error = res.get("error") or {}
    if "max_abs_h" not in res:
        if error and error.get("stage") == "behaviour":
            return result(check, False, explain(error, f"Running {cell.symbol}"))
        return result(check, False, "Not graded: the cell could not be run (see its contract check).")
    problems, hints = [], []
    if not res.get("finite"):
        problems.append("the state became NaN or infinite on large inputs")
    if res["max_abs_h"] >= 1.0 + 1e-6:
        problems.append(f"|h| reached {res['max_abs_h']:.2f} on large inputs, but the equations keep |h| < 1")
        hints.append("h is a gate (a sigmoid) times tanh(c), or a mix of tanh outputs for a GRU")
    if not res.get("rows_independent"):
        problems.append("changing one example's inputs changed the other examples' outputs")
        hints.append("look for sums or means over the batch dimension, or reshapes that mix rows")
    if not res.get("none_is_zeros"):
        problems.append("prev_state=None does not give the same result as an explicit zero state")
    if not res.get("state_used"):
        problems.append("the output does not change when prev_state changes: forward ignores the state it is given")
        hints.append("use prev_state when it is not None")
    if not res.get("first_step_depends_on_input") or res.get("first_step_norm", 1) < 1e-7:
        problems.append("from a zero state, h does not depend on the input")
        hints.append("the output should read the new cell state, tanh(c_t), not the previous one")
    if res.get("no_gradient"):
        problems.append(f"no gradient reaches {', '.join(res['no_gradient'][:4])}")
        hints.append("every parameter should take part in forward")
    if res.get("nonfinite_gradient"):
        problems.append(f"the gradient of {', '.join(res['nonfinite_gradient'][:4])} is NaN or infinite")
    if problems:
        return result(check, False, f"{cell.symbol}: " + "; ".join(problems) + ".", "; ".join(hints).capitalize())
    return result(check, True, f"|h| stays below 1 (at most {res['max_abs_h']:.3f}), batch rows are independent, "
                               "None means a zero state, the given state is used, and every parameter gets a gradient.")


def memory(check: Check, facts: Facts, rubric: Rubric) -> CheckResult:
    cell = check.cell
    res, problem = _probe(check, facts, "memory")
    if problem:
        return problem
    if res.get("error"):
        return result(check, False, explain(res["error"], f"Training {cell.symbol} on the memory task"))
    task = res.get("task", "recall a token seen many steps earlier")
    accuracy, needed, chance = res.get("accuracy", 0.0), res.get("threshold", 1.0), res.get("chance", 0.0)
    if res.get("passed"):
        return result(check, True, f"Task: {task}. {accuracy:.0%} held-out accuracy after {res['steps']} training "
                                   f"steps (chance {chance:.0%}, {needed:.0%} needed, budget {res['budget']}).")
    stopped = f" Training stopped early: {res['stopped']}." if res.get("stopped") else ""
    return result(check, False, f"Task: {task}. After {res['steps']} training steps the held-out accuracy is "
                                f"{accuracy:.0%} (chance {chance:.0%}); {needed:.0%} was needed within "
                                f"{res['budget']} steps.{stopped}",
                  f"Correct {FAMILY_NAMES[cell.family]} cells learn this in under half the budget. Check that the "
                  f"new {'hidden' if cell.family == 'gru' else 'cell'} state keeps the old one through "
                  f"{'the update gate' if cell.family == 'gru' else 'the forget gate (f * c_{t-1})'}, that each gate "
                  "sees the inputs the equations give it, and that gates use sigmoid and the candidate tanh.",
                  curve=res.get("curve", []))


CHECKS = {"cell.contract": contract, "cell.parameters": parameters, "cell.builtins": builtins,
          "cell.behaviour": behaviour, "cell.memory": memory}
