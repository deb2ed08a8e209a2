"""The sentiment model's verdicts: two scores per review, read at each review's last real token.
The helpers here serve the character model's verdicts too."""
from __future__ import annotations

from ...checks.common import explain, result, unavailable
from ...facts import Facts
from ...results import CheckResult
from ...rubric import Check, Rubric
from ..wire import decode
from .facts import SentimentFacts, UnusedPart


def _probe(check: Check, facts: Facts, op: str, kind):
    """The check's facts, decoded as `kind`, or the failed result that says why there are none."""
    task = check.task
    outcome = facts.probes.get((op, task.id))
    symbol = task.params.get("function") or task.params.get("symbol")
    problem = unavailable(check, facts, symbol, outcome)
    return (None, problem) if problem else (decode(kind, outcome.result), None)


def _not_run(check: Check, error: dict | None, what: str, first_kind: str) -> CheckResult | None:
    """The shared failure when the probe stopped early: the first check explains, the others defer."""
    if not error:
        return None
    if check.kind.endswith(first_kind):
        return result(check, False, explain(error, what))
    return result(check, False, f"Not graded: {what} did not run (see the first check of this part).")


def _unreachable(parts: list[UnusedPart], no_gradient: list[str]) -> str:
    """'rows 6-11 of classifier.weight': parameter rows no input reaches the scores through."""
    shown = []
    for found in parts:
        if found.name in no_gradient:
            continue  # said already: no gradient at all
        if found.whole:
            shown.append(f"all of {found.name}")
            continue
        rows = ", ".join(f"{a}-{b}" if a != b else f"{a}" for a, b in (r[:2] for r in found.rows[:3] if len(r) >= 2))
        if rows:
            shown.append(f"row{'s' if '-' in rows or ',' in rows else ''} {rows} of {found.name}")
    return "; ".join(shown[:3])


def _unused_result(check: Check, parts: list[UnusedPart], no_gradient: list[str], symbol: str) -> CheckResult | None:
    where = _unreachable(parts, no_gradient)
    if not where:
        return None
    return result(check, False, f"Part of {symbol} is computed but never used: {where} never receive a gradient, "
                                "whatever the input (checked again after giving those units new weights).",
                  "Look for a layer or slice whose result is dropped, or units the next layer never reads.")


def sentiment_forward(check: Check, facts: Facts, rubric: Rubric) -> CheckResult:
    res, problem = _probe(check, facts, "sentiment", SentimentFacts)
    if problem:
        return problem
    symbol = check.task.params["symbol"]
    if res.shape is None and res.error:
        return _not_run(check, res.error, f"{symbol}(...) on a padded batch", ".forward")
    if res.shape != [4, 2]:
        return result(check, False, f"{symbol} returned {res.shape} for 4 reviews; expected [4, 2], two scores each.",
                      "The classifier is a Linear from the hidden size to 2, applied to one state per review.")
    if not res.finite:
        return result(check, False, f"{symbol} returned NaN or infinite scores.")
    unused = _unused_result(check, res.unreachable, res.no_gradient, symbol)
    if unused:
        return unused
    return result(check, True, f"{symbol}(vocabulary 50, embedding 16, the given {check.task.params['cell']}, hidden 12) "
                               "returns [4, 2] finite scores for 4 padded reviews.")


def sentiment_last_token(check: Check, facts: Facts, rubric: Rubric) -> CheckResult:
    res, problem = _probe(check, facts, "sentiment", SentimentFacts)
    if problem:
        return problem
    symbol = check.task.params["symbol"]
    if res.padding_invariant is None:
        if res.error:
            return result(check, False, explain(res.error, f"{symbol} on more padding"))
        return result(check, False, "Not graded: the forward check failed first.")
    if not res.padding_invariant:
        return result(check, False, "Adding more padding after the reviews changed their scores.",
                      "Take each review's hidden state at its last real token (batch_lengths - 1), not at the last step.")
    if not res.reads_last_token:
        return result(check, False, "Changing a review's last real token did not change its scores.",
                      "The state used for classification should come after reading the whole review.")
    return result(check, True, "Scores are the same with more padding, and depend on each review's last real token.")


CHECKS = {"forward": sentiment_forward, "last_token": sentiment_last_token}
