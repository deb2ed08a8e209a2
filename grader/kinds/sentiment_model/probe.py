"""The worker's own measurement of the sentiment model, where its calls cannot be recorded:
build it with the student's cell and run grader.kinds.sentiment_model.measure on it here."""
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
    from .measure import EMBEDDING, HIDDEN, VOCABULARY, facts

    try:
        torch.manual_seed(seed)
        model = _build_model(symbol, cell, VOCABULARY, EMBEDDING, HIDDEN).eval()
    except BaseException as exc:
        return {"error": failures.describe(exc, "construct")}
    return facts(model, seed)
