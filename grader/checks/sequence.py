"""Checks on the RNN models and the text generator of the Shakespeare part."""
from __future__ import annotations

from ..facts import Facts
from ..handoff import given_text
from ..results import CheckResult
from ..rubric import Check, Rubric
from .common import explain, result, unavailable

_OPS = {"sentiment_model": "sentiment", "next_char_model": "generation", "text_generator": "writer"}


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


# ------------------------------------------------------------------ the writer

def _runs(res: dict, *purposes: str) -> list[dict]:
    runs = res.get("runs", [])
    return [r for r in runs if r.get("purpose") in purposes] if purposes else runs


def _lowered(res: dict) -> str:
    """Which of the submission's own lengths the grader lowered, to say so in the message."""
    names = [str(n) for n in res.get("lowered", []) if isinstance(n, str)][:3]
    if not names:
        return ""
    return f" ({', '.join(names)} set to {res.get('expected_length')} while grading, so it runs quickly)"


def writer_text(check: Check, facts: Facts, rubric: Rubric) -> CheckResult:
    res, problem = _probe(check, facts)
    if problem:
        return problem
    fn = check.task.params["function"]
    starts = check.task.params["start"]
    runs = _runs(res, "first", "start")
    skipped = [r.get("start") for r in res.get("skipped_runs", []) if r.get("purpose") == "start"]
    if len(runs) + len(skipped) < len(starts):
        return result(check, False, explain(res.get("error"), f"{fn} from {starts[len(runs)]!r}") + " "
                      + given_text(facts.handoffs.get(check.task.id)))
    expected = res.get("expected_length")
    for run in runs:
        if run.get("type") != "str":
            return result(check, False, f"{fn} returned a {run.get('type')} for {run['start']!r}; it should return the text.")
        if not run["starts"]:
            return result(check, False, f"The text for {run['start']!r} does not start with it: {run['head'][:40]!r}...",
                          "Return the start string followed by the generated characters.")
        if expected and run["length"] not in (expected, expected + len(run["start"])):
            return result(check, False, f"The text for {run['start']!r} has {run['length']:,} characters; "
                                        f"{expected:,} generated characters were asked for{_lowered(res)}.",
                          "Generate exactly the requested number of characters after the start string.")
    heads = "; ".join(f"{r['start']!r}: {r['head'][:30]!r}..." for r in runs)
    note = ""
    if skipped:
        seconds = max(float(r.get("seconds_per_text", 0)) for r in res["skipped_runs"])
        note = (f" {', '.join(map(repr, skipped))} was not run: one text took {seconds:.0f} s, and the time limit "
                "would not allow more.")
    return result(check, True, f"{fn} returned texts that start with {', '.join(repr(r['start']) for r in runs)} and "
                               f"have the requested length{_lowered(res)} ({heads}).{note}")


def writer_sampling(check: Check, facts: Facts, rubric: Rubric) -> CheckResult:
    res, problem = _probe(check, facts)
    if problem:
        return problem
    fn = check.task.params["function"]
    runs = [r for r in _runs(res) if r.get("type") == "str"]
    if not runs:
        return result(check, False, "Not graded: no text came back (see the previous check).")
    favoured = res.get("favoured", [])
    if res.get("crafted"):
        others = sum(r["other_chars"] for r in runs)
        if others:
            sample = runs[0].get("sample_of_others", "")
            return result(check, False, f"The grader's model puts all the probability on {' and '.join(map(repr, favoured))}, "
                                        f"but the text has {others:,} other characters (such as {sample[:10]!r}).",
                          "Sample the next character from the model's own scores (sample_next_char_id), not from a fixed distribution.")
        used = {ch for r in runs for ch, n in r["favoured_counts"].items() if n}
        if len(used) < len(favoured):
            return result(check, False, f"The model gives {' and '.join(map(repr, favoured))} equal probability, but only "
                                        f"{', '.join(map(repr, sorted(used)))} appeared: the next character is the most likely "
                                        "one each time, not a sample.",
                          "Use sample_next_char_id (a Categorical over the logits) instead of argmax.")
        return result(check, True, f"With the grader's model (half {favoured[0]!r}, half {favoured[1]!r}), the generated "
                                   "characters come only from the model's distribution, and both appear.")
    first, other = _runs(res, "first")[:1], _runs(res, "seed")[:1]
    if first and other and first[0].get("fingerprint") == other[0].get("fingerprint"):
        return result(check, False, "Two different seeds gave the same text: the characters are not sampled.",
                      "Use sample_next_char_id (a Categorical over the logits) instead of argmax.")
    if not other:
        return result(check, False, "Not graded: the grader could not set the writer's output layer, and there was no "
                                    "time to compare texts from two seeds.")
    return result(check, True, f"Different seeds give different texts (the grader could not set {fn}'s output layer, "
                               "so the distribution itself was not checked).")


def writer_seeded(check: Check, facts: Facts, rubric: Rubric) -> CheckResult:
    res, problem = _probe(check, facts)
    if problem:
        return problem
    first, again = _runs(res, "first")[:1], _runs(res, "repeat")[:1]
    if not first or not again or any(r.get("type") != "str" for r in first + again):
        return result(check, False, "Not graded: no text came back (see the first check of this part).")
    first, again = first[0], again[0]
    if first["fingerprint"] != again["fingerprint"]:
        return result(check, False, f"The same seed gave two different texts for {first['start']!r}.",
                      "Draw all randomness from torch's generator, so torch.manual_seed makes a run repeatable.")
    return result(check, True, f"torch.manual_seed makes the text for {first['start']!r} repeatable.")


CHECKS = {"sentiment_model.forward": sentiment_forward, "sentiment_model.last_token": sentiment_last_token,
          "next_char_model.forward": generation_forward, "next_char_model.continuation": generation_continuation,
          "text_generator.text": writer_text, "text_generator.sampling": writer_sampling,
          "text_generator.seeded": writer_seeded}
