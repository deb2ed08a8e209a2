"""The shapes of the worker's results that the scoring process reads outside the checks.

The runner and api read the hello, load, candidates, kernels and activations results
directly (symbol tables, file paths, layer rows for picking a class, image lists); a
forged value of the wrong type there would stop the whole grade. So those results are
checked here, as they arrive; the other results reach only the checks, whose failures
grader.checks.evaluate turns into the submission's failure. Every result's top-level
"error", when it is an object, is bounded like a reply's error.

A shape is a type or tuple of types (bool never passes as int), [shape] for a list,
{key: shape} for an object whose listed keys, when present, fit (Need marks a key that
must be there), Each(shape) for an object of any keys, Maybe(shape) for None or shape,
or one of the markers below. Checking follows the shape, which is finite, so it never
recurses deeper than the shapes written here.
"""
from __future__ import annotations

from dataclasses import dataclass

from .protocol import MAX_INT, ProtocolError, clip, error_info


@dataclass(frozen=True)
class Maybe:
    shape: object


@dataclass(frozen=True)
class Each:
    shape: object


@dataclass(frozen=True)
class Need:
    shape: object


@dataclass(frozen=True)
class Text:
    """A string, cut to `limit` characters."""

    limit: int


@dataclass(frozen=True)
class Count:
    """A whole number from `low` to `high`."""

    low: int
    high: int


class _Marker:
    def __init__(self, name: str):
        self.name = name


ERROR = _Marker("error")  # an error dict, bounded by protocol.error_info
RELPATH = _Marker("relpath")  # a path inside the submission: relative, without ".."
INT = _Marker("int")  # an int, not a bool
PAIR = _Marker("pair")  # an image size: two ints from 1 to 4096
SIZES = _Marker("sizes")  # a kernel, stride or dilation: 1 to 3 ints
PADDING = _Marker("padding")  # the same, or "same" when the kernel size was not known
FILE = _Marker("file")  # a file name the scorer opens: no NUL
ROW_SIZES = ("kernel", "stride", "padding", "dilation")


def _fail(where: str, what: str):
    raise ProtocolError(f"a reply whose {where} is not {what}")


def conform(value, shape, where: str = "result"):
    """`value` if it fits `shape` (strings cut where the shape says), else ProtocolError."""
    if isinstance(shape, Maybe):
        return None if value is None else conform(value, shape.shape, where)
    if isinstance(shape, Need):
        return conform(value, shape.shape, where)
    if shape is ERROR:
        return error_info(value)
    if shape is INT:
        if isinstance(value, bool) or not isinstance(value, int):
            _fail(where, "a whole number")
        return value
    if shape is PAIR:
        if not (isinstance(value, list) and len(value) == 2 and all(type(v) is int and 1 <= v <= 4096 for v in value)):
            _fail(where, "an image size")
        return value
    if isinstance(shape, Count):
        if type(value) is not int or not shape.low <= value <= shape.high:
            _fail(where, f"a number from {shape.low} to {shape.high}")
        return value
    if shape is FILE:
        if not isinstance(value, str) or "\x00" in value or len(value) > 500:
            _fail(where, "a file name")
        return value
    if shape is PADDING and isinstance(value, str) and len(value) <= 20:
        return value
    if shape in (SIZES, PADDING):
        if not (isinstance(value, list) and 1 <= len(value) <= 3 and all(type(v) is int for v in value)):
            _fail(where, "a kernel size")
        return value
    if shape is RELPATH:
        if not isinstance(value, str) or value.startswith(("/", "\\")) or ".." in value.replace("\\", "/").split("/") \
                or "\x00" in value:
            _fail(where, "a path inside the submission")
        return value
    if isinstance(shape, Text):
        if not isinstance(value, str):
            _fail(where, "text")
        return clip(value, shape.limit)
    if isinstance(shape, list):
        if not isinstance(value, list):
            _fail(where, "a list")
        return [conform(item, shape[0], f"{where} item") for item in value]
    if isinstance(shape, Each):
        if not isinstance(value, dict):
            _fail(where, "an object")
        return {key: conform(item, shape.shape, f"{where} entry") for key, item in value.items()}
    if isinstance(shape, dict):
        if not isinstance(value, dict):
            _fail(where, "an object")
        out = dict(value)
        for key, sub in shape.items():
            if key in value:
                out[key] = conform(value[key], sub, f"{where} {key}")
            elif isinstance(sub, Need):
                _fail(where, f"an object with {key}")
        if shape is ROW:
            _two_d(out, where)
        return out
    types = shape if isinstance(shape, tuple) else (shape,)
    if isinstance(value, bool) and bool not in types or not isinstance(value, types):
        _fail(where, " or ".join(t.__name__ for t in types))
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_INT:
        _fail(where, "a plausible number")
    return value


