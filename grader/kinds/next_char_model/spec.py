"""A rubric's character-model task: the student's next-character model, built with their own cell.

    [[task]]
    kind = "next_char_model"
    symbol = "SentenceGeneration"
    cell = "GRUCell"
    points = { forward = 1.5, continuation = 2 }
"""
from __future__ import annotations

CHECK_KINDS = ("forward", "continuation")
PARAMS = {"symbol": "name", "cell": "name"}


def check_name(task, kind: str) -> str:
    symbol = task.params["symbol"]
    return {"forward": f"{symbol} predicts scores over the vocabulary and returns its state",
            "continuation": f"{symbol} continues from a passed state exactly"}[kind]
