"""Parts of a model that are computed and never used: what the equations forbid, measured.

A cell whose forget gate is computed and then dropped (`c = c + i * g`) has the right
parameter count, and every parameter tensor still gets a gradient when the gates share one
Linear. What gives it away is behaviour the equations rule out:

- the new cell state's derivative with respect to the old one is exactly 1 for every input
  (f is a sigmoid: never exactly 1), or exactly 0 (c_t does not depend on c_{t-1});
- h_t equals tanh(c_t) exactly (no output gate scales it);
- parameter rows (output units: slices along dim 0 of a weight and its bias) whose gradient
  is exactly zero for every input. A cell's nonlinearities are sigmoids and tanh, whose
  derivatives are never exactly zero at moderate inputs, so an exactly-zero row is
  structural, not bad luck.

Everything runs in float64 on parameters the probe draws itself (a student's zero or
uninitialised weights would otherwise zero gradients by accident), with moderate inputs.
`unreachable_rows` is the same test for feed-forward models, where ReLU units that happen
to be dead on a batch must not count.
"""
from __future__ import annotations

import contextlib
import math

import torch
import torch.nn as nn
from torch.overrides import TorchFunctionMode



@contextlib.contextmanager
def default_dtype(dtype: torch.dtype):
    old = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(old)


class Touched(TorchFunctionMode):
    """Which parameters forward hands to any torch function (computed, whether or not used)."""

    def __init__(self, params: dict[str, torch.Tensor]):
        super().__init__()
        self.ids = {id(p): n for n, p in params.items()}
        self.seen: set[str] = set()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        for item in _tensors([args, kwargs or {}]):
            if id(item) in self.ids:
                self.seen.add(self.ids[id(item)])
        return func(*args, **(kwargs or {}))


def _tensors(value):
    """The tensors in nested lists, tuples and dicts."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, (list, tuple)):
            stack.extend(item)
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, torch.Tensor):
            yield item


def _ranges(mask: torch.Tensor) -> list[list[int]]:
    """[[first, last], ...] (inclusive) of the True runs of a 1-D mask."""
    out: list[list[int]] = []
    for i in torch.nonzero(mask).flatten().tolist():
        if out and out[-1][1] == i - 1:
            out[-1][1] = i
        else:
            out.append([i, i])
    return out


def _blocks(ranges: list[list[int]], size: int, block: int) -> list[list[int]]:
    """The 1-based blocks of `block` rows the ranges cover exactly, as [index, count]."""
    if block <= 0 or size % block or size == block:
        return []
    found = []
    for first, last in ranges:
        if first % block == 0 and (last + 1) % block == 0:
            found += [[k + 1, size // block] for k in range(first // block, (last + 1) // block)]
    return found


def dead_parts(params: dict[str, torch.Tensor], totals: dict[str, torch.Tensor | None], block: int,
               touched: set[str] = frozenset()) -> list[dict]:
    """Parameters, rows and columns whose accumulated |gradient| is exactly zero."""
    dead = []
    for name, p in params.items():
        total = totals.get(name)
        zero = torch.ones(p.shape, dtype=torch.bool) if total is None else (total == 0)
        if not bool(zero.any()):
            continue
        entry = {"name": name, "shape": list(p.shape), "whole": bool(zero.all()), "touched": name in touched}
        if not entry["whole"] and p.dim() >= 1:
            rows = _ranges(zero.reshape(p.shape[0], -1).all(1))
            columns = _ranges(zero.all(0)) if p.dim() == 2 else []
            if not rows and not columns:
                continue  # scattered entries (a masked matrix, say): no unit is left out
            entry.update(rows=rows, row_blocks=_blocks(rows, p.shape[0], block),
                         columns=columns, column_blocks=_blocks(columns, p.shape[-1], block) if columns else [])
        dead.append(entry)
    return dead


# ------------------------------------------------------------------------------ models

def _readout_loss(output, g: torch.Generator) -> torch.Tensor | None:
    """A random linear readout of every floating tensor in the output (logits, or (logits, state))."""
    loss = None
    for item in _tensors(output):
        if item.is_floating_point() and item.requires_grad:
            term = (torch.randn(item.shape, generator=g, dtype=item.dtype) * item).sum()
            loss = term if loss is None else loss + term
    return loss


def _accumulate(model: nn.Module, params: dict[str, torch.Tensor], make_input, trials: int,
                g: torch.Generator) -> dict[str, torch.Tensor | None]:
    totals: dict[str, torch.Tensor | None] = {n: None for n in params}
    for _ in range(trials):
        inputs = make_input(g)
        inputs = inputs if isinstance(inputs, tuple) else (inputs,)
        inputs = tuple(t.double() if isinstance(t, torch.Tensor) and t.is_floating_point() else t for t in inputs)
        loss = _readout_loss(model(*inputs), g)
        if loss is None:
            continue
        grads = torch.autograd.grad(loss, list(params.values()), allow_unused=True)
        for (name, _), grad in zip(params.items(), grads):
            if grad is not None:
                totals[name] = grad.abs() if totals[name] is None else totals[name] + grad.abs()
    return totals


def _revive(model: nn.Module, params: dict[str, torch.Tensor], candidates: list[dict], g: torch.Generator) -> None:
    """Wake the candidate rows: weights redrawn at a healthy scale and a bias of +1, so that a
    ReLU unit that was dead on the batch (a negative bias, an unlucky init) now fires."""
    modules = dict(model.named_modules())
    with torch.no_grad():
        for entry in candidates:
            p = params[entry["name"]]
            if p.dim() == 0:
                continue
            rows = list(range(p.shape[0])) if entry["whole"] else \
                [r for a, b in entry.get("rows", []) for r in range(a, b + 1)]
            if not rows:
                continue
            owner_name, _, leaf = entry["name"].rpartition(".")
            owner = modules.get(owner_name)
            weight = getattr(owner, "weight", None) if owner is not None else None
            bias = getattr(owner, "bias", None) if owner is not None else None
            for t in {id(x): x for x in (p, weight) if isinstance(x, torch.Tensor) and x.dim() >= 2}.values():
                if t.shape[0] == p.shape[0]:
                    fan_in = max(1, t[0].numel())
                    t[rows] = torch.randn(t[rows].shape, generator=g, dtype=t.dtype) / math.sqrt(fan_in)
            if isinstance(bias, torch.Tensor) and bias.dim() == 1 and bias.shape[0] == p.shape[0]:
                bias[rows] = 1.0
            elif p.dim() == 1 and leaf != "weight":
                p[rows] = 1.0


def _generic_init(model: nn.Module, g: torch.Generator) -> None:
    """Values with no structure of their own, so that only the wiring can zero a gradient: a
    zero-initialised layer (or a batch norm whose scale starts at 0) would otherwise cut
    every path through it. Weights He-scaled, norm scales near 1, other vectors small."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() >= 2:
                p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype) * math.sqrt(2.0 / max(1, p[0].numel())))
            elif name.rpartition(".")[2] == "weight":
                p.copy_(torch.rand(p.shape, generator=g, dtype=p.dtype) + 0.5)
            else:
                p.copy_((torch.rand(p.shape, generator=g, dtype=p.dtype) * 2 - 1) * 0.1)


