"""dl-assignment2 from a student's notebook: classes with their own names picked, both
readings of LeNet5's padding accepted and named, ResNet-18's handout conflict noted, the
activation maps drawn, and the improved model scored on its validation predictions."""
from __future__ import annotations

import json
import random
import shutil
import struct
from pathlib import Path

import pytest

from grader import api
from grader.results import Status
from gradekit import HERE, REPLY_ROUTES, by_id

PLAIN = HERE / "submissions" / "dl2_plain"
NOTEBOOK = "Assignment2.ipynb"
ASSIGNMENT = "dl-assignment2"


@pytest.fixture(scope="module")
def labels(tmp_path_factory) -> Path:
    rng = random.Random(5)
    truth = [rng.randrange(101) for _ in range(900)]
    path = tmp_path_factory.mktemp("heldout") / "dl-assignment2-validation-labels.csv"
    path.write_text("Id,Label\n" + "".join(f"{i},{t}\n" for i, t in enumerate(truth)))
    return path


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """The two images the handout names, as the course's data folder holds them."""
    from PIL import Image

    root = tmp_path_factory.mktemp("caltech")
    for n, name in enumerate(["accordion", "camera"]):
        (root / name).mkdir()
        img = Image.new("RGB", (64, 64), (200, 40 + 80 * n, 30))
        for x in range(0, 64, 8):
            for y in range(64):
                img.putpixel((x, y), (10, 10, 10))
        img.save(root / name / "image_0001.jpg")
    return root


def edit_notebook(tmp_path: Path, *replacements: tuple[str, str]) -> Path:
    folder = tmp_path / "submission"
    shutil.copytree(PLAIN, folder)
    nb = json.loads((folder / NOTEBOOK).read_text())
    for old, new in replacements:
        hits = [c for c in nb["cells"] if old in "".join(c["source"])]
        assert len(hits) == 1, f"expected one cell with {old!r}"
        text = "".join(hits[0]["source"]).replace(old, new)
        hits[0]["source"] = text.splitlines(keepends=True)
    (folder / NOTEBOOK).write_text(json.dumps(nb))
    return folder


def grade(folder: Path, *only: str, **options):
    return api.grade(folder, ASSIGNMENT, api.Options(device="cpu", only=only, **options))


def png_size(data: bytes) -> tuple[int, int]:
    return struct.unpack(">II", data[16:24])


def test_notebook_gets_every_automatic_point(labels, data):
    report = grade(PLAIN, labels=(labels,), data=data)
    assert {c.check_id: c.message for c in report.checks if c.status is Status.FAILED} == {}
    assert report.score == report.max_score == 43
    checks = by_id(report)
    assert checks["lenet5.construct.nc101"].message.startswith("LeNet (Assignment2.ipynb cell 4) is graded as LeNet5")
    assert checks["lenet5.architecture.nc101"].message.startswith(
        "All 12 rows match the table read with no padding (PyTorch's default) (410,526 parameters)")
    assert checks["resnet18.construct.nc101"].message.startswith("ResNet18_model (Assignment2.ipynb cell 7) is graded as ResNet-18")
    assert "11,228,325 parameters" in checks["resnet18.structure.nc101"].message
    assert "stride 1, as in the paper" in checks["resnet18.structure.nc101"].message
    maps = checks["activations.maps"]
    assert "32 maps of 60x60 and 64 maps of 11x11" in maps.message and "stand-in" not in maps.message
    assert maps.details["images"] == ["activations/accordion-image_0001-conv1.png", "activations/accordion-image_0001-conv2.png",
                                      "activations/camera-image_0001-conv1.png", "activations/camera-image_0001-conv2.png"]
    # 32 maps of 60x60 in rows of 8 (no enlargement), 64 of 11x11 enlarged 5x; 2-pixel gaps.
    assert png_size(report.artifacts["activations/camera-image_0001-conv1.png"].data) == (8 * 60 + 14, 4 * 60 + 6)
    assert png_size(report.artifacts["activations/camera-image_0001-conv2.png"].data) == (8 * 55 + 14, 8 * 55 + 14)
    accuracy = checks["predictions.improved.accuracy"]
    assert accuracy.message.startswith("Accuracy on the 900 held-out images: 72.67%") and accuracy.points == 15


