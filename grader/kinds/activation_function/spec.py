"""A rubric's activation-function task: an activation (Swish) the student writes from scratch.

    [[task]]
    kind = "activation_function"
    function = "Swish"          # a function, or an nn.Module class built with its defaults
    points = { source = 1, values = 1 }
"""
from __future__ import annotations

CHECK_KINDS = ("source", "values")
PARAMS = {"function": "name"}
SHAPE = [3, 4, 5, 5]  # the input: 300 values, a sweep over [-8, 8] and random ones


def check_name(task, kind: str) -> str:
    fn = task.params["function"]
    return {"source": f"{fn} is written from scratch, without torch's SiLU",
            "values": f"{fn}(x) equals x * sigmoid(x), and so does its gradient"}[kind]
