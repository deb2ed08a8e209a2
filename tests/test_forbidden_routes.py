"""Every route to a forbidden kernel is caught, and hand-written code is not.

F.silu, nn.SiLU, torch.ops.aten.silu.default, torch._C._nn.silu and a getattr with a
computed name all run one kernel, aten.silu; the recurrent homework's cells likewise
must not reach aten.lstm_cell. Routes the source scan can see are named with their line;
routes it cannot (a module-level helper, a name built at run time, the grader's watch
switched off, another thread) are caught by the worker's kernel watch, the profiler or
the autograd graph, and the message says which.
"""
from __future__ import annotations

import shutil

import pytest

from gradekit import HERE, by_id, mutate
from grader import api
from grader.results import Status

SWISH_FILE = "simplenn_cifar10_dev.py"
HAND_WRITTEN = "return x * torch.sigmoid(x)"  # line 8 of the plain submission
IMPORTS = "import torch.nn as nn\n"
KERNEL = "Swish(x) ran aten.silu, PyTorch's built-in SiLU kernel"


def swish_submission(tmp_path, body: str, before: str = "") -> object:
    """The plain ece661-hw2 submission with Swish's forward returning `body`; `before` goes
    right after the imports (Swish moves one line down for each line it adds)."""
    folder = tmp_path / "ece661"
    shutil.copytree(HERE / "submissions" / "ece661_plain", folder)
    path = folder / SWISH_FILE
    path.write_text(mutate(path.read_text(), (HAND_WRITTEN, f"return {body}"), (IMPORTS, IMPORTS + before)))
    return folder


def swish_checks(folder) -> dict:
    return by_id(api.grade(folder, "ece661-hw2", api.Options(device="cpu", only=("swish.*",))))


# Routes whose name the source shows: the scan gives the line, the run confirms the kernel.
@pytest.mark.parametrize("body, before, found, route", [
    ("torch.ops.aten.silu.default(x)", "", "torch.ops.aten.silu.default at simplenn_cifar10_dev.py line 8",
     "torch.ops.aten.silu.default at simplenn_cifar10_dev.py:8"),
    ("torch.ops.aten.silu(x)", "", "torch.ops.aten.silu at simplenn_cifar10_dev.py line 8",
     "torch.ops.aten.silu at simplenn_cifar10_dev.py:8"),
    ("torch._C._nn.silu(x)", "", "torch._C._nn.silu at simplenn_cifar10_dev.py line 8",
     "torch._C._nn.silu at simplenn_cifar10_dev.py:8"),
    ("getattr(torch.ops.aten, ''.join(['s', 'i', 'l', 'u']))(x)", "",
     "getattr(torch.ops.aten, 'silu') at simplenn_cifar10_dev.py line 8",
     "torch.ops.aten.silu at simplenn_cifar10_dev.py:8"),
    ("nn.SiLU()(x)", "", "nn.SiLU at simplenn_cifar10_dev.py line 8",
     "torch.nn.functional.silu at simplenn_cifar10_dev.py:8, from an nn.SiLU module"),
    ("F.silu(x)", "import torch.nn.functional as F\n", "F.silu at simplenn_cifar10_dev.py line 9",
     "torch.nn.functional.silu at simplenn_cifar10_dev.py:9"),
    ("aten.silu(x)", "aten = torch.ops.aten\n", "aten.silu (torch.ops.aten.silu) at simplenn_cifar10_dev.py line 9",
     "torch.ops.aten.silu at simplenn_cifar10_dev.py:9"),
], ids=["aten.silu.default", "aten.silu", "_C._nn.silu", "getattr-folded", "nn.SiLU", "F.silu", "aten-alias"])
def test_named_routes_fail_with_the_line_and_the_kernel(tmp_path, body, before, found, route):
    checks = swish_checks(swish_submission(tmp_path, body, before))
    source = checks["swish.source"]
    assert source.status is Status.FAILED
    assert source.message.startswith(f"Swish uses torch's own SiLU ({found}: `return {body}`)")
    assert f"{KERNEL} (reached through {route})" in source.message
    assert "torch.sigmoid" in source.hint
    assert checks["swish.values"].passed  # it is SiLU: only the "written yourself" check fails


def test_a_name_built_at_run_time_is_caught_when_it_runs(tmp_path):
    built = "getattr(torch.ops.aten, bytes([115, 105, 108, 117]).decode())(x)"  # "silu", never written out
    checks = swish_checks(swish_submission(tmp_path, built))
    source = checks["swish.source"]
    assert source.status is Status.FAILED
    assert source.message.startswith(f"Swish calls torch's SiLU when it runs: {KERNEL} "
                                     "(reached through torch.ops.aten.silu at simplenn_cifar10_dev.py:8)")