def test_same_padding_is_the_other_accepted_reading(tmp_path):
    folder = edit_notebook(tmp_path, ("nn.Conv2d(3, 32, kernel_size=5, stride=1)", "nn.Conv2d(3, 32, kernel_size=5, stride=1, padding=2)"),
                           ("nn.Conv2d(32, 64, kernel_size=5, stride=1)", "nn.Conv2d(32, 64, kernel_size=5, stride=1, padding='same')"),
                           ("nn.Linear(64 * 2 * 2, 1021)", "nn.Linear(64 * 4 * 4, 1021)"))
    arch = by_id(grade(folder, "lenet5.architecture.*"))["lenet5.architecture.nc101"]
    assert arch.passed, arch.message
    assert arch.message.startswith("All 12 rows match the table read with padding 2 ('same') (1,194,654 parameters)")


def test_wrong_width_fails_the_table_and_the_maps_with_the_row(tmp_path, data):
    folder = edit_notebook(tmp_path, ("nn.Conv2d(3, 32, kernel_size=5, stride=1)", "nn.Conv2d(3, 16, kernel_size=5, stride=1)"),
                           ("nn.Conv2d(32, 64, kernel_size=5, stride=1)", "nn.Conv2d(16, 64, kernel_size=5, stride=1)"))
    checks = by_id(grade(folder, "lenet5.architecture.*", "activations.*", data=data))
    assert checks["lenet5.architecture.nc101"].message.startswith("Conv2d-1: expected [-1, 32, 60, 60] and 2,432 parameters, "
                                                                  "got [-1, 16, 60, 60] and 1,216")
    assert checks["activations.maps"].message == ("Running LeNet5 on the handout's images: the first two conv layers "
                                                  "give 16 and 64 maps, not 32 and 64.")


def test_final_softmax_is_accepted_with_a_warning(tmp_path):
    folder = edit_notebook(tmp_path, ("        return self.fc3(x)", "        return F.softmax(self.fc3(x), dim=1)"))
    arch = by_id(grade(folder, "lenet5.architecture.*"))["lenet5.architecture.nc101"]
    assert arch.passed
    assert "forward ends with a Softmax" in arch.message and "applies it twice" in arch.message


def test_resnet34_fails_with_its_name(tmp_path):
    folder = edit_notebook(tmp_path, ("return ResNet(BasicBlock, [2, 2, 2, 2])", "return ResNet(BasicBlock, [3, 4, 6, 3])"))
    structure = by_id(grade(folder, "resnet18.structure.*"))["resnet18.structure.nc101"]
    assert structure.status is Status.FAILED
    assert structure.message.startswith("Found stages of width 64/128/256/512 with 3/4/6/3 basic blocks (21,")
    assert "The layout found is ResNet-34's (3/4/6/3 blocks)." in structure.message


def test_handout_stride_in_conv2_is_accepted_and_noted(tmp_path):
    folder = edit_notebook(tmp_path, ("self.layer1 = self._make_layer(block, 64, num_blocks[0], stride=1)",
                                      "self.layer1 = self._make_layer(block, 64, num_blocks[0], stride=2)"))
    structure = by_id(grade(folder, "resnet18.structure.*"))["resnet18.structure.nc101"]
    assert structure.passed, structure.message
    assert "use stride 2, as the handout's text says; the paper uses stride 1 there. Both are accepted." in structure.message


def test_without_the_course_images_stand_ins_are_drawn_and_said(tmp_path):
    maps = by_id(grade(PLAIN, "activations.*"))["activations.maps"]
    assert maps.passed
    assert "generated stand-ins were used" in maps.message


def test_validation_predictions_with_missing_rows(tmp_path, labels):
    folder = tmp_path / "submission"
    shutil.copytree(PLAIN, folder)
    lines = (folder / "validation_predictions.csv").read_text().splitlines()
    (folder / "validation_predictions.csv").write_text("\n".join(lines[:-3]) + "\n")
    fmt = by_id(grade(folder, "predictions.*", labels=(labels,)))["predictions.improved.format"]
    assert fmt.message == ("validation_predictions.csv cannot be scored: 3 of the 900 ids are missing "
                           "(first: 897, 898, 899).")


def test_thresholds_give_partial_points(tmp_path, labels):
    folder = tmp_path / "submission"
    shutil.copytree(PLAIN, folder)
    truth = [int(line.split(",")[1]) for line in labels.read_text().splitlines()[1:]]
    rows = [f"{i},{t if i < 612 else (t + 1) % 101}" for i, t in enumerate(truth)]  # 612 / 900 = 68%
    (folder / "validation_predictions.csv").write_text("Id,Label\n" + "\n".join(rows) + "\n")
    accuracy = by_id(grade(folder, "predictions.*", labels=(labels,)))["predictions.improved.accuracy"]
    assert accuracy.points == 8 and accuracy.status is Status.FAILED
    assert accuracy.message.startswith("Accuracy on the 900 held-out images: 68.00% (612 correct). Points: 8 of 15")
    assert accuracy.hint == "The next step is 69% accuracy."
    assert accuracy.details["leaderboard"] == {"name": "Validation accuracy (%)", "value": 68.0, "order": "desc"}


