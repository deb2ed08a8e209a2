"""Hand the character model to the verifier: its calls recorded as the sentiment model's are
(grader.kinds.sentiment_model.export), the second half called with the first half's state."""
from __future__ import annotations

import torch

from ..sentiment_model.export import export_calls
from . import measure


def export_generation(symbol: str, cell: str, seed: int, folder: str) -> dict:
    def calls(model) -> list:
        h = measure.history(seed)
        try:
            with torch.no_grad():
                out = model(h[:, :measure.SPLIT])
            state = out[1] if isinstance(out, tuple) and len(out) == 2 else None
        except Exception:  # recording the first half gives the failure as that call's answer
            state = None
        return measure.calls(seed, state)

    return export_calls("generation", symbol, cell, seed, folder, measure.VOCABULARY, calls, measure.NAMES,
                        measure.FIXED)
