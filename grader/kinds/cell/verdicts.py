"""The cell checks' verdicts and wording: contract, size, no built-ins, behaviour, memory."""
from __future__ import annotations

import re

from ...checks.common import explain, result, unavailable
from ...facts import Facts
from ...results import CheckResult
from ...rubric import Check, Rubric
from ..wire import decode
from .facts import Anatomy, CellFacts, CellStatePath, DeadPart, MemoryFacts
from .spec import CellSpec

# The sizes the handout fixes for the parameter count.
INPUT, HIDDEN = 128, 100
GATE = HIDDEN * (INPUT + HIDDEN) + HIDDEN  # one gate: weights over [h, x] and a bias: 22,900
STATE = {"gru": "h", "lstm": "(h, c)", "peephole": "(h, c)", "coupled": "(h, c)"}
GATES = {"gru": 3, "lstm": 4, "peephole": 4, "coupled": 3}
FAMILY_NAMES = {"gru": "GRU", "lstm": "LSTM", "peephole": "peephole LSTM", "coupled": "coupled LSTM"}


def _probe(check: Check, facts: Facts, kind: str = "cell"):
    """The typed facts this check reads, or the failed result standing in for them."""
    outcome = facts.probes.get((kind, check.cell.symbol))
    problem = unavailable(check, facts, check.cell.symbol, outcome)
    if problem:
        return None, problem
    return decode(MemoryFacts if kind == "memory" else CellFacts, outcome.result), None


def _stage(res) -> str | None:
    return (res.error or {}).get("stage") if res.error else None


def contract(check: Check, facts: Facts, rubric: Rubric) -> CheckResult:
    cell = check.cell
    res, problem = _probe(check, facts)
    if problem:
        return problem
    error = res.error or {}
    name = cell.symbol
    if error.get("stage") == "construct":
        return result(check, False, explain(error, f"{name}(128, 100, True)"),
                      f"The starter's signature is {name}(input_size, hidden_size, bias=False); keep it.")
    if error.get("stage") == "keywords":
        return result(check, False, explain(error, f"{name}(input_size=128, hidden_size=100, bias=True)"),
                      "The models build cells with these keyword names, as the starter's do.")
    if res.params_default_bias != res.params_without_bias:
        return result(check, False, f"bias defaults to True: {name}(128, 100) has {res.params_default_bias or 0:,} "
                                    f"parameters, {name}(128, 100, False) has {res.params_without_bias or 0:,}.",
                      "Keep the starter's default, bias=False.")
    if error.get("stage") == "forward":
        return result(check, False, explain(error, f"{name}(7, 5, True) on a batch of 3"))
    want = "pair" if cell.has_cell_state else "tensor"
    shown = {"pair": "the pair (h, c)", "tensor": "the tensor h"}
    for got, when in ((res.state_kind, "from prev_state None"), (res.second_state_kind, "when given its own state back")):
        if got != want:
            return result(check, False, f"forward {when} returned {shown.get(got, got)}; {name} should return "
                                        f"{shown[want]}.", f"The state of this cell is {STATE[cell.family]}.")
    shapes = res.state_shapes
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
    if res.params is None:
        return result(check, False, "Not graded: the cell could not be built (see its contract check).")
    got, want = res.params, cell.params
    reported = res.count_parameters
    if got != want:
        message = f"{cell.symbol}(128, 100, True) has {got:,} parameters; {want:,} were expected."
        if got in cell.deviations:
            return result(check, False, message + f" {got:,} is the variant where {cell.deviations[got]}.",
                          "Follow the handout's equations for which gates see the cell state.")
        return result(check, False, message, _count_hint(cell, got, want, res.params_without_bias))
    if reported is None or not reported.present:
        return result(check, False, f"{got:,} parameters, as expected, but count_parameters is missing.",
                      "Keep the starter's count_parameters method; the handout asks you to print the counts.")
    if reported.value != got:
        said = reported.value
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
    runtime = list(res.builtin_calls)
    memory = facts.probes.get(("memory", cell.symbol))
    if memory and memory.result:
        runtime += decode(MemoryFacts, memory.result).builtin_calls
    modules = res.builtin_modules
    if _stage(res) == "construct" and not found:
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
        parts.append(str(call.note or "")[:300] or
                     f"torch's {call.kernel} kernel, called from {call.where or 'inside torch'} while the cell ran")
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
    if res.max_abs_h is None:
        if _stage(res) == "behaviour":
            return result(check, False, explain(res.error, f"Running {cell.symbol}"))
        return result(check, False, "Not graded: the cell could not be run (see its contract check).")
    problems, hints = [], []
    if not res.finite:
        problems.append("the state became NaN or infinite on large inputs")
    if not res.max_abs_h < 1.0 + 1e-6:
        problems.append(f"|h| reached {res.max_abs_h:.2f} on large inputs, but the equations keep |h| < 1")
        hints.append("h is a gate (a sigmoid) times tanh(c), or a mix of tanh outputs for a GRU")
    if not res.rows_independent:
        problems.append("changing one example's inputs changed the other examples' outputs")
        hints.append("look for sums or means over the batch dimension, or reshapes that mix rows")
    if not res.none_is_zeros:
        problems.append("prev_state=None does not give the same result as an explicit zero state")
    if not res.state_used:
        problems.append("the output does not change when prev_state changes: forward ignores the state it is given")
        hints.append("use prev_state when it is not None")
    if not res.first_step_depends_on_input or res.first_step_norm < 1e-7:
        problems.append("from a zero state, h does not depend on the input")
        hints.append("the output should read the new cell state, tanh(c_t), not the previous one")
    anatomy = res.anatomy or Anatomy(error="it did not run")
    unused, unused_hints, covered = _unused_parts(cell, anatomy)
    problems += unused
    hints += unused_hints
    no_gradient = [n for n in res.no_gradient if n not in covered]
    if no_gradient:
        problems.append(f"no gradient reaches {', '.join(no_gradient[:4])}")
        hints.append("every parameter should take part in forward")
    if res.nonfinite_gradient:
        problems.append(f"the gradient of {', '.join(res.nonfinite_gradient[:4])} is NaN or infinite")
    if problems:
        hint = "; ".join(dict.fromkeys(hints))
        return result(check, False, f"{cell.symbol}: " + "; ".join(problems) + ".", hint[:1].upper() + hint[1:])
    parts = [f"|h| stays below 1 (at most {res.max_abs_h:.3f})", "batch rows are independent",
             "None means a zero state", "the given state is used"]
    if anatomy.dead is not None and not anatomy.error:
        parts.append("every parameter row gets a gradient")
        if anatomy.cell_state is not None and anatomy.cell_state.measured:
            parts += ["c_t depends on c_{t-1} through a gate (dc_t/dc_{t-1} is neither 0 nor exactly 1)",
                      "h_t is gated (not tanh(c_t) alone)"]
        message = ", ".join(parts[:-1]) + ", and " + parts[-1] + "."
    else:
        note = f" (the test for parts computed but not used could not run: {anatomy.error})" \
            if res.anatomy is not None and anatomy.error else ""
        message = ", ".join(parts) + ", and every parameter gets a gradient" + note + "."
    return result(check, True, message)


