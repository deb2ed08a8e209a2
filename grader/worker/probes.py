"""What the worker measures about the student's code. Every probe returns plain data.

The scoring process turns these facts into verdicts; nothing here decides a grade.
"""
from __future__ import annotations

import contextlib
import math
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from grader.verifier.measure import fixed_batch

from . import compat, failures
from .trace import LayerTrace


class State:
    module = None  # the first imported module
    modules: dict = {}  # relative path -> imported module
    symbols: dict = {}  # rubric symbol -> the object its module defines
    root: Path = Path(".")


STATE = State()


def _symbol(name: str):
    obj = STATE.symbols.get(name)
    if obj is None:
        obj = getattr(STATE.module, name, None)
    if obj is None:
        raise LookupError(f"{name} is not defined")
    return obj


def _build(symbol: str, args: list, kwargs: dict) -> nn.Module:
    model = _symbol(symbol)(*args, **kwargs)
    if not isinstance(model, nn.Module):
        raise TypeError(f"{symbol}(...) returned {type(model).__name__}, not an nn.Module")
    return model


def _tensor_output(out, what: str) -> torch.Tensor:
    if isinstance(out, torch.Tensor):
        return out
    raise TypeError(f"{what} returned {type(out).__name__}, expected one tensor of scores")


def _all_finite(tensor: torch.Tensor) -> bool:
    """isfinite on a whole 151 MB gradient allocates several copies of it; check in pieces."""
    return all(bool(torch.isfinite(piece).all()) for piece in tensor.detach().reshape(-1).split(1 << 20))


def _unused(model: nn.Module, used: set[int]) -> list[list]:
    return [[name, p.numel()] for name, p in model.named_parameters() if id(p) not in used]


# ------------------------------------------------------------------------------ trace

def trace(symbol: str, args: list, kwargs: dict, input: list[int], seed: int) -> dict:
    """Build the model on the meta device (no weights allocated) and record its layers.

    Falls back to the CPU when the student's code does something meta tensors cannot
    (reading values, numpy); a failure on the CPU too is the student's.
    """
    meta = _trace_on("meta", symbol, args, kwargs, input, seed)
    if meta.get("error") is None:
        return meta
    cpu = _trace_on("cpu", symbol, args, kwargs, input, seed)
    cpu["meta_error"] = meta["error"]["message"]
    return cpu


def _trace_on(device: str, symbol, args, kwargs, input, seed) -> dict:
    result = {"device": device, "constructed": False, "rows": [], "error": None}
    if device == "meta":
        redirect = compat.DeviceRedirect("meta", {"cpu", "cuda"})
        place = torch.device("meta")
    else:
        redirect = compat.cuda_redirect() or contextlib.nullcontext()
        place = contextlib.nullcontext()
    torch.manual_seed(seed)
    try:
        with place, redirect:
            model = _build(symbol, args, kwargs)
    except BaseException as exc:
        result["error"] = failures.describe(exc, "construct")
        return result
    result["constructed"] = True
    result["params_total"] = sum(p.numel() for p in model.parameters())
    result["class_name"] = type(model).__name__
    model.train()  # dropout that only runs when self.training must show up in the trace
    x = torch.zeros(2, *input, device="meta") if device == "meta" else torch.randn(2, *input)
    recorder = LayerTrace(model, failures.ROOTS)
    try:
        with redirect, recorder, torch.no_grad():
            out = _tensor_output(model(x), f"{symbol}.forward")
        result["output_shape"] = list(out.shape[1:])
    except BaseException as exc:
        result["error"] = failures.describe(exc, "forward")
    result["rows"] = [r.as_dict() for r in recorder.rows]
    result["unused_params"] = _unused(model, recorder.used_params)
    return result


# ------------------------------------------------------------------------------ behaviour

