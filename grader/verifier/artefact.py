"""Read an artefact as hostile input: bounded sizes, a strict schema, no pickle.

The manifest is JSON read through grader.protocol's bounded decoder; the weights are one
file of raw bytes, sliced by the manifest's table and checked against it.
"""
from __future__ import annotations

import contextlib
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from grader import protocol

FORMAT = 1
MAX_MANIFEST = 8 << 20
MAX_TENSORS = 5_000
MAX_DIMS = 8
DTYPES = {"float32", "float64", "float16", "bfloat16", "int64", "int32", "int16", "int8", "uint8", "bool"}
INPUT_KINDS = {"parameter", "buffer", "constant", "input"}


class ArtefactError(ValueError):
    """The artefact is not one the verifier accepts; the text says what was wrong."""


@dataclass(frozen=True)
class TensorEntry:
    target: str
    dtype: str
    shape: tuple[int, ...]
    offset: int
    nbytes: int
    requires_grad: bool


@dataclass
class Artefact:
    class_name: str
    input: tuple[int, ...]
    batch: dict  # mode -> the batch size its graph was exported at
    tensors: dict  # target -> torch.Tensor, on the CPU (on meta when the artefact has no weights)
    requires_grad: dict  # target -> bool (parameters only)
    graphs: dict  # mode -> the graph's JSON, parsed by grader.verifier.graph
    weights: bool = True  # False: shapes only, enough for the layer rows and nothing else


def read(folder: Path, max_bytes: int) -> Artefact:
    manifest = _manifest(folder / "manifest.json")
    if manifest.get("kind", "model") != "model":
        raise ArtefactError("the artefact is not of a model")
    weights = manifest.get("weights") is not False
    entries, tensors = _weights(folder, manifest, max_bytes, weights)
    shape = manifest.get("input")
    if not _ints(shape, 1, MAX_DIMS) or any(s <= 0 or s > 4096 for s in shape):
        raise ArtefactError("the input shape is not a short list of positive sizes")
    batch = manifest.get("batch")
    if not isinstance(batch, dict) or set(batch) != {"train", "eval"} or \
            not all(isinstance(b, int) and not isinstance(b, bool) and 1 <= b <= 256 for b in batch.values()):
        raise ArtefactError("the batch sizes are missing or out of range")
    graphs = manifest.get("graphs")
    if not isinstance(graphs, dict) or set(graphs) != {"train", "eval"}:
        raise ArtefactError("the artefact must hold a train and an eval graph")
    name = manifest.get("class_name")
    return Artefact(name[:80] if isinstance(name, str) else "?", tuple(shape), dict(batch), tensors,
                    {e.target: e.requires_grad for e in entries}, graphs, weights)


@dataclass
class CellConfig:
    name: str  # what the verifier builds it for: "contract", "memory", ...
    input: int
    hidden: int
    bias: bool | None  # None: the cell's own default
    dtype: str
    graphs: dict  # "first@B" (state None) or "step@B" -> (graph JSON, what it returns)


@dataclass
class CellArtefact:
    class_name: str
    tensors: dict  # "config/target" -> torch.Tensor
    requires_grad: dict
    configs: dict  # name -> CellConfig


CELL_CONFIGS = {"graded", "no_bias", "default_bias", "contract", "behaviour", "rows", "path", "memory"}
CELL_GRAPH = re.compile(r"(first|step)@([1-9][0-9]{0,2})\Z")
CELL_RETURNS = {"tensor", "tuple", "list"}


def read_cell(folder: Path, max_bytes: int) -> CellArtefact:
    """A recurrent cell built at several sizes, each with graphs of one step."""
    manifest = _manifest(folder / "manifest.json")
    if manifest.get("kind") != "cell" or manifest.get("weights") is not True:
        raise ArtefactError("the artefact is not of a recurrent cell with its weights")
    entries, tensors = _weights(folder, manifest, max_bytes, True)
    raw = manifest.get("configs")
    if not isinstance(raw, list) or not 0 < len(raw) <= len(CELL_CONFIGS):
        raise ArtefactError("the cell's sizes are missing")
    configs = {}
    for item in raw:
        if not isinstance(item, dict) or item.get("name") not in CELL_CONFIGS or item["name"] in configs:
            raise ArtefactError("a cell size is unnamed, unknown or given twice")
        sizes = [item.get("input"), item.get("hidden")]
        if not _ints(sizes, 2, 2) or not all(0 < s <= 4096 for s in sizes):
            raise ArtefactError(f"cell size {item['name']} has sizes out of range")
        if item.get("bias") not in (True, False, None) or item.get("dtype") not in ("float32", "float64"):
            raise ArtefactError(f"cell size {item['name']} has a malformed bias or dtype")
        graphs = item.get("graphs")
        if not isinstance(graphs, dict) or len(graphs) > 6 or not all(
                isinstance(k, str) and CELL_GRAPH.match(k) and isinstance(g, dict) and g.get("returns") in CELL_RETURNS
                for k, g in graphs.items()):
            raise ArtefactError(f"cell size {item['name']} has malformed graphs")
        prefix = item["name"] + "/"
        for graph in graphs.values():
            for spec in graph.get("inputs") or []:
                if isinstance(spec, dict) and spec.get("kind") != "input" and \
                        not str(spec.get("target", "")).startswith(prefix):
                    raise ArtefactError(f"a graph of cell size {item['name']} reads another size's weights")
        configs[item["name"]] = CellConfig(item["name"], sizes[0], sizes[1], item["bias"], item["dtype"], graphs)
    name = manifest.get("class_name")
    return CellArtefact(name[:80] if isinstance(name, str) else "?", tensors,
                        {e.target: e.requires_grad for e in entries}, configs)