# ------------------------------------------------------------------ parts computed but not used

EQUATIONS = {
    "lstm": "c_t = f_t * c_{t-1} + i_t * g_t, h_t = o_t * tanh(c_t)",
    "peephole": "c_t = f_t * c_{t-1} + i_t * g_t, h_t = o_t * tanh(c_t), with f_t and i_t reading c_{t-1} "
                "and o_t reading c_t",
    "coupled": "c_t = f_t * c_{t-1} + (1 - f_t) * g_t, h_t = o_t * tanh(c_t)",
    "gru": "z_t and r_t from [h_{t-1}, x_t], h~_t = tanh(W [r_t * h_{t-1}, x_t]), "
           "h_t = (1 - z_t) * h_{t-1} + z_t * h~_t",
}
CELL_EQUATION = {"lstm": "c_t = f_t * c_{t-1} + i_t * g_t", "peephole": "c_t = f_t * c_{t-1} + i_t * g_t",
                 "coupled": "c_t = f_t * c_{t-1} + (1 - f_t) * g_t"}
# What a parameter's name says it belongs to: words, single letters (W_f, b_f, self.f) and
# two letters whose first says what the weight reads (W_hf, W_xf, W_if, weight_in).
GATE_WORDS = {"lstm": {"forget": "forget gate", "input": "input gate", "in": "input gate", "output": "output gate",
                       "out": "output gate", "candidate": "candidate", "cand": "candidate", "tilde": "candidate"},
              "gru": {"update": "update gate", "reset": "reset gate", "candidate": "candidate", "cand": "candidate",
                      "tilde": "candidate", "new": "candidate"}}
GATE_LETTERS = {"lstm": {"f": "forget gate", "i": "input gate", "o": "output gate", "g": "candidate", "c": "candidate"},
                "gru": {"z": "update gate", "r": "reset gate", "n": "candidate", "h": "candidate"}}
GENERIC_WORDS = {"weight", "weights", "bias", "biases", "w", "b", "u", "v", "p", "x", "gate", "gates", "linear",
                 "lin", "fc", "layer", "layers", "param", "params", "peep", "peephole", "hidden", "self"}
