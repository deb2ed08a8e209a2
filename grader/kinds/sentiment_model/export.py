"""Hand a sequence model to the verifier as data: one recorded graph per call its checks make.

The worker builds the student's model as the checks build it, records each of the calls
the measurements make (grader.kinds.sentiment_model.calls), and writes the graphs and the
raw bytes of the weights. It measures nothing. Where the student's code fails on a call,
the failure travels as that call's answer; where recording stops (a read of the tokens'
values, an operator that is not ATen), the scorer falls back to the worker's own probe.
"""
from __future__ import annotations

import contextlib
import copy
import gc
import json
from pathlib import Path

import torch

from grader.worker import failures
from grader.worker.anatomy import default_dtype
from grader.worker.export import FORMAT, Unsupported, write_raw
from grader.worker.record import record

from . import measure
from .calls import Call, key, place, weights_dtype
from .probe import _build_model


def export_sentiment(symbol: str, cell: str, seed: int, folder: str) -> dict:
    return export_calls("sentiment", symbol, cell, seed, folder, measure.VOCABULARY,
                        lambda model: measure.calls(seed), measure.NAMES, measure.FIXED)


def export_calls(kind: str, symbol: str, cell: str, seed: int, folder: str, vocabulary: int, calls, names,
                 fixed: frozenset[int]) -> dict:
    """Build, record and write; the reply says where the artefact is, or why not (a failure
    to build; an "export" stage: the worker measures instead)."""
    result: dict = {"error": None, "constructed": False, "artefact": None}
    try:
        torch.manual_seed(seed)
        model = _build_model(symbol, cell, vocabulary, measure.EMBEDDING, measure.HIDDEN).eval()
    except BaseException as exc:
        result["error"] = failures.describe(exc, "construct")
        return result
    result["constructed"] = True
    result["class_name"] = type(model).__name__[:80]
    if not isinstance(model, torch.nn.Module):
        return {**result, "error": _unsupported(f"{result['class_name']} is not an nn.Module")}
    try:
        graphs, failed, items = _record_all(model, calls(model), names, fixed)
    except Unsupported as exc:
        return {**result, "error": _unsupported(str(exc), getattr(exc, "where", ""))}
    except BaseException as exc:  # the student's code, outside any one call (a state it could not give)
        return {**result, "error": {**failures.describe(exc, "export"), "type": "Unsupported"}}
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)  # the scorer made it, with its files: rewritten in place
    weights = [(t, p, p.requires_grad) for t, p in model.named_parameters()] + \
        [(t, b, False) for t, b in model.named_buffers()]
    tensors = write_raw(out / "weights.bin", weights + items)
    manifest = {"format": FORMAT, "kind": "sequence", "model": kind, "class_name": result["class_name"],
                "weights": True, "tensors": tensors, "calls": graphs, "failed": failed}
    (out / "manifest.json").write_text(json.dumps(manifest, allow_nan=False))
    result["artefact"] = str(out)
    del graphs, items, model
    gc.collect()
    return result


def _record_all(model, calls: list[Call], names, fixed) -> tuple[dict, dict, list]:
    graphs: dict[str, dict] = {}
    failed: dict[str, dict] = {}
    items: list = []
    doubled = None
    for n, call in enumerate(calls):
        if call.float64 and doubled is None:
            doubled = copy.deepcopy(model).double()
        work = doubled if call.float64 else model
        work.train(call.train)
        k = key(work.training, weights_dtype(work), call.args, fixed)
        if k in graphs or k in failed:
            continue
        grad = contextlib.nullcontext() if call.train else torch.no_grad()
        try:
            with default_dtype(torch.float64 if call.float64 else torch.float32), grad:
                graphs[k] = record(work, call.args, names, fixed, items, f"call{n}")
        except Unsupported:
            if call.needed:
                raise
        except BaseException as exc:  # the student's code failed on this call: that is its answer
            if call.needed:
                failed[k] = failures.describe(exc, call.stage)
    model.eval()
    return graphs, failed, items


def _unsupported(message: str, where: str = "") -> dict:
    """Why recording stopped, at the student's line ("file:line") where there is one."""
    return {"type": "Unsupported", "message": message[:600], "stage": "export", **place(where), "code": None,
            "trace": []}
