"""Typed reading of one rubric table: the field at fault is named in every error.

grader.rubric and the kinds' own rubric tables (grader.kinds.<kind>.spec) read with these.
"""
from __future__ import annotations

import re
from typing import Any

from .errors import RubricError
from .results import VISIBILITIES

IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class Reader:
    """Typed access to one TOML table that reports the exact field on error."""

    def __init__(self, path: str, where: str, data: Any, allowed: set[str]):
        self.path, self.where, self.data = path, where, data
        if not isinstance(data, dict):
            self.fail("", "must be a table")
        unknown = sorted(set(data) - allowed)
        if unknown:
            self.fail(unknown[0], f"unknown field (allowed: {', '.join(sorted(allowed))})")

    def field(self, name: str) -> str:
        return f"{self.where}.{name}" if self.where and name else (self.where or name)

    def fail(self, name: str, reason: str):
        raise RubricError(self.path, self.field(name), reason)

    def get(self, name: str, kind: type | tuple[type, ...], default: Any = ..., check=None) -> Any:
        if name not in self.data:
            if default is ...:
                self.fail(name, "required field is missing")
            return default
        value = self.data[name]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
            names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
            self.fail(name, f"must be {names}, not {type(value).__name__}")
        if check is not None:
            problem = check(value)
            if problem:
                self.fail(name, problem)
        return value


def visibility(value: str) -> str | None:
    return None if value in VISIBILITIES else f"{value!r} is not one of {', '.join(VISIBILITIES)}"


def identifier(value: str) -> str | None:
    return None if IDENT.match(value) else f"{value!r} is not a Python name"


def positive(value: float) -> str | None:
    return None if value > 0 else "must be positive"


def points(path: str, where: str, value: Any, allowed: tuple[str, ...]) -> dict[str, float]:
    r = Reader(path, where, value, set(allowed))
    pts = {k: r.get(k, float, check=lambda v: None if v >= 0 else "points cannot be negative") for k in value}
    if not pts:
        r.fail("", "names no checks")
    return pts
