"""Probes for the RNN homework: recurrent cells, the sequence models (the text generator is in writer.py).

There is no table to compare a cell with, so each probe measures behaviour the equations
imply (bounded outputs, independent batch rows, a state that matters) and the contract
the starter code fixes. All results are plain data for the scoring process.
"""
from __future__ import annotations

import contextlib
import io
import re

import torch
import torch.nn as nn
import torch.nn.functional as F

from . import anatomy, failures
from .kernelwatch import KernelWatch, graph_kernels, tamper_calls
from .probes import _symbol

# torch's own recurrent kernels (nn.LSTMCell calls lstm_cell, nn.LSTM calls lstm, torch._VF and
# torch.ops.aten reach the same ones). KernelWatch sees them by kernel, not by Python name.
BUILTIN_KERNELS = {"lstm_cell", "gru_cell", "rnn_tanh_cell", "rnn_relu_cell", "lstm", "gru", "rnn_tanh", "rnn_relu",
                   "_thnn_fused_lstm_cell", "_thnn_fused_gru_cell", "quantized_lstm_cell", "quantized_gru_cell",
                   "mkldnn_rnn_layer", "_cudnn_rnn", "miopen_rnn", "_lstm_mps"}


def _builtin_modules(module: nn.Module) -> list[str]:
    return [f"{name or 'self'} ({type(m).__name__})" for name, m in module.named_modules()
            if isinstance(m, (nn.RNNBase, nn.RNNCellBase))]


def _count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _state_kind(state) -> str:
    if isinstance(state, torch.Tensor):
        return "tensor"
    if isinstance(state, (tuple, list)) and len(state) == 2 and all(isinstance(s, torch.Tensor) for s in state):
        return "pair"
    return type(state).__name__


def _h(state) -> torch.Tensor:
    return state if isinstance(state, torch.Tensor) else state[0]


def _flat(state) -> torch.Tensor:
    return state if isinstance(state, torch.Tensor) else torch.cat([s.reshape(s.shape[0], -1) for s in state], 1)


def _zeros_like_state(state, batch: int, hidden: int):
    zero = torch.zeros(batch, hidden)
    return zero if isinstance(state, torch.Tensor) else (zero, zero.clone())


# ------------------------------------------------------------------------------ cells

def cell(symbol: str, family: str, seed: int) -> dict:
    """Contract, parameter counts and behaviour of one cell class; stops at the first stage
    the student's code cannot get through and says which."""
    Cell = _symbol(symbol)
    spy = KernelWatch(BUILTIN_KERNELS, profile=True)  # the profiler sees lstm_cell even with the modes off
    result: dict = {"error": None, "builtin_calls": spy.calls, "builtin_modules": []}
    stage = "construct"
    try:
        with spy:
            torch.manual_seed(seed)
            stage = "construct"
            graded = Cell(128, 100, True)
            result["builtin_modules"] = _builtin_modules(graded)
            result["params"] = _count(graded)
            result["params_without_bias"] = _count(Cell(128, 100, False))
            result["params_default_bias"] = _count(Cell(128, 100))
            stage = "keywords"
            Cell(input_size=128, hidden_size=100, bias=True)  # the models build cells with keywords
            stage = "count_parameters"
            result["count_parameters"] = _reported_count(graded)
            stage = "forward"
            _contract(Cell, result)
            stage = "behaviour"
            _behaviour(Cell, result, seed)
            # Parts computed and never used (a dropped forget gate, dead rows of a shared Linear).
            result["anatomy"] = anatomy.cell_anatomy(Cell, family, seed)
    except BaseException as exc:
        result["error"] = failures.describe(exc, stage)
    # The autograd graph is the engine's record, for a kernel run where the watch did not look.
    graph = result.pop("builtin_graph", [])
    if not spy.calls:
        spy.calls += [{"kernel": k, "route": None, "where": "", "by": "graph", "node": n} for n, k in graph]
    spy.calls += tamper_calls(spy)
    return result


def _reported_count(graded: nn.Module) -> dict:
    """What count_parameters says: the starter's prints "Total Parameters: N" and returns None."""
    method = getattr(graded, "count_parameters", None)
    if method is None:
        return {"present": False}
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        returned = method()
    numbers = [int(n.replace(",", "")) for n in re.findall(r"\d[\d,]*", printed.getvalue())]
    value = returned if isinstance(returned, int) and not isinstance(returned, bool) else (numbers[-1] if numbers else None)
    return {"present": True, "value": value, "printed": printed.getvalue()[:200]}


