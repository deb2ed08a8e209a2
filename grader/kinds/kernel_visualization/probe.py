"""The worker's side of the kernel visualization: run the student's analysis on a checkpoint whose
conv weights the scorer's key decides (pattern.py), and send back what reached the drawing helper.

Each weight handed to the helper goes back as its shape and a sample of its values; the
scorer finds which checkpoint conv it is (run.judge). The PNGs the code saved are read by
the scorer once nothing of the submission runs.
"""
from __future__ import annotations

import contextlib
import inspect
import math
import os
import time
from pathlib import Path

import torch

from grader.worker import compat, failures, served
from grader.worker.probes import STATE, _build, _symbol

from . import pattern

MAX_CALLS = 64  # helper calls recorded: AlexNet has five convs


def fill(key: dict, c: int, shape: list[int]) -> torch.Tensor:
    """Conv c's weight of `shape`: pattern.value at every position, computed a whole tensor at once."""
    o, i, y, x = torch.meshgrid(*(torch.arange(n, dtype=torch.int64) for n in shape), indexing="ij")
    if c == 0:
        _, in_c, kh, kw = shape
        ys = y.double() * (2.0 / (kh - 1)) - 1.0 if kh > 1 else torch.full(y.shape, -1.0, dtype=torch.float64)
        xs = x.double() * (2.0 / (kw - 1)) - 1.0 if kw > 1 else torch.full(x.shape, -1.0, dtype=torch.float64)
        theta = math.pi * (o % 12).double() / 12 + key["turn"]
        freq = 1.5 + ((o // 12) % 4).double()
        u = xs * torch.cos(theta) + ys * torch.sin(theta)
        envelope = torch.exp(-(xs ** 2 + ys ** 2) / 0.5)
        values = pattern.STRIPES * envelope * torch.cos(2 * math.pi * freq * u + i.double() * math.pi / max(in_c, 1))
    else:
        k = torch.full(o.shape, c, dtype=torch.int64)
        for prime, part in zip(pattern.PRIMES, (o, i, y, x)):
            k = (k * prime + part) % pattern.MODULUS
        h = (key["a"] * k + key["b"]) % pattern.MODULUS
        values = pattern.NOISE * (2.0 * h.double() / pattern.MODULUS - 1.0)
    return values.float()


def kernels(function: str, helper: str, model: str, args: list, kwargs: dict, key: dict, flags: dict,
            layout: dict | None = None) -> dict:
    """Run the student's analysis function on a checkpoint of their own model, its conv weights
    drawn from the scorer's `key`, in the layout their code reads (`layout`, from
    grader.handoff), and send back a sample of each weight it passes to the helper."""

    layout = layout or {"kind": "either"}
    result: dict = {"error": None, "calls": [], "images": [], "conv_shapes": [], "served": {"layout": layout}}
    try:
        analyze = _symbol(function)
    except LookupError as exc:
        result["error"] = {"type": "LookupError", "message": str(exc), "stage": "lookup", "file": None, "line": None,
                           "code": None, "trace": []}
        return result
    namespace = getattr(analyze, "__globals__", vars(STATE.module))
    original = namespace.get(helper)
    if original is None:
        result["error"] = {"type": "LookupError", "message": f"{helper} is not defined where {function} runs",
                           "stage": "lookup", "file": None, "line": None, "code": None, "trace": []}
        return result

    stage = "construct"
    serving = None
    try:
        torch.manual_seed(7)
        with compat.cuda_redirect() or contextlib.nullcontext():
            net = _build(model, args, kwargs)
        convs = [p for p in net.parameters() if p.dim() == 4]
        with torch.no_grad():
            for c, weight in enumerate(convs):
                weight.copy_(fill(key, c, list(weight.shape)))
        result["conv_shapes"] = [list(w.shape) for w in convs]
        folder = Path(os.getcwd()) / "grader_inputs"
        folder.mkdir(exist_ok=True)
        checkpoint = folder / "best_model.pt"
        weights = net.state_dict()
        extras = {k: v for k in layout.get("extras", []) if (v := served.extra_value(k, namespace, None)) is not None}
        torch.save(served.on_disk(layout, weights, net, extras), checkpoint)
        whole = layout.get("kind") == "model"
        serving = served.Serving(lambda: served.build(layout, served.fresh_weights(weights),
                                                      served.fresh_model(net) if whole else net, extras))
        _set_flags({name: value.replace("{checkpoint}", str(checkpoint)).replace("{model}", model)
                    for name, value in flags.items()})

        def recording(kernel_name, kernel_weight, *a, **kw):
            weight = torch.as_tensor(kernel_weight.detach().cpu() if isinstance(kernel_weight, torch.Tensor) else kernel_weight)
            if len(result["calls"]) < MAX_CALLS:
                flat = weight.reshape(-1).double()
                result["calls"].append({"name": str(kernel_name)[:80], "shape": list(weight.shape),
                                        "values": [float(flat[j]) for j in pattern.positions(list(weight.shape))]})
            a, kw = _fewer_channels(original, (kernel_name, kernel_weight, *a), kw, result)
            return original(*a, **kw)

        namespace[helper] = recording
        started = time.time() - 1
        stage = "call"
        required = [p for p in inspect.signature(analyze).parameters.values()
                    if p.default is inspect.Parameter.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        with compat.cuda_redirect() or contextlib.nullcontext(), serving.active(), _output_folders(result):
            analyze(*([str(checkpoint)] if len(required) == 1 else []))
    except BaseException as exc:
        result["error"] = failures.describe(exc, stage)
        started = locals().get("started", time.time())
    finally:
        namespace[helper] = original
        if serving is not None:
            result["served"].update(loads=serving.loads, adapted=serving.adapted)
    result["images"] = _new_pngs(Path(os.getcwd()), started)
    return result


DRAWN_CHANNELS = 4  # the given helper takes ~80 s for a 12x12 grid of heatmaps, ~1 s for 4x4


def _fewer_channels(helper, args: tuple, kwargs: dict, result: dict) -> tuple[tuple, dict]:
    """Ask the drawing helper for a smaller grid where its signature allows (its
    max_in_channels / max_out_channels): the images only show that the right weights went in."""
    try:
        bound = inspect.signature(helper).bind(*args, **kwargs)
    except (TypeError, ValueError):
        return args, kwargs
    bound.apply_defaults()
    for name in ("max_in_channels", "max_out_channels"):
        value = bound.arguments.get(name)
        if isinstance(value, int) and value > DRAWN_CHANNELS:
            bound.arguments[name] = DRAWN_CHANNELS
            result["fewer_channels"] = DRAWN_CHANNELS
    return bound.args, bound.kwargs


@contextlib.contextmanager
def _output_folders(result: dict):
    """Create the folder a figure is saved into when it is missing: the starter's
    visualize_kernels never creates `saving_prefix`, and students made it by hand."""
    from matplotlib.figure import Figure

    original = Figure.savefig
    base = Path(os.getcwd()).resolve()

    def savefig(self, fname, *args, **kwargs):
        if isinstance(fname, (str, os.PathLike)):
            parent = (base / fname).resolve().parent
            if not parent.exists() and base in parent.parents:
                parent.mkdir(parents=True, exist_ok=True)
                result.setdefault("made_folders", []).append(str(parent.relative_to(base)))
        return original(self, fname, *args, **kwargs)

    Figure.savefig = savefig
    try:
        yield
    finally:
        Figure.savefig = original


def _set_flags(values: dict):
    flags_module = __import__("sys").modules.get("absl.flags")
    if flags_module is None:
        return
    flags = flags_module.FLAGS
    for name, value in values.items():
        if name in flags:
            try:
                flags[name].value = value
            except Exception:
                pass  # e.g. an enum flag without this choice


def _new_pngs(folder: Path, since: float, limit: int = 12) -> list[str]:
    """PNGs the student's code saved since `since`; the walk is bounded, since that code
    also decides how deep and how full its folder is."""
    from grader import tree

    found = []
    try:
        for rel, entry in tree.walk(folder, max_depth=32, max_entries=20_000):
            if not rel.endswith(".png") or "grader_inputs" in rel.split("/"):
                continue
            try:
                if entry.is_file(follow_symlinks=False) and entry.stat(follow_symlinks=False).st_mtime >= since:
                    found.append(rel)
            except OSError:
                continue
    except (tree.TreeLimitError, OSError):
        pass  # what was found before the limit still counts
    return sorted(found)[:limit]
