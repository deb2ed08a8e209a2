"""A recurrent cell measured inside the worker: only where export failed.

The same measurements as grader.kinds.cell.measure, run on the student's class itself,
with torch's kernel watch added. Its results are the worker's word: the checks mark them
so, and hold their passes for the course staff (grader.checks.evaluate).
"""
from __future__ import annotations

import contextlib
import io
import re

import torch
import torch.nn as nn

from grader.worker import failures
from grader.worker.kernelwatch import KernelWatch, graph_kernels, tamper_calls
from grader.worker.probes import _symbol

from . import anatomy
from .measure import BUILTIN_KERNELS, behaviour, contract


def _builtin_modules(module: nn.Module) -> list[str]:
    return [f"{name or 'self'} ({type(m).__name__})" for name, m in module.named_modules()
            if isinstance(m, (nn.RNNBase, nn.RNNCellBase))]


def _count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# ------------------------------------------------------------------------------ cells

def cell(symbol: str, family: str, seed: int) -> dict:
    """Contract, parameter counts and behaviour of one cell class, measured here where export
    failed (else grader.verifier.cells measures them); stops at the first stage the student's
    code cannot get through and says which."""
    Cell = _symbol(symbol)
    spy = KernelWatch(BUILTIN_KERNELS, profile=True)  # the profiler sees lstm_cell even with the modes off
    result: dict = {"error": None, "builtin_calls": spy.calls, "builtin_modules": []}
    stage = "construct"
    try:
        with spy:
            torch.manual_seed(seed)
            stage = "construct"
            graded = Cell(128, 100, True)
            result["builtin_modules"] = _builtin_modules(graded)
            result["params"] = _count(graded)
            result["params_without_bias"] = _count(Cell(128, 100, False))
            result["params_default_bias"] = _count(Cell(128, 100))
            stage = "keywords"
            Cell(input_size=128, hidden_size=100, bias=True)  # the models build cells with keywords
            stage = "count_parameters"
            result["count_parameters"] = _reported_count(graded)
            stage = "forward"
            contract(Cell, result)
            stage = "behaviour"
            behaviour(Cell, result, seed, on_loss=lambda loss: result.update(builtin_graph=graph_kernels(loss, BUILTIN_KERNELS)))
            # Parts computed and never used (a dropped forget gate, dead rows of a shared Linear).
            result["anatomy"] = anatomy.cell_anatomy(Cell, family, seed)
    except BaseException as exc:
        result["error"] = failures.describe(exc, stage)
    # The autograd graph is the engine's record, for a kernel run where the watch did not look.
    graph = result.pop("builtin_graph", [])
    if not spy.calls:
        spy.calls += [{"kernel": k, "route": None, "where": "", "by": "graph", "node": n} for n, k in graph]
    spy.calls += tamper_calls(spy)
    return result


def _reported_count(graded: nn.Module) -> dict:
    """What count_parameters says: the starter's prints "Total Parameters: N" and returns None."""
    method = getattr(graded, "count_parameters", None)
    if method is None:
        return {"present": False}
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        returned = method()
    numbers = [int(n.replace(",", "")) for n in re.findall(r"\d[\d,]*", printed.getvalue())]
    value = returned if isinstance(returned, int) and not isinstance(returned, bool) else (numbers[-1] if numbers else None)
    return {"present": True, "value": value, "printed": printed.getvalue()[:200]}


def memory(symbol: str, family: str, seed: int) -> dict:
    from .memory_task import memory_task

    Cell = _symbol(symbol)
    spy = KernelWatch(BUILTIN_KERNELS)  # no profiler: it would record every op of the training
    try:
        with spy:
            outcome = memory_task(lambda i, h: Cell(i, h, True), seed=seed)
        outcome["error"] = None
    except BaseException as exc:
        outcome = {"error": failures.describe(exc, "train")}
    outcome["builtin_calls"] = spy.calls + tamper_calls(spy)
    return outcome
