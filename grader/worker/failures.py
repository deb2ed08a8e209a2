"""Describe an exception raised by student code as plain data, pointing at the student's line.

Students get the exception, its message and where in their own files it happened,
never a traceback through torch's internals.
"""
from __future__ import annotations

import traceback

MAX_MESSAGE = 600

ROOTS: list[str] = []  # the submission folders; frames outside them are not the student's


def _relative(filename: str) -> str | None:
    for root in ROOTS:
        if filename.startswith(root.rstrip("/") + "/"):
            return filename[len(root.rstrip("/")) + 1:]
    return None


def describe(exc: BaseException, stage: str) -> dict:
    frames = traceback.extract_tb(exc.__traceback__)
    student = [(rel, f) for f in frames if (rel := _relative(f.filename))]
    if isinstance(exc, SystemExit):
        message = f"the code called sys.exit({exc.code!r})" if exc.code is not None else "the code called sys.exit()"
    elif isinstance(exc, KeyboardInterrupt):
        message = "the code raised KeyboardInterrupt"
    else:
        message = str(exc).strip() or "(no message)"
    if len(message) > MAX_MESSAGE:
        message = message[:MAX_MESSAGE] + " ..."
    info = {"type": type(exc).__name__, "message": message, "stage": stage, "file": None, "line": None,
            "code": None, "trace": []}
    if student:
        rel, last = student[-1]
        info.update(file=rel, line=last.lineno, code=(last.line or "").strip()[:200])
        info["trace"] = [f"{r}:{f.lineno} in {f.name}: {(f.line or '').strip()[:120]}" for r, f in student[-4:]]
    return info
