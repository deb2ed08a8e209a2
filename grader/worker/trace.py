"""Record a model's forward pass as layer rows, whatever style the student wrote it in.

A TorchFunctionMode sees the call of every torch function: nn.Conv2d and F.conv2d both
arrive as `conv2d`, nn.ReLU(inplace=True), F.relu and x.relu_() all arrive as a relu, and
x.view(B, -1) and nn.Flatten both flatten. Calls a torch function makes internally are not
seen (the mode is off while its own handler runs), so each row is one step of the
student's computation, named like torchsummary names modules.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode


def _pair(value, default=None):
    if value is None:
        return default
    if isinstance(value, (list, tuple)):
        return [int(v) for v in value] * (2 // len(value)) if len(value) in (1, 2) else [int(v) for v in value]
    if isinstance(value, str):  # padding="same" / "valid"
        return value
    return [int(value), int(value)]


def _arg(args, kwargs, index, name, default=None):
    if name in kwargs:
        return kwargs[name]
    return args[index] if len(args) > index else default


def _conv_attrs(args, kwargs):
    weight = _arg(args, kwargs, 1, "weight")
    attrs = {
        "kernel": list(weight.shape[2:]) if isinstance(weight, torch.Tensor) else None,
        "stride": _pair(_arg(args, kwargs, 3, "stride", 1)),
        "padding": _pair(_arg(args, kwargs, 4, "padding", 0)),
        "dilation": _pair(_arg(args, kwargs, 5, "dilation", 1)),
        "groups": int(_arg(args, kwargs, 6, "groups", 1)),
    }
    if attrs["padding"] == "valid":
        attrs["padding"] = [0] * len(attrs["kernel"])
    elif attrs["padding"] == "same" and attrs["kernel"]:
        attrs["padding"] = [d * (k - 1) // 2 for k, d in zip(attrs["kernel"], attrs["dilation"])]
    return attrs


def _pool_attrs(args, kwargs, has_dilation):
    kernel = _pair(_arg(args, kwargs, 1, "kernel_size"))
    stride = _arg(args, kwargs, 2, "stride")
    attrs = {
        "kernel": kernel,
        "stride": _pair(stride) if stride not in (None, [], ()) else kernel,
        "padding": _pair(_arg(args, kwargs, 3, "padding", 0)),
    }
    if has_dilation:
        attrs["dilation"] = _pair(_arg(args, kwargs, 4, "dilation", 1))
        attrs["ceil_mode"] = bool(_arg(args, kwargs, 5, "ceil_mode", False))
    else:
        attrs["ceil_mode"] = bool(_arg(args, kwargs, 4, "ceil_mode", False))
    return attrs


def _dropout_attrs(args, kwargs):
    return {"p": float(_arg(args, kwargs, 1, "p", 0.5)), "training": bool(_arg(args, kwargs, 2, "training", True))}


def layer_attrs(layer: str, args, kwargs, source, result) -> tuple[str, dict]:
    """A row's final type and the attributes the tables list, from the call's arguments;
    shared by the live trace and grader.verifier.rows, whose ATen calls take the same ones."""
    if layer in ("Conv1d", "Conv2d", "Conv3d"):
        return layer, _conv_attrs(args, kwargs)
    if layer == "MaxPool2d":
        return layer, _pool_attrs(args, kwargs, has_dilation=True)
    if layer == "AvgPool2d":
        return layer, _pool_attrs(args, kwargs, has_dilation=False)
    if layer in ("Dropout", "Dropout2d"):
        return layer, _dropout_attrs(args, kwargs)
    if layer == "BatchNorm":
        return f"BatchNorm{max(source.dim() - 2, 1)}d", {}
    if layer in ("AdaptiveAvgPool2d", "AdaptiveMaxPool2d"):
        return layer, {"output_size": list(result.shape[2:])}
    return layer, {}


def _func_table():
    """Map torch callables to layer types. Built once torch is imported."""
    T = torch.Tensor
    groups = {
        "Conv2d": [torch.conv2d, F.conv2d],
        "Conv1d": [torch.conv1d, F.conv1d],
        "Conv3d": [torch.conv3d, F.conv3d],
        "Linear": [F.linear, torch._C._nn.linear],
        "ReLU": [F.relu, F.relu_, torch.relu, torch.relu_, T.relu, T.relu_],
        "MaxPool2d": [F.max_pool2d, torch.max_pool2d, F.max_pool2d_with_indices, torch._C._nn.max_pool2d_with_indices],
        "AvgPool2d": [F.avg_pool2d, torch._C._nn.avg_pool2d],
        "AdaptiveAvgPool2d": [F.adaptive_avg_pool2d, torch._C._nn.adaptive_avg_pool2d],
        "AdaptiveMaxPool2d": [F.adaptive_max_pool2d],
        "Flatten": [torch.flatten, T.flatten],
        "Dropout": [F.dropout, torch.dropout, torch.dropout_],
        "Dropout2d": [F.dropout2d, torch.feature_dropout],
        "BatchNorm": [F.batch_norm, torch.batch_norm],
        "LayerNorm": [F.layer_norm, torch.layer_norm],
        "LocalResponseNorm": [F.local_response_norm],
        "Softmax": [F.softmax, torch.softmax, T.softmax],
        "LogSoftmax": [F.log_softmax, torch.log_softmax, T.log_softmax],
        "Sigmoid": [torch.sigmoid, T.sigmoid, F.sigmoid],
        "Tanh": [torch.tanh, T.tanh, F.tanh],
        "LeakyReLU": [F.leaky_relu],
        "ELU": [F.elu],
        "GELU": [F.gelu],
        "SiLU": [F.silu],
        "ReLU6": [F.relu6, F.hardtanh],
        "Embedding": [F.embedding],
    }
    table = {}
    for layer, funcs in groups.items():
        for f in funcs:
            table[f] = layer
    return table


# Calls that neither compute nor change a shape: moving, copying, type casts, metadata.
_IGNORED = {
    "contiguous", "clone", "to", "float", "double", "half", "bfloat16", "type", "cpu", "cuda", "detach",
    "requires_grad_", "type_as", "view_as", "expand_as", "pin_memory", "share_memory_", "__deepcopy__",
    "__reduce_ex__", "_make_subclass", "empty", "zeros", "ones", "randn", "rand", "tensor", "as_tensor",
}
_RESHAPES = {"view", "reshape"}


@dataclass
class Row:
    type: str
    op: str
    shape: list[int]  # output without the batch dimension
    in_shape: list[int]
    params: int
    attrs: dict = field(default_factory=dict)
    module: str = ""  # the nn.Module attribute path that made the call, e.g. "features.0"
    where: str = ""  # the student's source line, e.g. "cnn_trainer.py:88"

    def as_dict(self):
        return {k: getattr(self, k) for k in ("type", "op", "shape", "in_shape", "params", "attrs", "module", "where")}


def _first_tensor(value):
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, (list, tuple)):
        for v in value:
            t = _first_tensor(v)
            if t is not None:
                return t
    return None


def _tensors(values):
    for v in values:
        if isinstance(v, torch.Tensor):
            yield v
        elif isinstance(v, (list, tuple)):
            yield from _tensors(v)
        elif isinstance(v, dict):
            yield from _tensors(v.values())


class LayerTrace(TorchFunctionMode):
    """Collects Rows while active. `roots` are the submission folders, for source lines."""

    def __init__(self, model: nn.Module, roots: list[str]):
        super().__init__()
        self.rows: list[Row] = []
        self.used_params: set[int] = set()
        self._table = _func_table()
        self._roots = [str(Path(r).resolve()) for r in roots]
        self._names = {id(m): name for name, m in model.named_modules()}
        self._stack: list[str] = []
        self._hooks = []

    def __enter__(self):
        self._hooks = [
            nn.modules.module.register_module_forward_pre_hook(self._push),
            nn.modules.module.register_module_forward_hook(self._pop),
        ]
        return super().__enter__()

    def __exit__(self, *exc):
        for h in self._hooks:
            h.remove()
        return super().__exit__(*exc)

    def _push(self, module, args):
        self._stack.append(self._names.get(id(module), "?"))

    def _pop(self, module, args, output):
        if self._stack:
            self._stack.pop()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        try:
            self._record(func, args, kwargs, out)
        except Exception:  # a row we cannot describe must not break the student's forward
            pass
        return out

    def _record(self, func, args, kwargs, out):
        name = getattr(func, "__name__", "") or ""
        if name.startswith("__") and name.endswith("__") and name not in ("__add__", "__mul__", "__matmul__", "__getitem__",
                                                                            "__iadd__", "__radd__", "__sub__", "__truediv__"):
            return  # properties and protocol methods (.shape, .grad, repr, ...)
        result = _first_tensor(out)
        source = _first_tensor(args) if args else _first_tensor(list(kwargs.values()))
        if result is None or source is None or name in _IGNORED or name.endswith("_like"):
            return
        params = {id(t): t for t in _tensors(list(args) + list(kwargs.values())) if isinstance(t, nn.Parameter)}
        self.used_params.update(params)
        layer = self._table.get(func)
        if layer is None and name in _RESHAPES:
            if list(result.shape) == list(source.shape):
                return  # a view that changes nothing
            flat = result.dim() == 2 and source.dim() > 2 and result.shape[0] == source.shape[0]
            layer = "Flatten" if flat else "Reshape"
        elif layer is None and name in ("clamp", "clamp_", "clamp_min", "clamp_min_") and self._is_relu_clamp(args, kwargs):
            layer = "ReLU"
        elif layer is None:
            layer = "Other"
        layer, attrs = layer_attrs(layer, args, kwargs, source, result)
        self.rows.append(Row(
            type=layer, op=name, shape=list(result.shape[1:]), in_shape=list(source.shape[1:]),
            params=sum(p.numel() for p in params.values()), attrs=attrs,
            module=self._stack[-1] if self._stack else "", where=self._where(),
        ))

    @staticmethod
    def _is_relu_clamp(args, kwargs):
        low = _arg(args, kwargs, 1, "min")
        high = _arg(args, kwargs, 2, "max")
        return high is None and isinstance(low, (int, float)) and low == 0

    def _where(self) -> str:
        frame = sys._getframe(2)
        while frame is not None:
            filename = frame.f_code.co_filename
            for root in self._roots:
                if filename.startswith(root + "/"):
                    return f"{filename[len(root) + 1:]}:{frame.f_lineno}"
            frame = frame.f_back
        return ""
