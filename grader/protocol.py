"""The scorer and the sandboxed worker talk in JSON lines over two pipes, never pickles.

Kept free of torch so both sides can import it. Everything the worker sends may be forged:
student code runs in that process, can write to its pipe and replace its functions. So
`decode` refuses any line that is not a small, well-formed JSON object (without recursing),
and `envelope` checks a reply's fields and bounds the text in them before the scorer
reads them. Both raise ProtocolError, and only that.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from json.decoder import scanstring

CHANNEL_BROKEN = 125  # the worker's exit status when its own pipes fail under it
MAX_MESSAGE_BYTES = 16 * 1024 * 1024  # a reply larger than this is treated as a broken worker
# The deepest legitimate reply measured is 8 levels (envelope, result, candidates, one
# candidate, rows, a row, attrs, a kernel list); 40 leaves room and stays far below
# anything recursive code in the scorer could trip on.
MAX_DEPTH = 40
MAX_NODES = 1_000_000  # values in one message; the largest measured reply has about 2,000
MAX_INT = 2 ** 63  # no legitimate count or size is larger; huge ints only slow str() and float()

# Text from an error dict, per field, in characters; "trace" is the student's frames, all
# together. The worker's own describe() cuts a message at 600 characters (failures.MAX_MESSAGE):
# anything longer was made by replacing it, and is most likely data being carried out.
ERROR_LIMITS = {"type": 200, "message": 1_000, "stage": 80, "file": 500, "code": 500}
MAX_TRACE = 8_000
MAX_TRACE_LINES = 20
MAX_NOTE, MAX_NOTES = 500, 20  # hazard notes: each, and how many
PROGRESS_LIMITS = {"what": 80, "unit": 20, "note": 160}


class ProtocolError(ValueError):
    """A line or message from the worker that is not a well-formed message."""


def clip(text: str, limit: int, tail: bool = False) -> str:
    """`text` in at most `limit` characters, with a visible marker where it was cut; `tail`
    keeps the end too (printed output, where the last lines say most)."""
    if len(text) <= limit:
        return text
    if limit < 60:  # a short label: no room for a marker
        return text[:limit]
    shape = " ... (cut: {:,} characters) ... " if tail else " ... (cut: {:,} characters)"
    keep = limit - len(shape.format(len(text)))  # the count has at most as many digits as len(text)
    marker = shape.format(len(text) - keep)
    if tail:
        return text[:keep - keep // 2] + marker + text[len(text) - keep // 2:]
    return text[:keep] + marker


# ---------------------------------------------------------------- encoding and decoding

def _clean(value):
    """JSON has no NaN or infinity; send them as strings the scorer understands."""
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def encode(message: dict) -> bytes:
    return json.dumps(_clean(message), allow_nan=False).encode() + b"\n"


_STRUCTURE = re.compile(r'["\[\]{}]')


def _scan(text: str) -> None:
    """Refuse deep nesting before json.loads recurses into it. Strings are skipped with
    json's own C scanner, so a bracket inside one neither counts nor hides structure."""
    depth, pos = 0, 0
    search = _STRUCTURE.search
    while (match := search(text, pos)) is not None:
        char, pos = match.group(), match.end()
        if char == '"':
            try:
                pos = scanstring(text, pos)[1]
            except ValueError:
                raise ProtocolError("a message that is not JSON") from None
        elif char in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                raise ProtocolError(f"a message nested more than {MAX_DEPTH} levels deep")
        else:
            depth -= 1


def _refuse_constant(name: str):
    raise ProtocolError(f"a message with {name} in it (the worker sends no such value)")


def utf8(value: str) -> str:
    """Text that can be written as UTF-8: a lone surrogate (\\ud800) would stop results.json."""
    if value.isascii():
        return value
    try:
        value.encode("utf-8")
        return value
    except UnicodeEncodeError:
        return value.encode("utf-8", "surrogatepass").decode("utf-8", "replace")


def _walk(message: dict) -> None:
    """Check depth, size and every scalar, with an explicit stack (never recursion)."""
    nodes = 0
    stack = [(message, 1)]
    while stack:
        value, depth = stack.pop()
        nodes += 1
        if nodes > MAX_NODES:
            raise ProtocolError(f"a message of more than {MAX_NODES:,} values")
        if depth > MAX_DEPTH:
            raise ProtocolError(f"a message nested more than {MAX_DEPTH} levels deep")
        if isinstance(value, dict):
            if any(not k.isascii() for k in value):
                fixed = {utf8(k): v for k, v in value.items()}
                value.clear()
                value.update(fixed)
            for key, item in value.items():
                if isinstance(item, str):
                    value[key] = utf8(item)
                else:
                    stack.append((item, depth + 1))
        elif isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, str):
                    value[i] = utf8(item)
                else:
                    stack.append((item, depth + 1))
        elif isinstance(value, bool) or value is None:
            pass
        elif isinstance(value, int):
            if abs(value) > MAX_INT:
                raise ProtocolError("a message with an implausibly large number")
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise ProtocolError("a message with an infinite number")


