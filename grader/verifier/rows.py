"""Layer rows from a graph, as grader.worker.trace makes them from a live forward pass.

The graph is run on the meta device (shapes, no arithmetic). Each ATen call becomes a row
of the same type the torch-function trace gives: aten.conv2d is a Conv2d row, aten.view
that keeps the batch and flattens the rest is a Flatten row. The module path and source
line come from the export's metadata and are used for messages only: every type, shape,
parameter count and attribute is read from the operator and its arguments.
"""
from __future__ import annotations

import torch

from grader.worker.trace import layer_attrs

from .graph import Graph, Ref, run

TYPES = {
    "conv1d": "Conv1d", "conv2d": "Conv2d", "conv3d": "Conv3d", "linear": "Linear",
    "relu": "ReLU", "relu_": "ReLU", "max_pool2d": "MaxPool2d", "max_pool2d_with_indices": "MaxPool2d",
    "avg_pool2d": "AvgPool2d", "adaptive_avg_pool2d": "AdaptiveAvgPool2d", "_adaptive_avg_pool2d": "AdaptiveAvgPool2d",
    "adaptive_max_pool2d": "AdaptiveMaxPool2d", "flatten": "Flatten", "dropout": "Dropout", "dropout_": "Dropout",
    "native_dropout": "Dropout", "feature_dropout": "Dropout2d", "feature_dropout_": "Dropout2d",
    "batch_norm": "BatchNorm", "native_batch_norm": "BatchNorm", "_native_batch_norm_legit": "BatchNorm",
    "_native_batch_norm_legit_no_training": "BatchNorm", "layer_norm": "LayerNorm", "native_layer_norm": "LayerNorm",
    "softmax": "Softmax", "_softmax": "Softmax", "log_softmax": "LogSoftmax", "_log_softmax": "LogSoftmax",
    "sigmoid": "Sigmoid", "sigmoid_": "Sigmoid", "tanh": "Tanh", "tanh_": "Tanh", "leaky_relu": "LeakyReLU",
    "leaky_relu_": "LeakyReLU", "elu": "ELU", "elu_": "ELU", "gelu": "GELU", "silu": "SiLU", "silu_": "SiLU",
    "relu6": "ReLU6", "hardtanh": "ReLU6", "hardtanh_": "ReLU6", "embedding": "Embedding",
}
# Calls that neither compute nor change a shape, as in the live trace.
IGNORED = {"clone", "_to_copy", "to", "detach", "detach_", "alias", "contiguous", "lift_fresh_copy", "getitem",
           "_assert_tensor_metadata", "_assert_scalar", "sym_constrain_range", "sym_constrain_range_for_size",
           "type_as", "view_as", "expand_as", "empty", "zeros", "ones", "randn", "rand", "full", "scalar_tensor",
           "new_zeros", "new_ones", "new_empty", "new_full", "arange", "copy"}
RESHAPES = {"view", "reshape", "_unsafe_view"}
COMPOSITE = {"LocalResponseNorm", "GELU", "SiLU", "Softmax", "LogSoftmax", "LayerNorm", "GroupNorm", "Hardswish"}


def rows(graph: Graph, tensors: dict, batch: int, input_shape: tuple) -> tuple[list[dict], tuple]:
    """(rows, output shape without the batch) of the graph run on meta tensors."""
    values, params = {}, {}
    for name, kind, target in graph.inputs:
        if kind == "input":
            values[name] = torch.zeros(batch, *input_shape, device="meta")
        else:
            values[name] = torch.empty_like(tensors[target], device="meta")
            if kind == "parameter":
                params[name] = tensors[target].numel()
    found: list[dict] = []

    def record(node, args, kwargs, out):
        row = _row(node, args, kwargs, out, params)
        if row is not None:
            found.append(row)

    out = run(graph, values, record=record)
    return _merge_composites(found), tuple(out.shape[1:]) if isinstance(out, torch.Tensor) else ()


def _first_tensor(values):
    for v in values:
        if isinstance(v, torch.Tensor):
            return v
        if isinstance(v, (list, tuple)):
            t = _first_tensor(v)
            if t is not None:
                return t
    return None


def _row(node, args, kwargs, out, params: dict) -> dict | None:
    packet = node.packet
    result = _first_tensor([out])
    source = _first_tensor(list(args) + list(kwargs.values()))
    if result is None or source is None or packet in IGNORED or packet.endswith("_like"):
        return None
    layer = TYPES.get(packet)
    if layer is None and packet in RESHAPES:
        if list(result.shape) == list(source.shape):
            return None
        flat = result.dim() == 2 and source.dim() > 2 and result.shape[0] == source.shape[0]
        layer = "Flatten" if flat else "Reshape"
    elif layer is None and packet in ("clamp", "clamp_", "clamp_min", "clamp_min_") and _relu_clamp(args):
        layer = "ReLU"
    elif layer is None:
        layer = "Other"
    layer, attrs = layer_attrs(layer, args, kwargs, source, result)
    used = {a.name for a in _refs(list(node.args) + list(node.kwargs.values()))}
    op = packet.rstrip("_") if packet in TYPES else packet  # relu_ is nn.ReLU(inplace=True): a relu row
    return {"type": layer, "op": op, "shape": list(result.shape[1:]), "in_shape": list(source.shape[1:]),
            "params": sum(n for name, n in params.items() if name in used), "attrs": attrs,
            "module": node.module, "where": node.where, "module_type": node.module_type}


def _refs(values):
    for v in values:
        if isinstance(v, Ref):
            yield v
        elif isinstance(v, list):
            yield from _refs(v)


def _relu_clamp(args) -> bool:
    low = args[1] if len(args) > 1 else None
    high = args[2] if len(args) > 2 else None
    return high is None and isinstance(low, (int, float)) and not isinstance(low, bool) and low == 0


def _merge_composites(found: list[dict]) -> list[dict]:
    """A module torch builds from several plain operators (LocalResponseNorm) is one row,
    as the live trace shows it; only a run of rows no operator names can be relabelled."""
    out: list[dict] = []
    for row in found:
        kind = row.pop("module_type", "")
        prev = out[-1] if out else None
        if kind in COMPOSITE and row["type"] == "Other" and row["module"]:
            if prev is not None and prev.get("_composite") == row["module"]:
                prev["shape"] = row["shape"]
                continue
            row = {**row, "type": kind, "op": kind.lower(), "_composite": row["module"]}
        out.append(row)
    for row in out:
        row.pop("_composite", None)
    return out