ORDINALS = {1: "1st", 2: "2nd", 3: "3rd"}


def _gate_of(name: str, family: str, shape: list[int], hidden: int) -> str | None:
    """The gate a parameter's name and shape say it belongs to; None when unclear (a shared layer)."""
    if hidden not in shape or any(d != hidden and d % hidden == 0 for d in shape):
        return None  # a gate owns hidden units; a [4H, ...] weight is shared by several
    kind = "gru" if family == "gru" else "lstm"
    words, letters = GATE_WORDS[kind], GATE_LETTERS[kind]
    found = set()
    for raw in re.split(r"[^A-Za-z0-9]+", name):
        for token in re.findall(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])", raw):
            t = token.lower()
            if t in GENERIC_WORDS or t.isdigit():
                continue
            if t in words:
                found.add(words[t])
                continue
            if len(t) in (2, 3) and t[0] in "wbuvp":  # Wf, bf, Whf
                t = t[1:]
            if len(t) == 1 and t in letters:
                found.add(letters[t])
            elif len(t) == 2 and t[0] in "xhic" and t[1] in letters:
                found.add(letters[t[1]])
    return found.pop() if len(found) == 1 else None


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _span(ranges: list[list[int]]) -> str:
    return _and([f"{a}-{b}" if b > a else f"{a}" for a, b in ranges])


def _slices(entries: list[DeadPart], hidden: int) -> tuple[list[tuple[str, bool]], list[str]]:
    """('rows 100-199 of gates.weight and gates.bias (one gate's 100 units)', plural) for each
    set of dead rows or columns, and hints naming their blocks."""
    groups: dict[tuple, list[DeadPart]] = {}
    for e in entries:
        for axis in ("rows", "columns"):
            if getattr(e, axis):
                groups.setdefault((axis, str(getattr(e, axis))), []).append(e)
    texts, hints = [], []
    for (axis, _), members in groups.items():
        first = members[0]
        ranges, blocks = getattr(first, axis), first.row_blocks if axis == "rows" else first.column_blocks
        units = sum(b - a + 1 for a, b in ranges)
        word = axis if units > 1 else axis[:-1]
        text = f"{word} {_span(ranges)} of {_and([m.name for m in members])}"
        if blocks and len(blocks) * hidden == units:
            text += (f" (one gate's {hidden} units)" if len(blocks) == 1
                     else f" ({len(blocks)} gates' {hidden} units each)")
            which = _and([ORDINALS.get(i, f"{i}th") for i, _ in blocks])
            hints.append(f"{word} {_span(ranges)} {'are' if units > 1 else 'is'} the {which} of "
                         f"{first.name}'s {blocks[0][1]} blocks of {hidden} {axis}")
        else:
            text += f" ({units} of its {first.shape[0 if axis == 'rows' else -1]} {axis})"
        texts.append((text, units > 1 or len(members) > 1))
    return texts, hints


def _receive(parts: list[tuple[str, bool]]) -> str:
    plural = len(parts) > 1 or parts[0][1]
    return f"{_and([t for t, _ in parts])} never receive{'' if plural else 's'} a gradient"


