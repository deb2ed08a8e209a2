"""Recurrent cells measured by the verifier from exported steps, never by the worker's word.

Cells written for these tests are exported by the worker's own code and measured here
directly (no sandbox): the verifier must find what the in-process probe finds, on correct
and on broken cells, and must refuse artefacts that do not hold together.
"""
import json
import shutil
import types
from pathlib import Path

import pytest
import torch
import torch.nn as nn

from gradekit import by_id
from grader import api
from grader.results import Status
from grader.kinds.cell import measure as cells
from grader.verifier.artefact import ArtefactError
from grader.verifier.graph import GraphError
from grader.kinds.cell import export as cellexport
from grader.kinds.cell import probe as recurrent
from grader.worker import probes

PLAIN = Path(__file__).resolve().parent / "submissions" / "hw5_plain"
WORKER_ONLY = ("builtin_modules", "count_parameters", "builtin_calls")


class LSTM(nn.Module):
    def __init__(self, input_size, hidden_size, bias=False):
        super().__init__()
        self.hidden_size = hidden_size
        self.gates = nn.Linear(input_size + hidden_size, 4 * hidden_size, bias=bias)

    def step(self, f, i, g, c):
        return f * c + i * g

    def forward(self, x, prev_state=None):
        if prev_state is None:
            zeros = x.new_zeros(x.shape[0], self.hidden_size)
            prev_state = (zeros, zeros)
        h, c = prev_state
        f, i, o, g = self.gates(torch.cat([x, h], 1)).chunk(4, 1)
        c = self.step(torch.sigmoid(f), torch.sigmoid(i), torch.tanh(g), c)
        return torch.sigmoid(o) * torch.tanh(c), c


class NoForget(LSTM):
    def step(self, f, i, g, c):
        return c + i * g  # the forget gate computed and dropped


class Forgetful(LSTM):
    def step(self, f, i, g, c):
        return i * g  # the old cell state never read


class GRU(nn.Module):
    def __init__(self, input_size, hidden_size, bias=False):
        super().__init__()
        self.hidden_size = hidden_size
        self.zr = nn.Linear(input_size + hidden_size, 2 * hidden_size, bias=bias)
        self.n = nn.Linear(input_size + hidden_size, hidden_size, bias=bias)

    def forward(self, x, h=None):
        h = x.new_zeros(x.shape[0], self.hidden_size) if h is None else h
        z, r = torch.sigmoid(self.zr(torch.cat([x, h], 1))).chunk(2, 1)
        n = torch.tanh(self.n(torch.cat([x, r * h], 1)))
        return (1 - z) * h + z * n


class Builtin(nn.Module):
    def __init__(self, input_size, hidden_size, bias=False):
        super().__init__()
        self.cell = nn.LSTMCell(input_size, hidden_size, bias=bias)

    def forward(self, x, state=None):
        return self.cell(x, state)


def _use(*classes):
    probes.STATE.module = types.SimpleNamespace(**{c.__name__: c for c in classes})
    probes.STATE.symbols = {}


def _export(tmp_path, cls, family, memory=False) -> Path:
    _use(cls)
    made = cellexport.export_cell(cls.__name__, family, 3, str(tmp_path), memory)
    assert made["error"] is None, made["error"]
    return tmp_path


@pytest.mark.parametrize("cls, family", [(LSTM, "lstm"), (NoForget, "lstm"), (Forgetful, "lstm"), (GRU, "gru")])
def test_the_verifier_finds_what_the_worker_found(tmp_path, cls, family):
    verified = cells.verify(str(_export(tmp_path, cls, family)), family, 3, "cell", 512)
    inside = recurrent.cell(cls.__name__, family, 3)
    for key in WORKER_ONLY:
        verified.pop(key, None), inside.pop(key, None)
    assert verified == inside
    assert verified["params"] == sum(p.numel() for p in cls(128, 100, True).parameters())


def test_broken_cells_are_told_apart_from_a_working_one(tmp_path):
    working = cells.verify(str(_export(tmp_path / "a", LSTM, "lstm")), "lstm", 3, "cell", 512)
    dropped = cells.verify(str(_export(tmp_path / "b", NoForget, "lstm")), "lstm", 3, "cell", 512)
    assert working["anatomy"]["cell_state"]["one"] is False and working["anatomy"]["dead"] == []
    assert dropped["anatomy"]["cell_state"]["one"] is True  # dc_t/dc_{t-1} = 1: no forget gate at work
    assert any(entry["name"] == "gates.weight" and entry["row_blocks"] for entry in dropped["anatomy"]["dead"])


