"""The calls of a sequence model its checks make, named the same way on both sides.

The worker records each call the measurements make as one graph (grader.worker.record);
the verifier's stand-in (grader.verifier.standin) runs the graph whose key matches the
call it is asked for. A key says the mode, the weights' dtype and each argument's shape;
for the arguments the grader fixes (the review lengths), their values too, since a
recorded graph may have read them. The character model's calls use the same keys.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Call:
    """One call the measurements make: its stage (for messages) and arguments."""

    stage: str  # the measurement's stage when it makes this call: "forward", "padding", ...
    args: tuple
    train: bool = False
    float64: bool = False  # on a float64 copy of the model, as the unused-parts test runs it
    needed: bool = True  # False: a failure only skips the part that needs it (the unused parts)


def weights_dtype(model) -> torch.dtype:
    """The dtype of the first floating weight by name: the same on the model and its stand-in."""
    for _, p in sorted(model.named_parameters(), key=lambda item: item[0]):
        if p.is_floating_point():
            return p.dtype
    return torch.get_default_dtype()


def key(training: bool, dtype: torch.dtype, args: tuple, fixed: frozenset[int]) -> str:
    """"eval/float32/4x7:int64/=5,3,7,2": what identifies a call's graph."""
    parts = ["train" if training else "eval", str(dtype).removeprefix("torch.")]
    for i, arg in enumerate(args):
        parts.append(_describe(arg, i in fixed))
    return "/".join(parts)


def _describe(arg, fixed: bool) -> str:
    if arg is None:
        return "-"
    if isinstance(arg, torch.Tensor):
        if fixed:
            return "=" + ",".join(str(v) for v in arg.reshape(-1).tolist())
        return "x".join(str(s) for s in arg.shape) + ":" + str(arg.dtype).removeprefix("torch.")
    if isinstance(arg, (tuple, list)):
        return "(" + ",".join(_describe(a, fixed) for a in arg) + ")"
    return type(arg).__name__


class Recorded(Exception):
    """The student's code failed on this call when the worker recorded it: its error, as data."""

    def __init__(self, error: dict):
        super().__init__(str(error.get("message", "")))
        self.error = error


def describe(exc: BaseException, stage: str) -> dict:
    """An error of a measurement, wherever it ran: the worker's own (the student's traceback),
    a failure recorded by the worker, or a step of a graph the verifier ran."""
    if isinstance(exc, Recorded):
        return {**exc.error, "stage": stage}
    node = getattr(exc, "node", None)
    if node is not None:
        return {"type": "RuntimeError", "message": str(exc)[:500], "stage": stage, **place(node.where),
                "code": None, "trace": []}
    from grader.worker import failures

    return failures.describe(exc, stage)


def place(where: str) -> dict:
    """"file.py:12" (a recorded node's or a stopped recording's line) as an error's file and line."""
    file, _, line = where.rpartition(":")
    return {"file": file or None, "line": int(line) if line.isdigit() else None}
