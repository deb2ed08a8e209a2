"""A recurrent cell's facts, measured in the verifier by running its exported steps.

The worker builds the student's cell at every size the checks use and exports one step of
it, from no state ("first") and from a given state ("step"), at each batch size they call
it with. Here `Cells` stands in for the student's class: `Cells(7, 5, True)` is a
`GraphCell` that answers `cell(x, state)` by running those graphs. The measurements
themselves (the contract, the behaviour the equations imply, the dead parts, the memory
task) are the same code the worker runs when export fails; here their inputs, their loss
and their optimizer are the verifier's, and nothing of the submission's runs.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from grader.verifier import artefact as artefacts
from grader.verifier import graph as graphs

from . import anatomy
from .memory_task import MemoryTaskConfig

# torch's own recurrent kernels: a graph that holds one used them, whatever route reached it.
BUILTIN_KERNELS = {"lstm_cell", "gru_cell", "rnn_tanh_cell", "rnn_relu_cell", "lstm", "gru", "rnn_tanh", "rnn_relu",
                   "_thnn_fused_lstm_cell", "_thnn_fused_gru_cell", "quantized_lstm_cell", "quantized_gru_cell",
                   "mkldnn_rnn_layer", "_cudnn_rnn", "miopen_rnn", "_lstm_mps"}
CONTRACT = (7, 5, 3)  # input, hidden, batch: sizes the student did not pick
BEHAVIOUR = (6, 8, 4)
MEMORY = MemoryTaskConfig()


@dataclass(frozen=True)
class Size:
    """One size the checks build the cell at, and the steps they run it for."""

    name: str
    input: int
    hidden: int
    bias: bool | None  # None: built without the argument, so the class's default
    seed: int  # added to the rubric's seed before the cell is built, as the checks do
    graphs: tuple[str, ...] = ()  # "first@B": one step from no state; "step@B": from a given state
    anatomy: bool = False  # float64 where the code allows it (else float32); the state as the anatomy passes it
    train: bool = False
    not_for: tuple[str, ...] = ()  # families that have no such check


def memory_size(cfg: MemoryTaskConfig = MEMORY) -> Size:
    """The memory task's cell: its sizes, and steps at its training and held-out batches."""
    return Size("memory", cfg.input_size, cfg.hidden, True, 0,
                tuple(f"{kind}@{batch}" for batch in (cfg.batch, cfg.eval_batch) for kind in ("first", "step")),
                train=True)


SIZES = (
    Size("no_bias", anatomy.INPUT, anatomy.HIDDEN, False, 0),
    Size("default_bias", anatomy.INPUT, anatomy.HIDDEN, None, 0),
    Size("contract", CONTRACT[0], CONTRACT[1], True, 0, (f"first@{CONTRACT[2]}", f"step@{CONTRACT[2]}")),
    Size("behaviour", BEHAVIOUR[0], BEHAVIOUR[1], True, 1, (f"first@{BEHAVIOUR[2]}", f"step@{BEHAVIOUR[2]}")),
    Size("rows", anatomy.INPUT, anatomy.HIDDEN, True, 17, (f"step@{anatomy.BATCH}",), anatomy=True),
    Size("path", anatomy.SMALL_INPUT, anatomy.SMALL_HIDDEN, True, 17, (f"step@{anatomy.BATCH}",), anatomy=True,
         not_for=("gru",)),  # a GRU has no cell state to follow
    memory_size(),
)


def sizes(family: str, memory: bool) -> list[Size]:
    return [s for s in SIZES if family not in s.not_for and (memory or s.name != "memory")]


# ------------------------------------------------------------------ the stand-in


def leaves(state) -> list[torch.Tensor]:
    """A state's tensors, in order: one tensor, or a tuple or list of them."""
    if state is None:
        return []
    if isinstance(state, torch.Tensor):
        return [state]
    if isinstance(state, (tuple, list)) and 0 < len(state) <= 2 and all(isinstance(s, torch.Tensor) for s in state):
        return list(state)
    raise TypeError(f"the state is a {type(state).__name__}, not a tensor or a pair of tensors")


class GraphCell:
    """The student's cell at one size: parameters that learn, and a call that runs the graphs."""

    def __init__(self, config: artefacts.CellConfig, art: artefacts.CellArtefact, parsed: dict):
        self.config = config
        self._graphs = parsed
        prefix = config.name + "/"
        params = {t for graph, _ in parsed.values() for _, t in graph.placeholders("parameter")} or \
            {t for t in art.tensors if t.startswith(prefix)}
        self._tensors = {}
        for target, tensor in art.tensors.items():
            if target.startswith(prefix):
                t = tensor.clone()
                if target in params and art.requires_grad.get(target) and t.is_floating_point():
                    t.requires_grad_(True)
                self._tensors[target] = t
        self._params = [t for t in self._tensors if t in params]
        self._prefix = prefix

    def named_parameters(self):
        return ((t.removeprefix(self._prefix), self._tensors[t]) for t in self._params)

    def parameters(self):
        return (self._tensors[t] for t in self._params)

    def eval(self):
        return self  # exported in the mode its checks run it in

    def train(self, mode: bool = True):
        return self

    def to(self, dtype):
        with torch.no_grad():
            for target, t in self._tensors.items():
                if t.is_floating_point() and t.dtype != dtype:
                    self._tensors[target] = t.to(dtype).requires_grad_(t.requires_grad)
        return self

    def __call__(self, x, state=None):
        given = leaves(state)
        key = f"{'step' if given else 'first'}@{x.shape[0]}"
        if key not in self._graphs:
            raise graphs.GraphError(graphs.Node(key, key, None, [], {}),
                                    f"the cell was not handed over for a step at batch {x.shape[0]}")
        graph, returns = self._graphs[key]
        users = graph.user_inputs
        if len(users) != 1 + len(given):
            raise graphs.GraphError(graphs.Node(key, key, None, [], {}),
                                    f"its step takes {len(users) - 1} state tensors; it was given {len(given)}")
        values = {name: self._tensors[target] for name, kind, target in graph.inputs if kind != "input"}
        values.update(zip(users, [x, *given]))
        out = graphs.run(graph, values)
        if returns == "tensor":
            return out
        out = list(out) if isinstance(out, tuple) else [out]
        return tuple(out) if returns == "tuple" else out


