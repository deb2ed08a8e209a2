"""Whether two exports of one model differ only by its class count.

A rubric grades a model at several class counts (4 and 7 for PACS) to catch a hard-coded
last layer. Running the forward, gradient, dropout and training measurements again on
the second count costs as much as the first and can only repeat them when the two graphs
compute the same thing but for that count. So the verifier keeps the first export's
graphs and tensor table, and compares a later one with it, value by value: an int may
differ only where the first export has the first count and the later one the second.
Anything else (another operator, a literal that moved, a tensor more or less) and the
later model is measured in full.
"""
from __future__ import annotations

import copy

from .artefact import Artefact

_ORIGIN = ("module", "module_type", "where")  # for messages only: not part of what is computed


class Remembered:
    """What a fully measured export leaves for its other class counts."""

    def __init__(self, art: Artefact, num_classes: int, behaviour: dict, trained: bool):
        self.graphs = copy.deepcopy(art.graphs)
        self.table = _table(art)
        self.input = tuple(art.input)
        self.batch = dict(art.batch)
        self.num_classes = int(num_classes)
        self.behaviour = copy.deepcopy(behaviour)
        self.trained = trained  # the gradients and training step were measured too


def difference(base: Remembered, art: Artefact, num_classes: int) -> str | None:
    """None when `art` is `base` with its class count changed; else the first difference, in words."""
    if tuple(art.input) != base.input or dict(art.batch) != base.batch:
        return "it was exported at other input or batch sizes"
    counts = (base.num_classes, int(num_classes))
    if counts[0] == counts[1]:
        return "the class counts are the same"
    table = _table(art)
    if [t[0] for t in table] != [t[0] for t in base.table]:
        return "it holds other tensors"
    for old, new in zip(base.table, table):
        if old[1] != new[1] or old[3] != new[3] or not _same(list(old[2]), list(new[2]), counts):
            return f"tensor {new[0]} differs by more than the class count"
    for mode in ("train", "eval"):
        why = _graph_difference(base.graphs.get(mode), art.graphs.get(mode), counts)
        if why:
            return f"its {mode}-mode graph differs: {why}"
    return None


def shared_behaviour(base: Remembered, eval_shape: tuple, num_classes: int) -> dict:
    """The base's behaviour, reported for this class count: the forward shape is this
    graph's own (run on the meta device); the rest is the base's, marked as such."""
    behaviour = copy.deepcopy(base.behaviour)
    if isinstance(behaviour.get("forward"), dict):
        behaviour["forward"]["shape"] = [base.batch["eval"], *eval_shape]
    behaviour["shared"] = {"num_classes": base.num_classes, "for": int(num_classes)}
    return behaviour


def _table(art: Artefact) -> list[tuple]:
    return [(target, str(t.dtype), tuple(t.shape), bool(art.requires_grad.get(target, False)))
            for target, t in art.tensors.items()]


def _graph_difference(old, new, counts) -> str | None:
    if not isinstance(old, dict) or not isinstance(new, dict):
        return "a graph is missing"
    if old.get("inputs") != new.get("inputs") or old.get("outputs") != new.get("outputs"):
        return "other inputs or outputs"
    old_nodes, new_nodes = old.get("nodes") or [], new.get("nodes") or []
    if len(old_nodes) != len(new_nodes):
        return f"{len(new_nodes)} operations against {len(old_nodes)}"
    for a, b in zip(old_nodes, new_nodes):
        if not isinstance(a, dict) or not isinstance(b, dict):
            return "a malformed operation"
        strip = lambda node: {k: v for k, v in node.items() if k not in _ORIGIN}  # noqa: E731
        if not _same(strip(a), strip(b), counts):
            return f"operation {str(b.get('name'))[:60]} ({str(b.get('target'))[:60]})"
    return None


def _same(a, b, counts) -> bool:
    """Equal, but for ints that are the first count in `a` and the second in `b`."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, int) and isinstance(b, int):
        return a == b or (a, b) == counts
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y, counts) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k], counts) for k in a)
    return type(a) is type(b) and a == b
