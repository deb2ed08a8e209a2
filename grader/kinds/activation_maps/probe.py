"""Where the model does not export: run the student's CNN on the named images here and record
what its first two conv layers (each with its ReLU) produce. The verifier does the same from
the exported graph (measure.py); these maps are marked as measured inside the submission's process."""
from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from grader.worker import compat, failures
from grader.worker.probes import _build

from . import maps

_CONV = {F.conv2d, torch.conv2d}
_RELU = {F.relu, F.relu_, torch.relu, torch.relu_, torch.Tensor.relu, torch.Tensor.relu_}


class _Capture(TorchFunctionMode):
    """The outputs of the first `count` convolutions, and of a ReLU applied right to them."""

    def __init__(self, count: int):
        super().__init__()
        self.count = count
        self.convs: list[torch.Tensor] = []
        self.relus: dict[int, torch.Tensor] = {}

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if func in _CONV and len(self.convs) < self.count and isinstance(out, torch.Tensor):
            self.convs.append(out)
        elif func in _RELU or (func in (torch.clamp, torch.Tensor.clamp, torch.clamp_min) and _clamps_at_zero(args, kwargs)):
            source = args[0] if args else kwargs.get("input")
            for i, conv in enumerate(self.convs):
                if i not in self.relus and source is conv and isinstance(out, torch.Tensor):
                    self.relus[i] = out.detach().clone()
        return out


def _clamps_at_zero(args, kwargs) -> bool:
    low = args[1] if len(args) > 1 else kwargs.get("min")
    return isinstance(low, (int, float)) and low == 0


def activations(symbol: str, args: list, kwargs: dict, images: list[list], input: list[int], seed: int) -> dict:
    """`images`: [name, path or None] pairs."""
    result: dict = {"error": None, "images": []}
    torch.manual_seed(seed)
    redirect = compat.cuda_redirect() or contextlib.nullcontext()
    try:
        with redirect:
            model = _build(symbol, args, kwargs)
        model.eval()
    except BaseException as exc:
        result["error"] = failures.describe(exc, "construct")
        return result
    shown, unreadable = maps.shown(images, (int(input[1]), int(input[2])))
    if unreadable:
        result["unreadable"] = unreadable
    for name, x, synthetic in shown:
        capture = _Capture(maps.LAYERS)
        try:
            with redirect, torch.no_grad(), capture:
                model(x)
        except BaseException as exc:
            if len(capture.convs) < maps.LAYERS:  # later layers may fail; the two maps are what is drawn
                result["error"] = failures.describe(exc, "forward")
                return result
        result["images"].append({"name": name, "synthetic": synthetic,
                                 "layers": maps.layers(capture.convs, capture.relus)})
    return result
