"""Calibrate the memory task: correct cells must pass over every seed with margin, broken
cells must fail. Prints a table of steps-to-pass (or final accuracy) and seconds per run.

By default each cell goes the way grading takes it: exported by the worker's code, then
trained by the verifier's stand-in running the exported steps. `--path inside` trains the
class itself, as the worker does where export fails.

    python benchmarks/memory_task_calibration.py [--seeds 5] [--delay 30] [--max-steps 500] [--path verifier|inside]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import types
from dataclasses import replace
from pathlib import Path

import torch
import torch.nn as nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "reference"))

from cs1699_hw5 import rnn_modules as ref  # noqa: E402
from grader.kinds.cell.memory_task import MemoryTaskConfig, memory_task  # noqa: E402


class _Gates(nn.Module):
    """Shared plumbing of the broken cells: one linear map per gate over [h, x]."""

    def __init__(self, input_size, hidden_size, bias=True, gates="fiog"):
        super().__init__()
        self.hidden_size = hidden_size
        for name in gates:
            setattr(self, name, nn.Linear(hidden_size + input_size, hidden_size, bias=bias))

    def zeros(self, x):
        return torch.zeros(x.shape[0], self.hidden_size)


class LSTMOneLinear(nn.Module):
    """A correct LSTM in another common style: one nn.Linear for all four gates, default init."""

    def __init__(self, input_size, hidden_size, bias=True):
        super().__init__()
        self.hidden_size = hidden_size
        self.gates = nn.Linear(input_size + hidden_size, 4 * hidden_size, bias=bias)

    def forward(self, x, state=None):
        h, c = state if state is not None else (torch.zeros(x.shape[0], self.hidden_size),) * 2
        f, i, o, g = self.gates(torch.cat((x, h), 1)).chunk(4, 1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c), c


class LSTMDefaultInit(_Gates):
    """The handout's LSTM with nn.Linear's default initialisation instead of the starter's."""

    def forward(self, x, state=None):
        h, c = state if state is not None else (self.zeros(x), self.zeros(x))
        z = torch.cat((h, x), 1)
        c = torch.sigmoid(self.f(z)) * c + torch.sigmoid(self.i(z)) * torch.tanh(self.g(z))
        return torch.sigmoid(self.o(z)) * torch.tanh(c), c


class LSTMNoCarry(_Gates):
    """c_t = i * g: the f * c_{t-1} term is missing, so memory passes only through h."""

    def forward(self, x, state=None):
        h, c = state if state is not None else (self.zeros(x), self.zeros(x))
        z = torch.cat((h, x), 1)
        c = torch.sigmoid(self.i(z)) * torch.tanh(self.g(z))
        return torch.sigmoid(self.o(z)) * torch.tanh(c), c


class LSTMForgetOnCandidate(_Gates):
    """The forget gate multiplies the candidate instead of the old cell state."""

    def forward(self, x, state=None):
        h, c = state if state is not None else (self.zeros(x), self.zeros(x))
        z = torch.cat((h, x), 1)
        g = torch.tanh(self.g(z))
        c = torch.sigmoid(self.f(z)) * g + torch.sigmoid(self.i(z)) * g
        return torch.sigmoid(self.o(z)) * torch.tanh(c), c


class LSTMTanhForget(_Gates):
    """tanh instead of sigmoid on the forget gate: the cell state may flip sign each step."""

    def forward(self, x, state=None):
        h, c = state if state is not None else (self.zeros(x), self.zeros(x))
        z = torch.cat((h, x), 1)
        c = torch.tanh(self.f(z)) * c + torch.sigmoid(self.i(z)) * torch.tanh(self.g(z))
        return torch.sigmoid(self.o(z)) * torch.tanh(c), c


class LSTMNoForgetGate(_Gates):
    """The 1997 LSTM (f = 1). One gate short of the handout, but it does remember."""

    def forward(self, x, state=None):
        h, c = state if state is not None else (self.zeros(x), self.zeros(x))
        z = torch.cat((h, x), 1)
        c = c + torch.sigmoid(self.i(z)) * torch.tanh(self.g(z))
        return torch.sigmoid(self.o(z)) * torch.tanh(c), c


