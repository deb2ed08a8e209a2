"""The sentiment model's facts: two scores per padded review, read at the last real token.

`facts` is the measurement, run on the student's model in the worker where recording
stops, and in the verifier on a stand-in (grader.verifier.standin) that runs the graphs
the worker recorded of exactly these calls (`calls`). The reviews, the lengths and the
changed token are the grader's; nothing of the submission runs in the verifier.
"""
from __future__ import annotations

import torch

from .calls import Call, describe

VOCABULARY, EMBEDDING, HIDDEN = 50, 16, 12  # the model the checks build
LENGTHS = (5, 3, 7, 2)  # each review's real tokens; padding (id 0) after them
ROWS_LENGTHS = (7, 5, 3, 6)  # the unused-parts test's batch
STEPS, PADDED = 7, 13
NAMES = ("the review tokens", "the lengths")
FIXED = frozenset({1})  # the lengths: the verifier passes these values, so forward may read them


def reviews(seed: int, steps: int = STEPS) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    lengths = torch.tensor(LENGTHS)  # [B]
    tokens = torch.randint(4, VOCABULARY, (len(LENGTHS), STEPS), generator=g)  # [B, T]
    for i, n in enumerate(LENGTHS):
        tokens[i, n:] = 0  # padding id 0, as the collate function pads
    if steps > STEPS:
        tokens = torch.cat([tokens, torch.zeros(len(LENGTHS), steps - STEPS, dtype=tokens.dtype)], 1)  # [B, T']
    return tokens, lengths


def rows_input(g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.randint(1, VOCABULARY, (len(ROWS_LENGTHS), STEPS), generator=g), torch.tensor(ROWS_LENGTHS)


def calls(seed: int) -> list[Call]:
    """What `facts` calls the model with (the unused-parts test redraws its tokens)."""
    g = torch.Generator().manual_seed(0)
    return [Call("forward", reviews(seed)), Call("padding", reviews(seed, PADDED)),
            Call("unused parts", rows_input(g), float64=True, needed=False)]


def facts(model, seed: int, tokens: set[str] | None = None) -> dict:
    """`tokens`: the embedding tables, whose rows are tokens, not units (None: the model's nn.Embedding)."""
    result: dict = {"error": None}
    stage = "forward"
    try:
        batch, lengths = reviews(seed)
        model.eval()
        with torch.no_grad():
            logits = model(batch, lengths)  # [B, 2]
            result["shape"] = list(logits.shape) if isinstance(logits, torch.Tensor) else None
            result["finite"] = bool(torch.isfinite(logits).all()) if isinstance(logits, torch.Tensor) else False
            if result["shape"] != [len(LENGTHS), 2]:
                return result
            stage = "padding"
            longer, _ = reviews(seed, PADDED)  # [B, T+6]: more padding
            result["padding_invariant"] = torch.allclose(model(longer, lengths), logits, atol=1e-5)
            changed = batch.clone()
            last = LENGTHS[0] - 1
            changed[0, last] = 4 if int(changed[0, last]) != 4 else 5
            result["reads_last_token"] = not torch.allclose(model(changed, lengths)[0], logits[0], atol=1e-6)
        stage = "unused parts"
        result["unreachable"] = unreachable(model, rows_input, tokens)
    except BaseException as exc:
        result["error"] = describe(exc, stage)
    return result


def verify(artefact: str, seed: int, max_mb: int) -> dict:
    """The verifier's op: the facts, measured on the stand-in rebuilt from the recorded calls."""
    return on_stand_in(artefact, seed, max_mb, "sentiment", FIXED, facts)


def on_stand_in(artefact: str, seed: int, max_mb: int, model_kind: str, fixed: frozenset[int], measure) -> dict:
    """`measure(model, seed, tokens)` on the stand-in for a sequence model's artefact (either kind)."""
    from pathlib import Path

    from grader.verifier import standin

    model = standin.load(Path(artefact), max_mb, model_kind, fixed)
    torch.manual_seed(int(seed))
    return measure(model, int(seed), model.token_tables())


def unreachable(model, make_input, tokens: set[str] | None) -> list[dict]:
    """Parameter rows no input reaches the scores through (grader.worker.anatomy.unreachable_rows)."""
    from grader.worker.anatomy import unreachable_rows

    try:
        found = unreachable_rows(model, make_input, trials=2, seed=0, tokens=tokens)
    except Exception:  # e.g. a forward that insists on float32: the other checks still stand
        return []
    return found[:8]
