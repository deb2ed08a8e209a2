"""Hand a model to the verifier as data: its graph from torch.export, and its weights.

Nothing measured here is believed. The worker writes two graphs (train mode at the
training batch, eval mode at a batch of 2) and the raw bytes of every parameter, buffer
and constant; grader.verifier rebuilds the network from them, in a process that never
imports the student's code, and measures it there. The artefact format is ours and plain:
JSON for the graphs, one file of raw tensor bytes, no pickle anywhere.
"""
from __future__ import annotations

import contextlib
import gc
import json
import math
import operator
import re
from pathlib import Path

import torch

from . import compat, failures

FORMAT = 1
EVAL_BATCH = 2  # the forward check's batch, as the handout's examples use
_WHERE = re.compile(r'File "(?P<file>[^"]+)", line (?P<line>\d+)')


class Unsupported(Exception):
    """The graph holds something the verifier would refuse: say what, in the student's terms."""


def export(symbol: str, args: list, kwargs: dict, input: list[int], batch: int, seed: int, folder: str,
           weights: bool = True) -> dict:
    """Build the model as the behaviour probe did, export it, and write the artefact into
    `folder` (in the run folder, which the student's code may have left as its cwd). The reply says where, or why export stopped (then the scorer falls back)."""
    from .probes import _build

    result: dict = {"error": None, "constructed": False, "artefact": None}
    if not weights:  # only the layers are asked for: no weights allocated, as the old trace did
        made = export(symbol, args, kwargs, input, batch, seed, folder, weights="meta")
        if made["error"] is None:
            return made
        return export(symbol, args, kwargs, input, batch, seed, folder)  # code meta tensors cannot run
    meta = weights == "meta"
    redirect = compat.DeviceRedirect("meta", {"cpu", "cuda"}) if meta else \
        compat.cuda_redirect() or contextlib.nullcontext()
    place = torch.device("meta") if meta else contextlib.nullcontext()
    torch.manual_seed(seed)
    try:
        with place, redirect:
            model = _build(symbol, args, kwargs)
    except BaseException as exc:
        result["error"] = failures.describe(exc, "construct")
        return result
    result["constructed"] = True
    result["class_name"] = type(model).__name__
    graphs, programs = {}, {}
    for mode, size in (("train", int(batch)), ("eval", EVAL_BATCH)):
        model.train(mode == "train")
        try:
            with redirect:
                x = torch.zeros(size, *input, device="meta" if meta else "cpu")
                programs[mode] = torch.export.export(model, (x,), strict=False)
            graphs[mode] = encode_program(programs[mode])
        except Unsupported as exc:
            result["error"] = {"type": "Unsupported", "message": str(exc), "stage": "export", "file": None,
                               "line": None, "code": None, "trace": [], "mode": mode}
            return result
        except BaseException as exc:
            result["error"] = {**failures.describe(exc, "export"), "mode": mode}
            return result
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)  # the scorer made it, with its files: rewritten in place
    tensors = _write_tensors(folder / "weights.bin", programs["train"], model, not meta)
    manifest = {"format": FORMAT, "class_name": result["class_name"], "input": list(input), "weights": not meta,
                "batch": {"train": int(batch), "eval": EVAL_BATCH}, "tensors": tensors, "graphs": graphs}
    (folder / "manifest.json").write_text(json.dumps(manifest, allow_nan=False))
    result["artefact"] = str(folder)
    del programs, model
    gc.collect()  # export's graphs hold the model in reference cycles: free its weights before the next probe
    return result


# ------------------------------------------------------------------ graph -> JSON

_KINDS = {"PARAMETER": "parameter", "BUFFER": "buffer", "CONSTANT_TENSOR": "constant", "USER_INPUT": "input"}