def _contract(Cell, result: dict) -> None:
    """Sizes the student did not pick: input 7, hidden 5, batch 3."""
    small = Cell(7, 5, True)
    x = torch.randn(3, 7)  # [B, input]
    first = small(x, None)
    second = small(x, first)
    result["state_kind"] = _state_kind(first)
    result["second_state_kind"] = _state_kind(second)
    shapes = lambda s: [list(t.shape) for t in (s if isinstance(s, (tuple, list)) else [s])] if isinstance(
        s, (torch.Tensor, tuple, list)) else []
    result["state_shapes"] = shapes(first)


def _run(cell_module, xs, state=None):
    outputs = []
    for x in xs:
        state = cell_module(x, state)
        outputs.append(state)
    return outputs


def _behaviour(Cell, result: dict, seed: int) -> None:
    torch.manual_seed(seed + 1)
    c = Cell(6, 8, True).eval()
    g = torch.Generator().manual_seed(seed)
    xs = [torch.randn(4, 6, generator=g) * 5 for _ in range(12)]  # large inputs: gates saturate
    with torch.no_grad():
        states = _run(c, xs)
        result["max_abs_h"] = max(float(_h(s).abs().max()) for s in states)
        result["finite"] = all(bool(torch.isfinite(_flat(s)).all()) for s in states)
        # Batch rows are independent: changing row 0's inputs leaves rows 1-3 alone.
        changed = [x.clone() for x in xs]
        for x in changed:
            x[0] = -x[0]
        other = _run(c, changed)
        result["rows_independent"] = all(torch.allclose(_flat(a)[1:], _flat(b)[1:], atol=1e-6) for a, b in zip(states, other))
        # None means zeros; a given state is used.
        zeros = _zeros_like_state(states[0], 4, 8)
        result["none_is_zeros"] = torch.allclose(_flat(c(xs[0], None)), _flat(c(xs[0], zeros)), atol=1e-6)
        other_state = _zeros_like_state(states[0], 4, 8)
        other_state = other_state + 0.5 if isinstance(other_state, torch.Tensor) else tuple(s + 0.5 for s in other_state)
        result["state_used"] = not torch.allclose(_flat(c(xs[0], zeros)), _flat(c(xs[0], other_state)), atol=1e-5)
        # From the zero state, the first output depends on the input (an LSTM whose output
        # reads the old cell state gives h = 0 here, whatever the input).
        h_a, h_b = _h(c(xs[0], None)), _h(c(xs[1], None))
        result["first_step_norm"] = float(h_a.norm())
        result["first_step_depends_on_input"] = not torch.allclose(h_a, h_b, atol=1e-6)
    # Every parameter gets a finite, non-zero gradient through a few steps.
    c.train()
    params = dict(c.named_parameters())
    loss = sum(_flat(s).sum() for s in _run(c, xs[:4]))
    result["builtin_graph"] = graph_kernels(loss, BUILTIN_KERNELS)
    loss.backward()
    result["no_gradient"] = [n for n, p in params.items() if p.grad is None or not bool(p.grad.abs().sum() > 0)]
    result["nonfinite_gradient"] = [n for n, p in params.items() if p.grad is not None and not bool(torch.isfinite(p.grad).all())]


def memory(symbol: str, family: str, seed: int) -> dict:
    from .memory_task import memory_task

    Cell = _symbol(symbol)
    spy = KernelWatch(BUILTIN_KERNELS)  # no profiler: it would record every op of the training
    try:
        with spy:
            outcome = memory_task(lambda i, h: Cell(i, h, True), seed=seed)
        outcome["error"] = None
    except BaseException as exc:
        outcome = {"error": failures.describe(exc, "train")}
    outcome["builtin_calls"] = spy.calls + tamper_calls(spy)
    return outcome


# ------------------------------------------------------------------------------ models

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


def _unreachable(model: nn.Module, make_input) -> list[dict]:
    """Parameter rows no input reaches the scores through (anatomy.unreachable_rows)."""
    from .anatomy import unreachable_rows

    try:
        found = unreachable_rows(model, make_input, trials=2, seed=0)
    except Exception:  # e.g. a forward that insists on float32: the other checks still stand
        return []
    return found[:8]

