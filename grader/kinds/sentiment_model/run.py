"""The scoring side of the sentiment model: one probe in the worker. The character model's plan
is the same with another op (grader.kinds.next_char_model.run)."""
from __future__ import annotations

OP = "sentiment"
RANKS = {OP: 2}
VERIFIED = False  # measured in the worker: see the kind's `unverified`


def probe_key(check) -> tuple:
    return (OP, check.task.id)


def required_symbols(check) -> list[str]:
    return [check.task.params["symbol"], check.task.params["cell"]]


def inside_key(check) -> None:
    return None


def request(runner, key: tuple, check) -> tuple[str, dict, str]:
    p = dict(check.task.params)
    return key[0], {**p, "seed": runner.rubric.training.seed}, f"{p['symbol']}(...)"


def after(runner) -> None:
    pass