def behaviour(symbol: str, args: list, kwargs: dict, input: list[int], num_classes: int,
              device: str, training: dict) -> dict:
    dev = torch.device(device)
    seed = int(training["seed"])
    result: dict = {"device": device, "error": None}
    redirect = (compat.cuda_redirect() if dev.type == "cpu" else None) or contextlib.nullcontext()
    with redirect:
        torch.manual_seed(seed)
        try:
            model = _build(symbol, args, kwargs).to(dev)
        except BaseException as exc:
            result["error"] = failures.describe(exc, "construct")
            return result
        try:
            _forward_and_dropout(model, symbol, input, seed, dev, result)
            outputs = result["forward"]["shape"][-1] if len(result["forward"]["shape"]) == 2 else num_classes
            _train(model, symbol, input, min(num_classes, outputs), dev, training, result)
        except BaseException as exc:
            result["error"] = failures.describe(exc, result.get("stage", "forward"))
    return result


def _forward_and_dropout(model, symbol, input, seed, dev, result):
    g = torch.Generator().manual_seed(seed + 1)
    x = torch.randn(2, *input, generator=g).to(dev)  # [2, C, H, W]
    result["stage"] = "forward"
    with torch.no_grad():
        model.eval()
        first = _tensor_output(model(x), f"{symbol}.forward")
        second = model(x)
        result["forward"] = {"shape": list(first.shape), "finite": bool(torch.isfinite(first).all()),
                             "dtype": str(first.dtype).replace("torch.", "")}
        model.train()
        third, fourth = model(x), model(x)
    same = lambda a, b: a.shape == b.shape and bool(torch.allclose(a, b, rtol=1e-5, atol=1e-6))
    result["dropout"] = {"eval_same": same(first, second), "train_differs": not same(third, fourth)}


def _train(model, symbol, input, classes, dev, training, result):
    """Sign-descent steps applied inside backward, so no two gradients of AlexNet's
    large layers are held at once and no optimizer state is kept (memory stays ~2x weights)."""
    result["stage"] = "training"
    images, labels = fixed_batch(int(training["seed"]), int(training["batch"]), input, classes)
    images, labels = images.to(dev), labels.to(dev)
    lr = float(training["lr"])

    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]

    def eval_loss() -> float:
        # Dropout off, but batch norm on batch statistics: after a few steps its running
        # averages still mostly hold their initial values, so eval mode would hide learning.
        model.eval()
        for m in norms:
            m.train()
        with torch.no_grad():
            return float(F.cross_entropy(model(images).float(), labels))

    before = eval_loss()
    names = {id(p): n for n, p in model.named_parameters()}
    got, nonfinite = set(), set()
    first_step = [True]

    def hook(p):
        if first_step[0]:
            got.add(names[id(p)])
            if not _all_finite(p.grad):
                nonfinite.add(names[id(p)])
        with torch.no_grad():
            p.add_(p.grad.sign_(), alpha=-lr)
        p.grad = None

    handles = [p.register_post_accumulate_grad_hook(hook) for p in model.parameters() if p.requires_grad]
    losses, used = [], set()
    try:
        for step in range(int(training["steps"])):
            model.train()
            recorder = LayerTrace(model, failures.ROOTS) if step == 0 else contextlib.nullcontext()
            with recorder:
                loss = F.cross_entropy(_tensor_output(model(images), f"{symbol}.forward").float(), labels)
            if step == 0:
                used = recorder.used_params
            losses.append(float(loss.detach()))
            if not math.isfinite(losses[-1]):
                break
            if step == 0:
                if not loss.requires_grad:
                    raise RuntimeError("the loss does not depend on any parameter (is forward run under torch.no_grad() or detached?)")
            loss.backward()
            first_step[0] = False
    finally:
        for h in handles:
            h.remove()
    params = dict(model.named_parameters())
    used_names = {n for n, p in params.items() if id(p) in used} if losses else set()
    in_order = list(params)  # the model's own order reads best in messages
    result["gradients"] = {
        "total": len(params),
        "missing": [n for n in in_order if n in used_names and n not in got and params[n].requires_grad],
        "frozen": [n for n in in_order if n in used_names and not params[n].requires_grad],
        "nonfinite": [n for n in in_order if n in nonfinite],
        "unused": [n for n in in_order if n not in used_names],
    }
    after = eval_loss() if losses and math.isfinite(losses[-1]) else float("nan")
    result["training"] = {"before": before, "after": after, "losses": losses, "classes": classes,
                          "batch": int(training["batch"]), "steps": int(training["steps"]), "lr": lr}
    result.pop("stage", None)