def encode_program(program) -> dict:
    signature = program.graph_signature
    inputs = []
    for spec in signature.input_specs:
        if spec.kind.name == "USER_INPUT" and isinstance(spec.arg, torch.export.graph_signature.ConstantArgument):
            continue  # a None (a cell's first state): export specialised the graph on it
        kind = _KINDS.get(spec.kind.name)
        if kind is None:
            raise Unsupported(f"the exported graph takes a {spec.kind.name.lower()} input, which the grader cannot check")
        inputs.append({"name": spec.arg.name, "kind": kind, "target": spec.target})
    outputs = [{"name": getattr(spec.arg, "name", None), "kind": spec.kind.name.lower()} for spec in signature.output_specs]
    nodes = []
    for node in program.graph.nodes:
        if node.op != "call_function":
            continue
        nodes.append({"name": node.name, "target": _target(node.target), "args": _value(node.args),
                      "kwargs": {k: _value(v) for k, v in node.kwargs.items()}, **_origin(node)})
    return {"inputs": inputs, "nodes": nodes, "outputs": outputs}


def _target(target) -> str:
    if target is operator.getitem:
        return "getitem"
    if isinstance(target, torch._ops.OpOverload):
        namespace, _, packet = target._schema.name.partition("::")
        return f"{namespace}.{packet}.{target._overloadname}"
    name = getattr(target, "__name__", repr(target))
    raise Unsupported(f"forward uses {name}, which the grader cannot check outside your process")


def _value(value):
    if isinstance(value, torch.fx.Node):
        return {"ref": value.name}
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else {"float": repr(value)}
    if isinstance(value, (list, tuple)):
        return [_value(v) for v in value]
    if isinstance(value, torch.dtype):
        return {"dtype": str(value).removeprefix("torch.")}
    if isinstance(value, torch.device):
        return {"device": "cpu"}  # the verifier decides where it runs
    if isinstance(value, torch.memory_format):
        return {"memory_format": str(value).removeprefix("torch.")}
    if isinstance(value, torch.layout):
        return {"layout": str(value).removeprefix("torch.")}
    raise Unsupported(f"the exported graph holds a {type(value).__name__} value, which the grader cannot check")


def _origin(node) -> dict:
    """Where a node came from, for messages only: the module path and the student's line."""
    stack = node.meta.get("nn_module_stack") or {}
    module, kind = (list(stack.values())[-1] if stack else ("", ""))
    where = ""
    for match in _WHERE.finditer(node.meta.get("stack_trace") or ""):
        rel = failures._relative(match.group("file"))
        if rel:
            where = f"{rel}:{match.group('line')}"
    kind = kind if isinstance(kind, str) else getattr(kind, "__qualname__", "")
    return {"module": str(module)[:200], "module_type": kind.rsplit(".", 1)[-1][:80], "where": where}


# ------------------------------------------------------------------ tensors -> bytes

def _write_tensors(path: Path, program, model, with_bytes: bool) -> list[dict]:
    grads = {n: p.requires_grad for n, p in model.named_parameters()}
    found = {**program.state_dict, **program.constants}
    items = [(spec.target, found[spec.target], grads.get(spec.target, False))
             for spec in program.graph_signature.input_specs if spec.kind.name != "USER_INPUT"]
    return write_raw(path, items, with_bytes)


def write_raw(path: Path, items, with_bytes: bool = True) -> list[dict]:
    """[(target, tensor, requires_grad)] -> one file of raw bytes and its table."""
    table, offset = [], 0
    with open(path, "wb") as f:
        for target, tensor, requires_grad in items:
            tensor = tensor.detach()
            size = 0
            if with_bytes:
                tensor = tensor.to("cpu").contiguous()
                f.write(tensor.reshape(-1).view(torch.uint8).numpy() if tensor.numel() else b"")
                size = tensor.numel() * tensor.element_size()
            table.append({"target": target, "dtype": str(tensor.dtype).removeprefix("torch."),
                          "shape": list(tensor.shape), "offset": offset, "bytes": size,
                          "requires_grad": bool(requires_grad)})
            offset += size
    return table
