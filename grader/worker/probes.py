"""What the worker measures about the student's code. Every probe returns plain data.

The scoring process turns these facts into verdicts; nothing here decides a grade.
"""
from __future__ import annotations

import contextlib
import inspect
import math
import os
import time
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


# ------------------------------------------------------------------------------ kernels (Part C)

def gabor_bank(shape) -> torch.Tensor:
    """Oriented stripes, one orientation and frequency per output channel: a checkpoint
    whose kernels a person recognises at a glance in the student's images."""
    out_c, in_c, kh, kw = shape
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, kh), torch.linspace(-1, 1, kw), indexing="ij")
    bank = torch.empty(shape)
    for o in range(out_c):
        theta = math.pi * (o % 12) / 12
        freq = 1.5 + (o // 12) % 4
        u = xs * math.cos(theta) + ys * math.sin(theta)
        envelope = torch.exp(-(xs ** 2 + ys ** 2) / 0.5)
        for i in range(in_c):
            bank[o, i] = envelope * torch.cos(2 * math.pi * freq * u + i * math.pi / max(in_c, 1))
    return bank * 0.1


def kernels(function: str, helper: str, model: str, args: list, kwargs: dict, num_classes: int,
            layout: dict | None = None) -> dict:
    """Run the student's analysis function on a checkpoint of their own model, in the layout
    their code reads (`layout`, from grader.handoff), and record what it passes to the helper."""
    from . import served

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
            g = torch.Generator().manual_seed(11)
            for i, weight in enumerate(convs):
                weight.copy_(gabor_bank(weight.shape) if i == 0 else torch.randn(weight.shape, generator=g) * 0.05)
        saved = [w.detach().clone() for w in convs]
        result["conv_shapes"] = [list(w.shape) for w in saved]
        folder = Path(os.getcwd()) / "grader_inputs"
        folder.mkdir(exist_ok=True)
        checkpoint = folder / "best_model.pt"
        weights = net.state_dict()
        extras = {k: v for k in layout.get("extras", []) if (v := served.extra_value(k, namespace, None)) is not None}
        torch.save(served.on_disk(layout, weights, net, extras), checkpoint)
        whole = layout.get("kind") == "model"
        serving = served.Serving(lambda: served.build(layout, served.fresh_weights(weights),
                                                      served.fresh_model(net) if whole else net, extras))
        _set_flags(model_checkpoint=str(checkpoint), label_type="domain" if num_classes == 4 else "category",
                   model_type=model)

        def recording(kernel_name, kernel_weight, *a, **kw):
            weight = torch.as_tensor(kernel_weight.detach().cpu() if isinstance(kernel_weight, torch.Tensor) else kernel_weight)
            result["calls"].append({"name": str(kernel_name)[:80], "shape": list(weight.shape),
                                    "matches": _match(weight, saved)})
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


def _set_flags(**values):
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


def _match(weight: torch.Tensor, saved: list[torch.Tensor]) -> int | None:
    """Which checkpoint conv this is; a leading slice of one counts too."""
    weight = weight.float()
    for i, stored in enumerate(saved):
        if weight.dim() != stored.dim() or any(a > b for a, b in zip(weight.shape, stored.shape)):
            continue
        part = stored[tuple(slice(0, n) for n in weight.shape)]
        if torch.allclose(part, weight, atol=1e-5):
            return i
    return None


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
