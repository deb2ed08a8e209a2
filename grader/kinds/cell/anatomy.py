"""Parts of a recurrent cell computed and never used, measured (see grader.worker.anatomy).

The dead parameter rows of every family, and for cells with a cell state the derivative
of c_t with respect to c_{t-1} and whether h_t is tanh(c_t) alone. Everything runs in
float64 where the student's code allows, on parameters drawn here.
"""
from __future__ import annotations

import contextlib
import math

import torch
import torch.nn as nn

from grader.worker.anatomy import Touched, dead_parts, default_dtype

INPUT, HIDDEN = 128, 100  # the handout's sizes: rows are reported in the student's own numbering
SMALL_INPUT, SMALL_HIDDEN, BATCH = 6, 8, 3  # for the Jacobian with respect to the old cell state
ROW_TRIALS, JACOBIAN_TRIALS, STEPS = 2, 3, 3


def _reinit(module: nn.Module, hidden: int, g: torch.Generator) -> dict[str, torch.Tensor]:
    """The starter's init, U(-1/sqrt(H), 1/sqrt(H)), drawn by the probe on every trainable parameter."""
    params = {n: p for n, p in module.named_parameters() if p.requires_grad}
    bound = 1.0 / math.sqrt(hidden)
    with torch.no_grad():
        for p in params.values():
            p.copy_((torch.rand(p.shape, generator=g, dtype=p.dtype) * 2 - 1) * bound)
    return params


def random_state(family: str, batch: int, hidden: int, g: torch.Generator, dtype):
    h = (torch.rand(batch, hidden, generator=g, dtype=dtype) * 2 - 1) * 0.9  # |h| < 1, as a cell's output is
    if family == "gru":
        return h
    return h, torch.randn(batch, hidden, generator=g, dtype=dtype)


def _parts(state) -> list[torch.Tensor]:
    if isinstance(state, torch.Tensor):
        return [state]
    if isinstance(state, (tuple, list)) and all(isinstance(s, torch.Tensor) for s in state):
        return list(state)
    raise TypeError(f"the cell returned {type(state).__name__}, not a tensor or a pair of tensors")


def _pair(state):
    if isinstance(state, (tuple, list)) and len(state) == 2 and all(isinstance(s, torch.Tensor) for s in state):
        return state
    return None


def _dead_rows(Cell, family: str, g: torch.Generator, dtype) -> dict:
    cell = Cell(INPUT, HIDDEN, True).to(dtype).eval()
    params = _reinit(cell, HIDDEN, g)
    totals: dict[str, torch.Tensor | None] = {n: None for n in params}
    touched: set[str] = set()
    for trial in range(ROW_TRIALS):
        state = random_state(family, BATCH, HIDDEN, g, dtype)
        watch = Touched(params)
        loss = torch.zeros((), dtype=dtype)
        with watch if trial == 0 else contextlib.nullcontext():
            for _ in range(STEPS):
                state = cell(torch.randn(BATCH, INPUT, generator=g, dtype=dtype), state)
                # a loss that reads h and c, with random weights so that no two paths cancel
                loss = loss + sum((torch.randn(s.shape, generator=g, dtype=s.dtype) * s).sum() for s in _parts(state))
        touched |= watch.seen
        if not loss.requires_grad:
            continue
        grads = torch.autograd.grad(loss, list(params.values()), allow_unused=True)
        for (name, _), grad in zip(params.items(), grads):
            if grad is not None:
                totals[name] = grad.abs() if totals[name] is None else totals[name] + grad.abs()
    return {"dead": dead_parts(params, totals, HIDDEN, touched),
            "parameters": {n: list(p.shape) for n, p in params.items()}}


def _cell_state_path(Cell, g: torch.Generator, dtype) -> dict:
    """dc_t/dc_{t-1} and h_t against tanh(c_t), on a small cell over several random inputs and states."""
    cell = Cell(SMALL_INPUT, SMALL_HIDDEN, True).to(dtype).eval()
    _reinit(cell, SMALL_HIDDEN, g)
    n = BATCH * SMALL_HIDDEN
    one = zero = diagonal = h_tanh = True
    units_one = torch.ones(SMALL_HIDDEN, dtype=torch.bool)
    moves = False
    low, high = math.inf, -math.inf
    for _ in range(JACOBIAN_TRIALS):
        x = torch.randn(BATCH, SMALL_INPUT, generator=g, dtype=dtype)
        h0, c0 = random_state("lstm", BATCH, SMALL_HIDDEN, g, dtype)
        new_c = lambda c: _pair(cell(x, (h0, c.clone())))[1]
        with torch.no_grad():
            out = _pair(cell(x, (h0, c0)))
            if out is None or list(out[1].shape) != [BATCH, SMALL_HIDDEN]:
                return {"measured": False}
            h, c = out
            tol = 1e-12 if dtype == torch.float64 else 1e-6
            h_tanh &= bool(((h - torch.tanh(c)).abs() <= tol).all())
            nudged = new_c(c0 + torch.randn(c0.shape, generator=g, dtype=dtype))
            moves |= not bool(torch.equal(nudged, c))
        jac = torch.autograd.functional.jacobian(new_c, c0).reshape(n, n)
        diag = jac.diagonal()
        off = jac - torch.diag_embed(diag)
        diagonal &= bool((off == 0).all())
        one &= bool((diag == 1).all()) and bool((off == 0).all())
        zero &= bool((jac == 0).all())
        units_one &= (diag.reshape(BATCH, SMALL_HIDDEN) == 1).all(0)
        low, high = min(low, float(diag.min())), max(high, float(diag.max()))
    return {"measured": True, "trials": JACOBIAN_TRIALS, "one": one, "zero": zero, "diagonal": diagonal,
            "units_one": int(units_one.sum()), "units": SMALL_HIDDEN, "diag_range": [low, high],
            "value_depends": moves, "h_is_tanh_c": h_tanh}


def cell_anatomy(Cell, family: str, seed: int) -> dict:
    """Dead parameter rows (every family), and for cells with a cell state the derivative of
    c_t with respect to c_{t-1} and whether h_t is tanh(c_t). float64 first; float32 where
    the student's code insists on it."""
    error = None
    for dtype in (torch.float64, torch.float32):
        g = torch.Generator().manual_seed(seed + 17)
        torch.manual_seed(seed + 17)
        try:
            with default_dtype(dtype):
                out = {"error": None, "dtype": str(dtype).replace("torch.", ""), "hidden": HIDDEN,
                       **_dead_rows(Cell, family, g, dtype)}
                if family != "gru":
                    out["cell_state"] = _cell_state_path(Cell, g, dtype)
            return out
        except Exception as exc:  # the student's code, run on a state it did not make
            error = f"{type(exc).__name__}: {str(exc).strip()[:300]}"
    return {"error": error}
