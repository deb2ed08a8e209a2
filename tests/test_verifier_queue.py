"""Measurements wait in the verifier's queue while the worker goes on exporting: each is
answered in turn, and one that ends the verifier costs only its own model's checks."""
import time
from pathlib import Path

import pytest
import torch.nn as nn

from grader import verifying
from grader.runfolder import release
from grader.sandbox import SandboxConfig
from grader.verifying import Verifier
from grader.worker import export, probes

TRAINING = {"seed": 5, "batch": 4, "steps": 2, "lr": 1e-3}
INPUT = [3, 16, 16]


class Small(nn.Module):
    def __init__(self, num_classes=3):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.classifier = nn.Sequential(nn.Flatten(), nn.Dropout(0.5), nn.Linear(8 * 8 * 8, num_classes))

    def forward(self, x):
        return self.classifier(self.features(x))


class Hog(Small):
    """Harmless when traced (torch.export runs it on fake tensors), but measured for real it
    builds a 3 GB tensor: the verifier, not the worker, runs out of memory."""

    def forward(self, x):
        big = x.repeat(1, 1, 512, 512)  # [4, 3, 8192, 8192]: 3.2 GB of float32
        return self.classifier(self.features(big[:, :, :16, :16]))


class Module:  # the student's imported module
    pass


def _export(folder: Path, cls) -> None:
    module = Module()
    setattr(module, cls.__name__, cls)
    probes.STATE.module, probes.STATE.symbols = module, {}
    reply = export.export(cls.__name__, [], {}, INPUT, TRAINING["batch"], TRAINING["seed"], str(folder / "model"))
    assert reply["error"] is None, reply["error"]


@pytest.fixture
def verifier(tmp_path):
    made = Verifier(tmp_path / "verifier", SandboxConfig(memory_mb=1500, threads=1))
    yield made
    made.stop()
    release(tmp_path / "verifier")


def _queue(tmp_path, verifier, classes, answers=None) -> list[tuple[str, object, object]]:
    """Export each class, then hand them all to the verifier without reading any answer."""
    answers = [] if answers is None else answers
    folders = []
    for cls in classes:  # exported first, so that they are queued within milliseconds of each other
        folders.append(tmp_path / f"worker-{len(list(tmp_path.glob('worker-*')))}")
        _export(folders[-1], cls)
    request = {"num_classes": 3, "device": "cpu", "training": TRAINING, "behaviour_too": True, "training_too": True}
    for cls, worker in zip(classes, folders):
        verifier.start(worker, ("model",), request, 120, f"checking {cls.__name__}",
                       lambda trace, behaviour, name=cls.__name__: answers.append((name, trace, behaviour)))
    return answers


def test_measurements_wait_their_turn_and_are_answered_in_order(tmp_path, verifier):
    answers = _queue(tmp_path, verifier, [Small, Small, Small])
    assert answers == [] and len(verifier._queue) == 3  # all three sent before any answer was read
    verifier.settle()
    assert [name for name, _, _ in answers] == ["Small"] * 3
    for _, trace, behaviour in answers:
        assert trace.crash is None and trace.result["output_shape"] == [3]  # per sample
        assert behaviour.result["dropout"] == {"eval_same": True, "train_differs": True}
        assert len(behaviour.result["training"]["losses"]) == 2
    assert not list((tmp_path / "verifier").glob("artefact-*"))  # each removed once answered


def test_a_measurement_that_ends_the_verifier_costs_only_its_own_model(tmp_path, verifier):
    answers = _queue(tmp_path, verifier, [Small, Hog, Small, Small])
    verifier.settle()  # those behind Hog were sent to the verifier it ended, or read its end before they were
    assert [name for name, _, _ in answers] == ["Small", "Hog", "Small", "Small"]
    _, trace, behaviour = answers[1]
    assert behaviour.crash_reason == "memory" and "used more than 1500 MB of memory" in behaviour.crash
    assert "checking Hog" in behaviour.crash
    for name, trace, behaviour in answers[:1] + answers[2:]:  # the two behind it went to a fresh verifier
        assert trace.crash is None and behaviour.crash is None, (trace.crash, behaviour.crash)
        assert behaviour.result["forward"]["shape"] == [2, 3]
    assert verifier.sandbox.starts == 2


def test_a_verifier_that_stopped_while_its_queue_waited_is_replaced_before_the_next(tmp_path, verifier):
    answers = _queue(tmp_path, verifier, [Small, Hog])
    deadline = time.monotonic() + 120
    while verifier.sandbox.running and time.monotonic() < deadline:  # the watchdog ends it for memory
        time.sleep(0.2)
    assert not verifier.sandbox.running
    _queue(tmp_path, verifier, [Small], answers)
    assert [name for name, _, _ in answers] == ["Small", "Hog"]  # read before the next was sent
    assert "used more than 1500 MB of memory" in answers[1][2].crash
    verifier.settle()
    assert answers[2][0] == "Small" and answers[2][2].crash is None and verifier.sandbox.starts == 2


def test_waiting_artefacts_stay_within_the_verifier_folder(tmp_path, verifier, monkeypatch):
    """With room for about one artefact, the verifier answers the older one before it copies the next."""
    _export(tmp_path / "probe", Small)
    size = sum(p.stat().st_size for p in (tmp_path / "probe" / "model").iterdir())
    monkeypatch.setattr(Verifier, "_room", lambda self: int(size * 1.5))
    answers = _queue(tmp_path, verifier, [Small, Small, Small])
    assert len(answers) == 2 and len(verifier._queue) == 1  # two answered to make room
    verifier.settle()
    assert len(answers) == 3 and all(b.crash is None for _, _, b in answers)


def test_a_queue_is_never_longer_than_its_cap(tmp_path, verifier, monkeypatch):
    monkeypatch.setattr(verifying, "MAX_QUEUED", 2)
    answers = _queue(tmp_path, verifier, [Small, Small, Small])
    assert len(answers) == 1 and len(verifier._queue) == 2
    verifier.settle()
    assert len(answers) == 3