def _weights(folder: Path, manifest: dict, max_bytes: int, weights: bool):
    entries = _entries(manifest.get("tensors"), max_bytes, weights)
    size = sum(e.nbytes for e in entries)
    if not weights:
        _read_exact(folder / "weights.bin", size)  # empty, as the table says
        return entries, {e.target: _shape_only(e) for e in entries}
    return entries, _read_tensors(folder / "weights.bin", entries, size)


def _manifest(path: Path) -> dict:
    raw = _read_exact(path, None, MAX_MANIFEST)
    try:
        manifest = protocol.decode(bytes(raw))
    except ValueError as exc:
        raise ArtefactError(f"the manifest is not readable JSON ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ArtefactError("the manifest is not an artefact of this grader's format")
    return manifest


def _entries(table, max_bytes: int, weights: bool = True) -> list[TensorEntry]:
    if not isinstance(table, list) or len(table) > MAX_TENSORS:
        raise ArtefactError("the tensor table is missing or too long")
    out, offset, seen = [], 0, set()
    for item in table:
        if not isinstance(item, dict):
            raise ArtefactError("a tensor entry is not an object")
        target, dtype, shape = item.get("target"), item.get("dtype"), item.get("shape")
        if not isinstance(target, str) or not 0 < len(target) <= 300 or target in seen:
            raise ArtefactError("a tensor has no name, a long one, or one used twice")
        if dtype not in DTYPES:
            raise ArtefactError(f"tensor {target} has a dtype the verifier does not accept: {str(dtype)[:20]}")
        if not _ints(shape, 0, MAX_DIMS) or any(s < 0 for s in shape):
            raise ArtefactError(f"tensor {target} has a malformed shape")
        numel = 1
        for s in shape:
            numel *= s
        nbytes = numel * _itemsize(dtype) if weights else 0
        if numel > 1 << 31:
            raise ArtefactError(f"tensor {target} is larger than any layer the verifier accepts")
        if item.get("offset") != offset or item.get("bytes") != nbytes:
            raise ArtefactError(f"tensor {target}: its bytes do not match its shape and place in the file")
        offset += nbytes
        if offset > max_bytes:
            raise ArtefactError(f"the weights are larger than the {max_bytes >> 20} MB the verifier accepts")
        seen.add(target)
        out.append(TensorEntry(target, dtype, tuple(shape), item["offset"], nbytes, item.get("requires_grad") is True))
    return out


def _ints(value, least: int, most: int) -> bool:
    return isinstance(value, list) and least <= len(value) <= most and \
        all(isinstance(v, int) and not isinstance(v, bool) and v < 1 << 31 for v in value)


def _itemsize(dtype: str) -> int:
    return {"float64": 8, "int64": 8, "float32": 4, "int32": 4, "float16": 2, "bfloat16": 2, "int16": 2}.get(dtype, 1)


def _read_exact(path: Path, size: int | None, cap: int | None = None) -> bytearray:
    """A regular file, not reached through a link; exactly `size` bytes (or at most `cap`)."""
    with _open_checked(path, size, cap) as (f, length):
        data = bytearray(length)
        got = f.readinto(data)
        extra = f.read(1)
    if got != length or extra:
        raise ArtefactError(f"{path.name} changed while it was read")
    return data


def _read_tensors(path: Path, entries: list[TensorEntry], size: int) -> dict:
    """Each tensor's bytes read straight into its own storage (the table lays them end to
    end): no second copy of the weights is ever held."""
    import torch

    tensors = {}
    with _open_checked(path, size, None) as (f, _):
        for entry in entries:
            tensor = torch.empty(entry.shape, dtype=getattr(torch, entry.dtype))
            if entry.nbytes:
                view = tensor.reshape(-1).view(torch.uint8).numpy()  # the storage's bytes
                if f.readinto(memoryview(view).cast("B")) != entry.nbytes:
                    raise ArtefactError(f"{path.name} changed while it was read")
            tensors[entry.target] = tensor
        if f.read(1):
            raise ArtefactError(f"{path.name} changed while it was read")
    return tensors


@contextlib.contextmanager
def _open_checked(path: Path, size: int | None, cap: int | None):
    """(file, its length): a regular file, not reached through a link, of exactly `size`
    bytes (or at most `cap`)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        raise ArtefactError(f"{path.name} cannot be opened ({exc.strerror})") from None
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(f.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise ArtefactError(f"{path.name} is not a regular file")
        limit = size if size is not None else cap
        if info.st_size > limit or (size is not None and info.st_size != size):
            raise ArtefactError(f"{path.name} holds {info.st_size:,} bytes, expected {limit:,}"
                                + ("" if size is not None else " at most"))
        yield f, info.st_size


def _shape_only(entry: TensorEntry):
    import torch

    return torch.empty(entry.shape, dtype=getattr(torch, entry.dtype), device="meta")


@dataclass
class SequenceArtefact:
    model: str  # "sentiment" or "generation": which measurements the calls are of
    class_name: str
    tensors: dict  # target -> torch.Tensor: the weights ("embedding.weight"), and each call's constants
    requires_grad: dict
    calls: dict  # call key (grader.kinds.sentiment_model.calls.key) -> its graph's JSON, with "returns"
    failed: dict  # call key -> the student's error on that call, as the worker described it


SEQUENCE_MODELS = {"sentiment", "generation"}
MAX_CALLS = 8
_WEIGHT_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,79}(\.[A-Za-z0-9_]{1,80}){0,8}\Z")
_ERROR_TEXT = {"type": 80, "message": 700, "file": 300, "code": 300}


def read_sequence(folder: Path, max_bytes: int) -> SequenceArtefact:
    """A model the checks call a few times: one recorded graph per call."""
    manifest = _manifest(folder / "manifest.json")
    if manifest.get("kind") != "sequence" or manifest.get("model") not in SEQUENCE_MODELS or \
            manifest.get("weights") is not True:
        raise ArtefactError("the artefact is not of a sequence model with its weights")
    entries, tensors = _weights(folder, manifest, max_bytes, True)
    for entry in entries:
        if "/" not in entry.target and not _WEIGHT_NAME.match(entry.target):
            raise ArtefactError("a weight's name is not a module path")
    calls, failed = manifest.get("calls"), manifest.get("failed")
    if not isinstance(calls, dict) or not isinstance(failed, dict) or len(calls) + len(failed) > MAX_CALLS:
        raise ArtefactError("the calls are missing, or more than the checks make")
    for key, graph in [*calls.items(), *failed.items()]:
        if not isinstance(key, str) or not 0 < len(key) <= 200 or not isinstance(graph, dict):
            raise ArtefactError("a call is unnamed or malformed")
    for key, graph in calls.items():
        if not _returns_ok(graph.get("returns")):
            raise ArtefactError(f"call {key[:60]} returns something other than tensors")
    name = manifest.get("class_name")
    return SequenceArtefact(manifest["model"], name[:80] if isinstance(name, str) else "?", tensors,
                            {e.target: e.requires_grad for e in entries}, calls,
                            {key: _error(error) for key, error in failed.items()})


def _returns_ok(spec, depth: int = 0) -> bool:
    if spec == "tensor":
        return True
    if depth < 2 and isinstance(spec, dict) and len(spec) == 1:
        (kind, items), = spec.items()
        return kind in ("tuple", "list") and isinstance(items, list) and 0 < len(items) <= 3 and \
            all(_returns_ok(item, depth + 1) for item in items)
    return False


def _error(error) -> dict:
    """The student's failure on a call, reduced to the fields a message reads."""
    if not isinstance(error, dict):
        raise ArtefactError("a call's failure is not described")
    out = {k: (str(error[k])[:n] if isinstance(error.get(k), str) else None) for k, n in _ERROR_TEXT.items()}
    line = error.get("line")
    out.update(type=out["type"] or "Exception", message=out["message"] or "",
               line=line if isinstance(line, int) and not isinstance(line, bool) and 0 < line < 1 << 31 else None,
               trace=[str(t)[:200] for t in error.get("trace") or [] if isinstance(t, str)][:4])
    return out