def decode(line: bytes) -> dict:
    """One JSON object, or ProtocolError. Cheap checks first: size, then nesting depth and
    the number of values, counted before json.loads builds anything."""
    if len(line) > MAX_MESSAGE_BYTES:
        raise ProtocolError("an oversized message")
    try:
        text = line.decode("utf-8") if isinstance(line, (bytes, bytearray)) else str(line)
    except UnicodeDecodeError:
        raise ProtocolError("a message that is not UTF-8 text") from None
    if text.count(",") + text.count("[") + text.count("{") > MAX_NODES:  # an upper bound on the values
        raise ProtocolError(f"a message of more than {MAX_NODES:,} values")
    _scan(text)
    try:
        message = json.loads(text, parse_constant=_refuse_constant)
    except ProtocolError:
        raise
    except (ValueError, RecursionError, MemoryError):
        raise ProtocolError("a message that is not JSON") from None
    if not isinstance(message, dict):
        raise ProtocolError("a message that is not a JSON object")
    _walk(message)
    return message


def number(value) -> float:
    """Read back a float that may have been sent as "nan"/"inf"."""
    if isinstance(value, str):
        return float(value)
    return float(value)


# ---------------------------------------------------------------- replies

@dataclass(frozen=True)
class Envelope:
    """A reply's fields, checked. `id` is None for a progress report (then only `progress`)."""

    id: int | None
    ok: bool = False
    result: dict = field(default_factory=dict)
    error: dict | None = None
    seconds: float = 0.0
    peak_mb: float = 0.0
    notes: list[str] = field(default_factory=list)
    progress: dict | None = None


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _amount(message: dict, key: str) -> float:
    value = message.get(key, 0)
    if value is None:
        return 0.0
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ProtocolError(f"a reply whose {key} is not a number of at least 0")
    return float(value)


def error_info(error) -> dict:
    """An error dict as the worker's failures.describe makes it, each field checked and
    its text bounded (ERROR_LIMITS, MAX_TRACE); other keys are dropped."""
    if not isinstance(error, dict):
        raise ProtocolError("a reply whose error is not an object")
    out = {}
    for key, limit in ERROR_LIMITS.items():
        value = error.get(key)
        if value is not None and not isinstance(value, str):
            raise ProtocolError(f"a reply whose error {key} is not text")
        out[key] = clip(value, limit) if value is not None else None
    out["type"] = out["type"] or "Exception"
    out["message"] = out["message"] if out["message"] is not None else ""
    for key in ("line", "cell"):
        value = error.get(key)
        if value is not None and not (_is_int(value) and 0 <= value <= MAX_INT):
            raise ProtocolError(f"a reply whose error {key} is not a line number")
        out[key] = value
    trace = error.get("trace") or []
    if not isinstance(trace, list) or not all(isinstance(t, str) for t in trace):
        raise ProtocolError("a reply whose error trace is not a list of text")
    lines, left = [], MAX_TRACE
    for entry in trace[-MAX_TRACE_LINES:]:
        if left <= 0:
            break
        lines.append(clip(entry, min(1_000, left)))
        left -= len(lines[-1])
    out["trace"] = lines
    return out


def progress_info(progress) -> dict | None:
    """A progress report's numbers and short labels; anything else in it is dropped."""
    if not isinstance(progress, dict) or not _is_int(progress.get("done")):
        return None
    total = progress.get("total")
    out = {"done": progress["done"], "total": total if _is_int(total) else None}
    for key, limit in PROGRESS_LIMITS.items():
        value = progress.get(key)
        out[key] = value[:limit] if isinstance(value, str) else ""  # labels in a sentence: no marker
    return out


def envelope(message: dict, op: str | None = None) -> Envelope:
    """Check a decoded message: a progress report, or a reply with an int id, a bool ok,
    a dict result (ok) or an error dict (not ok), finite seconds and peak_mb >= 0, and
    notes as a list of text. `op` also checks the result's shape where the scorer itself
    reads it (grader.replies). Raises ProtocolError."""
    if not isinstance(message, dict):
        raise ProtocolError("a message that is not a JSON object")
    if "id" not in message:
        if "progress" not in message:
            raise ProtocolError("a message that is neither a reply nor a progress report")
        return Envelope(id=None, progress=progress_info(message["progress"]))
    request_id = message["id"]
    if not _is_int(request_id) or request_id < 0:
        raise ProtocolError("a reply whose id is not a number")
    ok = message.get("ok")
    if not isinstance(ok, bool):
        raise ProtocolError("a reply without ok: true or false")
    result, error = message.get("result"), message.get("error")
    if ok:
        if not isinstance(result, dict) or error is not None:
            raise ProtocolError("a successful reply whose result is not an object")
        if op is not None:
            from .replies import check_result  # here, not at the top: grader.replies imports this module

            result = check_result(op, result)
    else:
        if result is not None and not isinstance(result, dict):
            raise ProtocolError("a failed reply with a result that is not an object")
        result, error = {}, error_info(error)
    notes = message.get("notes", [])
    if not isinstance(notes, list) or not all(isinstance(n, str) for n in notes):
        raise ProtocolError("a reply whose notes are not a list of text")
    return Envelope(request_id, ok, result, error, _amount(message, "seconds"), _amount(message, "peak_mb"),
                    [clip(n, MAX_NOTE) for n in notes[:MAX_NOTES]])
