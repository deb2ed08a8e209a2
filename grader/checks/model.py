"""Checks on one model class: it builds, matches its table, runs, learns."""
from __future__ import annotations

import functools

from ..facts import Facts, ProbeOutcome
from ..protocol import number
from ..results import CheckResult
from ..rubric import Check, Rubric
from .architecture import compare, describe_problem
from .common import explain, result, unavailable


def _who(check: Check, name: str | None = None) -> str:
    """The constructor call the grader makes, as code: AlexNet({'num_classes': 7}), ResNet20()."""
    args, kwargs = check.model.call_for(check.variant)
    shown = [repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()]
    return f"{name or check.model.symbol}({', '.join(shown)})"


def _trace(facts: Facts, check: Check) -> ProbeOutcome | None:
    return facts.probes.get(("trace", check.model.symbol, check.variant.suffix))


def _behaviour(facts: Facts, check: Check) -> ProbeOutcome | None:
    return facts.probes.get(("behaviour", check.model.symbol, check.variant.suffix))


def _not_built(check: Check, facts: Facts) -> CheckResult | None:
    """Every check but `construct` defers to it when the model could not be built."""
    traced = _trace(facts, check)
    if traced and traced.result and not traced.result.get("constructed"):
        return result(check, False, f"Not graded: {check.model.symbol} could not be built (see its "
                                    f"'defined and builds' check).")
    return None


def _measured(check: Check, facts: Facts, key: str, what: str, hint: str = "") -> tuple[dict | None, CheckResult | None]:
    """The behaviour probe's `key` section for this check, or the failed result that stands
    in for it: the probe did not run, the model was not built, or the code raised first."""
    outcome = _behaviour(facts, check)
    problem = unavailable(check, facts, check.model.symbol, outcome) or _not_built(check, facts)
    if problem:
        return None, problem
    section = outcome.result.get(key)
    if section is not None:
        return section, None
    error = outcome.result.get("error") or {}
    if key in ("gradients", "training") and error.get("stage") == "forward":
        return None, result(check, False, "Not graded: forward did not run (see the forward check).")
    return None, result(check, False, explain(error, what), hint)


def construct(check: Check, facts: Facts, rubric: Rubric) -> CheckResult:
    symbol = check.model.symbol
    outcome = _trace(facts, check)
    picked = facts.picks.get(symbol)
    if picked and not picked.get("name"):
        what = check.model.title or symbol
        considered = picked.get("considered") or []
        found = f" Considered: {'; '.join(considered)}." if considered else \
            (f" Looking for it, {picked['reason']}." if picked.get("reason") else " It defines no nn.Module class.")
        return result(check, False, f"No class in {facts.file_of(symbol)} can be graded as {what}.{found}",
                      f"Define {what} as an nn.Module class (for example {symbol}) that builds without required "
                      "arguments and returns one score per class.")
    problem = unavailable(check, facts, symbol, outcome)
    if problem:
        return problem
    info = facts.symbol(symbol)
    res = outcome.result
    if not res.get("constructed"):
        hint = ""
        if (res.get("error") or {}).get("type") == "TypeError":
            hint = f"The grader builds it as {_who(check)}, the way the starter code does."
        elif (res.get("error") or {}).get("type") in ("KeyError", "UnparsedFlagAccessError"):
            hint = "Read the class count from configs['num_classes'], not from flags or globals."
        return result(check, False, explain(res.get("error"), f"{_who(check)}"), hint)
    message = f"{_who(check, info.get('defined_as'))} builds: {res.get('params_total', 0):,} parameters."
    if picked and picked.get("name"):
        where = f" ({info['file']} cell {info['cell']})" if info.get("cell") else \
            (f" ({info['file']} line {info['line']})" if info.get("line") else "")
        message = (f"{picked['name']}{where} is graded as {check.model.title or symbol}: {picked['reason']} "
                   f"It builds: {res.get('params_total', 0):,} parameters.")
    if info.get("kind") == "class" and not info.get("module_subclass"):
        message += f" ({symbol} is not a subclass of nn.Module but returned a module.)"
    return result(check, True, message)


