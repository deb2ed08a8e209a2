"""The verifier: it measures what an artefact's graph computes, and refuses what it cannot check.

Artefacts are made here by the worker's own export code from small models written for
these tests, then measured (and tampered with) directly, without a sandbox.
"""
import json
import os
import pickle
from pathlib import Path

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from grader.verifier import measure
from grader.verifier.artefact import ArtefactError, read
from grader.verifier.graph import GraphError, parse, run
from grader.worker import export, probes, trace

TRAINING = {"seed": 5, "batch": 4, "steps": 3, "lr": 1e-3}
INPUT = [3, 16, 16]


class Sequential(nn.Module):
    def __init__(self, num_classes=3):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2),
                                      nn.Conv2d(8, 8, 5, stride=2, padding=2), nn.BatchNorm2d(8), nn.ReLU())
        self.pool = nn.AdaptiveAvgPool2d((2, 2))
        self.classifier = nn.Sequential(nn.Flatten(), nn.Dropout(0.5), nn.Linear(32, num_classes))

    def forward(self, x):
        return self.classifier(self.pool(self.features(x)))


class Functional(nn.Module):
    def __init__(self, num_classes=3):
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 5)
        self.fc1 = nn.Linear(6 * 6 * 6, 20)
        self.fc2 = nn.Linear(20, num_classes)
        self.spare = nn.Linear(4, 4)  # never called

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv(x)), 2)
        x = x.view(x.size(0), -1)
        x = F.dropout(F.relu(self.fc1(x)), 0.3, self.training)
        return self.fc2(x) + 0 * x.sum()


class Detached(Functional):
    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv(x)), 2).detach()  # the conv never learns
        return self.fc2(F.relu(self.fc1(torch.flatten(x, 1))))


class Frozen(Functional):
    def __init__(self, num_classes=3):
        super().__init__(num_classes)
        self.fc1.weight.requires_grad_(False)


class Module:  # stands in for the student's imported module
    pass


def _export(tmp_path, cls, name="m") -> Path:
    module = Module()
    setattr(module, cls.__name__, cls)
    probes.STATE.module, probes.STATE.symbols = module, {}
    folder = tmp_path / name
    reply = export.export(cls.__name__, [], {}, INPUT, TRAINING["batch"], TRAINING["seed"], str(folder))
    assert reply["error"] is None, reply["error"]
    assert reply["artefact"] == str(folder)
    return folder


def _verify(folder: Path, num_classes=3) -> dict:
    return measure.verify(str(folder), num_classes, "cpu", TRAINING, 512)


def _live_rows(cls) -> list[dict]:
    torch.manual_seed(0)
    model = cls()
    model.train()
    recorder = trace.LayerTrace(model, [])
    with recorder, torch.no_grad():
        model(torch.zeros(TRAINING["batch"], *INPUT))
    return [r.as_dict() for r in recorder.rows]


@pytest.mark.parametrize("cls", [Sequential, Functional, Detached])
def test_rows_from_the_graph_are_the_rows_of_the_live_trace(tmp_path, cls):
    facts = _verify(_export(tmp_path, cls))["trace"]
    strip = lambda rows: [{k: v for k, v in r.items() if k not in ("where", "module")} for r in rows]
    live = [r for r in _live_rows(cls) if r["op"] != "add_"]  # the live trace also sees batch norm's counter
    found = [r for r in facts["rows"] if r["op"] != "add_"]
    assert strip(found) == strip(live)
    assert facts["params_total"] == sum(p.numel() for p in cls().parameters())


def test_a_working_model_is_measured_as_working(tmp_path):
    facts = _verify(_export(tmp_path, Sequential))
    behaviour = facts["behaviour"]
    assert behaviour["error"] is None
    assert behaviour["forward"] == {"shape": [2, 3], "finite": True, "dtype": "float32"}
    assert behaviour["dropout"] == {"eval_same": True, "train_differs": True}
    assert behaviour["gradients"]["missing"] == [] and behaviour["gradients"]["unused"] == []
    assert behaviour["training"]["after"] < behaviour["training"]["before"]
    assert facts["trace"]["output_shape"] == [3]
    assert [r["type"] for r in facts["trace"]["rows"]][:3] == ["Conv2d", "ReLU", "MaxPool2d"]


