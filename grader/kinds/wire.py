"""Typed facts from plain data: a dataclass is its own wire schema, checked on decode.

A kind's facts arrive as JSON objects, from the verifier or (where export failed) from the
worker. `decode(Facts, data)` builds the dataclass, field by field, from its annotations:
bool never passes as int, lists and dicts are checked item by item, nested dataclasses
are decoded in turn, and a missing field takes its default. Anything else raises
FactError, which costs only the check that read it (grader.checks.evaluate).
"""
from __future__ import annotations

import dataclasses
import types
import typing
from functools import cache

MAX_ITEMS = 10_000


class FactError(ValueError):
    """Facts that do not have their dataclass's shape."""


@cache
def _hints(cls) -> dict:
    return typing.get_type_hints(cls)


def decode(cls, data):
    """`cls` (a dataclass) from the object `data`, or FactError saying which field is wrong."""
    return _value(cls, data, cls.__name__)


def _value(kind, value, where: str):
    origin = typing.get_origin(kind)
    if kind is typing.Any:
        return value
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(kind)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in (o for o in options if o is not type(None)):
            try:
                return _value(option, value, where)
            except FactError as exc:
                errors.append(str(exc))
        raise FactError(errors[0] if errors else f"{where}: no value allowed")
    if dataclasses.is_dataclass(kind):
        if not isinstance(value, dict):
            raise FactError(f"{where}: expected an object, got {type(value).__name__}")
        hints = _hints(kind)
        out = {}
        for f in dataclasses.fields(kind):
            if f.name in value:
                out[f.name] = _value(hints[f.name], value[f.name], f"{where}.{f.name}")
            elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise FactError(f"{where}.{f.name} is missing")
        return kind(**out)
    if origin is list or origin is tuple:
        if not isinstance(value, list) or len(value) > MAX_ITEMS:
            raise FactError(f"{where}: expected a list")
        args = typing.get_args(kind)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise FactError(f"{where}: expected {len(args)} items")
            return tuple(_value(a, v, f"{where}[{i}]") for i, (a, v) in enumerate(zip(args, value)))
        item = args[0] if args else typing.Any
        items = [_value(item, v, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict) or len(value) > MAX_ITEMS:
            raise FactError(f"{where}: expected an object")
        key, item = typing.get_args(kind) or (str, typing.Any)
        return {_value(key, k, where): _value(item, v, f"{where}[{k!r}]") for k, v in value.items()}
    if kind is float:
        if value in ("nan", "inf", "-inf"):  # grader.protocol sends JSON's missing numbers so
            return float(value)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise FactError(f"{where}: expected a number, got {type(value).__name__}")
        return float(value)
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise FactError(f"{where}: expected a whole number, got {type(value).__name__}")
        return value
    if kind in (bool, str):
        if not isinstance(value, kind):
            raise FactError(f"{where}: expected {kind.__name__}, got {type(value).__name__}")
        return value
    if kind is dict:
        if not isinstance(value, dict):
            raise FactError(f"{where}: expected an object")
        return value
    raise FactError(f"{where}: no decoder for {kind!r}")  # a dataclass annotated with a type we do not carry


def numbers(value, size: int, most: int = MAX_ITEMS) -> list[float] | None:
    """A list of `size` numbers (NaN and infinity arrive as "nan", "inf", "-inf"), else None."""
    if not isinstance(value, list) or len(value) != size or size > most:
        return None
    out = []
    for v in value:
        if isinstance(v, bool):
            return None
        if isinstance(v, (int, float)):
            out.append(float(v))
        elif v in ("nan", "inf", "-inf"):
            out.append(float(v))
        else:
            return None
    return out
