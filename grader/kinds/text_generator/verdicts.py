"""The writer's verdicts: the texts' start and length, sampling from the model, and the seed."""
from __future__ import annotations

from ...checks.common import explain, result, unavailable
from ...facts import Facts
from ...handoff import given_text
from ...results import CheckResult
from ...rubric import Check, Rubric
from ...verifying import INSIDE
from ..wire import decode
from .facts import TextFacts

SAMPLE_HINT = "Use sample_next_char_id (a Categorical over the logits) instead of argmax."
UNCRAFTED = f"{INSIDE}: the grader could not set the output layer of the model the writer built"


def _facts(check: Check, facts: Facts) -> tuple[TextFacts | None, CheckResult | None]:
    outcome = facts.probes.get(("writer", check.task.id))
    problem = unavailable(check, facts, check.task.params["function"], outcome)
    if problem:
        return None, problem
    return decode(TextFacts, outcome.result), None


def _lowered(res: TextFacts) -> str:
    """Which of the submission's own lengths the grader lowered, to say so in the message."""
    if not res.lowered:
        return ""
    return f" ({', '.join(res.lowered[:3])} set to {res.expected_length} while grading, so it runs quickly)"


def _share(res: TextFacts) -> str:
    """"'k' 74% and 'W' 26%": the distribution drawn for this grade, likelier first."""
    ranked = sorted(res.probabilities.items(), key=lambda kv: -kv[1])
    return " and ".join(f"{ch!r} {p:.0%}" for ch, p in ranked)


def writer_text(check: Check, facts: Facts, rubric: Rubric) -> CheckResult:
    res, problem = _facts(check, facts)
    if problem:
        return problem
    fn = check.task.params["function"]
    starts = check.task.params["start"]
    runs = res.of("first", "start")
    skipped = [r.start for r in res.skipped_runs if r.purpose == "start"]
    if len(runs) + len(skipped) < len(starts):
        return result(check, False, explain(res.error, f"{fn} from {starts[len(runs)]!r}") + " "
                      + given_text(facts.handoffs.get(check.task.id)))
    expected = res.expected_length
    for run in runs:
        if run.type != "str":
            return result(check, False, f"{fn} returned a {run.type} for {run.start!r}; it should return the text.")
        if not run.starts:
            return result(check, False, f"The text for {run.start!r} does not start with it: {run.head[:40]!r}...",
                          "Return the start string followed by the generated characters.")
        if expected and run.length not in (expected, expected + len(run.start)):
            return result(check, False, f"The text for {run.start!r} has {run.length:,} characters; "
                                        f"{expected:,} generated characters were asked for{_lowered(res)}.",
                          "Generate exactly the requested number of characters after the start string.")
    heads = "; ".join(f"{r.start!r}: {r.head[:30]!r}..." for r in runs)
    note = ""
    if skipped:
        seconds = max(r.seconds_per_text for r in res.skipped_runs)
        note = (f" {', '.join(map(repr, skipped))} was not run: one text took {seconds:.0f} s, and the time limit "
                "would not allow more.")
    return result(check, True, f"{fn} returned texts that start with {', '.join(repr(r.start) for r in runs)} and "
                               f"have the requested length{_lowered(res)} ({heads}).{note}")


def writer_sampling(check: Check, facts: Facts, rubric: Rubric) -> CheckResult:
    res, problem = _facts(check, facts)
    if problem:
        return problem
    fn = check.task.params["function"]
    runs = [r for r in res.of("first", "start", "seed") if r.type == "str"]
    if not runs:
        return result(check, False, "Not graded: no text came back (see the previous check).")
    if res.crafted:
        return _against_the_model(check, res, runs)
    first, other = res.of("first")[:1], res.of("seed")[:1]
    if first and other and other[0].same_as_first:
        return result(check, False, "Two different seeds gave the same text: the characters are not sampled.",
                      SAMPLE_HINT)
    if not other:
        return result(check, False, "Not graded: the grader could not set the writer's output layer, and there was no "
                                    "time to compare texts from two seeds.")
    return result(check, True, f"Different seeds give different texts (the grader could not set {fn}'s output layer, "
                               "so the distribution itself was not checked).", measured_inside=UNCRAFTED)


def _against_the_model(check: Check, res: TextFacts, runs: list) -> CheckResult:
    """The texts against the distribution drawn for this grade: only its characters, both of
    them, and the likelier one more often."""
    favoured = sorted(res.probabilities, key=lambda ch: -res.probabilities[ch])
    others = sum(r.other_chars for r in runs)
    if others:
        sample = next((r.sample_of_others for r in runs if r.sample_of_others), "")
        return result(check, False, f"The grader's model gives all the probability to {_share(res)}, but the text has "
                                    f"{others:,} other characters (such as {sample[:10]!r}).",
                      "Sample the next character from the model's own scores (sample_next_char_id), not from a fixed "
                      "distribution.")
    totals = {ch: sum(r.counts.get(ch, 0) for r in runs) for ch in favoured}
    used = [ch for ch in favoured if totals[ch]]
    if len(used) < len(favoured):
        return result(check, False, f"The grader's model gives {_share(res)}, but only {', '.join(map(repr, used))} "
                                    "appeared: the next character is the most likely one each time, not a sample.",
                      SAMPLE_HINT)
    n = sum(totals.values())
    seen = " and ".join(f"{ch!r} {totals[ch] / n:.0%}" for ch in favoured)
    if n >= 100 and totals[favoured[0]] <= totals[favoured[1]]:
        # 100 draws or more at 70% or more: an honest sampler falls behind here in 1 grade of 45,000 at worst
        return result(check, False, f"The grader's model gives {_share(res)}, but the {n:,} generated characters were "
                                    f"{seen}: they are not drawn with the model's probabilities.",
                      "Sample from the softmax of the logits as they are (sample_next_char_id).")
    return result(check, True, f"With the grader's model ({_share(res)}, drawn for this grade), the generated "
                               f"characters come only from the model's distribution, in about its proportions ({seen}).")


def writer_seeded(check: Check, facts: Facts, rubric: Rubric) -> CheckResult:
    res, problem = _facts(check, facts)
    if problem:
        return problem
    first, again = res.of("first")[:1], res.of("repeat")[:1]
    if not first or not again or any(r.type != "str" for r in first + again):
        return result(check, False, "Not graded: no text came back (see the first check of this part).")
    if not again[0].same_as_first:
        return result(check, False, f"The same seed gave two different texts for {first[0].start!r}.",
                      "Draw all randomness from torch's generator, so torch.manual_seed makes a run repeatable.")
    return result(check, True, f"torch.manual_seed makes the text for {first[0].start!r} repeatable.")


CHECKS = {"text": writer_text, "sampling": writer_sampling, "seeded": writer_seeded}