def test_unused_detached_and_frozen_parameters_are_found_in_the_graph(tmp_path):
    functional = _verify(_export(tmp_path, Functional, "f"))
    assert functional["trace"]["unused_params"] == [["spare.weight", 16], ["spare.bias", 4]]
    assert functional["behaviour"]["gradients"]["unused"] == ["spare.weight", "spare.bias"]
    detached = _verify(_export(tmp_path, Detached, "d"))["behaviour"]["gradients"]
    assert detached["missing"] == ["conv.weight", "conv.bias"]
    frozen = _verify(_export(tmp_path, Frozen, "z"))["behaviour"]["gradients"]
    assert frozen["frozen"] == ["fc1.weight"]


def test_the_verdict_is_the_same_on_every_run(tmp_path):
    folder = _export(tmp_path, Sequential)
    assert _verify(folder)["behaviour"]["training"] == _verify(folder)["behaviour"]["training"]


# ------------------------------------------------------------------ hostile artefacts

def _manifest(folder: Path) -> dict:
    return json.loads((folder / "manifest.json").read_text())


def _rewrite(folder: Path, manifest: dict) -> None:
    (folder / "manifest.json").write_text(json.dumps(manifest))


class Payload:
    def __reduce__(self):
        return (os.system, (f"touch {MARK}",))


MARK = "/tmp/dlgrade-verifier-unpickled"


def test_a_pickle_in_place_of_the_weights_is_never_unpickled(tmp_path):
    folder = _export(tmp_path, Functional)
    if os.path.exists(MARK):
        os.unlink(MARK)
    (folder / "weights.bin").write_bytes(pickle.dumps({"fc1.weight": Payload()}))
    with pytest.raises(ArtefactError, match="weights.bin holds"):
        _verify(folder)
    torch_file = tmp_path / "checkpoint"
    torch.save({"x": torch.zeros(2)}, torch_file)  # a torch checkpoint is refused the same way
    (folder / "weights.bin").write_bytes(torch_file.read_bytes())
    with pytest.raises(ArtefactError):
        _verify(folder)
    assert not os.path.exists(MARK)


def test_an_oversized_tensor_is_refused_before_it_is_read(tmp_path):
    folder = _export(tmp_path, Functional)
    manifest = _manifest(folder)
    manifest["tensors"][0].update(shape=[1 << 16, 1 << 16], bytes=(1 << 32) * 4)
    _rewrite(folder, manifest)
    with pytest.raises(ArtefactError, match="bytes do not match|larger than"):
        _verify(folder)


def test_declared_shapes_that_lie_about_the_bytes_are_refused(tmp_path):
    folder = _export(tmp_path, Functional)
    manifest = _manifest(folder)
    manifest["tensors"][0]["shape"] = [6, 3, 11, 11]  # the conv's claimed kernel, without its bytes
    _rewrite(folder, manifest)
    with pytest.raises(ArtefactError, match="do not match"):
        _verify(folder)


@pytest.mark.parametrize("target, why", [
    ("mylib.forged_net.default", "not an ATen operator"),
    ("aten.from_file.default", "does not run"),
    ("aten._unsafe_index.Tensor", "does not run"),
    ("aten.no_such_op.default", "not an ATen operator of this torch"),
    ("builtins.eval", "not an ATen operator"),
])
def test_operators_the_verifier_cannot_check_are_refused(tmp_path, target, why):
    folder = _export(tmp_path, Functional)
    manifest = _manifest(folder)
    manifest["graphs"]["train"]["nodes"][0]["target"] = target
    _rewrite(folder, manifest)
    with pytest.raises(ArtefactError, match=why):
        _verify(folder)


def test_names_are_never_code_and_references_must_come_first(tmp_path):
    folder = _export(tmp_path, Functional)
    manifest = _manifest(folder)
    nodes = manifest["graphs"]["train"]["nodes"]
    nodes[0]["name"] = "x = __import__('os').system('true')"
    _rewrite(folder, manifest)
    with pytest.raises(ArtefactError, match="malformed"):
        _verify(folder)
    manifest = _manifest(_export(tmp_path, Functional, "again"))
    nodes = manifest["graphs"]["train"]["nodes"]
    nodes[0]["args"][0] = {"ref": nodes[-1]["name"]}  # a cycle through a later node
    with pytest.raises(ArtefactError, match="does not accept"):
        parse(manifest["graphs"]["train"], read(tmp_path / "again", 1 << 29).tensors)