def unreachable_rows(model: nn.Module, make_input, trials: int = 2, seed: int = 0, reinit: bool = True,
                     tokens: set[str] | None = None) -> list[dict]:
    """Rows of a model's parameters (output units, channels) through which no input reaches
    the output: exactly zero gradient for random inputs and a random readout of the output,
    and still exactly zero after those rows are revived. A ReLU unit that is merely dead on
    the batch gets a gradient once revived; a unit whose output is sliced away, or a layer
    computed and never used, does not.

    make_input(generator) returns the model's input (a tensor, or a tuple of arguments).
    Runs on a float64 copy in eval mode, its parameters redrawn first (reinit=False keeps
    the model's own values); the model itself is left alone. Embedding rows are tokens,
    not units, and are not tested (`tokens` names them; None: the model's nn.Embedding tables).
    """
    import copy

    work = copy.deepcopy(model).double().eval()
    skip = tokens if tokens is not None else {
        f"{m}.{n}".lstrip(".") for m, mod in work.named_modules() if isinstance(mod, (nn.Embedding, nn.EmbeddingBag))
        for n, _ in mod.named_parameters(recurse=False)}  # an embedding's rows are tokens, not units
    params = {n: p for n, p in work.named_parameters() if p.requires_grad and n not in skip}
    g = torch.Generator().manual_seed(seed)
    if reinit:
        _generic_init(work, g)
    candidates = dead_parts(params, _accumulate(work, params, make_input, trials, g), block=0)
    if not candidates:
        return []
    _revive(work, params, candidates, g)
    still = {d["name"]: d for d in dead_parts(params, _accumulate(work, params, make_input, trials, g), block=0)}
    out = []
    for first in candidates:  # only what was dead before and after reviving
        again = still.get(first["name"])
        if again is None:
            continue
        if first["whole"] and again["whole"]:
            out.append({"name": first["name"], "shape": first["shape"], "whole": True})
            continue
        before = {r for a, b in ([[0, first["shape"][0] - 1]] if first["whole"] else first.get("rows", []))
                  for r in range(a, b + 1)}
        after = {r for a, b in ([[0, again["shape"][0] - 1]] if again["whole"] else again.get("rows", []))
                 for r in range(a, b + 1)}
        rows = _ranges(torch.tensor([r in before & after for r in range(first["shape"][0])]))
        if rows:
            out.append({"name": first["name"], "shape": first["shape"], "whole": False, "rows": rows})
    return out
