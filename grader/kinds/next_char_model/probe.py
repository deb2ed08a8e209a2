"""The worker's own measurement of the character model, where its calls cannot be recorded:
build it with the student's cell and run grader.kinds.next_char_model.measure on it here."""
from __future__ import annotations

import torch

from grader.worker import failures

from ..sentiment_model.probe import _build_model


def generation(symbol: str, cell: str, seed: int) -> dict:
    from .measure import EMBEDDING, HIDDEN, VOCABULARY, facts

    try:
        torch.manual_seed(seed)
        model = _build_model(symbol, cell, VOCABULARY, EMBEDDING, HIDDEN).eval()
    except BaseException as exc:
        return {"error": failures.describe(exc, "construct")}
    return facts(model, seed)
