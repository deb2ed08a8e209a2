"""The worker's side of the penalty kind: the student's penalty on a model with the scorer's weights.

Its gradient per parameter goes back raw; the scorer divides it by sign(w) (run.judge).
"""
from __future__ import annotations

import torch
import torch.nn as nn

from grader.worker import failures
from grader.worker.probes import _symbol

def _test_model(weights: dict) -> nn.Module:
    """spec.SHAPES, with the scorer's weights (none of them near 0)."""
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 4 * 4, 5))
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.tensor(weights[name], dtype=p.dtype).reshape(p.shape))
    return model


def penalty(symbol: str, strength: float, weights: dict) -> dict:
    """Call the student's penalty on a small model with the scorer's weights and send back its
    gradient per parameter, raw: the scorer divides it by sign(w), and an L1 penalty gives
    the same positive number everywhere (grader.kinds.weight_penalty.run)."""
    result: dict = {"error": None, "call": None, "params": []}
    try:
        fn = _symbol(symbol)
    except BaseException as exc:
        result["error"] = failures.describe(exc, "lookup")
        return result
    model = _test_model(weights)
    attempts = [("f(model, strength)", lambda: fn(model, strength)), ("f(model)", lambda: fn(model)),
                ("f(model.parameters(), strength)", lambda: fn(model.parameters(), strength))]
    value, errors = None, []
    for label, call in attempts:
        try:
            value = call()
            result["call"] = label
            break
        except TypeError as exc:
            errors.append(failures.describe(exc, "call"))
        except BaseException as exc:
            result["error"] = failures.describe(exc, "call")
            return result
    if result["call"] is None:
        result["error"] = errors[0]
        return result
    if not isinstance(value, torch.Tensor) or value.numel() != 1:
        result["error"] = {"type": "TypeError", "message": f"{symbol} returned {type(value).__name__}"
                           + (f" of shape {list(value.shape)}" if isinstance(value, torch.Tensor) else "")
                           + ", not a single number (a 0-d tensor) to add to the loss",
                           "stage": "call", "file": None, "line": None, "code": None, "trace": []}
        return result
    result["value"] = float(value)
    if not value.requires_grad:
        result["no_grad"] = True
        return result
    value.reshape(()).backward()
    result["grads"] = {name: (p.grad.double().reshape(-1).tolist() if p.grad is not None else None)
                       for name, p in model.named_parameters()}
    return result
