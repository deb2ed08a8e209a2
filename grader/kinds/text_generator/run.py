"""The scoring side of the text generator: it draws the crafted model's distribution, and reads the texts.

For each grade the scorer draws two characters and how the probability is split between
them (the likelier one gets 70-80%). The worker crafts the model's output layer so, runs the
writer, and sends back only the raw texts. Everything the checks read is counted here from
those texts. Pure Python: the scoring process never imports torch.
"""
from __future__ import annotations

import math
import random
import secrets
import string

from ..wire import decode
from .facts import TextFacts, TextRun, WriterReply
from .spec import MAX_TEXT

RANKS = {"writer": 4}
VERIFIED = False  # judged by the scorer itself
SHOWN = 160  # characters of a text quoted in a message


def probe_key(check) -> tuple:
    return ("writer", check.task.id)


def required_symbols(check) -> list[str]:
    return [check.task.params["function"], check.task.params["model"]]


def inside_key(check) -> None:
    return None


def draw() -> dict[str, float]:
    """Two letters and their log-probabilities; the likelier gets 70-80%, so a sample of a
    hundred characters tells them apart, and argmax shows as one letter only."""
    rng = random.Random(secrets.randbits(64))
    first, second = rng.sample(string.ascii_letters, 2)
    p = rng.uniform(0.70, 0.80)
    return {first: math.log(p), second: math.log(1 - p)}


def request(runner, key: tuple, check) -> tuple[str, dict, str]:
    favoured = draw()
    runner.kind_state.setdefault("text_generator", {})[key] = favoured
    p = dict(check.task.params)
    args = {**p, "seed": runner.rubric.training.seed, "favoured": favoured,
            "handoff": runner.facts.handoffs.get(check.task.id), "budget_seconds": None}  # the runner sets the budget
    return "writer", args, f"{p['function']}(...)"


def after(runner) -> None:
    pass


def judge(runner, key: tuple, reply: dict) -> dict:
    """The facts of the writer checks, as plain data (grader.kinds.text_generator.facts.TextFacts)."""
    favoured = runner.kind_state["text_generator"].pop(key)
    return judged(favoured, decode(WriterReply, reply)).as_wire()


def judged(favoured: dict[str, float], reply: WriterReply) -> TextFacts:
    probabilities = {ch: math.exp(logit) for ch, logit in favoured.items()}
    runs = [_run(r, probabilities) for r in reply.runs]
    first = next((r for r in reply.runs if r.purpose == "first"), None)
    for run, raw in zip(runs, reply.runs):
        if raw.purpose in ("repeat", "seed") and first is not None and first.text is not None:
            run.same_as_first = raw.text == first.text
    return TextFacts(error=reply.error, crafted=reply.crafted is True, probabilities=probabilities, runs=runs,
                     expected_length=reply.expected_length, lowered=[str(n)[:100] for n in reply.lowered[:5]],
                     skipped_runs=reply.skipped_runs, served=reply.served)


def _run(raw, probabilities: dict[str, float]) -> TextRun:
    text = raw.text[:MAX_TEXT] if isinstance(raw.text, str) and raw.type == "str" else None
    if text is None:
        return TextRun(purpose=raw.purpose, start=raw.start[:100], type=raw.type[:100])
    generated = text[len(raw.start):] if text.startswith(raw.start) else text
    counts = {ch: generated.count(ch) for ch in probabilities}
    others = "".join(sorted({c for c in generated if c not in probabilities}))
    return TextRun(purpose=raw.purpose, start=raw.start[:100], type="str", length=len(text),
                   starts=text.startswith(raw.start), head=text[:SHOWN], counts=counts,
                   other_chars=len(generated) - sum(counts.values()), sample_of_others=others[:40])
