"""The character model's facts: logits and a state for a history, the same history fed in two
halves with the state carried over, gradients, and parts no input reaches.

`facts` runs on the student's model in the worker where recording stops, and in the
verifier on the stand-in that runs the recorded graphs of these calls (`calls`).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..sentiment_model.calls import Call, describe
from ..sentiment_model.measure import EMBEDDING, HIDDEN, on_stand_in, unreachable

VOCABULARY = 30
BATCH, STEPS, SPLIT = 3, 10, 6  # histories, their length, where the first half ends
NAMES = ("the history", "the state")
FIXED: frozenset[int] = frozenset()


def history(seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, VOCABULARY, (BATCH, STEPS), generator=g)  # [B, T]


def rows_input(g: torch.Generator) -> torch.Tensor:
    return torch.randint(0, VOCABULARY, (BATCH, STEPS), generator=g)


def calls(seed: int, first_state) -> list[Call]:
    """What `facts` calls the model with; `first_state` is what the model returned for the
    first half (the second half is called with it)."""
    h = history(seed)
    return [Call("forward", (h,)), Call("continuation", (h[:, :SPLIT],)),
            Call("continuation", (h[:, SPLIT:], first_state)), Call("gradients", (h,), train=True),
            Call("unused parts", (rows_input(torch.Generator().manual_seed(0)),), float64=True, needed=False)]


def facts(model, seed: int, tokens: set[str] | None = None) -> dict:
    result: dict = {"error": None}
    stage = "forward"
    try:
        h = history(seed)
        model.eval()
        with torch.no_grad():
            out = model(h)
            if not (isinstance(out, tuple) and len(out) == 2):
                result["returns"] = type(out).__name__
                return result
            logits, state = out
            result["returns"] = "pair"
            result["shape"] = list(logits.shape) if isinstance(logits, torch.Tensor) else None
            result["finite"] = bool(torch.isfinite(logits).all()) if isinstance(logits, torch.Tensor) else False
            if result["shape"] != [BATCH, VOCABULARY]:
                return result
        # The forward check's parts first, so that a failure to continue costs only that check.
        stage = "gradients"
        model.train()
        loss = F.cross_entropy(model(h)[0], torch.zeros(BATCH, dtype=torch.long))
        loss.backward()
        result["no_gradient"] = [n for n, p in model.named_parameters() if p.grad is None]
        stage = "unused parts"
        result["unreachable"] = unreachable(model, rows_input, tokens)
        stage = "continuation"
        model.eval()
        with torch.no_grad():
            _, first_state = model(h[:, :SPLIT])
            second_logits, _ = model(h[:, SPLIT:], first_state)
            result["continues"] = torch.allclose(second_logits, logits, atol=1e-5)
    except BaseException as exc:
        result["error"] = describe(exc, stage)
    return result


def verify(artefact: str, seed: int, max_mb: int) -> dict:
    """The verifier's op: the facts, measured on the stand-in rebuilt from the recorded calls."""
    return on_stand_in(artefact, seed, max_mb, "generation", FIXED, facts)


__all__ = ["EMBEDDING", "HIDDEN", "VOCABULARY", "calls", "facts", "verify"]
