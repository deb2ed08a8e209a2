"""The worker's side of the sentiment model: build it with the student's cell, and run it on padded
reviews (more padding, a changed last token) and for parts no input reaches. Plain data back."""
from __future__ import annotations

import torch
import torch.nn as nn

from grader.worker import failures
from grader.worker.probes import _symbol


def _build_model(symbol: str, cell_symbol: str, vocabulary: int, embedding: int, hidden: int) -> nn.Module:
    Model, Cell = _symbol(symbol), _symbol(cell_symbol)
    try:  # the starter's keywords; positional for students who renamed them
        return Model(vocabulary_size=vocabulary, embedding_dim=embedding, rnn_module=Cell, hidden_size=hidden)
    except TypeError:
        return Model(vocabulary, embedding, Cell, hidden)


def sentiment(symbol: str, cell: str, seed: int) -> dict:
    result: dict = {"error": None}
    stage = "construct"
    try:
        torch.manual_seed(seed)
        model = _build_model(symbol, cell, 50, 16, 12).eval()
        g = torch.Generator().manual_seed(seed)
        lengths = torch.tensor([5, 3, 7, 2])  # [B]
        reviews = torch.randint(4, 50, (4, 7), generator=g)  # [B, T]
        for i, n in enumerate(lengths):
            reviews[i, n:] = 0  # padding id 0, as the collate function pads
        stage = "forward"
        with torch.no_grad():
            logits = model(reviews, lengths)  # [B, 2]
            result["shape"] = list(logits.shape) if isinstance(logits, torch.Tensor) else None
            result["finite"] = bool(torch.isfinite(logits).all()) if isinstance(logits, torch.Tensor) else False
            if result["shape"] != [4, 2]:
                return result
            stage = "padding"
            longer = torch.cat([reviews, torch.zeros(4, 6, dtype=reviews.dtype)], 1)  # [B, T+6]: more padding
            result["padding_invariant"] = torch.allclose(model(longer, lengths), logits, atol=1e-5)
            changed = reviews.clone()
            changed[0, lengths[0] - 1] = 4 if int(changed[0, lengths[0] - 1]) != 4 else 5
            result["reads_last_token"] = not torch.allclose(model(changed, lengths)[0], logits[0], atol=1e-6)
        stage = "unused parts"
        result["unreachable"] = _unreachable(model, lambda g: (torch.randint(1, 50, (4, 7), generator=g),
                                                               torch.tensor([7, 5, 3, 6])))
    except BaseException as exc:
        result["error"] = failures.describe(exc, stage)
    return result


def _unreachable(model: nn.Module, make_input) -> list[dict]:
    """Parameter rows no input reaches the scores through (anatomy.unreachable_rows)."""
    from grader.worker.anatomy import unreachable_rows

    try:
        found = unreachable_rows(model, make_input, trials=2, seed=0)
    except Exception:  # e.g. a forward that insists on float32: the other checks still stand
        return []
    return found[:8]