def architecture(check: Check, facts: Facts, rubric: Rubric) -> CheckResult:
    model, variant = check.model, check.variant
    outcome = _trace(facts, check)
    problem = unavailable(check, facts, model.symbol, outcome) or _not_built(check, facts)
    if problem:
        return problem
    res = outcome.result
    rows = list(res.get("rows", []))
    notes = []
    if model.final_softmax_ok and rows and rows[-1].get("type") in ("Softmax", "LogSoftmax"):
        rows = rows[:-1]  # the handout calls the last layer a softmax layer; say what that costs instead
        notes.append(f"forward ends with a {res['rows'][-1]['type']}, as the handout's wording suggests, so "
                     "it is accepted here; but nn.CrossEntropyLoss applies log-softmax itself, so training on "
                     "these outputs applies it twice. Return the raw scores from forward.")
    # Where the handout allows several readings, grade against the closest and say which.
    candidates = []
    for name, spec_rows in model.readings():
        expected_rows = model.rows_for(variant, spec_rows)
        candidates.append((compare(expected_rows, rows, model.input), expected_rows, name))
    diff, expected, reading = min(candidates, key=lambda c: c[0].problem_count())
    title = f"{model.symbol} vs {model.table_name}" + (f" ({reading})" if reading and len(candidates) > 1 else "")
    table = {"title": title + (f", {variant.num_classes} classes" if variant.num_classes else ""),
             "rows": [r.as_dict() for r in diff.rows]}
    notes = list(diff.notes) + notes
    unused = res.get("unused_params") or []
    if unused:
        names = ", ".join(f"{n} ({c:,})" for n, c in unused[:4])
        notes.append(f"Parameters defined but never used in forward: {names}. They are not in the table; remove them.")
    if res.get("error"):
        reached = sum(1 for r in diff.rows if r.found is not None)
        message = (explain(res["error"], f"{model.symbol}.forward on a [2, {', '.join(map(str, model.input))}] batch")
                   + f" The table below shows the {reached} layers that ran before it.")
        return result(check, False, message, "", table=table)
    first = diff.first_problem()
    if first is None and not unused:
        message = f"All {len(expected)} rows match: types, output shapes and parameter counts."
        if reading and len(candidates) > 1:
            total = sum(r.params for r in expected)
            message = (f"All {len(expected)} rows match the table read with {reading} ({total:,} parameters); "
                       f"the handout allows {' or '.join(n for _, _, n in candidates)}.")
        return result(check, True, " ".join([message, *notes]), table=table)
    if first is None:
        return result(check, False, " ".join(notes), table=table)
    message = describe_problem(first)
    more = diff.problem_count() - 1
    if more:
        message += f" {more} more row{'s' if more > 1 else ''} differ; see the full table."
    hint = _architecture_hint(diff, expected, model.table_num_classes, variant.num_classes) or model.hints.get("architecture", "")
    return result(check, False, " ".join([message, *notes]), hint, table=table)


def _architecture_hint(diff, expected, table_classes, num_classes) -> str:
    rows = diff.rows
    last = rows[-1] if rows else None
    extras = [r for r in rows if r.status == "extra"]
    if extras and extras[-1] is last and last.found.type in ("Softmax", "LogSoftmax"):
        return "Return raw class scores: nn.CrossEntropyLoss applies log-softmax itself."
    if extras and extras[-1] is last and last.found.type == "ReLU":
        return "The last Linear layer's scores go out as they are, with no ReLU after them."
    bad = [r for r in rows if r.status != "match" and r.status != "equivalent"]
    if (num_classes is not None and len(bad) == 1 and bad[0].expected is not None and bad[0].found is not None
            and bad[0].expected is expected[-1] and bad[0].found.shape[:-1] == bad[0].expected.shape[:-1]):
        got = bad[0].found.shape[-1]
        return (f"The last layer has {got} outputs but this model was built for {num_classes} classes: "
                f"take the class count from configs['num_classes'] instead of a fixed number.")
    if any(r.status == "mismatch" and r.expected and r.found and r.expected.type != r.found.type
           and {r.expected.type, r.found.type} == {"MaxPool2d", "AvgPool2d"} for r in rows):
        return "Check the pooling type of each pooling row in the table."
    return ""


def forward(check: Check, facts: Facts, rubric: Rubric) -> CheckResult:
    model, variant = check.model, check.variant
    fwd, problem = _measured(check, facts, "forward", f"{model.symbol}.forward")
    if problem:
        return problem
    shape = fwd["shape"]
    want = [2, variant.num_classes] if variant.num_classes is not None else None
    batch = f"[2, {', '.join(map(str, model.input))}]"
    if want is not None and shape != want:
        hint = ""
        if len(shape) == 2 and shape[0] == 2:
            hint = (f"It gives {shape[1]} scores per image; build the last layer with configs['num_classes'] "
                    f"outputs ({variant.num_classes} here).")
        return result(check, False, f"forward on a batch of {batch} returned {shape}; expected {want}, one score per class.", hint)
    if not fwd.get("finite"):
        return result(check, False, f"forward on a batch of {batch} returned NaN or infinite values.",
                      "Look for divisions, logs or exponentials in forward, and at how weights are initialised.")
    return result(check, True, f"forward on a batch of {batch} returned {shape}, all finite.")


