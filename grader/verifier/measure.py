"""Every model fact a verdict rests on, measured by running the artefact's graphs here.

The results have the shape of the worker's own trace and behaviour probes, so the checks
read them the same way; only who measured them changed. The inputs, the loss and the
optimizer step are the verifier's own: nothing of the submission's runs in this process.
"""
from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F

from . import alike
from . import artefact as artefacts
from . import graph as graphs
from .rows import rows

DROPOUTS = {"dropout": 2, "dropout_": 2, "native_dropout": 2, "feature_dropout": 2, "feature_dropout_": 2,
            "alpha_dropout": 2, "feature_alpha_dropout": 2}  # operator -> index of its `train` argument
# Fully measured models of this grade, by the scorer's name for them: a later class count of
# the same model is compared with its entry (grader.verifier.alike). This process serves one
# submission and is never shown another's.
REMEMBERED: dict[str, alike.Remembered] = {}


def verify(artefact: str, num_classes: int | None, device: str, training: dict, max_mb: int,
           behaviour_too: bool = True, training_too: bool = True, remember: str | None = None,
           like: str | None = None) -> dict:
    """The trace and behaviour of the artefact's model. `remember`: keep what was measured
    under that name; `like`: measure only the layers, and report the behaviour of the model
    remembered under that name when the two differ only by class count."""
    art = artefacts.read(Path(artefact), int(max_mb) << 20)
    graphs.DEVICE = torch.device(device)
    train = graphs.parse(art.graphs["train"], art.tensors)
    evaluation = graphs.parse(art.graphs["eval"], art.tensors)
    if {t for _, t in train.placeholders("parameter")} != {t for _, t in evaluation.placeholders("parameter")}:
        raise artefacts.ArtefactError("the train and eval graphs are not of the same parameters")
    if like is not None:
        return _like(art, train, evaluation, num_classes, device, training_too, REMEMBERED.get(str(like)))
    if not behaviour_too:
        return {"trace": trace(art, train), "behaviour": {"device": device, "error": None, "skipped": True}}
    if not art.weights:
        raise artefacts.ArtefactError("the artefact holds no weights, and the checks need them")
    measured = behaviour(art, train, evaluation, num_classes, device, training, training_too)
    if remember is not None and num_classes is not None:
        REMEMBERED[str(remember)[:200]] = alike.Remembered(art, num_classes, measured, training_too)
    return {"trace": trace(art, train), "behaviour": measured}


def _like(art, train, evaluation, num_classes, device, training_too, base) -> dict:
    layers = trace(art, train)
    why = "nothing was measured to compare it with" if base is None or num_classes is None else \
        "the model it is compared with was not trained" if training_too and not base.trained else \
        alike.difference(base, art, num_classes)
    if why is None:
        try:
            _, shape = rows(evaluation, art.tensors, art.batch["eval"], art.input)
        except graphs.GraphError as exc:
            why = f"its eval-mode graph does not run: {exc}"
    if why is not None:
        return {"trace": layers, "behaviour": {"device": device, "error": None, "skipped": True, "not_alike": why}}
    return {"trace": layers, "behaviour": alike.shared_behaviour(base, shape, num_classes)}


def warm_up() -> None:
    """Pay torch's first-use costs before any artefact arrives, while the worker is still
    importing the submission: the meta device's shape functions import torch._dynamo on
    their first call (about 1.2 s here), and the first backward starts autograd's threads."""
    aten = torch.ops.aten
    for device in ("meta", "cpu"):
        x = torch.zeros(2, 3, 9, 9, device=device, requires_grad=device == "cpu")
        w = torch.zeros(4, 3, 3, 3, device=device, requires_grad=device == "cpu")
        y = aten.relu.default(aten.conv2d.default(x, w, None, [2, 2], [1, 1]))  # [2, 4, 5, 5]
        y = aten.max_pool2d.default(y, [3, 3], [2, 2]) + aten.avg_pool2d.default(y, [3, 3], [2, 2])  # [2, 4, 2, 2]
        y = aten.adaptive_avg_pool2d.default(y, [1, 1]).view(2, 4)  # [2, 4]
        y = aten.linear.default(aten.dropout.default(y, 0.5, True), torch.zeros(3, 4, device=device))  # [2, 3]
        if device == "cpu":
            F.cross_entropy(y, torch.tensor([0, 1])).backward()


