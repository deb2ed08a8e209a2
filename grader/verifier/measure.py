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

from . import artefact as artefacts
from . import graph as graphs
from .rows import rows

DROPOUTS = {"dropout": 2, "dropout_": 2, "native_dropout": 2, "feature_dropout": 2, "feature_dropout_": 2,
            "alpha_dropout": 2, "feature_alpha_dropout": 2}  # operator -> index of its `train` argument


def verify(artefact: str, num_classes: int | None, device: str, training: dict, max_mb: int,
           behaviour_too: bool = True, training_too: bool = True) -> dict:
    art = artefacts.read(Path(artefact), int(max_mb) << 20)
    graphs.DEVICE = torch.device(device)
    train = graphs.parse(art.graphs["train"], art.tensors)
    evaluation = graphs.parse(art.graphs["eval"], art.tensors)
    if {t for _, t in train.placeholders("parameter")} != {t for _, t in evaluation.placeholders("parameter")}:
        raise artefacts.ArtefactError("the train and eval graphs are not of the same parameters")
    if not behaviour_too:
        return {"trace": trace(art, train), "behaviour": {"device": device, "error": None, "skipped": True}}
    if not art.weights:
        raise artefacts.ArtefactError("the artefact holds no weights, and the checks need them")
    return {"trace": trace(art, train),
            "behaviour": behaviour(art, train, evaluation, num_classes, device, training, training_too)}


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
        _forward_and_dropout(model, train, evaluation, art, seed, dev, result)
        if not training_too:  # no check asks for the gradients or the training step
            return result
        stage = "training"
        shape = result["forward"]["shape"]
        outputs = shape[-1] if len(shape) == 2 else num_classes
        _train(model, train, evaluation, art, min(num_classes or outputs, outputs), dev, training, result)
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


def _forward_and_dropout(model, train, evaluation, art, seed, dev, result):
    g = torch.Generator().manual_seed(seed + 1)
    x = torch.randn(art.batch["eval"], *art.input, generator=g).to(dev)  # [2, C, H, W]
    x_train = torch.randn(art.batch["train"], *art.input, generator=g).to(dev)  # [B, C, H, W]
    with torch.no_grad():
        first = model.output(evaluation, x)
        second = model.output(evaluation, x)
        result["forward"] = {"shape": list(first.shape), "finite": bool(torch.isfinite(first).all()),
                             "dtype": str(first.dtype).replace("torch.", "")}
        third, fourth = model.output(train, x_train), model.output(train, x_train)
    same = lambda a, b: a.shape == b.shape and bool(torch.allclose(a, b, rtol=1e-5, atol=1e-6))
    result["dropout"] = {"eval_same": same(first, second), "train_differs": not same(third, fourth)}


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


def _train(model, train, evaluation, art, classes, dev, training, result):
    """Sign-descent steps applied inside backward (no two large gradients held at once,
    no optimizer state), with the verifier's own loss."""
    images, labels = fixed_batch(int(training["seed"]), art.batch["train"], list(art.input), classes)
    images, labels = images.to(dev), labels.to(dev)
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
            if not all(bool(torch.isfinite(piece).all()) for piece in p.grad.detach().reshape(-1).split(1 << 20)):
                nonfinite.add(names[id(p)])
        with torch.no_grad():
            p.add_(p.grad.sign_(), alpha=-lr)
        p.grad = None

    handles = [model.tensors[t].register_post_accumulate_grad_hook(hook)
               for t in dict.fromkeys(params.values()) if model.tensors[t].requires_grad]
    losses = []
    try:
        for step in range(int(training["steps"])):
            loss = F.cross_entropy(model.output(train, images).float(), labels)
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
                          "batch": art.batch["train"], "steps": int(training["steps"]), "lr": lr}


def _error(exc: graphs.GraphError, stage: str) -> dict:
    node = exc.node
    return {"type": "RuntimeError", "message": str(exc), "stage": stage, "file": node.where.rsplit(":", 1)[0] or None,
            "line": int(node.where.rsplit(":", 1)[1]) if node.where.count(":") else None, "code": None, "trace": []}
