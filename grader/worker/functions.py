"""Probes of small functions students write: an activation (Swish) and a weight penalty (L1).
Each measures; the scoring process decides."""
from __future__ import annotations

import inspect

import torch
import torch.nn as nn

from . import failures
from .kernelwatch import KernelWatch, graph_kernels
from .probes import _symbol

# torch's SiLU kernels, whatever Python name reached them (F.silu, nn.SiLU, torch.ops.aten.silu.default,
# torch._C._nn.silu); F.silu runs aten.silu (aten.silu_ when inplace), its gradient aten.silu_backward.
SILU_KERNELS = frozenset({"silu", "silu_", "silu_backward"})


def _callable(name: str):
    """A class is instantiated with its defaults; a function is used as it is."""
    obj = _symbol(name)
    if inspect.isclass(obj):
        return obj(), "class"
    return obj, "function"


def activation(symbol: str, seed: int = 0) -> dict:
    """Compare the student's activation with x * sigmoid(x), values and gradients."""
    result: dict = {"error": None}
    try:
        fn, kind = _callable(symbol)
    except BaseException as exc:
        result["error"] = failures.describe(exc, "construct")
        return result
    result["kind"] = kind
    g = torch.Generator().manual_seed(seed)
    x = torch.cat([torch.linspace(-8, 8, 161), torch.randn(3 * 4 * 5 * 5 - 161, generator=g) * 3]).reshape(3, 4, 5, 5)
    x = x.double().requires_grad_(True)
    # The watch is on only while the student's code runs: the call and its backward pass.
    watch = KernelWatch(SILU_KERNELS, profile=True)
    ran: set[str] = set()  # torch's SiLU modules that ran, made on the fly or not
    hook = nn.modules.module.register_module_forward_pre_hook(
        lambda m, args: ran.add(type(m).__name__) if isinstance(m, nn.SiLU) else None)
    try:
        try:
            with watch:
                y = fn(x)
        finally:
            hook.remove()
        if not isinstance(y, torch.Tensor):
            raise TypeError(f"{symbol} returned {type(y).__name__}, not a tensor")
        result["silu_graph"] = [node for node, _ in graph_kernels(y, SILU_KERNELS)]
        result["shape_ok"] = list(y.shape) == list(x.shape)
        grad = None
        if y.requires_grad:
            with watch:
                (grad,) = torch.autograd.grad(y.sum(), x, allow_unused=True)
        want = x * torch.sigmoid(x)
        (want_grad,) = torch.autograd.grad(want.sum(), x)
        result["max_error"] = float((y.detach().double() - want.detach()).abs().max()) if result["shape_ok"] else None
        result["grad_error"] = float((grad - want_grad).abs().max()) if grad is not None and result["shape_ok"] else None
        worst = int((y.detach().double() - want.detach()).abs().argmax()) if result["shape_ok"] else 0
        result["worst"] = {"x": float(x.detach().reshape(-1)[worst]), "got": float(y.detach().reshape(-1)[worst]),
                           "want": float(want.detach().reshape(-1)[worst])} if result["shape_ok"] else None
        result["inplace_changed_input"] = False
    except BaseException as exc:
        result["error"] = failures.describe(exc, "forward")
    # Each sighting: the kernel, the route the code spelled (when the function layer saw it),
    # the student's line, and which layer saw it (function, dispatch, profiler).
    result["silu_routes"] = watch.calls
    result["silu_calls"] = len(watch.calls)
    result["silu_kernels"] = sorted(f"aten.{k}" for k in SILU_KERNELS
                                    if watch.python[k] or watch.aten[k] or watch.profiled[k])
    result["watch_tampered"] = watch.tampered
    modules = [type(m).__name__ for m in fn.modules()] if isinstance(fn, nn.Module) else []
    result["silu_module"] = "SiLU" in modules or bool(ran)
    return result


def _test_model(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 4 * 4, 5))
    with torch.no_grad():
        for p in model.parameters():  # no exact zeros: sign(0) would hide the penalty's shape
            p.copy_(torch.where(p.abs() < 1e-3, torch.full_like(p, 0.01), p))
    return model


def penalty(symbol: str, strength: float, seed: int = 0) -> dict:
    """Call the student's penalty on a small model and record its gradient per parameter,
    divided by sign(w): an L1 penalty gives the same positive number everywhere."""
    result: dict = {"error": None, "call": None, "params": []}
    try:
        fn = _symbol(symbol)
    except BaseException as exc:
        result["error"] = failures.describe(exc, "lookup")
        return result
    model = _test_model(seed)
    attempts = [("f(model, strength)", lambda: fn(model, strength)), ("f(model)", lambda: fn(model)),
                ("f(model.parameters(), strength)", lambda: fn(model.parameters(), strength))]
    value, errors = None, []
    for label, call in attempts:
        try:
            value = call()
            result["call"] = label
            break
        except TypeError as exc:
            errors.append(failures.describe(exc, "call"))
        except BaseException as exc:
            result["error"] = failures.describe(exc, "call")
            return result
    if result["call"] is None:
        result["error"] = errors[0]
        return result
    if not isinstance(value, torch.Tensor) or value.numel() != 1:
        result["error"] = {"type": "TypeError", "message": f"{symbol} returned {type(value).__name__}"
                           + (f" of shape {list(value.shape)}" if isinstance(value, torch.Tensor) else "")
                           + ", not a single number (a 0-d tensor) to add to the loss",
                           "stage": "call", "file": None, "line": None, "code": None, "trace": []}
        return result
    result["value"] = float(value)
    if not value.requires_grad:
        result["no_grad"] = True
        return result
    value.reshape(()).backward()
    for name, p in model.named_parameters():
        if p.grad is None:
            result["params"].append({"name": name, "grad": False})
            continue
        ratio = (p.grad / p.detach().sign()).double()
        result["params"].append({"name": name, "grad": True, "min": float(ratio.min()), "max": float(ratio.max()),
                                 "zero": bool((p.grad == 0).all())})
    return result
