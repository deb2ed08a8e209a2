"""The scoring side of the character model: one probe in the worker."""
from __future__ import annotations

RANKS = {"generation": 2}
VERIFIED = False  # measured in the worker: see the kind's `unverified`


def probe_key(check) -> tuple:
    return ("generation", check.task.id)


def required_symbols(check) -> list[str]:
    return [check.task.params["symbol"], check.task.params["cell"]]


def inside_key(check) -> None:
    return None


def request(runner, key: tuple, check) -> tuple[str, dict, str]:
    p = dict(check.task.params)
    return "generation", {**p, "seed": runner.rubric.training.seed}, f"{p['symbol']}(...)"


def after(runner) -> None:
    pass