# A module-level helper is outside what the scan reads, so these are the run's alone.
@pytest.mark.parametrize("helper, evidence", [
    ("from torch.utils._python_dispatch import _disable_current_modes\n"
     "def _hidden(x):\n"
     "    with torch._C.DisableTorchFunction(), _disable_current_modes():\n"
     "        return torch.nn.functional.silu(x)\n",
     "recorded by torch's profiler where the grader's other watches had been switched off"),
    ("from torch.utils._python_dispatch import _pop_mode\n"
     "def _hidden(x):\n"
     "    _pop_mode(), torch._C._pop_torch_function_stack()\n"
     "    return torch.nn.functional.silu(x)\n",
     "recorded by torch's profiler where the grader's other watches had been switched off"),
    ("import threading\n"
     "def _hidden(x):\n"
     "    out = []\n"
     "    worker = threading.Thread(target=lambda: out.append(torch.nn.functional.silu(x)))\n"
     "    worker.start(), worker.join()\n"
     "    return out[0]\n",
     "its result's autograd graph holds SiluBackward0, which only that kernel makes"),
], ids=["modes-switched-off", "modes-popped", "other-thread"])
def test_switching_the_watch_off_still_leaves_evidence(tmp_path, helper, evidence):
    checks = swish_checks(swish_submission(tmp_path, "_hidden(x)", helper))
    source = checks["swish.source"]
    assert source.status is Status.FAILED
    assert source.message.startswith(f"Swish calls torch's SiLU when it runs: {KERNEL} ({evidence})")
    assert checks["swish.values"].passed  # the grader's own code ran normally afterwards


def test_switching_the_watch_off_fails_even_around_hand_written_code(tmp_path):
    helper = "def _hidden(x):\n    with torch._C.DisableTorchFunction():\n        return x * torch.sigmoid(x)\n"
    source = swish_checks(swish_submission(tmp_path, "_hidden(x)", helper))["swish.source"]
    assert source.status is Status.FAILED
    assert source.message.startswith("Swish(x) switched off the grader's kernel watch while it ran (torch function "
                                     "modes were switched off")


@pytest.mark.parametrize("body, before", [
    ("x / (1 + torch.exp(-x))", ""),
    # An autograd.Function of its own: its node is not torch's SiluBackward0.
    ("_Silu.apply(x)",
     "class _Silu(torch.autograd.Function):\n"
     "    @staticmethod\n"
     "    def forward(ctx, x):\n"
     "        s = torch.sigmoid(x)\n"
     "        ctx.save_for_backward(x, s)\n"
     "        return x * s\n\n"
     "    @staticmethod\n"
     "    def backward(ctx, grad):\n"
     "        x, s = ctx.saved_tensors\n"
     "        return grad * (s + x * s * (1 - s))\n"),
], ids=["x-over-1-plus-exp", "own-autograd-function"])
def test_hand_written_swish_passes(tmp_path, body, before):
    checks = swish_checks(swish_submission(tmp_path, body, before))
    assert checks["swish.source"].passed, checks["swish.source"].message
    assert checks["swish.values"].passed, checks["swish.values"].message


def test_the_plain_hand_written_swish_passes():
    checks = swish_checks(HERE / "submissions" / "ece661_plain")
    assert checks["swish.source"].message == ("Swish computes Swish itself: no SiLU in its source, and none called "
                                              "when it runs.")


# ------------------------------------------------------------------ recurrent cells

RNN_WEIGHTS = ("        self.w_ih = nn.Parameter(torch.randn(4 * hidden_size, input_size) * 0.1)\n"
               "        self.w_hh = nn.Parameter(torch.randn(4 * hidden_size, hidden_size) * 0.1)\n")
RNN_STATE = "list(prev_state or (torch.zeros(x.shape[0], self.hidden_size),) * 2)"


def lstm_builtins(tmp_path, forward: str, before: str = ""):
    folder = tmp_path / "hw5"
    shutil.copytree(HERE / "submissions" / "hw5_plain", folder)
    path = folder / "rnn_modules.py"
    path.write_text(mutate(
        path.read_text(),
        ("import torch.nn.functional as F\n", "import torch.nn.functional as F\n" + before),
        ("        self.forget_gate = nn.Linear(hidden_size + input_size, hidden_size, bias=bias)  # LSTM-FORGET\n",
         RNN_WEIGHTS),
        ("        if prev_state is None:  # LSTM-STATE\n", forward + "        if prev_state is None:\n")))
    report = api.grade(folder, "cs1699-hw5", api.Options(device="cpu", only=("lstmcell.builtins",)))
    return by_id(report)["lstmcell.builtins"]


def test_aten_lstm_cell_inside_a_cell_is_flagged(tmp_path):
    check = lstm_builtins(tmp_path, f"        return tuple(torch.ops.aten.lstm_cell.default(x, {RNN_STATE}, "
                                    "self.w_ih, self.w_hh))\n")
    assert check.status is Status.FAILED
    assert "torch.ops.aten.lstm_cell.default at rnn_modules.py line" in check.message
    assert "torch's lstm_cell kernel, called from rnn_modules.py:" in check.message


def test_lstm_cell_with_the_watch_switched_off_is_still_flagged(tmp_path):
    # The helper is outside the class, so the scan reads nothing; on CPU aten.lstm_cell
    # decomposes before the dispatch layer, so only the profiler sees it by name.
    helper = ("from torch.utils._python_dispatch import _disable_current_modes\n"
              "def _step(*args):\n"
              "    with torch._C.DisableTorchFunction(), _disable_current_modes():\n"
              "        return tuple(torch.ops.aten.lstm_cell.default(*args))\n")
    check = lstm_builtins(tmp_path, f"        return _step(x, {RNN_STATE}, self.w_ih, self.w_hh)\n", helper)
    assert check.status is Status.FAILED
    assert "torch's lstm_cell kernel, called from inside torch while the cell ran" in check.message