def _two_d(row: dict, where: str) -> None:
    """What pick.choose and the table comparison index without asking: a 2d layer's sizes
    are pairs, and a batch norm has an output shape."""
    attrs = row.get("attrs") or {}
    kind = str(row.get("type", ""))
    if kind.endswith("2d") and any(isinstance(attrs.get(k), list) and len(attrs[k]) != 2 for k in ROW_SIZES):
        _fail(where, "a 2d layer with two-number sizes")
    if kind.startswith("BatchNorm") and not row.get("shape"):
        _fail(where, "a batch norm with an output shape")


NUMBER = (int, float)
NAME = Text(300)  # a class, module or kernel name
# grader.worker.trace.Layer.as_dict; pick.choose compares these rows with the table.
ROW = {"type": Need(NAME), "op": Maybe(NAME), "shape": [INT], "in_shape": [INT], "params": INT,
       "attrs": Maybe({"kernel": Maybe(SIZES), "stride": Maybe(SIZES), "padding": Maybe(PADDING),
                       "dilation": Maybe(SIZES), "groups": INT, "ceil_mode": bool, "p": NUMBER, "training": bool}),
       "module": Maybe(Text(500)), "where": Maybe(Text(500))}
SYMBOL = {"kind": Need(str), "module_subclass": bool, "module": Maybe(RELPATH), "path": Maybe(RELPATH),
          "file": Maybe(Text(500)), "line": Maybe(INT), "cell": Maybe(INT), "defined_as": Maybe(NAME),
          "picked": Maybe(NAME)}
SKIPPED = {"cell": Maybe(INT), "line": Maybe(INT), "code": Maybe(Text(2_000)), "type": Maybe(NAME),
           "message": Maybe(Text(500))}
MODULE = {"status": Need(str), "error": Maybe(ERROR), "name": Maybe(NAME), "skipped": [SKIPPED]}
CANDIDATE = {"name": Need(NAME), "kind": str, "line": Maybe(INT), "default_args": bool, "constructed": bool,
             "params_total": Maybe(INT), "output_shape": Maybe([INT]), "error": Maybe(ERROR), "rows": [ROW]}
# render.png.grid draws `shown` maps of `size`: bounded, so a forged size cannot make it
# allocate gigabytes (the worker sends at most 128 maps of at most 128 x 128).
IMAGE_LAYER = {"channels": Need(Count(0, 1 << 20)), "shown": Need(Count(1, 1024)), "size": Need(PAIR),
               "data": Need(str), "flat": [bool], "relu_seen": bool}

RESULTS = {
    # the worker's hello: environment values for the report
    "hello": {"python": Maybe(Text(100)), "torch": Maybe(Text(100)), "cuda": bool, "gpu": Maybe(Text(200)),
              "threads": INT, "startup_seconds": NUMBER},
    "load": {"status": Need(str), "error": Maybe(ERROR), "modules": Need(Each(MODULE)), "symbols": Need(Each(SYMBOL)),
             "notes": [Text(500)]},
    "candidates": {"candidates": [CANDIDATE], "error": Maybe(Text(2_000))},
    # grader.worker.export: where the artefact is, or why there is none
    "export": {"artefact": Maybe(Text(300)), "constructed": bool, "class_name": Maybe(NAME)},
    # grader.verifier.measure: the trace and behaviour facts, from the artefact
    "verify": {"trace": Need({"rows": [ROW], "params_total": INT, "output_shape": [INT], "constructed": bool}),
               "behaviour": Need({"device": Maybe(Text(20))})},
}


def check_result(op: str, result: dict) -> dict:
    """The result of `op`, checked where the scorer reads it (RESULTS) and with its
    top-level error bounded; raises ProtocolError."""
    from . import kinds  # the kinds' own results (grader.kinds.<kind>.run.RESULTS)

    shape = dict(RESULTS.get(op) or kinds.results().get(op) or {})
    if isinstance(result.get("error"), dict) and "error" not in shape:
        shape["error"] = ERROR
    return conform(result, shape)
