"""A graph of ATen operators, checked node by node and run by a small interpreter.

Only `aten` operators and tuple indexing are accepted: a custom operator, a Python
callable or anything that reaches files or raw storage is refused before anything runs.
Names are dictionary keys, never code (torch.fx would generate Python from them), every
reference must name an earlier value, and sizes are bounded before and after each call.
"""
from __future__ import annotations

import math
import operator
import re
from dataclasses import dataclass, field

import torch

from .artefact import ArtefactError

MAX_NODES = 20_000
MAX_ELEMENTS = 1 << 28  # one tensor of 1 GB in float32; AlexNet's largest is 38 M
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,119}\Z")
_TARGET = re.compile(r"aten\.([a-z_][a-z0-9_]{0,79})\.([A-Za-z_][A-Za-z0-9_]{0,59})\Z")
# Operators that touch files, raw storage, other devices' streams, or skip bounds checks.
_DENIED = {"from_file", "set_", "set", "resize_", "resize_as_", "_resize_output", "_resize_output_", "record_stream",
           "as_strided", "as_strided_", "as_strided_scatter", "_make_per_tensor_quantized_tensor", "save", "load",
           "_local_scalar_dense", "item", "to_sparse", "_pin_memory", "pin_memory", "_print", "_assert_async",
           "_foreach_copy", "_copy_from", "_copy_from_and_resize", "_set_item", "storage_offset"}
_DENIED_PREFIXES = ("_unsafe", "_sparse", "sparse", "_nested", "nested", "mkldnn", "_mkldnn", "_cudnn", "cudnn",
                    "_cufft", "miopen", "_fbgemm", "fbgemm", "quantize", "_quantize", "q_", "_to_sparse", "_fused")
_BAD_SCHEMA = ("Storage", "Stream", "Generator", "Dimname", "__torch__", "Any")
DTYPES = {"float32", "float64", "float16", "bfloat16", "int64", "int32", "int16", "int8", "uint8", "bool"}
MEMORY_FORMATS = {"contiguous_format", "preserve_format", "channels_last"}


@dataclass
class Node:
    name: str
    packet: str  # "conv2d", or "getitem"
    op: object  # the resolved OpOverload, or operator.getitem
    args: list
    kwargs: dict
    module: str = ""
    module_type: str = ""
    where: str = ""


@dataclass
class Graph:
    inputs: list  # [(name, kind, target)]
    nodes: list[Node]
    outputs: list[str]  # the user outputs' names, in order
    refs: dict = field(default_factory=dict)  # name -> names it reads

    @property
    def output(self) -> str:
        return self.outputs[0]

    @property
    def user_inputs(self) -> list[str]:
        return [name for name, kind, _ in self.inputs if kind == "input"]

    def placeholders(self, kind: str) -> list[tuple[str, str]]:
        return [(name, target) for name, k, target in self.inputs if k == kind]

    def ancestors(self, name: str) -> set[str]:
        """Every value `name` depends on, itself included."""
        seen, stack = set(), [name]
        while stack:
            current = stack.pop()
            if current in seen:
                continue
            seen.add(current)
            stack.extend(self.refs.get(current, ()))
        return seen


