"""The worker's side of the activation kind: run the student's Swish on the scorer's x.

y and dy/dx go back raw, and the scorer compares them with x * sigmoid(x) (run.judge). The
kernel watch looks for torch's own SiLU while the code runs: what it reports can only
hide a use of SiLU, never earn the values check.
"""
from __future__ import annotations

import inspect

import torch
import torch.nn as nn

from grader.worker import failures
from grader.worker.kernelwatch import KernelWatch, graph_kernels
from grader.worker.probes import _symbol

from .spec import SHAPE

# torch's SiLU kernels, whatever Python name reached them (F.silu, nn.SiLU, torch.ops.aten.silu.default,
# torch._C._nn.silu); F.silu runs aten.silu (aten.silu_ when inplace), its gradient aten.silu_backward.
SILU_KERNELS = frozenset({"silu", "silu_", "silu_backward"})


def _callable(name: str):
    """A class is instantiated with its defaults; a function is used as it is."""
    obj = _symbol(name)
    if inspect.isclass(obj):
        return obj(), "class"
    return obj, "function"


def activation(symbol: str, x: list) -> dict:
    """Run the student's activation on the scorer's x: y and dy/dx go back raw, and the
    scorer compares them with x * sigmoid(x) (grader.kinds.activation_function.run)."""
    result: dict = {"error": None}
    try:
        fn, kind = _callable(symbol)
    except BaseException as exc:
        result["error"] = failures.describe(exc, "construct")
        return result
    result["kind"] = kind
    x = torch.tensor(x, dtype=torch.float64).reshape(SHAPE).requires_grad_(True)
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
        result["shape"] = list(y.shape)
        grad = None
        if y.requires_grad:
            with watch:
                (grad,) = torch.autograd.grad(y.sum(), x, allow_unused=True)
        if list(y.shape) == SHAPE:
            result["y"] = y.detach().double().reshape(-1).tolist()
            result["grad"] = grad.double().reshape(-1).tolist() if grad is not None else None
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
