"""Recurrent cells that forge what the grader measures, as a student who read our source would.

The wrong LSTMCell drops the old cell state (c = i * g): it builds, counts and contracts
like a correct one, and it neither behaves as the equations say nor remembers. Each
forgery adds one way of lying, with the real measurements of a correct LSTMCell as the
forged replies, so they would earn every point if believed. Each must end with at most
the score the same wrong cell earns honestly.
"""
import importlib.util
import json
import shutil
from pathlib import Path

import pytest

from gradekit import REPLY_ROUTES, by_id
from grader import api
from grader.results import Status
from grader.kinds.cell import probe as recurrent
from grader.worker import probes

PLAIN = Path(__file__).resolve().parent / "submissions" / "hw5_plain"
ONLY = ("lstmcell.*",)
# The routes that rewrite replies let the worker really run what they forge: they are graded
# without the memory task, whose failing run alone takes 15 s (the handler route forges it).
QUICK = ("lstmcell.contract", "lstmcell.parameters", "lstmcell.builtins", "lstmcell.behaviour")
WRONG = ("c = f * prev_c + i * c_tilde  # LSTM-C", "c = i * c_tilde + 0 * f")


def _grade(folder: Path, only=ONLY):
    return api.grade(folder, "cs1699-hw5", api.Options(device="cpu", only=only))


def _submission(folder: Path, prefix: str = "") -> Path:
    shutil.copytree(PLAIN, folder)
    source = (folder / "rnn_modules.py").read_text()
    assert source.count(WRONG[0]) == 1
    (folder / "rnn_modules.py").write_text(prefix + source.replace(*WRONG))
    return folder


@pytest.fixture(scope="module")
def forged_facts() -> str:
    """What a correct LSTMCell's probes report, measured here on the plain submission."""
    spec = importlib.util.spec_from_file_location("forgery_plain_cells", PLAIN / "rnn_modules.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    probes.STATE.module, probes.STATE.symbols = module, {}
    cell = recurrent.cell("LSTMCell", "lstm", 0)
    memory = recurrent.memory("LSTMCell", "lstm", 0)
    assert cell["error"] is None and memory["passed"]
    return json.dumps({"cell": cell, "memory": memory})


FORGE = '''
import json as _json
FORGED = _json.loads({facts!r})
STOPPED = {{"error": {{"type": "Unsupported", "message": "forward uses a hook", "stage": "export", "file": None,
                       "line": None, "code": None, "trace": []}}, "constructed": True, "artefact": None,
           "builtin_modules": []}}

def _forge(reply):
    result = reply.get("result")
    if isinstance(result, dict):
        if "artefact" in result:
            reply["result"] = dict(STOPPED)  # make the grader fall back to the worker's word
        elif "state_kind" in result or "params" in result:
            reply["result"] = FORGED["cell"]
        elif "curve" in result or "task" in result:
            reply["result"] = FORGED["memory"]
    return reply
'''

ROUTES = {
    **REPLY_ROUTES,
    "handlers": '''
import gc as _gc
for _table in _gc.get_objects():
    if isinstance(_table, dict) and "export_cell" in _table and callable(_table.get("cell")):
        _table["export_cell"] = lambda **kw: dict(STOPPED)
        _table["cell"] = lambda **kw: FORGED["cell"]
        _table["memory"] = lambda **kw: FORGED["memory"]
''',
    "optimizer": '''
import torch as _torch
_step = _torch.optim.Adam.step
def _no_step(self, *a, **k):  # an optimizer that does nothing, and a loss that says all is well
    return None
_torch.optim.Adam.step = _no_step
import torch.nn.functional as _F
_F.cross_entropy = lambda scores, labels, *a, **k: (scores.sum() * 0).requires_grad_()
''',
    "artefact": '''
import gc as _gc, json as _j2, os as _o2
def _forged_export(folder, **kw):
    _o2.makedirs(folder, exist_ok=True)
    node = {"name": "bomb", "target": "aten.from_file.default", "args": ["/etc/shadow", False, 100], "kwargs": {}}
    graph = {"inputs": [{"name": "x", "kind": "input", "target": None}], "nodes": [node],
             "outputs": [{"name": "bomb", "kind": "user_output"}], "returns": "tensor"}
    config = {"name": "contract", "input": 7, "hidden": 5, "bias": True, "dtype": "float32",
              "graphs": {"first@3": graph}}
    with open(_o2.path.join(folder, "manifest.json"), "w") as f:
        _j2.dump({"format": 1, "kind": "cell", "class_name": "LSTMCell", "weights": True, "tensors": [],
                  "configs": [config]}, f)
    open(_o2.path.join(folder, "weights.bin"), "wb").close()
    return {"error": None, "constructed": True, "class_name": "LSTMCell", "artefact": folder, "builtin_modules": []}
for _table in _gc.get_objects():
    if isinstance(_table, dict) and "export_cell" in _table and callable(_table.get("cell")):
        _table["export_cell"] = _forged_export
''',
}


@pytest.fixture(scope="module")
def honest(tmp_path_factory) -> dict:
    """The wrong cell's own points per check, with nothing forged: measured by the verifier."""
    report = _grade(_submission(tmp_path_factory.mktemp("honest") / "hw5"))
    checks = by_id(report)
    assert checks["lstmcell.contract"].passed and checks["lstmcell.parameters"].passed
    assert not checks["lstmcell.behaviour"].passed and not checks["lstmcell.memory"].passed
    assert not any("measured-inside-submission" in c.tags for c in report.checks)
    return {c.check_id: c.points for c in report.checks}


@pytest.mark.parametrize("route", list(ROUTES))
def test_a_cell_forgery_earns_at_most_the_honest_score(route, tmp_path, forged_facts, honest):
    prefix = ROUTES[route] if route in ("optimizer", "artefact") else FORGE.format(facts=forged_facts) + ROUTES[route]
    quick = route in ("encoder", "pipe")
    report = _grade(_submission(tmp_path / "hw5", prefix), QUICK if quick else ONLY)
    checks = by_id(report)
    assert report.score <= sum(honest[c.check_id] for c in report.checks), \
        {c.check_id: (c.points, c.message) for c in report.checks}
    assert not checks["lstmcell.behaviour"].passed
    assert quick or not checks["lstmcell.memory"].passed
    if route in ("encoder", "pipe", "handlers"):  # it forced the fall-back: passes are held, never awarded
        held = [c for c in report.checks if c.status is Status.MANUAL]
        assert held and all("Held for the course staff" in c.message for c in held)
        assert all("measured-inside-submission" in c.tags for c in report.checks)
    if route == "optimizer":  # the verifier trains with its own loss and optimizer: the verdicts are honest ones
        assert report.score == sum(honest.values())
        assert "Held" not in checks["lstmcell.memory"].message
    if route == "artefact":
        assert "aten.from_file, which the verifier does not run" in checks["lstmcell.contract"].message