def test_the_starter_earns_nothing_and_says_what_is_missing():
    report = grade(HERE.parent / "student_template" / "dl_assignment2", self_check=True)
    assert report.score == 0
    checks = by_id(report)
    for check_id in ("lenet5.construct.nc101", "resnet18.construct.nc101"):
        assert "is not implemented yet: it raises NotImplementedError" in checks[check_id].message
    assert checks["predictions.improved.format"].message == "validation_predictions.csv is not in the submission."


def test_a_missing_pdf_or_html_export_is_flagged_at_no_cost(tmp_path):
    folder = tmp_path / "no-export"
    shutil.copytree(PLAIN, folder)
    (folder / "Assignment2.html").unlink()
    checks = by_id(grade(folder, "export.*"))
    assert checks["export.present"].status is Status.FAILED and checks["export.present"].max_points == 0
    assert checks["export.present"].message.startswith("No .pdf or .html file in the submission.")
    folder = tmp_path / "submission"
    shutil.copytree(PLAIN, folder)
    (folder / "Assignment2.html").write_text("<html></html>")
    assert by_id(grade(folder, "export.*"))["export.present"].message == "Found Assignment2.html."


# forward decides on a tensor's value: torch.export cannot capture it, so the model is measured inside.
BRANCH = ("    def forward(self, x):\n        x = self.pool1(",
          "    def forward(self, x):\n        if float(x.abs().sum()) < 0:\n            return x\n        x = self.pool1(")
NARROW = (("nn.Conv2d(3, 32, kernel_size=5, stride=1)", "nn.Conv2d(3, 16, kernel_size=5, stride=1)"),
          ("nn.Conv2d(32, 64, kernel_size=5, stride=1)", "nn.Conv2d(16, 64, kernel_size=5, stride=1)"))
# The worker's maps reply, rewritten to show the handout's 32 filters.
FORGE_MAPS = '''
import json as _json
def _forge(message):
    result = message.get("result")
    if isinstance(result, dict) and isinstance(result.get("images"), list):
        for image in result["images"]:
            for layer in image.get("layers", [])[:1]:
                layer["channels"] = 32
    return message
'''


def _pixels(report, name: str) -> list[int]:
    import io

    from PIL import Image

    with Image.open(io.BytesIO(report.artifacts[name].data)) as img:
        return list(img.convert("L").tobytes())


def test_maps_are_drawn_by_the_verifier_from_the_exported_model(tmp_path, data):
    """The same maps as the worker draws where export stops, but from the graph and weights: a
    pass no process of the submission's could have reported."""
    verified = grade(PLAIN, "activations.*", data=data)
    maps = by_id(verified)["activations.maps"]
    assert maps.passed and maps.points == maps.max_points
    assert "measured-inside-submission" not in maps.tags and "measured_inside" not in maps.details
    inside = grade(edit_notebook(tmp_path, BRANCH), "activations.*", data=data)
    held = by_id(inside)["activations.maps"]
    assert held.status is Status.MANUAL and held.points == 0, held.message
    assert "forward decides something from a tensor's values at Assignment2.ipynb cell" in held.details["measured_inside"]
    assert "32 maps of 60x60 and 64 maps of 11x11" in held.message
    for name in maps.details["images"]:
        a, b = _pixels(verified, name), _pixels(inside, name)
        assert len(a) == len(b) and max(abs(p - q) for p, q in zip(a, b)) <= 1, name


@pytest.mark.parametrize("exports", [True, False])
def test_a_forged_maps_reply_earns_nothing(tmp_path, data, exports):
    """A 16-filter LeNet5 that rewrites the worker's maps reply: the verifier never reads it, and
    where the model does not export, a pass from that reply is held for the staff."""
    forge = ("import torch.nn.functional as F", "import torch.nn.functional as F\n" + FORGE_MAPS + REPLY_ROUTES["encoder"])
    folder = edit_notebook(tmp_path, *NARROW, *(() if exports else (BRANCH,)), forge)
    maps = by_id(grade(folder, "activations.*", data=data))["activations.maps"]
    assert maps.points == 0, maps.message
    if exports:
        assert maps.message == ("Running LeNet5 on the handout's images: the first two conv layers give 16 and 64 maps, "
                                "not 32 and 64.")
    else:
        assert maps.status is Status.MANUAL and "measured-inside-submission" in maps.tags