def parse(data, tensors: dict, inputs: range = range(1, 2), outputs: range = range(1, 2)) -> Graph:
    """Check a graph's JSON against the artefact's tensors and resolve its operators. A
    model takes one batch and returns one tensor of scores; a recurrent cell takes (x, state)
    and returns its state: `inputs` and `outputs` say how many user values are allowed."""
    user_inputs, user_outputs = inputs, outputs
    if not isinstance(data, dict):
        raise ArtefactError("a graph is not an object")
    inputs, known = [], set()
    for item in _list(data.get("inputs"), "inputs"):
        name, kind, target = (item.get(k) for k in ("name", "kind", "target")) if isinstance(item, dict) else (None,) * 3
        if not isinstance(name, str) or not _NAME.match(name) or name in known:
            raise ArtefactError("a graph input has a malformed or repeated name")
        if kind not in ("parameter", "buffer", "constant", "input"):
            raise ArtefactError(f"graph input {name} is of a kind the verifier does not accept")
        if kind != "input" and target not in tensors:
            raise ArtefactError(f"graph input {name} names a tensor the artefact does not hold")
        inputs.append((name, kind, target if kind != "input" else None))
        known.add(name)
    if sum(kind == "input" for _, kind, _ in inputs) not in user_inputs:
        raise ArtefactError("the graph must take exactly one input batch" if user_inputs == range(1, 2) else
                            "the graph takes more or fewer inputs than the grader gave it")
    nodes, refs = [], {}
    raw_nodes = _list(data.get("nodes"), "nodes")
    if len(raw_nodes) > MAX_NODES:
        raise ArtefactError(f"the graph has more than {MAX_NODES:,} operations")
    for item in raw_nodes:
        if not isinstance(item, dict):
            raise ArtefactError("a graph node is not an object")
        name = item.get("name")
        if not isinstance(name, str) or not _NAME.match(name) or name in known:
            raise ArtefactError("a graph node has a malformed or repeated name")
        packet, op = _resolve(item.get("target"))
        used: list[str] = []
        args = _arguments(item.get("args"), known, used)
        kwargs = _arguments(item.get("kwargs") or {}, known, used)
        if not isinstance(args, list) or not isinstance(kwargs, dict):
            raise ArtefactError(f"node {name} has malformed arguments")
        meta = {k: str(item.get(k) or "")[:200] for k in ("module", "module_type", "where")}
        nodes.append(Node(name, packet, op, args, kwargs, **meta))
        refs[name] = used
        known.add(name)
    found = [o for o in _list(data.get("outputs"), "outputs") if isinstance(o, dict) and o.get("kind") == "user_output"]
    if len(found) not in user_outputs or any(o.get("name") not in known for o in found):
        raise ArtefactError("the graph must return exactly one tensor of scores" if user_outputs == range(1, 2) else
                            "the graph returns more or fewer values than a cell's state holds")
    return Graph(inputs, nodes, [o["name"] for o in found], refs)


def _list(value, what: str) -> list:
    if not isinstance(value, list):
        raise ArtefactError(f"the graph's {what} are missing")
    return value


def _resolve(target) -> tuple[str, object]:
    if target == "getitem":
        return "getitem", operator.getitem
    match = _TARGET.match(target) if isinstance(target, str) else None
    if match is None:
        raise ArtefactError(f"the graph calls {str(target)[:80]!r}, which is not an ATen operator")
    packet, overload = match.groups()
    if packet in _DENIED or packet.startswith(_DENIED_PREFIXES):
        raise ArtefactError(f"the graph calls aten.{packet}, which the verifier does not run")
    try:
        op = getattr(getattr(torch.ops.aten, packet), overload)
    except (AttributeError, RuntimeError):
        raise ArtefactError(f"the graph calls {target}, which is not an ATen operator of this torch") from None
    if not isinstance(op, torch._ops.OpOverload):
        raise ArtefactError(f"the graph calls {target}, which is not an ATen operator")
    schema = str(op._schema)
    if any(bad in schema for bad in _BAD_SCHEMA):
        raise ArtefactError(f"the graph calls {target}, whose arguments the verifier does not accept")
    return packet, op