def test_a_size_bomb_is_stopped_before_it_allocates(tmp_path):
    folder = _export(tmp_path, Functional)
    art = read(folder, 1 << 29)
    data = dict(art.graphs["train"])
    first = data["nodes"][0]
    data["nodes"] = [{"name": "bomb", "target": "aten.zeros.default", "args": [[1 << 20, 1 << 20]], "kwargs": {}},
                     *data["nodes"]]
    graph = parse(data, art.tensors)
    values = {name: (torch.zeros(4, *INPUT) if kind == "input" else art.tensors[t]) for name, kind, t in graph.inputs}
    with pytest.raises(GraphError, match="beyond what the verifier allocates"):
        run(graph, values)
    assert first["target"] == "aten.conv2d.default"


def test_a_graph_returning_no_scores_is_refused(tmp_path):
    folder = _export(tmp_path, Functional)
    manifest = _manifest(folder)
    manifest["graphs"]["eval"]["outputs"] = []
    _rewrite(folder, manifest)
    with pytest.raises(ArtefactError, match="exactly one tensor"):
        _verify(folder)


def test_a_link_in_place_of_the_artefact_is_not_followed(tmp_path):
    from grader.verifying import take

    secret = tmp_path / "secret.json"
    secret.write_text('{"labels": "SECRET"}')
    (tmp_path / "run" / "artefacts").mkdir(parents=True)
    os.symlink(tmp_path, tmp_path / "run" / "artefacts" / "model")
    why = take(tmp_path / "run", ("artefacts", "model"), tmp_path / "copy", 1 << 20)
    assert why and "cannot be opened" in why
    os.unlink(tmp_path / "run" / "artefacts" / "model")
    (tmp_path / "run" / "artefacts" / "model").mkdir()
    os.symlink(secret, tmp_path / "run" / "artefacts" / "model" / "manifest.json")
    why = take(tmp_path / "run", ("artefacts", "model"), tmp_path / "copy2", 1 << 20)
    assert why and "manifest.json cannot be opened" in why
    assert not (tmp_path / "copy2" / "manifest.json").exists()


def test_an_artefact_without_weights_gives_the_layers_only(tmp_path):
    module = Module()
    module.Sequential = Sequential
    probes.STATE.module, probes.STATE.symbols = module, {}
    folder = tmp_path / "meta"
    reply = export.export("Sequential", [], {}, INPUT, TRAINING["batch"], TRAINING["seed"], str(folder), weights=False)
    assert reply["error"] is None and (folder / "weights.bin").stat().st_size == 0
    facts = measure.verify(str(folder), 3, "cpu", TRAINING, 512, behaviour_too=False)
    assert [r["type"] for r in facts["trace"]["rows"]] == [r["type"] for r in _live_rows(Sequential)]
    with pytest.raises(ArtefactError, match="holds no weights"):
        _verify(folder)  # a forged "no weights" artefact cannot stand in for the training checks


@pytest.mark.parametrize("training_too", [True, False])
def test_train_mode_differs_only_with_dropout_whether_or_not_the_model_is_trained(tmp_path, training_too):
    """The second train-mode pass is the first training step's, or one of its own when no
    check asks for training: either way a net without dropout repeats itself."""
    for cls, differs in ((Sequential, True), (Detached, False)):
        art = _export(tmp_path, cls, name=f"{cls.__name__}-{training_too}")
        behaviour = measure.verify(str(art), 3, "cpu", TRAINING, 512, training_too=training_too)["behaviour"]
        assert behaviour["dropout"] == {"eval_same": True, "train_differs": differs}, cls.__name__
        assert ("training" in behaviour) is training_too


def test_a_gradient_is_finite_only_without_nan_or_infinity():
    assert measure._finite(torch.randn(1000)) and measure._finite(torch.zeros(0)) and measure._finite(torch.tensor(2.0))
    for bad in (float("nan"), float("inf"), float("-inf")):
        values = torch.randn(1000)
        values[417] = bad
        assert not measure._finite(values), bad


def test_an_artefact_is_copied_whole_and_never_past_its_cap(tmp_path):
    import io

    from grader.verifying import _copy

    data = os.urandom(3 << 20)
    (tmp_path / "src").write_bytes(data)
    for cap in (4 << 20, 1 << 20):
        with open(tmp_path / "src", "rb") as src, open(tmp_path / "dst", "wb") as dst:
            copied = _copy(src, dst, cap)  # in the kernel
        out = io.BytesIO()
        assert _copy(io.BytesIO(data), out, cap) == copied  # no file descriptors: through a buffer
        if cap > len(data):
            assert copied == len(data) and (tmp_path / "dst").read_bytes() == out.getvalue() == data
        else:  # one byte past the cap tells the caller to refuse it
            assert copied == cap + 1 and (tmp_path / "dst").stat().st_size <= cap + 1
