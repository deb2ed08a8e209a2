"""Hand a recurrent cell to the verifier as data: one step of it at every size its checks use.

The worker builds the student's cell as the checks would (the same sizes, seeds and
modes, listed in grader.kinds.cell.measure.SIZES), exports a step from no state and a step
from a given state at each batch size they call it with, and writes the graphs and the
raw bytes of every size's tensors. It measures nothing: grader.kinds.cell.measure runs the
steps in a process that never imports the submission.
"""
from __future__ import annotations

import gc
import json
from pathlib import Path

import torch

from grader.worker import failures
from grader.worker.export import FORMAT, Unsupported, encode_program, write_raw
from grader.worker.probes import _symbol

from . import anatomy
from .measure import Size, leaves, sizes
from .probe import _builtin_modules, _reported_count


def export_cell(symbol: str, family: str, seed: int, folder: str, memory: bool) -> dict:
    """Build, export and write; the reply says where the artefact is, or at which stage the
    student's code stopped (before export: a failure; in export: the worker measures instead)."""
    Cell = _symbol(symbol)
    result: dict = {"error": None, "constructed": False, "artefact": None, "builtin_modules": []}
    stage = "construct"
    try:
        torch.manual_seed(seed)
        graded = Cell(anatomy.INPUT, anatomy.HIDDEN, True)
        result["class_name"] = type(graded).__name__
        result["builtin_modules"] = _builtin_modules(graded)
        result["constructed"] = True
        # A stop here fails the contract check, and export goes on: the counts, the memory
        # task and the kernels seen are measured all the same, as the in-process probe did.
        stage = "keywords"
        try:
            Cell(input_size=anatomy.INPUT, hidden_size=anatomy.HIDDEN, bias=True)  # the models build cells so
            stage = "count_parameters"
            result["count_parameters"] = _reported_count(graded)
        except Exception as exc:
            result["stopped"] = failures.describe(exc, stage)
        stage = "export"
        folder = write(Cell, sizes(family, memory), family, seed, folder)
    except Unsupported as exc:
        result["error"] = {"type": "Unsupported", "message": str(exc), "stage": "export", "file": None,
                           "line": None, "code": None, "trace": []}
        return result
    except BaseException as exc:
        result["error"] = failures.describe(exc, stage)
        return result
    result["artefact"] = str(folder)
    return result


def write(Cell, wanted: list[Size], family: str, seed: int, folder: str) -> Path:
    """Export each size's steps and write the artefact into `folder` (in the run folder,
    made with its files by the scorer: rewritten in place)."""
    configs, items = [], []
    for size in wanted:
        _export_size(Cell, size, family, seed, configs, items)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = write_raw(folder / "weights.bin", items)
    manifest = {"format": FORMAT, "kind": "cell", "class_name": getattr(Cell, "__name__", "?")[:80], "weights": True,
                "tensors": tensors, "configs": configs}
    (folder / "manifest.json").write_text(json.dumps(manifest, allow_nan=False))
    del items, configs
    gc.collect()  # export's graphs hold the cells in reference cycles
    return folder


def _export_size(Cell, size: Size, family: str, seed: int, configs: list, items: list) -> None:
    """Export one size's steps, in float64 first where the anatomy asks for it. A size whose
    key (sizes and dtype) another already has adds its steps to that one: the verifier
    looks cells up by key, and the anatomy redraws the weights it runs on."""
    last = None
    for dtype in ((torch.float64, torch.float32) if size.anatomy else (torch.float32,)):
        try:
            with anatomy.default_dtype(dtype):
                graphs, cell = _programs(Cell, size, family, seed, dtype)
            break
        except Unsupported:
            raise
        except Exception as exc:  # float64 the student's code refuses: float32, as the anatomy does
            last = exc
    else:
        raise last
    name = str(dtype).removeprefix("torch.")
    same = next((c for c in configs if (c["input"], c["hidden"], c["bias"], c["dtype"]) ==
                 (size.input, size.hidden, size.bias, name)), None)
    if same is not None:
        for key, (graph, returns, constants) in graphs.items():
            same["graphs"].setdefault(key, _prefixed(graph, returns, same["name"], key, constants, items))
        return
    prefix = size.name + "/"
    params = dict(cell.named_parameters())
    for target, tensor in {**params, **dict(cell.named_buffers())}.items():
        items.append((prefix + target, tensor, target in params and tensor.requires_grad))
    config = {"name": size.name, "input": size.input, "hidden": size.hidden, "bias": size.bias, "dtype": name,
              "graphs": {key: _prefixed(graph, returns, size.name, key, constants, items)
                         for key, (graph, returns, constants) in graphs.items()}}
    configs.append(config)


def _programs(Cell, size: Size, family: str, seed: int, dtype):
    torch.manual_seed(seed + size.seed)
    cell = Cell(size.input, size.hidden) if size.bias is None else Cell(size.input, size.hidden, size.bias)
    if not isinstance(cell, torch.nn.Module):
        raise Unsupported(f"{type(cell).__name__} is not an nn.Module, so the grader cannot export it")
    cell.train(size.train)
    g = torch.Generator().manual_seed(seed + size.seed)
    out = {}
    for key in size.graphs:
        kind, batch = key.split("@")
        x = torch.randn(int(batch), size.input, generator=g, dtype=dtype)  # [B, input]
        if kind == "first":
            args = (x, None)
        elif size.anatomy:  # the state as the anatomy passes it
            args = (x, anatomy.random_state(family, int(batch), size.hidden, g, dtype))
        else:  # the state the cell itself returned
            with torch.no_grad():
                state = cell(x, None)
            args = (x, tuple(t.detach() for t in leaves(state)) if not isinstance(state, torch.Tensor) else state.detach())
        program = torch.export.export(cell, args, strict=False)
        out[key] = (encode_program(program), _returns(program), dict(program.constants))
    return out, cell


def _returns(program) -> str:
    spec = program.call_spec.out_spec
    if spec.is_leaf():
        return "tensor"
    kind = {tuple: "tuple", list: "list"}.get(spec.type)
    if kind is None or not 0 < spec.num_children <= 2 or not all(spec.child(i).is_leaf() for i in range(spec.num_children)):
        raise Unsupported("the cell returns something other than a tensor or a pair of tensors, which the grader "
                          "cannot check outside your process")
    return kind


def _prefixed(graph: dict, returns: str, name: str, key: str, constants: dict, items: list) -> dict:
    """The graph reading its size's tensors (name/target); a lifted constant is the step's own."""
    inputs = []
    for spec in graph["inputs"]:
        if spec["kind"] == "constant":
            target = f"{name}/{key}/{spec['target']}"
            items.append((target, constants[spec["target"]], False))
            spec = {**spec, "target": target}
        elif spec["kind"] != "input":
            spec = {**spec, "target": f"{name}/{spec['target']}"}
        inputs.append(spec)
    if any(o.get("name") is None for o in graph["outputs"] if o.get("kind") == "user_output"):
        raise Unsupported("the cell returns a value that is not a tensor (None, a number), which the grader "
                          "cannot check outside your process")
    return {**graph, "inputs": inputs, "returns": returns}
