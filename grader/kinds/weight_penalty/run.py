"""The scoring side of the penalty kind: it draws the test model's weights, and judges the gradient.

The worker returns only the raw gradient of the student's penalty per parameter; the
scorer divides it by sign(w) of the weights it drew, fresh for each grade. An L1 penalty
gives the same positive number everywhere, and a forged reply has to be that gradient.
"""
from __future__ import annotations

import math
import random
import secrets

from ..wire import numbers
from .spec import SHAPES

RANKS = {"penalty": 1}
VERIFIED = False  # judged by the scorer itself


def probe_key(check) -> tuple:
    return ("penalty", check.task.id)


def required_symbols(check) -> list[str]:
    return [check.task.params["function"]]


def inside_key(check) -> None:
    return None


def request(runner, key: tuple, check) -> tuple[str, dict, str]:
    weights = draw()
    runner.kind_state.setdefault("weight_penalty", {})[key] = weights
    fn = check.task.params["function"]
    return "penalty", {"symbol": fn, "strength": check.task.params.get("strength", 1e-3), "weights": weights}, \
        f"{fn}(model, ...)"


def after(runner) -> None:
    pass


def draw() -> dict[str, list[float]]:
    """Random weights with no value near 0 (sign(0) would hide the penalty's shape)."""
    rng = random.Random(secrets.randbits(64))
    out = {}
    for name, shape in SHAPES.items():
        values = []
        for _ in range(math.prod(shape)):
            v = rng.uniform(-0.3, 0.3)
            values.append(v if abs(v) >= 0.01 else math.copysign(0.01, v or 1.0))
        out[name] = values
    return out


def judge(runner, key: tuple, reply: dict) -> dict:
    return judged(runner.kind_state["weight_penalty"].pop(key), reply)


def judged(weights: dict[str, list[float]], reply: dict) -> dict:
    """The facts the penalty check reads: gradient / sign(w) per parameter, from the raw gradient."""
    result = {k: reply[k] for k in ("error", "call", "value", "no_grad") if k in reply}
    result["params"] = []
    if reply.get("error") or reply.get("no_grad"):
        return result
    grads = reply.get("grads")
    if not isinstance(grads, dict):
        return {**result, "error": {"type": "ValueError", "message": "the grading process sent no gradients",
                                    "stage": "call", "file": None, "line": None, "code": None, "trace": []}}
    for name, w in weights.items():
        raw = grads.get(name)
        if raw is None:
            result["params"].append({"name": name, "grad": False})
            continue
        g = numbers(raw, len(w))
        if g is None:
            return {**result, "error": {"type": "ValueError", "message": f"the gradient of {name} sent back is not "
                                        f"{len(w)} numbers", "stage": "call", "file": None, "line": None, "code": None,
                                        "trace": []}}
        ratios = [gi / math.copysign(1.0, wi) for gi, wi in zip(g, w)]
        finite = [r for r in ratios if math.isfinite(r)]
        result["params"].append({"name": name, "grad": True,
                                 "min": min(finite) if len(finite) == len(ratios) else -math.inf,
                                 "max": max(finite) if len(finite) == len(ratios) else math.inf,
                                 "zero": all(gi == 0 for gi in g)})
    return result