def trace(art, train: graphs.Graph) -> dict:
    params = train.placeholders("parameter")
    result = {"device": "meta", "constructed": True, "class_name": art.class_name, "error": None, "rows": [],
              "params_total": sum(art.tensors[t].numel() for _, t in params)}
    try:
        found, shape = rows(train, art.tensors, art.batch["train"], art.input)
        result.update(rows=found, output_shape=list(shape))
    except graphs.GraphError as exc:
        result["error"] = _error(exc, "forward")
    referenced = set().union(*train.refs.values()) if train.refs else set()
    result["unused_params"] = [[t, art.tensors[t].numel()] for name, t in params if name not in referenced]
    return result


def behaviour(art, train, evaluation, num_classes, device: str, training: dict, training_too: bool = True) -> dict:
    dev = torch.device(device)
    seed = int(training["seed"])
    result: dict = {"device": device, "error": None}
    torch.manual_seed(seed)  # the dropout masks: the same verdict on every run
    model = _Bound(art, dev)
    stage = "forward"
    try:
        shape = _forward(model, evaluation, art, seed, dev, result)
        outputs = shape[-1] if len(shape) == 2 else num_classes
        classes = min(num_classes or outputs, outputs)
        images, labels = fixed_batch(seed, art.batch["train"], list(art.input), classes)
        images, labels = images.to(dev), labels.to(dev)  # [B, C, H, W], [B]
        with torch.no_grad():
            once = model.output(train, images)  # train mode: dropout on
        if not training_too:  # no check asks for the gradients or the training step
            with torch.no_grad():
                _dropout(result, once, model.output(train, images))
            return result
        stage = "training"
        _train(model, train, images, labels, classes, training, result, once)
    except graphs.GraphError as exc:
        result["error"] = _error(exc, stage)
    return result


class _Bound:
    """The artefact's tensors as this run's values: parameters as leaves that learn."""

    def __init__(self, art, dev):
        self.tensors = {}
        for target, tensor in art.tensors.items():
            t = tensor.to(dev)
            if art.requires_grad.get(target) and t.is_floating_point():
                t.requires_grad_(True)
            self.tensors[target] = t

    def values(self, graph, x) -> dict:
        return {name: (x if kind == "input" else self.tensors[target]) for name, kind, target in graph.inputs}

    def output(self, graph, x, patch=None) -> torch.Tensor:
        out = graphs.run(graph, self.values(graph, x), patch=patch)
        if not isinstance(out, torch.Tensor):
            raise graphs.GraphError(graph.nodes[-1] if graph.nodes else graphs.Node("output", "output", None, [], {}),
                                    f"forward returned {type(out).__name__}, expected one tensor of scores")
        return out


def _forward(model, evaluation, art, seed, dev, result) -> list:
    """Two eval-mode passes over one small batch: the forward check's shape and values,
    and the first half of the dropout check (eval mode must repeat itself)."""
    g = torch.Generator().manual_seed(seed + 1)
    x = torch.randn(art.batch["eval"], *art.input, generator=g).to(dev)  # [2, C, H, W]
    with torch.no_grad():
        first = model.output(evaluation, x)
        second = model.output(evaluation, x)
    result["forward"] = {"shape": list(first.shape), "finite": bool(torch.isfinite(first).all()),
                         "dtype": str(first.dtype).replace("torch.", "")}
    result["dropout"] = {"eval_same": _same(first, second)}
    return list(first.shape)


def _same(a, b) -> bool:
    return a.shape == b.shape and bool(torch.allclose(a, b, rtol=1e-5, atol=1e-6))


def _dropout(result, once, again) -> None:
    """Train mode must not repeat itself: two passes over one batch with the same weights."""
    result["dropout"]["train_differs"] = not _same(once, again)


