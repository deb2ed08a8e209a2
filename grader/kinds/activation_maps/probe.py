"""Run a student's CNN on named images and record what its first two conv layers (each with
its ReLU) produce: the activation maps dl-assignment2 asks students to draw. The maps go
back as bytes (each map scaled to 0-255 on its own); the scoring process draws them."""
from __future__ import annotations

import base64
import contextlib
import math

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from grader.worker import compat, failures
from grader.worker.probes import _build

_CONV = {F.conv2d, torch.conv2d}
_RELU = {F.relu, F.relu_, torch.relu, torch.relu_, torch.Tensor.relu, torch.Tensor.relu_}
MAX_SIDE = 128  # maps larger than this are not drawn at full size anyway
MAX_MAPS = 128  # and no more maps than this per layer: the reply stays a few MB


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


def _image(path: str | None, size: tuple[int, int], index: int) -> tuple[torch.Tensor, bool]:
    """[1, 3, H, W] in [0, 1]: the named image, or a generated stand-in when there is none."""
    if path:
        from PIL import Image

        with Image.open(path) as img:
            img = img.convert("RGB").resize((size[1], size[0]))
            data = torch.frombuffer(bytearray(img.tobytes()), dtype=torch.uint8)
        return data.reshape(size[0], size[1], 3).permute(2, 0, 1).float().div(255).unsqueeze(0), False
    ys, xs = torch.meshgrid(torch.linspace(0, 1, size[0]), torch.linspace(0, 1, size[1]), indexing="ij")
    stripes = 0.5 + 0.5 * torch.sin(2 * math.pi * (4 + 3 * index) * (xs + 0.5 * ys))
    disc = ((xs - 0.5) ** 2 + (ys - 0.5) ** 2 < 0.08).float()
    return torch.stack([stripes, disc, 0.5 * stripes + 0.5 * disc]).unsqueeze(0), True


def _encode(maps: torch.Tensor) -> dict:
    channels = int(maps.shape[1])
    maps = maps[0, :MAX_MAPS].float()  # [C, H, W], at most MAX_MAPS of them
    if max(maps.shape[1:]) > MAX_SIDE:
        maps = F.adaptive_avg_pool2d(maps.unsqueeze(0), MAX_SIDE)[0]
    low = maps.amin(dim=(1, 2), keepdim=True)
    high = maps.amax(dim=(1, 2), keepdim=True)
    scaled = ((maps - low) / (high - low).clamp(min=1e-12) * 255).round().to(torch.uint8)
    return {"channels": channels, "shown": int(maps.shape[0]), "size": list(maps.shape[1:]),
            "data": base64.b64encode(scaled.contiguous().numpy().tobytes()).decode("ascii"),
            "flat": [bool(h == l) for h, l in zip(high.flatten().tolist(), low.flatten().tolist())]}


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
    size = (int(input[1]), int(input[2]))
    for index, (name, path) in enumerate(images):
        try:
            x, synthetic = _image(path, size, index)
        except Exception as exc:  # a staff image that does not decode: draw the stand-in and say so
            x, synthetic = _image(None, size, index)
            result.setdefault("unreadable", []).append(f"{name}: {type(exc).__name__}")
        capture = _Capture(2)
        try:
            with redirect, torch.no_grad(), capture:
                model(x)
        except BaseException as exc:
            if len(capture.convs) < 2:  # later layers may fail; the two maps are what is drawn
                result["error"] = failures.describe(exc, "forward")
                return result
        layers = []
        for i, conv in enumerate(capture.convs):
            relu = capture.relus.get(i)
            layers.append({**_encode(relu if relu is not None else conv.detach().clamp(min=0)), "relu_seen": relu is not None})
        result["images"].append({"name": name, "synthetic": synthetic, "layers": layers})
    return result
