"""The references pass their own rubric with full marks, and reproduce the handout's tables."""
import shutil
from pathlib import Path

import pytest
import torch

from grader import api
from grader.checks.architecture import compare
from grader.results import Status
from grader.rubric import available, load_rubric
from grader.worker.trace import LayerTrace

HERE = Path(__file__).resolve().parent
SUBMISSIONS = {"cs1678-hw4": HERE / "cs1678_hw4", "cs1678-hw4-extended": HERE / "cs1678_hw4",
               "cs1678-hw3": HERE / "cs1678_hw3", "cs1699-hw5": HERE / "cs1699_hw5",
               "ece661-hw2": HERE / "ece661_hw2", "dl-assignment2": HERE / "dl_assignment2"}
# Graded with held-out labels and a predictions file the reference pipeline writes (below).
WITH_PREDICTIONS = {"ece661-hw2", "dl-assignment2"}
# A variant grades its base's checks the same way; grade only what it adds.
ONLY = {"cs1678-hw4-extended": ("alexnettiny.*", "alexnetdilation.*")}


def test_every_rubric_has_a_reference():
    assert set(available()) <= set(SUBMISSIONS)


@pytest.mark.parametrize("assignment", sorted(set(SUBMISSIONS) - WITH_PREDICTIONS))
def test_reference_gets_full_marks(assignment):
    report = api.grade(SUBMISSIONS[assignment], assignment, api.Options(device="cpu", only=ONLY.get(assignment, ())))
    failed = [(c.check_id, c.message) for c in report.checks if c.status is Status.FAILED]
    assert failed == []
    assert report.score == report.max_score > 0
    assert report.grader_error is None
    assert report.graded_files == GRADED_FILES[assignment]


def _full_marks(submission: Path, assignment: str, **options):
    report = api.grade(submission, assignment, api.Options(device="cpu", **options))
    failed = [(c.check_id, c.message) for c in report.checks if c.status is Status.FAILED]
    assert failed == []
    assert report.score == report.max_score > 0
    assert report.grader_error is None
    return report


def _copy(folder: Path, dest: Path) -> Path:
    return Path(shutil.copytree(folder, dest, ignore=shutil.ignore_patterns("test_*", "__pycache__", "conftest.py")))


def test_ece661_reference_pipeline_earns_every_point(tmp_path):
    """Train on generated data in the course's layout, predict its held-back test split,
    write predictions.csv with the reference's writer, and grade it all."""
    import cifar_data
    import fake_cifar
    import gpu_pipeline
    import simplenn_cifar10_dev

    labels = fake_cifar.make_fake_cifar(tmp_path / "data", n_train=2048, n_val=64, n_test=10_000, seed=3)
    train_x, train_y = cifar_data.load_split(str(tmp_path / "data"), "train")
    val_x, val_y = cifar_data.load_split(str(tmp_path / "data"), "val")
    test_x, _ = cifar_data.load_split(str(tmp_path / "data"), "test")
    torch.manual_seed(0)
    model = simplenn_cifar10_dev.SimpleNN()
    gpu_pipeline.train(model, train_x, train_y, val_x, val_y, epochs=2, batch_size=32, lr=0.02, decay_epochs=1,
                       decay=0.2, device="cpu", amp="off", log=None)
    submission = _copy(HERE / "ece661_hw2", tmp_path / "submission")
    gpu_pipeline.write_predictions(str(submission / "predictions.csv"),
                                   gpu_pipeline.predict(model, test_x, device="cpu", amp="off"))
    held_out = tmp_path / "ece661-hw2-test-labels.csv"
    held_out.write_text("Id,Label\n" + "".join(f"{i},{int(t)}\n" for i, t in enumerate(labels["test"])))
    report = _full_marks(submission, "ece661-hw2", labels=(held_out,))
    assert report.graded_files == ["simplenn_cifar10.py", "simplenn_cifar10_dev.py", "resnet_cifar10.py", "predictions.csv"]
    checks = {c.check_id: c for c in report.checks}
    assert "option A" in checks["resnet20.structure.nc10"].message
    assert checks["predictions.test.accuracy"].message.startswith("Accuracy on the 10,000 held-out images: ")


def test_dl_assignment2_reference_pipeline_earns_every_point(tmp_path):
    """The generated Caltech layout: train the improved LeNet5, predict validation.csv's
    images in order, and grade with the two handout images for the activation maps."""
    import assignment2
    import caltech_data
    import fake_caltech
    from torch.utils.data import DataLoader

    fake_caltech.make_fake_caltech(tmp_path / "data", per_class=16, seed=1)
    train_set = caltech_data.CaltechDataset(str(tmp_path / "data" / "train.csv"), str(tmp_path / "data"))
    val_set = caltech_data.CaltechDataset(str(tmp_path / "data" / "validation.csv"), str(tmp_path / "data"),
                                          classes=train_set.classes)
    torch.manual_seed(0)
    model = assignment2.ImprovedLeNet5()
    assignment2.train(model, DataLoader(train_set, batch_size=16, shuffle=True), None, epochs=12, lr=1e-3, verbose=False)
    predicted = assignment2.predict(model, DataLoader(val_set, batch_size=32))
    submission = _copy(HERE / "dl_assignment2", tmp_path / "submission")
    (submission / "assignment2.html").write_text("<html><body>the notebook, exported</body></html>")
    (submission / "validation_predictions.csv").write_text(
        "Id,Label\n" + "".join(f"{i},{int(p)}\n" for i, p in enumerate(predicted)))
    truth = [int(val_set[i][1]) for i in range(len(val_set))]
    held_out = tmp_path / "dl-assignment2-validation-labels.csv"
    held_out.write_text("Id,Label\n" + "".join(f"{i},{t}\n" for i, t in enumerate(truth)))
    report = _full_marks(submission, "dl-assignment2", labels=(held_out,), data=tmp_path / "data")
    maps = next(c for c in report.checks if c.check_id == "activations.maps")
    assert "stand-in" not in maps.message and len(maps.details["images"]) == 4


GRADED_FILES = {"cs1678-hw4": ["cnn_trainer.py"], "cs1678-hw4-extended": ["cnn_trainer.py"],
                "cs1678-hw3": ["hw3-part-AB.ipynb", "hw3-part-CD.ipynb"],
                "cs1699-hw5": ["rnn_modules.py", "sentiment_analysis.py", "sentence_generation.py"]}


@pytest.mark.parametrize("symbol", [m.symbol for m in load_rubric("cs1678-hw4-extended").models])
@pytest.mark.parametrize("num_classes", [4, 7])
def test_reference_models_reproduce_their_tables(symbol, num_classes):
    import alexnet  # reference/cs1678_hw4, put on sys.path by conftest.py

    spec = load_rubric("cs1678-hw4-extended").model(symbol)
    variant = next(v for v in spec.variants if v.num_classes == num_classes)
    with torch.device("meta"):
        model = getattr(alexnet, symbol)({"num_classes": num_classes})
    recorder = LayerTrace(model, [])
    with recorder, torch.no_grad():
        model(torch.zeros(2, *spec.input, device="meta"))
    diff = compare(spec.rows_for(variant), [r.as_dict() for r in recorder.rows], spec.input)
    assert [r.status for r in diff.rows] == ["match"] * len(spec.table)
