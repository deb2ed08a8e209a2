"""The scorer and the sandboxed worker talk in JSON lines over two pipes, never pickles.

Kept free of torch so both sides can import it.
"""
from __future__ import annotations

import json
import math

MAX_MESSAGE_BYTES = 16 * 1024 * 1024  # a reply larger than this is treated as a broken worker


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


def decode(line: bytes) -> dict:
    message = json.loads(line)
    if not isinstance(message, dict):
        raise ValueError("a message must be a JSON object")
    return message


def number(value) -> float:
    """Read back a float that may have been sent as "nan"/"inf"."""
    if isinstance(value, str):
        return float(value)
    return float(value)