def _arguments(value, known: set, used: list, depth: int = 0):
    if depth > 6:
        raise ArtefactError("a node's arguments are nested too deeply")
    if value is None or isinstance(value, (bool, str)):
        return value if not isinstance(value, str) or len(value) <= 64 else _too_long()
    if isinstance(value, int):
        if abs(value) > (1 << 63):  # slicing to the end is sys.maxsize
            raise ArtefactError("a node's argument is an implausibly large integer")
        return value
    if isinstance(value, float):
        return value
    if isinstance(value, list):
        if len(value) > 4096:
            raise ArtefactError("a node's argument list is too long")
        return [_arguments(v, known, used, depth + 1) for v in value]
    if isinstance(value, dict) and depth == 0:  # keyword arguments: a one-keyword call (dtype=...) included
        return {str(k)[:40]: _arguments(v, known, used, 1) for k, v in value.items()}
    if isinstance(value, dict) and len(value) == 1:
        (key, inner), = value.items()
        if not isinstance(inner, str):
            raise ArtefactError("a node has an argument the verifier does not accept")
        if key == "ref" and isinstance(inner, str) and inner in known:
            used.append(inner)
            return Ref(inner)
        if key == "dtype" and inner in DTYPES:
            return getattr(torch, inner)
        if key == "float" and inner in ("inf", "-inf", "nan"):
            return float(inner)
        if key == "device":
            return DEVICE
        if key == "memory_format" and inner in MEMORY_FORMATS:
            return getattr(torch, inner)
        if key == "layout" and inner == "strided":
            return torch.strided
    raise ArtefactError("a node has an argument the verifier does not accept")


def _too_long():
    raise ArtefactError("a node has a text argument longer than any operator takes")


@dataclass(frozen=True)
class Ref:
    name: str


DEVICE = torch.device("cpu")  # where the graph runs; grader.verifier.measure may move it


def run(graph: Graph, values: dict, patch=None, record=None):
    """Run the graph on `values` (placeholder name -> tensor) and return its user output
    (a tuple when it has several).

    `patch(node, args, kwargs)` may change a call's arguments (dropout off); `record(node,
    args, kwargs, out)` sees every call's resolved arguments and result (for layer rows)."""
    env = dict(values)
    for node in graph.nodes:
        args = _bind(node.args, env)
        kwargs = _bind(node.kwargs, env)
        if patch is not None:
            args, kwargs = patch(node, args, kwargs)
        if node.op is operator.getitem:
            out = _getitem(node, args)
        else:
            _check_sizes(node, args, kwargs)
            try:
                out = node.op(*args, **kwargs)
            except (RuntimeError, TypeError, ValueError, IndexError) as exc:
                raise GraphError(node, str(exc).split("\n")[0][:300]) from None
        _check_result(node, out)
        if record is not None:
            record(node, args, kwargs, out)
        env[node.name] = out
    return env[graph.output] if len(graph.outputs) == 1 else tuple(env[name] for name in graph.outputs)


class GraphError(RuntimeError):
    def __init__(self, node: Node, message: str):
        super().__init__(f"{node.packet} ({node.module or node.name}) failed: {message}")
        self.node = node


def _bind(value, env):
    if isinstance(value, Ref):
        return env[value.name]
    if isinstance(value, list):
        return [_bind(v, env) for v in value]
    if isinstance(value, dict):
        return {k: _bind(v, env) for k, v in value.items()}
    return value


def _getitem(node: Node, args: list):
    if len(args) != 2 or not isinstance(args[0], (tuple, list)) or not isinstance(args[1], int) \
            or not -len(args[0]) <= args[1] < len(args[0]):
        raise GraphError(node, "indexes something that is not an operator's tuple of results")
    return args[0][args[1]]


def _check_sizes(node: Node, args: list, kwargs: dict) -> None:
    """A size list asking for more than MAX_ELEMENTS is refused before it allocates."""
    for value in list(args) + list(kwargs.values()):
        if isinstance(value, list) and value and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            if math.prod(abs(v) for v in value) > MAX_ELEMENTS:
                raise GraphError(node, f"asks for a size of {value}, beyond what the verifier allocates")


def _check_result(node: Node, out) -> None:
    for t in out if isinstance(out, (tuple, list)) else (out,):
        if isinstance(t, torch.Tensor) and t.numel() > MAX_ELEMENTS:
            raise GraphError(node, f"made a tensor of {t.numel():,} values, beyond what the verifier holds")
