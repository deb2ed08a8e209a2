"""Find the class a student wrote for a rubric model whose name varies (ResNet20, ResNet,
ResNetCIFAR, resnet20()...): trace every nn.Module class, and every factory function
whose name says what it builds, that the student's module defines. The scoring process
picks among them; `alias` then makes the rubric's name refer to its choice."""
from __future__ import annotations

import inspect

import torch.nn as nn

from .probes import STATE, _trace_on

MAX_CANDIDATES = 12
MAX_ROWS = 400
# A function named like the model may still be a training or plotting routine: never call those.
NOT_FACTORIES = ("train", "test", "eval", "fit", "run", "main", "plot", "show", "visual", "load", "save", "predict",
                 "download", "loop", "epoch")


def _defined_here(module, obj) -> bool:
    return getattr(obj, "__module__", None) == module.__name__


def _candidates(module, functions: list[str]) -> list[tuple[str, object, str]]:
    found = []
    for name, obj in list(vars(module).items()):
        if name.startswith("_") or not _defined_here(module, obj):
            continue
        if inspect.isclass(obj) and issubclass(obj, nn.Module):
            found.append((name, obj, "class"))
        elif inspect.isfunction(obj) and any(f in name.lower() for f in functions) \
                and not any(verb in name.lower() for verb in NOT_FACTORIES):
            required = [p for p in inspect.signature(obj).parameters.values()
                        if p.default is inspect.Parameter.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
            if not required:  # a factory such as resnet20(); never call functions that need arguments
                found.append((name, obj, "function"))
    return found[:MAX_CANDIDATES]


def candidates(module: str, args: list, kwargs: dict, input: list[int], seed: int, functions: list[str]) -> dict:
    """Trace each candidate on the meta device, built as the rubric builds the model and,
    if that fails, with no arguments (the student's own defaults)."""
    mod = STATE.modules.get(module)
    if mod is None:
        return {"candidates": [], "error": f"{module} was not imported"}
    out = []
    for name, obj, kind in _candidates(mod, [f.lower() for f in functions]):
        key = f"__candidate_{name}"
        STATE.symbols[key] = obj
        try:
            tried = [(args, kwargs)] + ([([], {})] if (args or kwargs) else [])
            for call_args, call_kwargs in tried:
                traced = _trace_on("meta", key, call_args, call_kwargs, input, seed)
                if traced.get("error") is not None and traced.get("constructed"):
                    traced = _trace_on("cpu", key, call_args, call_kwargs, input, seed)
                if traced.get("constructed"):
                    break
        finally:
            STATE.symbols.pop(key, None)
        try:
            line = inspect.getsourcelines(obj)[1]
        except (OSError, TypeError):
            line = None
        out.append({"name": name, "kind": kind, "line": line, "default_args": (call_args, call_kwargs) != (args, kwargs),
                    "constructed": bool(traced.get("constructed")), "params_total": traced.get("params_total"),
                    "output_shape": traced.get("output_shape"), "error": traced.get("error"),
                    "rows": traced.get("rows", [])[:MAX_ROWS]})
    return {"candidates": out, "error": None}


def alias(symbol: str, module: str, name: str) -> dict:
    """From now on `symbol` means the student's `name` in `module`."""
    mod = STATE.modules.get(module)
    obj = getattr(mod, name, None) if mod is not None else None
    if obj is None:
        raise LookupError(f"{name} is not defined in {module}")
    STATE.symbols[symbol] = obj
    return {"ok": True}
