"""The scoring side of the character model: the sentiment model's plan, with its own op."""
from __future__ import annotations

from ..sentiment_model.run import VERIFIED, after, inside_key, request, required_symbols  # noqa: F401

OP = "generation"
RANKS = {OP: 2}


def probe_key(check) -> tuple:
    return (OP, check.task.id)