def _no_dropout(node, args, kwargs):
    """Dropout off, everything else as in training (batch norm on batch statistics)."""
    index = DROPOUTS.get(node.packet)
    if index is not None and len(args) > index:
        args = list(args)
        args[index] = False
    return args, kwargs


def fixed_batch(seed: int, batch: int, input: list[int], classes: int):
    """Images whose colour encodes the class: learnable in a few steps by a working net."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(batch) % classes  # [B]
    colours = torch.rand(classes, input[0], *([1] * (len(input) - 1)), generator=g) * 2 - 1
    images = colours[labels] + 0.3 * torch.randn(batch, *input, generator=g)  # [B, C, H, W]
    return images, labels


def _train(model, train, images, labels, classes, training, result, once):
    """Sign-descent steps applied inside backward (no two large gradients held at once,
    no optimizer state), with the verifier's own loss. The first step's forward pass is
    the dropout check's second train-mode pass: same batch, weights not yet changed."""
    lr = float(training["lr"])

    def eval_loss() -> float:
        with torch.no_grad():
            return float(F.cross_entropy(model.output(train, images, patch=_no_dropout).float(), labels))

    before = eval_loss()
    params = {name: target for name, target in train.placeholders("parameter")}
    used = train.ancestors(train.output)
    got, nonfinite = set(), set()
    first_step = [True]
    names = {id(model.tensors[t]): t for t in params.values()}

    def hook(p):
        if first_step[0]:
            got.add(names[id(p)])
            if not _finite(p.grad):
                nonfinite.add(names[id(p)])
        with torch.no_grad():
            p.add_(p.grad.sign_(), alpha=-lr)
        p.grad = None

    handles = [model.tensors[t].register_post_accumulate_grad_hook(hook)
               for t in dict.fromkeys(params.values()) if model.tensors[t].requires_grad]
    losses = []
    try:
        for step in range(int(training["steps"])):
            scores = model.output(train, images)  # [B, classes]
            if step == 0:
                _dropout(result, once, scores.detach())
            loss = F.cross_entropy(scores.float(), labels)
            losses.append(float(loss.detach()))
            if not math.isfinite(losses[-1]):
                break
            if step == 0 and not loss.requires_grad:
                raise graphs.GraphError(graphs.Node("loss", "loss", None, [], {}),
                                        "the loss does not depend on any parameter (is forward run under "
                                        "torch.no_grad() or detached?)")
            loss.backward()
            first_step[0] = False
    finally:
        for h in handles:
            h.remove()
    if "train_differs" not in result["dropout"]:  # no step ran: the weights are still the first pass's
        with torch.no_grad():
            _dropout(result, once, model.output(train, images))
    used_targets = {t for name, t in params.items() if name in used}
    in_order = list(dict.fromkeys(params.values()))
    result["gradients"] = {
        "total": len(in_order),
        "missing": [t for t in in_order if t in used_targets and t not in got and model.tensors[t].requires_grad],
        "frozen": [t for t in in_order if t in used_targets and not model.tensors[t].requires_grad],
        "nonfinite": [t for t in in_order if t in nonfinite],
        "unused": [t for t in in_order if t not in used_targets],
    }
    after = eval_loss() if losses and math.isfinite(losses[-1]) else float("nan")
    result["training"] = {"before": before, "after": after, "losses": losses, "classes": classes,
                          "batch": len(labels), "steps": int(training["steps"]), "lr": lr}


def _finite(tensor: torch.Tensor) -> bool:
    """No NaN or infinity: the extremes tell (NaN propagates), without a mask as large as a layer."""
    if tensor.numel() == 0:
        return True
    low, high = torch.aminmax(tensor.detach())
    return bool(torch.isfinite(low) & torch.isfinite(high))


def _error(exc: graphs.GraphError, stage: str) -> dict:
    node = exc.node
    return {"type": "RuntimeError", "message": str(exc), "stage": stage, "file": node.where.rsplit(":", 1)[0] or None,
            "line": int(node.where.rsplit(":", 1)[1]) if node.where.count(":") else None, "code": None, "trace": []}
