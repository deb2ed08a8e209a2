"""Submissions that forge what the grader measures, as a student who read our source would.

Each one is a wrong AlexNet plus one way of lying: rewriting the grader's JSON encoder,
wrapping os.write on the reply pipe, swapping the worker's handler table found through
gc, showing the tracer one network on `meta` while computing another, patching the loss,
and handing over a forged artefact. The forged replies are the real measurements of a
correct AlexNet, so they would earn every point if they were believed. Each forgery must
end with at most the score the same wrong network earns honestly.
"""
import json

import pytest

from gradekit import REPLY_ROUTES, by_id, grade, mutate, plain_source, write_submission
from grader.results import Status
from grader.worker import probes

ONLY = ("alexnet.*.nc4",)
# A wrong AlexNet: CONV2 has a 3x3 kernel, and forward detaches the scores, so nothing learns.
WRONG = ("nn.Conv2d(96, 256, kernel_size=5, padding=2),  # CONV2", "nn.Conv2d(96, 256, kernel_size=3, padding=1),")


def _wrong_source() -> str:
    source = mutate(plain_source(), WRONG)
    start = source.index("return self.classifier(x)", source.index("class AlexNet("))
    return source[:start] + "return self.classifier(x).detach()" + source[start + len("return self.classifier(x)"):]


@pytest.fixture(scope="module")
def forged_facts() -> str:
    """What a correct AlexNet's probes report: a perfect reply for every model probe."""
    import importlib.util

    from gradekit import REFERENCE

    spec = importlib.util.spec_from_file_location("forgery_reference_alexnet", REFERENCE / "alexnet.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # the reference's models only: it defines no flags
    probes.STATE.module, probes.STATE.symbols = module, {}
    training = {"seed": 1678, "batch": 8, "steps": 6, "lr": 1.5e-4}
    trace = probes.trace("AlexNet", [{"num_classes": 4}], {}, [3, 227, 227], 1678)
    behaviour = probes.behaviour("AlexNet", [{"num_classes": 4}], {}, [3, 227, 227], 4, "cpu", training)
    assert trace["error"] is None and behaviour["error"] is None
    return json.dumps({"trace": trace, "behaviour": behaviour})


FORGE = '''
import json as _json
FORGED = _json.loads({facts!r})
STOPPED = {{"error": {{"type": "Unsupported", "message": "forward uses a hook", "stage": "export", "file": None,
                       "line": None, "code": None, "trace": []}}, "constructed": True, "artefact": None}}

def _forge(reply):
    result = reply.get("result")
    if isinstance(result, dict):
        if "artefact" in result:
            reply["result"] = dict(STOPPED)  # make the grader fall back to the worker's word
        elif "rows" in result and "constructed" in result:
            reply["result"] = FORGED["trace"]
        elif "forward" in result or ("device" in result and "error" in result):
            reply["result"] = FORGED["behaviour"]
    return reply
'''

ROUTES = {
    **REPLY_ROUTES,
    "handlers": '''
import gc as _gc
for _table in _gc.get_objects():
    if isinstance(_table, dict) and "export" in _table and callable(_table.get("trace")):
        _table["export"] = lambda **kw: dict(STOPPED)
        _table["trace"] = lambda **kw: FORGED["trace"]
        _table["behaviour"] = lambda **kw: FORGED["behaviour"]
''',
    "loss": '''
import torch as _torch, torch.nn.functional as _F
_calls = [0]
def _falling_loss(scores, labels, *a, **k):
    _calls[0] += 1
    return (scores.float().sum() * 0 + 2.0 / _calls[0]).requires_grad_()
_F.cross_entropy = _falling_loss
''',
    "artefact": '''
import gc as _gc, json as _j2, os as _o2
def _forged_export(folder, **kw):
    _o2.makedirs(folder, exist_ok=True)
    node = {{"name": "bomb", "target": "aten.from_file.default", "args": ["/etc/shadow", False, 100], "kwargs": {{}}}}
    graph = {{"inputs": [{{"name": "x", "kind": "input", "target": None}}], "nodes": [node],
              "outputs": [{{"name": "bomb", "kind": "user_output"}}]}}
    with open(_o2.path.join(folder, "manifest.json"), "w") as f:
        _j2.dump({{"format": 1, "class_name": "AlexNet", "input": [3, 227, 227], "batch": {{"train": 8, "eval": 2}},
                  "tensors": [], "graphs": {{"train": graph, "eval": graph}}}}, f)
    open(_o2.path.join(folder, "weights.bin"), "wb").close()
    return {{"error": None, "constructed": True, "class_name": "AlexNet", "artefact": folder}}
for _table in _gc.get_objects():
    if isinstance(_table, dict) and "export" in _table and callable(_table.get("trace")):
        _table["export"] = _forged_export
''',
}


@pytest.fixture(scope="module")
def honest(tmp_path_factory) -> float:
    """The wrong network's own score, with nothing forged."""
    sub = write_submission(tmp_path_factory.mktemp("honest"), _wrong_source())
    report = grade(sub, *ONLY)
    checks = by_id(report)
    assert not checks["alexnet.architecture.nc4"].passed and not checks["alexnet.training.nc4"].passed
    return report.score


@pytest.mark.parametrize("route", list(ROUTES))
def test_a_forgery_earns_at_most_the_honest_score(route, tmp_path, forged_facts, honest):
    source = FORGE.format(facts=forged_facts) + ROUTES[route].format() if route == "artefact" else \
        FORGE.format(facts=forged_facts) + ROUTES[route]
    report = grade(write_submission(tmp_path, source + _wrong_source()), *ONLY)
    checks = by_id(report)
    assert report.score <= honest, {c.check_id: (c.points, c.message) for c in report.checks}
    assert not checks["alexnet.architecture.nc4"].passed
    assert not checks["alexnet.training.nc4"].passed
    if route in ("encoder", "pipe", "handlers"):  # it forced the fall-back: passes are held, never awarded
        held = [c for c in report.checks if c.status is Status.MANUAL]
        assert held and all("Held for the course staff" in c.message for c in held)
        assert all("measured-inside-submission" in c.tags for c in report.checks)
    if route == "artefact":
        assert "aten.from_file, which the verifier does not run" in checks["alexnet.construct.nc4"].message


def test_a_model_that_shows_the_tracer_another_network_is_graded_on_what_it_computes(tmp_path):
    tiny = mutate(plain_source(), ("    def forward(self, x):\n        x = self.features(x)",
                                   "    def forward(self, x):\n        if x.device.type != 'meta':\n"
                                   "            return self.tiny(x.flatten(1))\n        x = self.features(x)"),
                  ("        self.classifier = nn.Sequential(\n            nn.Dropout(p=0.5),  # DROP1",
                   "        self.tiny = nn.Linear(3 * 227 * 227, configs['num_classes'])\n"
                   "        self.classifier = nn.Sequential(\n            nn.Dropout(p=0.5),  # DROP1"))
    always = tiny.replace("        if x.device.type != 'meta':\n            return self.tiny", "        return self.tiny", 1)
    trick = grade(write_submission(tmp_path / "trick", tiny), *ONLY)
    plain = grade(write_submission(tmp_path / "always", always), *ONLY)
    assert not by_id(trick)["alexnet.architecture.nc4"].passed
    assert trick.score <= plain.score
    assert [c.passed for c in trick.checks] == [c.passed for c in plain.checks]
