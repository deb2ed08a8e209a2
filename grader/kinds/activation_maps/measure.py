"""The verifier's side of the activation maps: the exported eval graph run on the course's
images, with the first two conv2d calls and a ReLU applied right to them recorded.

The graph was exported at a batch of two, so the images go through two at a time (the last
one twice when their count is odd); in eval mode each image's maps are its own whatever it
is batched with.
"""
from __future__ import annotations

from pathlib import Path

import torch

from grader.verifier import artefact as artefacts
from grader.verifier import graph as graphs
from grader.verifier.measure import _Bound, _error

from . import maps

_RELUS = {"relu", "relu_"}
_CLAMPS = {"clamp", "clamp_", "clamp_min", "clamp_min_"}


class _Record:
    """The outputs of the first LAYERS conv2d nodes, and of a ReLU that reads one of them."""

    def __init__(self):
        self.convs: list[str] = []  # node names, in order
        self.values: dict[str, torch.Tensor] = {}
        self.relus: dict[int, torch.Tensor] = {}

    def __call__(self, node, args, kwargs, out):
        if node.packet == "conv2d" and len(self.convs) < maps.LAYERS and isinstance(out, torch.Tensor):
            self.convs.append(node.name)
            self.values[node.name] = out.detach().clone()
            return
        source = node.args[0] if node.args else None
        if not isinstance(source, graphs.Ref) or source.name not in self.values or not isinstance(out, torch.Tensor):
            return
        at_zero = node.packet in _CLAMPS and len(args) > 1 and isinstance(args[1], (int, float)) and args[1] == 0
        index = self.convs.index(source.name)
        if (node.packet in _RELUS or at_zero) and index not in self.relus:
            self.relus[index] = out.detach().clone()


def verify_maps(artefact: str, images: list[list], max_mb: int) -> dict:
    """`images`: [name, a file in this folder or None]; the reply the worker's probe would send."""
    art = artefacts.read(Path(artefact), int(max_mb) << 20)
    if not art.weights:
        raise artefacts.ArtefactError("the artefact holds no weights, and the maps need them")
    graphs.DEVICE = torch.device("cpu")
    evaluation = graphs.parse(art.graphs["eval"], art.tensors)
    if len(art.input) != 3:
        raise artefacts.ArtefactError("the model does not take images ([C, H, W] inputs)")
    shown, unreadable = maps.shown(images, (int(art.input[1]), int(art.input[2])))
    result: dict = {"error": None, "images": []}
    if unreadable:
        result["unreadable"] = unreadable
    model = _Bound(art, torch.device("cpu"))
    batch = art.batch["eval"]
    for start in range(0, len(shown), batch):
        group = shown[start:start + batch]
        xs = [x for _, x, _ in group]
        xs += [xs[-1]] * (batch - len(xs))
        x = torch.cat(xs)  # [B, 3, H, W]
        if x.shape[1] != art.input[0]:
            raise artefacts.ArtefactError(f"the model takes {art.input[0]} channels, and the images have 3")
        record = _Record()
        try:
            with torch.no_grad():
                graphs.run(evaluation, model.values(evaluation, x), record=record)
        except graphs.GraphError as exc:
            if len(record.convs) < maps.LAYERS:  # later layers may fail; the two maps are what is drawn
                result["error"] = _error(exc, "forward")
                return result
        for i, (name, _, synthetic) in enumerate(group):
            convs = [record.values[n][i:i + 1] for n in record.convs]
            relus = {k: v[i:i + 1] for k, v in record.relus.items()}
            result["images"].append({"name": name, "synthetic": synthetic, "layers": maps.layers(convs, relus)})
    return result
