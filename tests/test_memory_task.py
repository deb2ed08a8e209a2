"""The memory task separates cells that keep a memory from cells that only look right.

In-process tests run the task on trusted cells (ours); the end-to-end ones grade a student
submission through the worker. Calibration over seeds: benchmarks/memory_task_calibration.py.
"""
import shutil
import sys

import pytest
import torch
import torch.nn as nn

from gradekit import HERE, by_id, failed_ids, mutate
from grader import api
from grader.kinds.cell.memory_task import MemoryTaskConfig, make_batch, memory_task

sys.path.insert(0, str(HERE.parent / "reference"))
from cs1699_hw5 import rnn_modules as ref  # noqa: E402

PLAIN = HERE / "submissions" / "hw5_plain"


class NoCarryLSTM(nn.Module):
    """c_t = i * g: the forget path is missing, so the cell state is rebuilt every step."""

    def __init__(self, input_size, hidden_size, bias=True):
        super().__init__()
        self.hidden_size = hidden_size
        self.i, self.o, self.g = (nn.Linear(input_size + hidden_size, hidden_size, bias=bias) for _ in range(3))

    def forward(self, x, state=None):
        h = torch.zeros(x.shape[0], self.hidden_size) if state is None else state[0]
        z = torch.cat((h, x), 1)
        c = torch.sigmoid(self.i(z)) * torch.tanh(self.g(z))
        return torch.sigmoid(self.o(z)) * torch.tanh(c), c


def test_batches_mark_exactly_one_token_and_ask_for_it():
    cfg = MemoryTaskConfig()
    inputs, targets = make_batch(cfg, 32, torch.Generator().manual_seed(0))
    assert inputs.shape == (cfg.length + 1, 32, cfg.keys + 2)
    assert targets.shape == (32,)
    marks = inputs[:, :, cfg.keys]  # [T, B]
    assert torch.equal(marks.sum(0), torch.ones(32))
    position = marks.argmax(0)  # [B]
    shown = inputs[position, torch.arange(32), :cfg.keys].argmax(1)
    assert torch.equal(shown, targets)
    assert torch.equal(inputs[-1, :, cfg.keys + 1], torch.ones(32))  # the query step
    assert torch.equal(inputs[:-1, :, :cfg.keys].sum(2), torch.ones(cfg.length, 32))  # one token per step


@pytest.mark.parametrize("cell", [ref.LSTMCell, ref.GRUCell], ids=["lstm", "gru"])
def test_reference_cells_learn_within_half_the_budget(cell):
    out = memory_task(lambda i, h: cell(i, h, True), seed=1699)
    assert out["passed"], out
    assert out["accuracy"] >= out["threshold"] == 0.9
    assert out["steps"] <= out["budget"] // 2
    assert out["chance"] == 1 / 16


def test_a_cell_without_the_forget_path_does_not_learn_it():
    out = memory_task(lambda i, h: NoCarryLSTM(i, h, True), seed=1699)
    assert not out["passed"]
    assert out["steps"] == out["budget"] == 700
    assert out["accuracy"] < 0.9


def test_a_slow_cell_is_stopped_at_the_time_limit():
    cfg = MemoryTaskConfig(max_seconds=0.0)
    out = memory_task(lambda i, h: ref.LSTMCell(i, h, True), seed=0, config=cfg)
    assert out["steps"] == 1 and not out["passed"]
    assert out["stopped"] == "the time limit of 0 s was reached after 1 steps"


def test_graded_memory_check_passes_a_correct_cell_and_fails_a_cell_that_forgets(tmp_path):
    # The forget gate scales the candidate instead of c_{t-1}: every parameter still gets a
    # gradient and the state still matters (through h). The memory task fails it, and so
    # does behaviour, since c_t no longer depends on c_{t-1} (tests/test_unused_parts.py).
    folder = tmp_path / "hw5"
    shutil.copytree(PLAIN, folder)
    report = api.grade(folder, "cs1699-hw5", api.Options(device="cpu", only=("lstmcell.memory",)))
    good = by_id(report)["lstmcell.memory"]
    assert good.passed, good.message
    assert good.message.startswith("Task: recall the marked token among 30 random ones")

    (folder / "rnn_modules.py").write_text(mutate((PLAIN / "rnn_modules.py").read_text(),
                                                  ("c = f * prev_c + i * c_tilde  # LSTM-C", "c = f * c_tilde + i * c_tilde")))
    checks = ("lstmcell.contract", "lstmcell.parameters", "lstmcell.builtins", "lstmcell.behaviour", "lstmcell.memory")
    report = api.grade(folder, "cs1699-hw5", api.Options(device="cpu", only=checks))
    assert failed_ids(report) == {"lstmcell.memory", "lstmcell.behaviour"}  # counts and contract look right
    assert "the new cell state does not depend on the old one" in by_id(report)["lstmcell.behaviour"].message
    memory = by_id(report)["lstmcell.memory"]
    assert "After 700 training steps the held-out accuracy is" in memory.message
    assert "90% was needed within 700 steps" in memory.message
    assert "forget gate (f * c_{t-1})" in memory.hint