def test_the_memory_task_runs_on_the_verifiers_own_loop(tmp_path):
    good = cells.verify(str(_export(tmp_path / "a", LSTM, "lstm", memory=True)), "lstm", 3, "memory", 512)
    bad = cells.verify(str(_export(tmp_path / "b", Forgetful, "lstm", memory=True)), "lstm", 3, "memory", 512)
    assert good["error"] is None and good["passed"] and good["accuracy"] >= good["threshold"]
    assert bad["error"] is None and not bad["passed"] and bad["steps"] == bad["budget"]


def test_a_builtin_kernel_is_seen_in_the_graph(tmp_path):
    found = cells.verify(str(_export(tmp_path, Builtin, "lstm")), "lstm", 3, "cell", 512)
    assert [c["kernel"] for c in found["builtin_calls"]] == ["lstm_cell"]


def _manifest(folder: Path) -> dict:
    return json.loads((folder / "manifest.json").read_text())


def test_a_graph_reading_another_sizes_weights_is_refused(tmp_path):
    folder = _export(tmp_path, LSTM, "lstm")
    manifest = _manifest(folder)
    contract = next(c for c in manifest["configs"] if c["name"] == "contract")
    for spec in contract["graphs"]["first@3"]["inputs"]:
        if spec["kind"] == "parameter":
            spec["target"] = spec["target"].replace("contract/", "rows/")
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtefactError, match="reads another size's weights"):
        cells.verify(str(folder), "lstm", 3, "cell", 512)


@pytest.mark.parametrize("edit, why", [
    (lambda m: m["configs"].append(dict(m["configs"][0])), "given twice"),
    (lambda m: m["configs"][2]["graphs"].update({"first@3 ": {}}), "malformed graphs"),
    (lambda m: m.update(kind="model"), "not of a recurrent cell"),
    (lambda m: m["configs"][2].update(dtype="complex64"), "malformed bias or dtype"),
])
def test_a_malformed_cell_manifest_is_refused(tmp_path, edit, why):
    folder = _export(tmp_path, LSTM, "lstm")
    manifest = _manifest(folder)
    edit(manifest)
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtefactError, match=why):
        cells.verify(str(folder), "lstm", 3, "cell", 512)


def test_a_step_is_run_only_as_it_was_exported(tmp_path):
    from grader.verifier.artefact import read_cell

    stand_in = cells.Cells(read_cell(_export(tmp_path, LSTM, "lstm"), 512 << 20))
    cell = stand_in(7, 5, True)
    h, c = cell(torch.randn(3, 7), None)
    assert list(h.shape) == [3, 5] and list(c.shape) == [3, 5]
    with pytest.raises(GraphError, match="takes 2 state tensors; it was given 1"):
        cell(torch.randn(3, 7), h)
    with pytest.raises(GraphError, match="not handed over for a step at batch 5"):
        cell(torch.randn(5, 7), None)
    with pytest.raises(GraphError, match="no cell of input 9"):
        stand_in(9, 5, True)


def test_a_cell_export_cannot_capture_is_measured_inside_and_held(tmp_path):
    folder = shutil.copytree(PLAIN, tmp_path / "hw5")
    source = (folder / "rnn_modules.py").read_text()
    marker = "        prev_h, prev_c = prev_state\n"
    assert source.count(marker) == 1  # the LSTM's
    source = source.replace(marker, marker + "        if float(prev_c.abs().sum()) < 0:\n            prev_c = -prev_c\n", 1)
    (folder / "rnn_modules.py").write_text(source)
    report = api.grade(folder, "cs1699-hw5", api.Options(device="cpu", only=("lstmcell.contract", "lstmcell.behaviour")))
    checks = by_id(report)
    for check in checks.values():
        assert check.status is Status.MANUAL and "Held for the course staff" in check.message
        assert "rnn_modules.py line" in check.details["measured_inside"]
    assert any("LSTMCell was measured inside" in n.text for n in report.notes)
