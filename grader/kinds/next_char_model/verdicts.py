"""The character model's verdicts: logits over the vocabulary with a state, and exact continuation
from a passed state."""
from __future__ import annotations

from ...checks.common import explain, result
from ...facts import Facts
from ...results import CheckResult
from ...rubric import Check, Rubric
from ..sentiment_model.facts import GenerationFacts
from ..sentiment_model.verdicts import _not_run, _probe, _unused_result


def generation_forward(check: Check, facts: Facts, rubric: Rubric) -> CheckResult:
    res, problem = _probe(check, facts, "generation", GenerationFacts)
    if problem:
        return problem
    symbol = check.task.params["symbol"]
    if res.returns is None:
        return _not_run(check, res.error, f"{symbol}(history) on a [3, 10] batch", ".forward") or \
            result(check, False, f"{symbol}(history) gave no answer the grader could read.")
    if res.returns != "pair":
        return result(check, False, f"{symbol}.forward returned a {res.returns}; it should return (logits, state).",
                      "The state lets generation continue one character at a time.")
    if res.shape != [3, 30]:
        return result(check, False, f"For 3 histories over a vocabulary of 30, the logits have shape {res.shape}; "
                                    "expected [3, 30]: scores for the next character only.",
                      "Apply the output layer to the last step's hidden state.")
    if not res.finite:
        return result(check, False, "The logits contain NaN or infinite values.")
    if res.error and res.error.get("stage") == "gradients":
        return result(check, False, explain(res.error, f"A backward pass through {symbol}"))
    if res.no_gradient:
        return result(check, False, f"No gradient reaches {', '.join(res.no_gradient[:4])}.",
                      "Every parameter should take part in forward.")
    unused = _unused_result(check, res.unreachable, res.no_gradient or [], symbol)
    if unused:
        return unused
    return result(check, True, f"{symbol}(history) returns logits [3, 30] and a state; every parameter gets a gradient.")


def generation_continuation(check: Check, facts: Facts, rubric: Rubric) -> CheckResult:
    res, problem = _probe(check, facts, "generation", GenerationFacts)
    if problem:
        return problem
    if res.continues is None:
        if res.error and res.error.get("stage") == "continuation":
            return result(check, False, explain(res.error, "Feeding the second half with the state"))
        return result(check, False, "Not graded: the forward check failed first.")
    if not res.continues:
        return result(check, False, "Feeding a history in two halves, passing the state from the first to the second, "
                                    "gave different scores than feeding it whole.",
                      "forward(history, state) must start from `state` when it is given, and from zeros only when it is None.")
    return result(check, True, "Two halves with the state carried over give exactly the scores of the whole history.")


CHECKS = {"forward": generation_forward, "continuation": generation_continuation}
