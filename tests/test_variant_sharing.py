"""A later class count shares the first one's behaviour only when the two exported graphs
differ by nothing but that count (grader.verifier.alike); anything else is measured again."""
import sys
from pathlib import Path

import pytest

from gradekit import REFERENCE, by_id, grade, mutate, plain_source, write_submission
from grader.verifier import alike, artefact
from grader.worker import export, probes

sys.path.insert(0, str(REFERENCE))
import alexnet  # noqa: E402  (the reference models, trusted: exported in this process)

NOTE = "Measured on AlexNet with 4 classes"


def _export(folder: Path, build) -> artefact.Artefact:
    probes.STATE.symbols["_shared"] = build
    made = export.export("_shared", [], {}, [3, 227, 227], 8, 1678, str(folder), weights="meta")
    assert made["error"] is None, made["error"]
    return artefact.read(folder, 1 << 30)


def _base(folder: Path, build, classes: int = 4) -> alike.Remembered:
    behaviour = {"forward": {"shape": [2, classes], "finite": True}, "training": {"before": 1.0}}
    return alike.Remembered(_export(folder, build), classes, behaviour, trained=True)


def test_the_same_model_at_another_class_count_is_alike(tmp_path):
    base = _base(tmp_path / "a", lambda: alexnet.AlexNet({"num_classes": 4}))
    seven = _export(tmp_path / "b", lambda: alexnet.AlexNet({"num_classes": 7}))
    assert alike.difference(base, seven, 7) is None
    shared = alike.shared_behaviour(base, (7,), 7)
    assert shared["forward"]["shape"] == [2, 7] and shared["shared"] == {"num_classes": 4, "for": 7}
    assert base.behaviour["forward"]["shape"] == [2, 4]  # the remembered copy is not changed


def test_another_architecture_is_not_alike(tmp_path):
    base = _base(tmp_path / "a", lambda: alexnet.AlexNet({"num_classes": 4}))
    other = _export(tmp_path / "b", lambda: alexnet.AlexNetAvgPooling({"num_classes": 7}))
    assert "differs" in alike.difference(base, other, 7)


def test_only_the_first_count_may_become_the_second():
    counts = (4, 7)
    assert alike._same([4, 4, 9216], [4, 7, 9216], counts)  # a stride of 4 stays 4; a class count of 4 became 7
    assert not alike._same([7], [4], counts)
    assert not alike._same([4], [8], counts)
    assert not alike._same(True, 1, counts) and not alike._same({"p": 0.5}, {"p": 0.0}, counts)


def test_the_same_count_is_never_shared(tmp_path):
    base = _base(tmp_path / "a", lambda: alexnet.AlexNet({"num_classes": 4}))
    again = _export(tmp_path / "b", lambda: alexnet.AlexNet({"num_classes": 4}))
    assert alike.difference(base, again, 4) == "the class counts are the same"


@pytest.fixture(scope="module")
def count_dependent(tmp_path_factory):
    """AlexNet turns its first dropout off when it has other than 4 classes; LargeKernel is plain."""
    source = mutate(plain_source(), ("            nn.Dropout(p=0.5),  # DROP1",
                                     "            nn.Dropout(p=0.5 if configs['num_classes'] == 4 else 0.0),"))
    folder = write_submission(tmp_path_factory.mktemp("shared"), source)
    return grade(folder, "alexnet.*", "alexnetlargekernel.*")


def test_a_graph_that_changes_with_the_count_is_measured_again(count_dependent):
    checks = by_id(count_dependent)
    assert checks["alexnet.dropout.nc4"].passed
    seven = checks["alexnet.dropout.nc7"]
    # Still one dropout left in train mode: the passes differ, the verdict is the 7-class model's own.
    assert seven.passed and NOTE not in seven.message and "measured_with_classes" not in seven.details
    for kind in ("forward", "gradients", "training"):
        assert checks[f"alexnet.{kind}.nc7"].passed and NOTE not in checks[f"alexnet.{kind}.nc7"].message
    assert checks["alexnet.architecture.nc7"].passed


def test_a_graph_alike_but_for_the_count_shares_the_first_measurement(count_dependent):
    checks = by_id(count_dependent)
    for kind in ("forward", "gradients", "dropout", "training"):
        seven = checks[f"alexnetlargekernel.{kind}.nc7"]
        assert seven.passed, seven.message
        assert "(Measured on AlexNetLargeKernel with 4 classes: its exported graph is this one's but for the " \
               "class count.)" in seven.message
        assert seven.details["measured_with_classes"] == 4
    assert "returned [2, 7], all finite" in checks["alexnetlargekernel.forward.nc7"].message
    assert count_dependent.score == count_dependent.max_score
