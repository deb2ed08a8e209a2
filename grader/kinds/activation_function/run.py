"""The scoring side of the activation kind: it draws x, and judges what came back.

The worker returns only the raw y and dy/dx of the student's function on x; the scorer
compares them with x * sigmoid(x) on those very inputs, fresh for each grade. To forge
the reply, a submission has to compute Swish itself, which is the homework. Pure Python:
the scoring process never imports torch.
"""
from __future__ import annotations

import math
import random
import secrets

from ...sourcescan import SILU
from ..wire import numbers
from .spec import SHAPE

RANKS = {"activation": 1}
VERIFIED = False  # judged by the scorer itself


def probe_key(check) -> tuple:
    return ("activation", check.task.id)


def required_symbols(check) -> list[str]:
    return [check.task.params["function"]]


def inside_key(check) -> None:
    return None


def request(runner, key: tuple, check) -> tuple[str, dict, str]:
    x = draw()
    runner.kind_state.setdefault("activation_function", {})[key] = x
    fn = check.task.params["function"]
    return "activation", {"symbol": fn, "x": x}, f"{fn}(x)"


def after(runner) -> None:
    """The source scan for torch's own SiLU."""
    for task in runner.rubric.tasks:
        if task.kind == "activation_function":
            runner.facts.source_findings[task.params["function"]] = runner.scan(task.params["function"], SILU)


def draw() -> list[float]:
    rng = random.Random(secrets.randbits(64))
    sweep = [-8 + 16 * i / 160 for i in range(161)]
    return sweep + [rng.gauss(0, 3) for _ in range(math.prod(SHAPE) - len(sweep))]


def judge(runner, key: tuple, reply: dict) -> dict:
    return judged(runner.kind_state["activation_function"].pop(key), reply)


def _swish(x: float) -> tuple[float, float]:
    s = 1 / (1 + math.exp(-x)) if x >= 0 else math.exp(x) / (1 + math.exp(x))
    return x * s, s + x * s * (1 - s)


def _gap(a: float, b: float) -> float:
    return abs(a - b) if math.isfinite(a) else math.inf


def judged(x: list[float], reply: dict) -> dict:
    """The facts the activation checks read, from the worker's raw y and dy/dx."""
    result = {k: reply[k] for k in ("error", "kind", "silu_graph", "silu_routes", "silu_calls", "silu_kernels",
                                     "watch_tampered", "silu_module") if k in reply}
    if reply.get("error"):
        return result
    result["shape_ok"] = reply.get("shape") == SHAPE
    y = numbers(reply.get("y"), len(x)) if result["shape_ok"] else None
    grad = numbers(reply.get("grad"), len(x)) if reply.get("grad") is not None else None
    result["inplace_changed_input"] = False
    if not result["shape_ok"]:
        result.update(max_error=None, grad_error=None, worst=None)
        return result
    if y is None:
        return {**result, "error": {"type": "ValueError", "message": "the grading process sent values that are not "
                                    "300 numbers", "stage": "forward", "file": None, "line": None, "code": None,
                                    "trace": []}}
    want = [_swish(v) for v in x]
    errors = [_gap(got, w) for got, (w, _) in zip(y, want)]
    worst = max(range(len(x)), key=lambda i: errors[i])
    result["max_error"] = errors[worst]
    result["worst"] = {"x": x[worst], "got": y[worst], "want": want[worst][0]}
    result["grad_error"] = max(_gap(g, d) for g, (_, d) in zip(grad, want)) if grad is not None else None
    return result
