"""A rubric's sentiment-model task: the student's review classifier, built with their own cell.

    [[task]]
    kind = "sentiment_model"
    symbol = "SentimentClassification"
    cell = "LSTMCell"               # the cell class it is built with
    points = { forward = 1, last_token = 2 }
"""
from __future__ import annotations

CHECK_KINDS = ("forward", "last_token")
PARAMS = {"symbol": "name", "cell": "name"}


def check_name(task, kind: str) -> str:
    symbol = task.params["symbol"]
    return {"forward": f"{symbol} gives two scores per review",
            "last_token": f"{symbol} reads each review's last real token, whatever the padding"}[kind]
