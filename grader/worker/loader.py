"""Import the student's modules inside the sandbox and say what each defines."""
from __future__ import annotations

import contextlib
import gc
import importlib.util
import inspect
import os
import sys
from pathlib import Path

from . import compat, failures, standins
from .probes import STATE


def load(root: str, modules: list[dict]) -> dict:
    """Import each {"module": relative path, "symbols": [...]} in order.

    A symbol is looked up in the module its group names, so two files may each define a
    class of the same name (a backup copy, say) without confusing the grade.
    """
    root_path = Path(root).resolve()
    failures.ROOTS[:] = [str(root_path)]
    STATE.root = root_path
    if str(root_path) not in sys.path:
        sys.path.insert(0, str(root_path))
    compat.prepare_imports()
    compat.tolerate_duplicate_flags()
    standins.install()  # a missing third-party import no longer loses the rest of the file
    loaded: dict[str, dict] = {}
    symbols: dict[str, dict] = {}
    for spec in modules:
        rel = spec["module"]
        if rel not in loaded:
            loaded[rel] = _import(root_path, rel)
        module = loaded[rel].pop("_module", None) or STATE.modules.get(rel)
        for name in spec["symbols"]:
            info = _describe_symbol(module, name) if module is not None else {"kind": "missing"}
            real = name
            if info["kind"] == "missing" and module is not None:
                real = _loose_match(module, name) or name
                if real != name:
                    info = {**_describe_symbol(module, real), "defined_as": real}
            info["module"] = rel
            symbols[name] = info
            if info["kind"] != "missing":
                STATE.symbols[name] = getattr(module, real)
    standins.strict()  # from here on, code that uses a missing module fails, naming it
    first = next(iter(STATE.modules.values()), None)
    STATE.module = first
    compat.parse_absl_flags(Path(modules[0]["module"]).stem if modules else "submission")
    # What the imports made lives as long as the worker: each export's collection (its graphs
    # hold the model in cycles) then walks only what came after (0.13 s an export for hw4's imports).
    gc.collect()
    gc.freeze()
    worst = "failed" if all(m["status"] == "failed" for m in loaded.values()) else \
        "partial" if any(m["status"] != "ok" for m in loaded.values()) else "ok"
    first_error = next((m["error"] for m in loaded.values() if m["error"]), None)
    return {"status": worst, "error": first_error, "modules": loaded, "symbols": symbols,
            "notes": list(compat.HAZARDS.notes)}


def _import(root: Path, rel: str) -> dict:
    path = root / rel
    if str(path.parent) not in sys.path:  # sibling imports work as when the student ran it
        sys.path.insert(0, str(path.parent))
    os.chdir(path.parent)
    name = path.stem if path.stem.isidentifier() and path.stem not in sys.modules else f"student_module_{len(STATE.modules)}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    status, error = "ok", None
    try:
        with compat.cuda_redirect() or contextlib.nullcontext():
            spec.loader.exec_module(module)
    except BaseException as exc:  # SystemExit included: keep what was defined before it
        status, error = "partial", failures.describe(exc, "import")
        if isinstance(exc, SyntaxError):
            status = "failed"
            error.update(file=rel, line=exc.lineno, code=(exc.text or "").strip()[:200])
    STATE.modules[rel] = module
    skipped = [dict(s) for s in getattr(module, "__dlgrade_skipped__", [])
               if isinstance(s, dict)][:50]  # statements a notebook conversion could not run
    return {"status": status, "error": error, "name": name, "skipped": skipped, "_module": module}


def _loose_match(module, name: str) -> str | None:
    """The one name the module itself defines that differs from `name` only in case and
    underscores (swish for Swish, l1Penalty for l1_penalty)."""
    key = name.replace("_", "").lower()
    found = [n for n, obj in vars(module).items()
             if n.replace("_", "").lower() == key and getattr(obj, "__module__", None) == module.__name__]
    return found[0] if len(found) == 1 else None


def _describe_symbol(module, name: str) -> dict:
    obj = getattr(module, name, None)
    if obj is None:
        return {"kind": "missing"}
    import torch.nn as nn

    info = {"kind": "class" if inspect.isclass(obj) else "function" if callable(obj) else "other",
            "module_subclass": inspect.isclass(obj) and issubclass(obj, nn.Module)}
    try:
        source = inspect.getsourcefile(obj)
        rel = failures._relative(str(Path(source).resolve())) if source else None
        # "file" is rewritten to a notebook's name for the student; "path" stays the real file.
        info.update(file=rel, path=rel, line=inspect.getsourcelines(obj)[1] if rel else None)
    except (TypeError, OSError):
        info.update(file=None, line=None)
    return info