class GRUNoUpdate(_Gates):
    """GRU without its update gate: h_t = candidate, a gated vanilla RNN."""

    def __init__(self, input_size, hidden_size, bias=True):
        super().__init__(input_size, hidden_size, bias, gates="rg")

    def forward(self, x, h=None):
        h = h if h is not None else self.zeros(x)
        r = torch.sigmoid(self.r(torch.cat((h, x), 1)))
        return torch.tanh(self.g(torch.cat((r * h, x), 1)))


class VanillaRNN(_Gates):
    """h_t = tanh(W [h, x] + b): no gates at all."""

    def __init__(self, input_size, hidden_size, bias=True):
        super().__init__(input_size, hidden_size, bias, gates="g")

    def forward(self, x, h=None):
        h = h if h is not None else self.zeros(x)
        return torch.tanh(self.g(torch.cat((h, x), 1)))


CORRECT = {"GRUCell": ref.GRUCell, "LSTMCell": ref.LSTMCell, "PeepholedLSTMCell": ref.PeepholedLSTMCell,
           "CoupledLSTMCell": ref.CoupledLSTMCell, "LSTM, one Linear for 4 gates": LSTMOneLinear,
           "LSTM, nn.Linear default init": LSTMDefaultInit}
# Wrong by the handout's equations but still able to remember; other checks catch them.
FUNCTIONAL = {"LSTM without forget gate (f = 1)": LSTMNoForgetGate, "LSTM, tanh forget gate": LSTMTanhForget}
BROKEN = {"LSTM, c_t = i*g": LSTMNoCarry, "LSTM, forget gate on candidate": LSTMForgetOnCandidate,
          "GRU without update gate": GRUNoUpdate,
          "vanilla RNN": VanillaRNN}


def _through_verifier(cls, seed: int, cfg):
    """The grading path without its sandboxes: export the memory task's steps, then train the
    verifier's stand-in for the class on them."""
    from grader.kinds.cell import export, measure
    from grader.verifier.artefact import read_cell
    from grader.worker import probes

    probes.STATE.module, probes.STATE.symbols = types.SimpleNamespace(Cell=cls), {}
    with tempfile.TemporaryDirectory() as folder:
        export.write(cls, [measure.memory_size(cfg)], "lstm", seed, folder)
        cells = measure.Cells(read_cell(Path(folder), 1 << 30))
        return memory_task(lambda i, h: cells(i, h, True), seed=seed, config=cfg)


def run(name, cls, seeds, cfg, path="verifier"):
    rows = []
    for seed in seeds:
        torch.set_num_threads(1)  # the worker's setting on a loaded grading machine
        if path == "verifier":
            out = _through_verifier(cls, seed, cfg)
        else:
            out = memory_task(lambda i, h: cls(i, h, True), seed=seed, config=cfg)
        rows.append(out)
    passed = sum(r["passed"] for r in rows)
    steps = [r["steps"] for r in rows if r["passed"]]
    acc = [r["accuracy"] for r in rows]
    secs = [r["seconds"] for r in rows]
    print(f"{name:36s} passed {passed}/{len(rows)}  steps to pass "
          f"{(str(min(steps)) + '-' + str(max(steps))) if steps else '-':>9s}  "
          f"final accuracy {min(acc):.2f}-{max(acc):.2f}  seconds {min(secs):.1f}-{max(secs):.1f} "
          f"(mean {statistics.mean(secs):.1f})", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--delay", type=int)
    parser.add_argument("--max-steps", type=int)
    parser.add_argument("--only", choices=["correct", "functional", "broken"])
    parser.add_argument("--path", choices=["verifier", "inside"], default="verifier",
                        help="train the verifier's stand-in for the exported steps (as grading does), or the class")
    args = parser.parse_args()
    cfg = MemoryTaskConfig()
    if args.delay:
        cfg = replace(cfg, length=args.delay)  # tokens before the query
    if args.max_steps:
        cfg = replace(cfg, max_steps=args.max_steps)
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    print(f"memory task: {cfg.describe()}; budget {cfg.max_steps} steps, threshold {cfg.threshold:.0%}, "
          f"seeds {seeds}, torch {torch.__version__}, through {'the verifier' if args.path == 'verifier' else 'the class itself'}")
    started = time.perf_counter()
    groups = {"correct": CORRECT, "functional": FUNCTIONAL, "broken": BROKEN}
    for group, cells in groups.items():
        if args.only and args.only != group:
            continue
        print(f"-- {group}")
        for name, cls in cells.items():
            run(name, cls, seeds, cfg, args.path)
    print(f"total {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