def dropout(check: Check, facts: Facts, rubric: Rubric) -> CheckResult:
    model = check.model
    drop, problem = _measured(check, facts, "dropout", f"{model.symbol}.forward")
    if problem:
        return problem
    rows = [r.name for r in (model.table or ()) if r.type == "Dropout"]
    named = " and ".join(rows) if rows else "dropout"
    if not drop["train_differs"]:
        return result(check, False, f"In train mode, two forward passes over the same batch gave identical scores, "
                                    f"so {named} are not dropping anything.",
                      "Use nn.Dropout(p=0.5) where the table has Dropout rows, or F.dropout(x, 0.5, training=self.training).")
    if not drop["eval_same"]:
        return result(check, False, "In eval mode, two forward passes over the same batch gave different scores: "
                                    "dropout (or other randomness) stays on after model.eval().",
                      "F.dropout is on by default; pass training=self.training, or use nn.Dropout modules.")
    return result(check, True, f"Outputs vary between passes in train mode and are repeatable in eval mode ({named}).")


def gradients(check: Check, facts: Facts, rubric: Rubric) -> CheckResult:
    model = check.model
    grads, problem = _measured(check, facts, "gradients", f"A training step of {model.symbol}",
                               "The loss must be computed from forward's output with gradients enabled.")
    if problem:
        return problem
    problems = []
    if grads["missing"]:
        problems.append(f"no gradient reached {_names(grads['missing'])} (is part of forward cut off from "
                        "autograd by .detach(), .data, torch.no_grad() or numpy?)")
    if grads["frozen"]:
        problems.append(f"{_names(grads['frozen'])} cannot learn (requires_grad=False)")
    if grads["nonfinite"]:
        problems.append(f"the gradient of {_names(grads['nonfinite'])} is NaN or infinite")
    note = ""
    if grads.get("unused"):
        note = f" Not used in forward, so not expected to get gradients: {_names(grads['unused'])}."
    if problems:
        return result(check, False, "After one backward pass, " + "; ".join(problems) + "." + note)
    used = grads["total"] - len(grads.get("unused", []))
    return result(check, True, f"All {used} parameter tensors used in forward got finite gradients." + note)


def training(check: Check, facts: Facts, rubric: Rubric) -> CheckResult:
    model = check.model
    tr, problem = _measured(check, facts, "training", f"Training {model.symbol}")
    if problem:
        return problem
    before, after = number(tr["before"]), number(tr["after"])
    losses = [number(x) for x in tr["losses"]]
    setting = f"{tr['steps']} training steps on one fixed batch of {tr['batch']} images"
    if any(x != x or x in (float("inf"), float("-inf")) for x in losses) or after != after:
        bad = next((i for i, x in enumerate(losses) if x != x or abs(x) == float("inf")), len(losses))
        return result(check, False, f"The training loss became NaN or infinite at step {bad + 1} of {setting}.",
                      "Look for operations that overflow, and at how weights are initialised.")
    need = (model.training or rubric.training).min_drop
    drop = (before - after) / before if before > 0 else 0.0
    curve = ", ".join(f"{x:.3f}" for x in losses)
    if drop < need:
        return result(check, False,
                      f"After {setting}, the loss went from {before:.3f} to {after:.3f} ({drop:.1%} lower; at least "
                      f"{need:.0%} lower was expected). Training losses: {curve}.",
                      "Forward should return raw scores (no softmax or ReLU at the end), weights should start random, "
                      "and nothing in forward should stop gradients.")
    return result(check, True, f"After {setting}, the loss fell from {before:.3f} to {after:.3f} ({drop:.1%} lower).")


def _names(names: list[str], limit: int = 4) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _shared(measure):
    """A behaviour check on a class count measured as another's (grader.verifier.alike) says so."""
    @functools.wraps(measure)
    def check_with_note(check: Check, facts: Facts, rubric: Rubric) -> CheckResult:
        found = measure(check, facts, rubric)
        outcome = _behaviour(facts, check)
        shared = outcome.result.get("shared") if outcome and isinstance(outcome.result, dict) else None
        if isinstance(shared, dict) and shared.get("num_classes") is not None:
            found.message += (f" (Measured on {check.model.symbol} with {shared['num_classes']} classes: its exported "
                              f"graph is this one's but for the class count.)")
            found.details["measured_with_classes"] = shared["num_classes"]
        return found
    return check_with_note


CHECKS = {"construct": construct, "architecture": architecture, "forward": _shared(forward),
          "dropout": _shared(dropout), "gradients": _shared(gradients), "training": _shared(training)}
