"""The worker's side of the character model: logits and state for a history, the same history fed
in two halves with the state carried over, gradients, and parts no input reaches."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from grader.worker import failures

from ..sentiment_model.probe import _build_model, _unreachable


def generation(symbol: str, cell: str, seed: int) -> dict:
    result: dict = {"error": None}
    stage = "construct"
    try:
        torch.manual_seed(seed)
        vocabulary = 30
        model = _build_model(symbol, cell, vocabulary, 16, 12).eval()
        g = torch.Generator().manual_seed(seed)
        history = torch.randint(0, vocabulary, (3, 10), generator=g)  # [B, T]
        stage = "forward"
        with torch.no_grad():
            out = model(history)
            if not (isinstance(out, tuple) and len(out) == 2):
                result["returns"] = type(out).__name__
                return result
            logits, state = out
            result["returns"] = "pair"
            result["shape"] = list(logits.shape) if isinstance(logits, torch.Tensor) else None
            result["finite"] = bool(torch.isfinite(logits).all()) if isinstance(logits, torch.Tensor) else False
            if result["shape"] != [3, vocabulary]:
                return result
            stage = "continuation"
            first_logits, first_state = model(history[:, :6])
            second_logits, second_state = model(history[:, 6:], first_state)
            result["continues"] = torch.allclose(second_logits, logits, atol=1e-5)
            result["restarts_without_state"] = torch.allclose(model(history[:, 6:])[0], logits, atol=1e-5)
        stage = "gradients"
        model.train()
        loss = F.cross_entropy(model(history)[0], torch.zeros(3, dtype=torch.long))
        loss.backward()
        result["no_gradient"] = [n for n, p in model.named_parameters() if p.grad is None]
        stage = "unused parts"
        result["unreachable"] = _unreachable(model, lambda g: torch.randint(0, vocabulary, (3, 10), generator=g))
    except BaseException as exc:
        result["error"] = failures.describe(exc, stage)
    return result
