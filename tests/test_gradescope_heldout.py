"""Held-out labels and course images in the Gradescope autograder: shipped in the zip,
made root-only before any student code runs, scored into results.json with a leaderboard,
and a missing labels file costs only the accuracy check."""
from __future__ import annotations

import json
import stat
import zipfile
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner

from grader import gradescope
from grader.cli import main
from gradekit import HERE, REPO, unpack

SCHEMA = json.loads((REPO / "grader" / "render" / "gradescope-results.schema.json").read_text())
PREDICTIONS = HERE / "submissions" / "ece661_plain" / "predictions.csv"


def labels_file(folder: Path, name: str = "ece661-hw2-test-labels.csv") -> Path:
    """The labels the plain submission's predictions were made against (see test_cifar_grading)."""
    from test_cifar_grading import truth

    path = folder / name
    path.write_text("Id,Label\n" + "".join(f"{i},{t}\n" for i, t in enumerate(truth())))
    return path


def build(args: list[str]):
    return CliRunner().invoke(main, ["build-autograder", *args], prog_name="grade", catch_exceptions=False)



def test_building_without_the_labels_says_which_file_is_needed(tmp_path):
    result = build(["ece661-hw2", "-o", str(tmp_path / "a.zip")])
    assert result.exit_code == 2
    assert "ece661-hw2 scores predictions.csv against held-out labels: pass --labels ece661-hw2-test-labels.csv" in result.output


def test_a_bad_labels_file_fails_the_build_not_the_students(tmp_path):
    bad = tmp_path / "ece661-hw2-test-labels.csv"
    bad.write_text("Id,Label\n0,3\n")
    result = build(["ece661-hw2", "-o", str(tmp_path / "a.zip"), "--labels", str(bad)])
    assert result.exit_code == 2
    assert "cannot use the held-out labels for predictions.csv" in result.output
    assert "9,999 of the 10,000 ids are missing" in result.output


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("gs")
    archive = tmp / "autograder.zip"
    result = build(["ece661-hw2", "-o", str(archive), "--labels", str(labels_file(tmp))])
    assert result.exit_code == 0, result.output
    with zipfile.ZipFile(archive) as zf:
        info = zf.getinfo("labels/ece661-hw2-test-labels.csv")
        assert (info.external_attr >> 16) & 0o777 == 0o600
    root = tmp / "autograder"
    unpack(archive, root / "source")
    return root


def submit(root: Path, files: dict[str, Path]) -> dict:
    sub = root / "submission"
    if sub.exists():
        for p in sub.iterdir():
            p.unlink()
    sub.mkdir(exist_ok=True)
    for name, src in files.items():
        (sub / name).write_bytes(src.read_bytes())
    results = gradescope.run(root, "ece661-hw2")
    jsonschema.validate(results, SCHEMA)
    return results


def test_predictions_are_scored_with_a_leaderboard_entry(root):
    results = submit(root, {"predictions.csv": PREDICTIONS})
    tests = {t["extra_data"]["check_id"]: t for t in results["tests"]}
    accuracy = tests["predictions.test.accuracy"]
    assert accuracy["status"] == "passed" and accuracy["score"] == 12
    assert accuracy["output"].startswith("Accuracy on the 10,000 held-out images: 91.75%")
    assert "| cat | " in accuracy["output"]
    assert results["leaderboard"] == [{"name": "Test accuracy (%)", "value": 91.75, "order": "desc"}]
    # No code was submitted: the model checks say so, the predictions still count.
    assert "no Python file" in tests["resnet20.construct.nc10"]["output"]
    assert results["score"] == 12
    labels_dir = root / "source" / gradescope.LABELS_DIR
    assert stat.S_IMODE(labels_dir.stat().st_mode) == 0o700


def test_missing_labels_cost_only_the_accuracy_check(root, tmp_path):
    labels_dir = root / "source" / gradescope.LABELS_DIR
    hidden = tmp_path / "moved"
    labels_dir.rename(hidden)
    try:
        results = submit(root, {"predictions.csv": PREDICTIONS})
    finally:
        hidden.rename(labels_dir)
    tests = {t["extra_data"]["check_id"]: t for t in results["tests"]}
    assert tests["predictions.test.format"]["status"] == "passed"
    accuracy = tests["predictions.test.accuracy"]
    assert accuracy["status"] == "failed" and "grader-error" in accuracy["tags"]
    assert "this is not a problem with your file" in accuracy["output"]
    assert "leaderboard" not in results


def test_course_images_go_into_the_zip(tmp_path):
    data = tmp_path / "caltech"
    for name in ("accordion", "camera"):
        (data / name).mkdir(parents=True)
        (data / name / "image_0001.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    labels = labels_file(tmp_path, "dl-assignment2-validation-labels.csv")
    labels.write_text("Id,Label\n0,5\n1,7\n")
    result = build(["dl-assignment2", "-o", str(tmp_path / "a.zip"), "--labels", str(labels), "--data", str(data)])
    assert result.exit_code == 0, result.output
    names = zipfile.ZipFile(tmp_path / "a.zip").namelist()
    assert "data/accordion/image_0001.jpg" in names and "data/camera/image_0001.jpg" in names
    missing = build(["dl-assignment2", "-o", str(tmp_path / "b.zip"), "--labels", str(labels), "--data", str(tmp_path)])
    assert missing.exit_code == 2 and "accordion/image_0001 is not there" in missing.output


def test_a_read_only_labels_folder_still_grades(root, monkeypatch):
    def refuse(path, mode):
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(gradescope.os, "chmod", refuse)
    assert [p.name for p in gradescope._labels(root)] == ["ece661-hw2-test-labels.csv"]