def _unused_parts(cell: CellSpec, anatomy: Anatomy) -> tuple[list[str], list[str], set[str]]:
    """Problems and hints for parts computed but never used, and the parameters they cover
    (left out of the plain 'no gradient reaches' problem)."""
    if anatomy.error or anatomy.dead is None:
        return [], [], set()
    family, hidden = cell.family, anatomy.hidden
    dead = anatomy.dead
    whole = {d.name: d for d in dead if d.whole}
    gates: dict[str, list[str]] = {}
    for name, shape in anatomy.parameters.items():
        gate = _gate_of(name, family, shape, hidden)
        if gate:
            gates.setdefault(gate, []).append(name)
    # A gate is unused when every parameter its name gives it is dead.
    unused = {g: names for g, names in gates.items() if all(n in whole for n in names)}
    named = {n for names in unused.values() for n in names}
    slices, slice_hints = _slices([d for d in dead if not d.whole], hidden)
    loose = [n for n, d in whole.items() if n not in named and d.touched]  # used in forward, reaching nothing
    anonymous = slices + [(n, False) for n in loose]

    state = anatomy.cell_state or CellStatePath(measured=False)
    equation = CELL_EQUATION.get(family, "")
    symptoms: dict[str, tuple[str, str, str]] = {}  # gate: what was measured, its lead without evidence, hint
    if family != "gru" and state.measured:
        if state.one:
            symptoms["forget gate"] = (
                "the new cell state's derivative with respect to the old one is exactly 1 for every input",
                "the old cell state is carried over unscaled",
                f"multiply the previous cell state by the forget gate: {equation}")
        elif state.zero and not state.value_depends:
            symptoms["forget gate"] = (
                "the new cell state does not depend on the old one (its derivative with respect to c_{t-1} is "
                "exactly 0 for every input",
                "", f"keep the previous cell state (from prev_state) in the sum: {equation}")
        if state.h_is_tanh_c:
            symptoms["output gate"] = ("h_t equals tanh(c_t) exactly for every input", "no output gate scales h_t",
                                       "scale the output by the output gate: h_t = o_t * tanh(c_t)")
    problems, hints = [], []
    if family != "gru" and state.measured and state.zero and state.value_depends:
        problems.append("no gradient flows back through the cell state: the new cell state changes with the old one, "
                        "but its derivative with respect to c_{t-1} is exactly 0 for every input (c_{t-1} is "
                        "detached inside forward)")
        hints.append("do not detach prev_state (or use .data) inside forward: training backpropagates through c_{t-1}")
    # Dead rows of a shared layer say that some gate is unused, not which: they go with the
    # one gate the other measurements point at, if there is exactly one.
    implicated = list(dict.fromkeys([*symptoms, *unused]))
    attached = {implicated[0]: anonymous} if len(implicated) == 1 and anonymous else {}
    for gate in implicated:
        names = unused.get(gate, [])
        touched = not names or any(whole[n].touched for n in names)
        parts = ([(_and(names), len(names) > 1)] if names else []) + attached.get(gate, [])
        if names and not attached.get(gate):
            evidence = f"its parameter{'s' if len(names) > 1 else ''} " + (
                _receive(parts) if touched
                else f"{_and(names)} {'are' if len(names) > 1 else 'is'} never used in forward")
        else:
            evidence = _receive(parts) if parts else ""
        lead = f"the {gate} is {'computed but not used' if touched else 'missing'}"
        if gate in symptoms:
            measured, plain, hint = symptoms[gate]
            student = "c_t = c_{t-1} + i_t * g_t; " if evidence and gate == "forget gate" and state.one \
                and family != "coupled" else ""
            given = "the equations give " + (equation if gate == "forget gate" else "h_t = o_t * tanh(c_t)")
            measured += ("; " if measured.count("(") > measured.count(")") else " (") + student + given + ")"
            if evidence:
                problems.append(f"{lead}: {measured}, and {evidence}")
            else:
                problems.append(f"{plain}: {measured}" if plain else measured)
            hints.append(hint)
        else:
            problems.append(f"{lead}: {evidence}, whatever the input")
            hints.append(f"the {gate} should appear in the equations: {EQUATIONS[family]}")
    if anonymous and not attached:
        one_gate = len(anonymous) == 1 and "one gate's" in anonymous[0][0]
        problems.append(f"{_receive(anonymous)}, whatever the input: "
                        f"{'that gate is' if one_gate else 'those parts are'} computed but not used")
    if anonymous:
        hints += slice_hints[:1]
        if not attached:
            hints.append(f"every gate computed from the parameters should appear in the equations "
                         f"({EQUATIONS[family]}); look for a gate computed and then left out, or one slice of a "
                         "shared layer used twice")
    return problems, hints, named | set(loose)


def memory(check: Check, facts: Facts, rubric: Rubric) -> CheckResult:
    cell = check.cell
    res, problem = _probe(check, facts, "memory")
    if problem:
        return problem
    if res.error:
        return result(check, False, explain(res.error, f"Training {cell.symbol} on the memory task"))
    task, accuracy, needed, chance = res.task, res.accuracy, res.threshold, res.chance
    if res.passed:
        return result(check, True, f"Task: {task}. {accuracy:.0%} held-out accuracy after {res.steps} training "
                                   f"steps (chance {chance:.0%}, {needed:.0%} needed, budget {res.budget}).")
    stopped = f" Training stopped early: {res.stopped}." if res.stopped else ""
    return result(check, False, f"Task: {task}. After {res.steps} training steps the held-out accuracy is "
                                f"{accuracy:.0%} (chance {chance:.0%}); {needed:.0%} was needed within "
                                f"{res.budget} steps.{stopped}",
                  f"Correct {FAMILY_NAMES[cell.family]} cells learn this in under half the budget. Check that the "
                  f"new {'hidden' if cell.family == 'gru' else 'cell'} state keeps the old one through "
                  f"{'the update gate' if cell.family == 'gru' else 'the forget gate (f * c_{t-1})'}, that each gate "
                  "sees the inputs the equations give it, and that gates use sigmoid and the candidate tanh.",
                  curve=[list(point) for point in res.curve])


CHECKS = {"contract": contract, "parameters": parameters, "builtins": builtins, "behaviour": behaviour,
          "memory": memory}
