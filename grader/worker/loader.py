"""Import the student's module inside the sandbox and say what it defines."""
from __future__ import annotations

import contextlib
import importlib.util
import inspect
import os
import sys
from pathlib import Path

from . import compat, failures
from .probes import STATE


def load(root: str, module: str, symbols: list[str]) -> dict:
    root_path = Path(root).resolve()
    path = root_path / module
    failures.ROOTS[:] = [str(root_path)]
    STATE.root = root_path
    for folder in (root_path, path.parent):  # sibling imports work as when the student ran it
        if str(folder) not in sys.path:
            sys.path.insert(0, str(folder))
    os.chdir(path.parent)
    compat.prepare_imports()

    name = path.stem if path.stem.isidentifier() and path.stem not in sys.modules else "student_submission"
    spec = importlib.util.spec_from_file_location(name, path)
    module_obj = importlib.util.module_from_spec(spec)
    sys.modules[name] = module_obj
    status, error = "ok", None
    try:
        with compat.cuda_redirect() or contextlib.nullcontext():
            spec.loader.exec_module(module_obj)
    except BaseException as exc:  # SystemExit included: keep what was defined before it
        status, error = "partial", failures.describe(exc, "import")
        if isinstance(exc, SyntaxError):
            status = "failed"
            error.update(file=module, line=exc.lineno, code=(exc.text or "").strip()[:200])
    STATE.module = module_obj
    compat.parse_absl_flags(name)
    return {
        "status": status,
        "error": error,
        "module_name": name,
        "symbols": {s: _describe_symbol(module_obj, s) for s in symbols},
        "notes": list(compat.HAZARDS.notes),
    }


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
        info.update(file=rel, line=inspect.getsourcelines(obj)[1] if rel else None)
    except (TypeError, OSError):
        info.update(file=None, line=None)
    return info
