"""A sequence model rebuilt from its recorded calls: an nn.Module whose forward runs the graph
the worker recorded for that call.

The measurements (grader.kinds.sentiment_model.measure, grader.kinds.next_char_model.measure)
call it exactly as they call the student's model: in eval and train mode, on a float64
copy, with the grader's tokens. Its parameters are real leaves, laid out under the
student's module names, so gradients, copies and redrawn weights work as on the model.
A call the worker did not record is refused; one the student's code failed on raises
that failure again.
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn

from grader.kinds.sentiment_model.calls import Recorded, key, weights_dtype

from . import artefact as artefacts
from . import graph as graphs


class _Calls:
    """The parsed graphs, shared by every copy of the model (a deep copy keeps them)."""

    def __init__(self, art: artefacts.SequenceArtefact):
        self.graphs = {}
        for k, data in art.calls.items():
            parsed = graphs.parse(data, art.tensors, inputs=range(1, 5), outputs=range(1, 4))
            for name, kind, target in parsed.inputs:
                if kind in ("parameter", "buffer") and "/" in target:
                    raise artefacts.ArtefactError(f"call {k[:60]} reads a constant as a weight")
            if _leaf_count(data["returns"]) != len(parsed.outputs):
                raise artefacts.ArtefactError(f"call {k[:60]} returns {len(parsed.outputs)} tensors, not the "
                                              "structure it declares")
            self.graphs[k] = (parsed, data["returns"])
        self.failed = art.failed
        self.constants = {t: v for t, v in art.tensors.items() if "/" in t}
        self.tokens = {t for parsed, _ in self.graphs.values() for node in parsed.nodes
                       if node.packet in ("embedding", "embedding_bag", "_embedding_bag") and node.args and
                       isinstance(node.args[0], graphs.Ref) for name, kind, t in parsed.inputs
                       if name == node.args[0].name and kind == "parameter"}

    def __deepcopy__(self, memo):
        return self


class GraphModel(nn.Module):
    def __init__(self, art: artefacts.SequenceArtefact, fixed: frozenset[int]):
        super().__init__()
        self._calls = _Calls(art)
        self._fixed = fixed
        used = {(kind, target) for parsed, _ in self._calls.graphs.values() for _, kind, target in parsed.inputs}
        for target, tensor in art.tensors.items():
            if "/" in target:
                continue
            owner_name, _, leaf = target.rpartition(".")
            owner = self._owner(owner_name)
            try:
                if ("buffer", target) in used:
                    owner.register_buffer(leaf, tensor.clone())
                else:
                    grad = bool(art.requires_grad.get(target)) and tensor.is_floating_point()
                    owner.register_parameter(leaf, nn.Parameter(tensor.clone(), requires_grad=grad))
            except (KeyError, TypeError) as exc:
                raise artefacts.ArtefactError(f"weight {target[:80]} cannot be laid out ({exc})") from None
        self.class_name = art.class_name

    def _owner(self, path: str) -> nn.Module:
        owner: nn.Module = self
        for part in filter(None, path.split(".")):
            inner = owner._modules.get(part)
            if inner is None:
                if hasattr(owner, part):
                    raise artefacts.ArtefactError(f"module {path[:80]} cannot be laid out")
                inner = nn.Module()
                owner.add_module(part, inner)
            owner = inner
        return owner

    def token_tables(self) -> set[str]:
        """The embedding tables: their rows are tokens, not units."""
        return set(self._calls.tokens)

    def forward(self, *args):
        k = key(self.training, weights_dtype(self), args, self._fixed)
        if k in self._calls.failed:
            raise Recorded(self._calls.failed[k])
        found = self._calls.graphs.get(k)
        if found is None:
            raise graphs.GraphError(graphs.Node("call", "call", None, [], {}),
                                    f"the model was not handed over for this call ({k[:120]})")
        graph, returns = found
        given = [t for arg in args for t in ([] if arg is None else [arg] if isinstance(arg, torch.Tensor) else arg)]
        if len(given) != len(graph.user_inputs):
            raise graphs.GraphError(graphs.Node("call", "call", None, [], {}), "the call's arguments do not match")
        weights = {**dict(self.named_parameters()), **dict(self.named_buffers())}
        values = dict(zip(graph.user_inputs, given))
        for name, kind, target in graph.inputs:
            if kind in ("parameter", "buffer"):
                values[name] = weights[target]
            elif kind == "constant":
                values[name] = self._calls.constants[target].clone()
        out = graphs.run(graph, values)
        leaves = list(out) if isinstance(out, tuple) else [out]
        return _rebuild(returns, leaves)


def _leaf_count(spec) -> int:
    return 1 if spec == "tensor" else sum(_leaf_count(item) for item in next(iter(spec.values())))


def _rebuild(spec, leaves: list):
    if spec == "tensor":
        return leaves.pop(0)
    (kind, items), = spec.items()
    built = [_rebuild(item, leaves) for item in items]
    return tuple(built) if kind == "tuple" else built


def load(folder: Path, max_mb: int, model: str, fixed: frozenset[int]) -> GraphModel:
    art = artefacts.read_sequence(folder, int(max_mb) << 20)
    if art.model != model:
        raise artefacts.ArtefactError(f"the artefact is of a {art.model} model, not a {model} one")
    return GraphModel(art, fixed)
