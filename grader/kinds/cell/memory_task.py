"""A small memory task that a correctly wired gated cell learns and a mis-wired one does not.

The cell reads one-hot tokens straight from its input (no embedding, no other layers but a
linear readout of its last h). The first step shows a key, one of KEYS tokens; then come
DELAY steps of noise tokens the key must survive; the last step shows a query mark, and the
readout must name the key. Chance is 1/KEYS.

A cell with a working cell state (LSTM family) or update gate (GRU) carries the key along an
almost linear path and learns this in a few hundred Adam steps. A cell whose memory passes
only through its squashed h (the forget path missing, the old cell state dropped, the GRU's
update gate gone) has to learn it through many tanh layers and fails within the budget.
The budget and threshold were calibrated over seeds: benchmarks/memory_task_calibration.py.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from grader.worker import progress


@dataclass(frozen=True)
class MemoryTaskConfig:
    keys: int = 16           # token kinds; chance is 1/keys
    length: int = 30         # tokens before the query; the marked one is anywhere among them
    hidden: int = 24         # small, so each step is cheap whatever the student wrote
    batch: int = 64
    lr: float = 2e-2         # Adam
    max_steps: int = 700     # budget: twice the most a correct cell needed in calibration
    check_every: int = 25    # evaluate on held-out sequences this often; stop once passed
    eval_batch: int = 256
    threshold: float = 0.9   # accuracy needed on the held-out sequences
    clip: float = 1.0        # gradient-norm clip, as the homework's training loops do
    max_seconds: float = 100  # a very slow cell is stopped; the verdict says so

    @property
    def input_size(self) -> int:
        return self.keys + 2  # token one-hot, the mark, the query

    def describe(self) -> str:
        return (f"recall the marked token among {self.length} random ones ({self.keys} kinds), "
                f"up to {self.length} steps after it was shown")


def make_batch(cfg: MemoryTaskConfig, batch: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs [T, B, input_size], targets [B]. Every step shows a token; one of them carries
    the mark; the last step is the query. The mark may come early or late, so short delays
    give a learning signal from the start and long ones test that the memory holds."""
    tokens = torch.randint(cfg.keys, (cfg.length, batch), generator=generator)  # [L, B]
    marked = torch.randint(cfg.length, (batch,), generator=generator)  # [B]
    inputs = torch.zeros(cfg.length + 1, batch, cfg.input_size)  # [T, B, I]
    inputs[:-1].scatter_(2, tokens.unsqueeze(2), 1.0)
    rows = torch.arange(batch)
    inputs[marked, rows, cfg.keys] = 1.0  # the mark
    inputs[-1, :, cfg.keys + 1] = 1.0  # the query
    return inputs, tokens[marked, rows]


def _last_h(state) -> torch.Tensor:
    return state if isinstance(state, torch.Tensor) else state[0]


def _unroll(cell: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    state = None
    for x in inputs:  # x: [B, I]
        state = cell(x, state)
    return _last_h(state)  # [B, H]


def memory_task(make_cell, seed: int = 0, config: MemoryTaskConfig | None = None) -> dict:
    """Train make_cell(input_size, hidden_size) with a linear readout; plain data back.

    Errors in the student's cell are not caught here: the probe that calls this reports them.
    """
    cfg = config or MemoryTaskConfig()
    threads = torch.get_num_threads()
    # Matrices of 24 x 40 gain nothing from threads, and spinning OpenMP threads slow every
    # tiny op by orders of magnitude when the machine is busy (measured: 2-5 ms a step alone,
    # 320 ms beside another torch process on 2 cores).
    torch.set_num_threads(1)
    try:
        return _train(make_cell, seed, cfg)
    finally:
        torch.set_num_threads(threads)


def _train(make_cell, seed: int, cfg: MemoryTaskConfig) -> dict:
    torch.manual_seed(seed)
    cell = make_cell(cfg.input_size, cfg.hidden)
    readout = nn.Linear(cfg.hidden, cfg.keys)
    params = [p for p in list(cell.parameters()) + list(readout.parameters()) if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=cfg.lr)
    train_gen = torch.Generator().manual_seed(seed + 1)
    eval_inputs, eval_keys = make_batch(cfg, cfg.eval_batch, torch.Generator().manual_seed(seed + 2))

    out = {"task": cfg.describe(), "chance": 1 / cfg.keys, "threshold": cfg.threshold,
           "budget": cfg.max_steps, "config": asdict(cfg), "steps": 0, "accuracy": 0.0,
           "passed": False, "losses": [], "curve": [], "stopped": None}
    started = time.perf_counter()
    for step in range(1, cfg.max_steps + 1):
        inputs, keys = make_batch(cfg, cfg.batch, train_gen)
        loss = F.cross_entropy(readout(_unroll(cell, inputs)), keys)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, cfg.clip)
        optimizer.step()
        out["steps"] = step
        progress.report("the memory task", step, cfg.max_steps, "training steps",
                        f"held-out accuracy {out['accuracy']:.0%} at the last evaluation")
        if not torch.isfinite(loss):
            out["stopped"] = "the loss became NaN or infinite"
            break
        if step % cfg.check_every == 0:
            out["losses"].append(round(float(loss.detach()), 4))
            with torch.no_grad():
                accuracy = float((readout(_unroll(cell, eval_inputs)).argmax(1) == eval_keys).float().mean())
            out["accuracy"] = accuracy
            out["curve"].append([step, round(accuracy, 4)])
            if accuracy >= cfg.threshold:
                out["passed"] = True
                break
        if time.perf_counter() - started > cfg.max_seconds:
            out["stopped"] = f"the time limit of {cfg.max_seconds:.0f} s was reached after {step} steps"
            break
    out["seconds"] = round(time.perf_counter() - started, 2)
    return out
