"""Checks on the RNN models of the sentiment and Shakespeare parts."""
from __future__ import annotations

from ..facts import Facts
from ..results import CheckResult
from ..rubric import Check, Rubric
from .common import explain, result, unavailable

_OPS = {"sentiment_model": "sentiment", "next_char_model": "generation"}


def _probe(check: Check, facts: Facts):
    task = check.task
    outcome = facts.probes.get((_OPS[task.kind], task.id))
    symbol = task.params.get("function") or task.params.get("symbol")
    problem = unavailable(check, facts, symbol, outcome)
    return (None, problem) if problem else (outcome.result, None)


def _not_run(check: Check, res: dict, what: str, first_kind: str) -> CheckResult | None:
    """The shared failure when the probe stopped early: the first check explains, the others defer."""
    error = res.get("error")
    if not error:
        return None
    if check.kind.endswith(first_kind):
        return result(check, False, explain(error, what))
    return result(check, False, f"Not graded: {what} did not run (see the first check of this part).")


def _unreachable(res: dict) -> str:
    """'rows 6-11 of classifier.weight': parameter rows no input reaches the scores through."""
    parts = []
    for found in res.get("unreachable") or []:
        if found.get("name") in (res.get("no_gradient") or []):
            continue  # said already: no gradient at all
        if found.get("whole"):
            parts.append(f"all of {found.get('name')}")
            continue
        rows = ", ".join(f"{a}-{b}" if a != b else f"{a}" for a, b in found.get("rows", [])[:3])
        if rows:
            parts.append(f"row{'s' if '-' in rows or ',' in rows else ''} {rows} of {found.get('name')}")
    return "; ".join(parts[:3])


def _unused_result(check: Check, res: dict, symbol: str) -> CheckResult | None:
    where = _unreachable(res)
    if not where:
        return None
    return result(check, False, f"Part of {symbol} is computed but never used: {where} never receive a gradient, "
                                "whatever the input (checked again after giving those units new weights).",
                  "Look for a layer or slice whose result is dropped, or units the next layer never reads.")


# ------------------------------------------------------------------ SentimentClassification

def sentiment_forward(check: Check, facts: Facts, rubric: Rubric) -> CheckResult:
    res, problem = _probe(check, facts)
    if problem:
        return problem
    symbol = check.task.params["symbol"]
    if "shape" not in res:
        return _not_run(check, res, f"{symbol}(...) on a padded batch", ".forward")
    if res["shape"] != [4, 2]:
        return result(check, False, f"{symbol} returned {res['shape']} for 4 reviews; expected [4, 2], two scores each.",
                      "The classifier is a Linear from the hidden size to 2, applied to one state per review.")
    if not res.get("finite"):
        return result(check, False, f"{symbol} returned NaN or infinite scores.")
    unused = _unused_result(check, res, symbol)
    if unused:
        return unused
    return result(check, True, f"{symbol}(vocabulary 50, embedding 16, the given {check.task.params['cell']}, hidden 12) "
                               "returns [4, 2] finite scores for 4 padded reviews.")


def sentiment_last_token(check: Check, facts: Facts, rubric: Rubric) -> CheckResult:
    res, problem = _probe(check, facts)
    if problem:
        return problem
    symbol = check.task.params["symbol"]
    if "padding_invariant" not in res:
        if res.get("error"):
            return result(check, False, explain(res["error"], f"{symbol} on more padding"))
        return result(check, False, "Not graded: the forward check failed first.")
    if not res["padding_invariant"]:
        return result(check, False, "Adding more padding after the reviews changed their scores.",
                      "Take each review's hidden state at its last real token (batch_lengths - 1), not at the last step.")
    if not res.get("reads_last_token"):
        return result(check, False, "Changing a review's last real token did not change its scores.",
                      "The state used for classification should come after reading the whole review.")
    return result(check, True, "Scores are the same with more padding, and depend on each review's last real token.")


# ------------------------------------------------------------------ SentenceGeneration

def generation_forward(check: Check, facts: Facts, rubric: Rubric) -> CheckResult:
    res, problem = _probe(check, facts)
    if problem:
        return problem
    symbol = check.task.params["symbol"]
    if "returns" not in res:
        return _not_run(check, res, f"{symbol}(history) on a [3, 10] batch", ".forward")
    if res["returns"] != "pair":
        return result(check, False, f"{symbol}.forward returned a {res['returns']}; it should return (logits, state).",
                      "The state lets generation continue one character at a time.")
    if res.get("shape") != [3, 30]:
        return result(check, False, f"For 3 histories over a vocabulary of 30, the logits have shape {res.get('shape')}; "
                                    "expected [3, 30]: scores for the next character only.",
                      "Apply the output layer to the last step's hidden state.")
    if not res.get("finite"):
        return result(check, False, "The logits contain NaN or infinite values.")
    if res.get("error"):
        return result(check, False, explain(res["error"], f"A backward pass through {symbol}"))
    if res.get("no_gradient"):
        return result(check, False, f"No gradient reaches {', '.join(res['no_gradient'][:4])}.",
                      "Every parameter should take part in forward.")
    unused = _unused_result(check, res, symbol)
    if unused:
        return unused
    return result(check, True, f"{symbol}(history) returns logits [3, 30] and a state; every parameter gets a gradient.")


def generation_continuation(check: Check, facts: Facts, rubric: Rubric) -> CheckResult:
    res, problem = _probe(check, facts)
    if problem:
        return problem
    if "continues" not in res:
        if res.get("error") and res["error"].get("stage") == "continuation":
            return result(check, False, explain(res["error"], "Feeding the second half with the state"))
        return result(check, False, "Not graded: the forward check failed first.")
    if not res["continues"]:
        return result(check, False, "Feeding a history in two halves, passing the state from the first to the second, "
                                    "gave different scores than feeding it whole.",
                      "forward(history, state) must start from `state` when it is given, and from zeros only when it is None.")
    return result(check, True, "Two halves with the state carried over give exactly the scores of the whole history.")


CHECKS = {"sentiment_model.forward": sentiment_forward, "sentiment_model.last_token": sentiment_last_token,
          "next_char_model.forward": generation_forward, "next_char_model.continuation": generation_continuation}