class Cells:
    """Stands in for the student's class: Cells(input, hidden, bias) at the sizes handed over."""

    def __init__(self, art: artefacts.CellArtefact):
        self.art = art
        self._parsed = {}
        for config in art.configs.values():
            self._parsed[config.name] = {
                key: (graphs.parse(g, art.tensors, inputs=range(1, 2) if key.startswith("first") else range(2, 4),
                                   outputs=range(1, 3)), g["returns"]) for key, g in config.graphs.items()}

    def __call__(self, input_size: int, hidden_size: int, bias: bool | None = None) -> GraphCell:
        dtype = str(torch.get_default_dtype()).removeprefix("torch.")
        for config in self.art.configs.values():
            if (config.input, config.hidden, config.bias, config.dtype) == (input_size, hidden_size, bias, dtype):
                return GraphCell(config, self.art, self._parsed[config.name])
        raise graphs.GraphError(graphs.Node("cell", "cell", None, [], {}),
                                f"no cell of input {input_size}, hidden {hidden_size} in {dtype} was handed over")

    def count(self, name: str) -> int | None:
        config = self.art.configs.get(name)
        if config is None:
            return None
        return sum(t.numel() for _, t in GraphCell(config, self.art, self._parsed[name]).named_parameters())

    def builtin_calls(self) -> list[dict]:
        found = {}
        for parsed in self._parsed.values():
            for graph, _ in parsed.values():
                for node in graph.nodes:
                    if node.packet in BUILTIN_KERNELS and node.packet not in found:
                        found[node.packet] = {"kernel": node.packet, "route": None, "where": node.where,
                                              "by": "graph", "node": node.name}
        return list(found.values())


# ------------------------------------------------------------------ the measurements


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


def contract(Cell, result: dict) -> None:
    """The state's form at sizes the student did not pick."""
    size, hidden, batch = CONTRACT
    small = Cell(size, hidden, True)
    x = torch.randn(batch, size)  # [B, input]
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


def behaviour(Cell, result: dict, seed: int, on_loss=None) -> None:
    """What the equations imply: bounded, finite, rows independent, the state used."""
    size, hidden, batch = BEHAVIOUR
    torch.manual_seed(seed + 1)
    c = Cell(size, hidden, True).eval()
    g = torch.Generator().manual_seed(seed)
    xs = [torch.randn(batch, size, generator=g) * 5 for _ in range(12)]  # large inputs: gates saturate
    with torch.no_grad():
        states = _run(c, xs)
        result["max_abs_h"] = max(float(_h(s).abs().max()) for s in states)
        result["finite"] = all(bool(torch.isfinite(_flat(s)).all()) for s in states)
        # Batch rows are independent: changing row 0's inputs leaves the others alone.
        changed = [x.clone() for x in xs]
        for x in changed:
            x[0] = -x[0]
        other = _run(c, changed)
        result["rows_independent"] = all(torch.allclose(_flat(a)[1:], _flat(b)[1:], atol=1e-6) for a, b in zip(states, other))
        # None means zeros; a given state is used.
        zeros = _zeros_like_state(states[0], batch, hidden)
        result["none_is_zeros"] = torch.allclose(_flat(c(xs[0], None)), _flat(c(xs[0], zeros)), atol=1e-6)
        other_state = _zeros_like_state(states[0], batch, hidden)
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
    if on_loss is not None:
        on_loss(loss)
    loss.backward()
    result["no_gradient"] = [n for n, p in params.items() if p.grad is None or not bool(p.grad.abs().sum() > 0)]
    result["nonfinite_gradient"] = [n for n, p in params.items() if p.grad is not None and not bool(torch.isfinite(p.grad).all())]


def _failure(exc: BaseException, stage: str) -> dict:
    node = getattr(exc, "node", None)
    where = node.where if node is not None else ""
    file, _, line = where.rpartition(":")
    return {"type": type(exc).__name__, "message": str(exc)[:500], "stage": stage, "file": file or None,
            "line": int(line) if line.isdigit() else None, "code": None, "trace": []}


def verify(artefact: str, family: str, seed: int, part: str, max_mb: int) -> dict:
    """part "cell": contract, counts, behaviour and dead parts; "memory": the memory task."""
    from pathlib import Path

    from .memory_task import memory_task

    cells = Cells(artefacts.read_cell(Path(artefact), int(max_mb) << 20))
    torch.manual_seed(int(seed))
    if part == "memory":
        try:
            outcome = memory_task(lambda i, h: cells(i, h, True), seed=int(seed))
            outcome["error"] = None
        except Exception as exc:  # the student's step, run here, failed
            outcome = {"error": _failure(exc, "train")}
        outcome["builtin_calls"] = cells.builtin_calls()
        return outcome
    result: dict = {"error": None, "builtin_calls": cells.builtin_calls(), "params": cells.count("rows"),
                    "params_without_bias": cells.count("no_bias"), "params_default_bias": cells.count("default_bias")}
    stage = "forward"
    try:
        contract(cells, result)
        stage = "behaviour"
        behaviour(cells, result, int(seed))
        result["anatomy"] = anatomy.cell_anatomy(cells, family, int(seed))
    except Exception as exc:
        result["error"] = _failure(exc, stage)
    return result
