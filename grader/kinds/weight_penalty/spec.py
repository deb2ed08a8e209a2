"""A rubric's weight-penalty task: an L1 penalty the student adds to the loss.

    [[task]]
    kind = "weight_penalty"
    function = "l1_penalty"     # called as f(model, strength), f(model) or f(model.parameters(), strength)
    strength = 0.001            # optional: what f(model, strength) is given
    points = { gradient = 1 }
"""
from __future__ import annotations

CHECK_KINDS = ("gradient",)
PARAMS = {"function": "name", "strength": "float?"}
# The test model, nn.Sequential(Conv2d(3, 4, 3), ReLU, Flatten, Linear(64, 5)): its parameters.
SHAPES = {"0.weight": [4, 3, 3, 3], "0.bias": [4], "3.weight": [5, 64], "3.bias": [5]}


def check_name(task, kind: str) -> str:
    return f"{task.params['function']}: an L1 penalty whose gradient is strength * sign(w)"
