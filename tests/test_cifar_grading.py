"""ece661-hw2 graded as a careful TA would: the plain submission at full marks, and the
common mistakes (a ResNet-18-wide "ResNet-20", a 1x1 conv on every shortcut, nn.SiLU as
Swish, predictions one row off, class names as labels) each costing the right checks."""
from __future__ import annotations

import random
import shutil
from pathlib import Path

import pytest

from grader import api
from grader.errors import InputError
from grader.results import Status
from gradekit import HERE, by_id, mutate

PLAIN = HERE / "submissions" / "ece661_plain"
ASSIGNMENT = "ece661-hw2"
CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def truth() -> list[int]:
    rng = random.Random(661)
    return [rng.randrange(10) for _ in range(10_000)]


@pytest.fixture(scope="module")
def labels(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("heldout") / "ece661-hw2-test-labels.csv"
    path.write_text("Id,Label\n" + "".join(f"{i},{t}\n" for i, t in enumerate(truth())))
    path.chmod(0o600)
    return path


def copy_plain(tmp_path: Path) -> Path:
    folder = tmp_path / "submission"
    shutil.copytree(PLAIN, folder)
    return folder


def edit(folder: Path, name: str, *replacements) -> None:
    path = folder / name
    path.write_text(mutate(path.read_text(), *replacements))


def write_predictions(folder: Path, rows: list[str], header: str = "Id,Label") -> None:
    (folder / "predictions.csv").write_text(header + "\n" + "\n".join(rows) + "\n")


def grade(folder: Path, *only: str, labels: Path | None = None, **options):
    return api.grade(folder, ASSIGNMENT, api.Options(device="cpu", only=only, labels=(labels,) if labels else (), **options))


def test_plain_submission_gets_every_automatic_point(tmp_path, labels):
    report = grade(PLAIN, labels=labels)
    failed = {c.check_id: c.message for c in report.checks if c.status is Status.FAILED}
    assert failed == {}
    assert report.score == report.max_score == 30
    checks = by_id(report)
    assert checks["resnet20.construct.nc10"].message.startswith("ResNet (resnet_cifar10.py line 35) is graded as ResNet-20")
    assert "option A" in checks["resnet20.structure.nc10"].message
    assert "269,722 parameters" in checks["resnet20.structure.nc10"].message
    assert checks["simplennbn.construct.nc10"].message.startswith("SimpleNN (simplenn_cifar10_dev.py line 11) is graded")
    accuracy = checks["predictions.test.accuracy"]
    assert accuracy.message.startswith("Accuracy on the 10,000 held-out images: 91.75% (9,175 correct). Points: 12 of 12")
    assert accuracy.details["leaderboard"]["name"] == "Test accuracy (%)"
    assert [r["name"] for r in accuracy.details["predictions"]["per_class"]] == CLASSES
    assert len(accuracy.details["predictions"]["confusion"]) == 10
    manual = [c for c in report.checks if c.status is Status.MANUAL]
    assert sum(c.details["manual_points"] for c in manual) == 80
    assert "predictions.csv" in report.graded_files


def test_resnet18_wide_network_fails_the_structure_with_its_name(tmp_path):
    folder = copy_plain(tmp_path)
    edit(folder, "resnet_cifar10.py",
         ("num_blocks=(3, 3, 3)", "num_blocks=(2, 2, 2, 2)"),
         ("self.in_planes = 16\n        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)\n        self.bn1 = nn.BatchNorm2d(16)",
          "self.in_planes = 64\n        self.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)\n        self.bn1 = nn.BatchNorm2d(64)"),
         ("self.layer1 = self._make_layer(block, 16, num_blocks[0], 1)\n        self.layer2 = self._make_layer(block, 32, num_blocks[1], 2)\n"
          "        self.layer3 = self._make_layer(block, 64, num_blocks[2], 2)\n        self.linear = nn.Linear(64, num_classes)",
          "self.layer1 = self._make_layer(block, 64, num_blocks[0], 1)\n        self.layer2 = self._make_layer(block, 128, num_blocks[1], 2)\n"
          "        self.layer3 = self._make_layer(block, 256, num_blocks[2], 2)\n        self.layer4 = self._make_layer(block, 512, num_blocks[3], 2)\n"
          "        self.linear = nn.Linear(512, num_classes)"),
         ("out = self.layer3(self.layer2(self.layer1(out)))", "out = self.layer4(self.layer3(self.layer2(self.layer1(out))))"))
    report = grade(folder, "resnet20.*")
    checks = by_id(report)
    structure = checks["resnet20.structure.nc10"]
    assert structure.status is Status.FAILED
    assert structure.message.startswith("Found stages of width 64/128/256/512 with 2/2/2/2 basic blocks (11,")
    assert "ResNet-18's, the ImageNet design" in structure.message
    assert "16, 32 and 64 filters" in structure.hint
    # It is still a working network: only the architecture costs points.
    assert {c.check_id for c in report.checks if c.status is Status.FAILED} == {"resnet20.structure.nc10"}


def test_projection_on_every_shortcut_is_option_c_and_fails(tmp_path):
    folder = copy_plain(tmp_path)
    edit(folder, "resnet_cifar10.py",
         ("        self.shortcut = nn.Sequential()\n        if stride != 1 or in_planes != planes:\n            pad = planes // 4\n"
          "            self.shortcut = LambdaLayer(lambda x: F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, pad, pad)))",
          "        self.shortcut = nn.Sequential(nn.Conv2d(in_planes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))"))
    structure = by_id(grade(folder, "resnet20.structure.*"))["resnet20.structure.nc10"]
    assert structure.status is Status.FAILED
    assert structure.message.startswith("Every one of the 9 shortcuts is a 1x1 convolution (option C in the paper)")
    assert "identity" in structure.hint


def test_projection_where_the_shape_changes_is_option_b_and_passes(tmp_path):
    folder = copy_plain(tmp_path)
    edit(folder, "resnet_cifar10.py",
         ("            pad = planes // 4\n            self.shortcut = LambdaLayer(lambda x: F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, pad, pad)))",
          "            self.shortcut = nn.Sequential(nn.Conv2d(in_planes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))"))
    structure = by_id(grade(folder, "resnet20.structure.*"))["resnet20.structure.nc10"]
    assert structure.passed, structure.message
    assert "1x1 projection shortcuts where the shape changes (option B)" in structure.message
    assert "272,474 parameters, as option B" in structure.message


def test_plain_network_without_shortcut_additions_fails(tmp_path):
    folder = copy_plain(tmp_path)
    edit(folder, "resnet_cifar10.py", ("out = out + self.shortcut(x)", "out = out"))
    structure = by_id(grade(folder, "resnet20.structure.*"))["resnet20.structure.nc10"]
    assert structure.status is Status.FAILED
    assert "forward adds no shortcut: this is a plain network" in structure.message


def test_a_factory_function_named_like_the_model_is_graded(tmp_path):
    folder = copy_plain(tmp_path)
    edit(folder, "resnet_cifar10.py", ("class ResNet(nn.Module):", "class ResNetCIFAR(nn.Module):"))
    (folder / "resnet_cifar10.py").write_text((folder / "resnet_cifar10.py").read_text().replace(
        "def __init__(self, block=BasicBlock, num_blocks=(3, 3, 3), num_classes=10):",
        "def __init__(self, block, num_blocks, num_classes=10):")
        + "\n\ndef resnet20():\n    return ResNetCIFAR(BasicBlock, [3, 3, 3])\n")
    checks = by_id(grade(folder, "resnet20.construct.*", "resnet20.structure.*"))
    assert checks["resnet20.construct.nc10"].message == "resnet20() builds: 269,722 parameters."
    assert checks["resnet20.structure.nc10"].passed


def test_no_resnet_at_all_says_what_was_considered(tmp_path):
    folder = copy_plain(tmp_path)
    (folder / "resnet_cifar10.py").write_text("import torch.nn as nn\n\nclass Helper(nn.Module):\n"
                                              "    def __init__(self, width):\n        super().__init__()\n")
    construct = by_id(grade(folder, "resnet20.construct.*"))["resnet20.construct.nc10"]
    assert construct.status is Status.FAILED
    assert construct.message == ("No class in resnet_cifar10.py can be graded as ResNet-20. "
                                 "Considered: Helper (needs constructor arguments).")


def test_silu_as_swish_fails_only_the_source_check(tmp_path):
    folder = copy_plain(tmp_path)
    edit(folder, "simplenn_cifar10_dev.py", ("class Swish(nn.Module):\n    def forward(self, x):\n        return x * torch.sigmoid(x)",
                                             "class Swish(nn.SiLU):\n    pass"))
    checks = by_id(grade(folder, "swish.*"))
    assert checks["swish.source"].status is Status.FAILED
    assert checks["swish.source"].message.startswith("Swish uses torch's own SiLU (nn.SiLU at simplenn_cifar10_dev.py line 6")
    assert checks["swish.values"].passed


def test_silu_reached_at_run_time_is_caught_too(tmp_path):
    folder = copy_plain(tmp_path)
    edit(folder, "simplenn_cifar10_dev.py", ("return x * torch.sigmoid(x)", "return vars(torch.nn.functional)['si' + 'lu'](x)"))
    checks = by_id(grade(folder, "swish.*"))
    assert checks["swish.source"].status is Status.FAILED
    assert "calls torch's SiLU when it runs" in checks["swish.source"].message


def test_wrong_swish_and_l2_penalty_get_specific_messages(tmp_path):
    folder = copy_plain(tmp_path)
    edit(folder, "simplenn_cifar10_dev.py", ("return x * torch.sigmoid(x)", "return torch.sigmoid(x)"),
         ("p.abs().sum()", "p.pow(2).sum()"))
    checks = by_id(grade(folder, "swish.*", "l1.*"))
    assert checks["swish.values"].message.startswith("Swish(x) differs from x * sigmoid(x) by up to")
    assert checks["l1.gradient"].status is Status.FAILED
    assert "is not a constant times sign(w)" in checks["l1.gradient"].message
    assert "sum of squares is the L2 penalty" in checks["l1.gradient"].hint


def test_l1_inline_in_the_training_loop_is_found_in_the_source(tmp_path):
    folder = copy_plain(tmp_path)
    edit(folder, "simplenn_cifar10_dev.py",
         ("def l1_penalty(model, strength):\n    return strength * sum(p.abs().sum() for name, p in model.named_parameters() if \"weight\" in name)",
          "def train_step(net, x, y, criterion, optimizer, reg=1e-4):\n    loss = criterion(net(x), y)\n"
          "    loss = loss + reg * sum(torch.norm(p, 1) for p in net.parameters())\n    loss.backward()"))
    check = by_id(grade(folder, "l1.*"))["l1.gradient"]
    assert check.passed
    assert "simplenn_cifar10_dev.py line 26" in check.message and "Checked from the source only" in check.message


def test_predictions_one_row_off_are_scored_low_with_a_hint(tmp_path, labels):
    folder = copy_plain(tmp_path)
    t = truth()
    write_predictions(folder, [f"{i},{t[i + 1] if i + 1 < len(t) else 0}" for i in range(len(t))])
    check = by_id(grade(folder, "predictions.*", labels=labels))["predictions.test.accuracy"]
    assert check.status is Status.FAILED and check.points == 0
    assert check.message.startswith("Accuracy on the 10,000 held-out images: ")
    assert check.hint.startswith("Your labels match the true labels 100% of the time once shifted by 1 row: the label "
                                 "written for Id j is right for image j+1.")


@pytest.mark.parametrize("rows, expected", [
    ([f"{i},{CLASSES[t]}" for i, t in enumerate(truth())],
     f"predictions.csv gives class names as labels (`{CLASSES[truth()[0]]}` first, 10,000 rows), but each label must be the class "
     "index, as in the sample file. The indices are: airplane=0, automobile=1,"),
    ([f"{i + 1},{t}" for i, t in enumerate(truth())],
     "predictions.csv's ids run from 1 to 10,000; they must run from 0 to 9,999 (the first test image is Id 0)."),
])
def test_bad_predictions_files_get_a_clear_message_and_no_points(tmp_path, labels, rows, expected):
    folder = copy_plain(tmp_path)
    write_predictions(folder, rows)
    checks = by_id(grade(folder, "predictions.*", labels=labels))
    assert checks["predictions.test.format"].status is Status.FAILED
    assert checks["predictions.test.format"].message.startswith(expected)
    assert checks["predictions.test.accuracy"].points == 0
    assert checks["predictions.test.accuracy"].message == "Not scored: predictions.csv cannot be read (see its format check)."


def test_missing_predictions_file(tmp_path, labels):
    folder = copy_plain(tmp_path)
    (folder / "predictions.csv").rename(folder / "preds_final.csv")
    fmt = by_id(grade(folder, "predictions.*", labels=labels))["predictions.test.format"]
    assert fmt.message == "predictions.csv is not in the submission. The submission has these CSV files: preds_final.csv."


def test_self_check_validates_the_format_only(tmp_path):
    report = grade(PLAIN, "predictions.*", self_check=True)
    assert [c.check_id for c in report.checks] == ["predictions.test.format"]
    assert report.checks[0].message.endswith("Its accuracy is computed at grading time, against held-out labels that "
                                             "this self-check does not have.")
    assert report.hidden_checks == 1


def test_grading_without_labels_is_an_input_error_unless_told_otherwise(tmp_path):
    with pytest.raises(InputError, match="pass --labels ece661-hw2-test-labels.csv"):
        grade(PLAIN, "predictions.*")
    report = grade(PLAIN, "predictions.*", require_labels=False)
    accuracy = by_id(report)["predictions.test.accuracy"]
    assert accuracy.status is Status.FAILED and "grader-error" in accuracy.tags
    assert "this is not a problem with your file" in accuracy.message
    assert by_id(report)["predictions.test.format"].passed


def test_student_code_cannot_read_the_labels(tmp_path, labels):
    """The worker tries to read the labels and to overwrite its predictions with them: it
    sees nothing, and the score comes from the file as submitted."""
    folder = copy_plain(tmp_path)
    t = truth()
    write_predictions(folder, [f"{i},{(x + 1) % 10 if i % 2 else x}" for i, x in enumerate(t)])  # 50% right
    attack = (f"\nimport os as _os\n_p = {str(labels)!r}\n"
              "try:\n    _data = open(_p).read()\nexcept OSError as _e:\n    _data = ''\n    print('LABELS-DENIED', _e)\n"
              "print('LABELS-READ', len(_data), _data[:40].replace(chr(10), '|'))\n"
              "if _data:\n    open(_os.path.join(_os.path.dirname(__file__), 'predictions.csv'), 'w').write(_data)\n")
    (folder / "simplenn_cifar10.py").write_text((folder / "simplenn_cifar10.py").read_text() + attack)
    report = grade(folder, "simplenn.construct.*", "predictions.*", labels=labels)
    checks = by_id(report)
    assert checks["simplenn.construct.nc10"].passed  # the module really ran
    assert "LABELS-READ 0" in report.student_output
    assert ",".join(map(str, t[:3])) not in report.student_output.replace("|", ",")
    assert checks["predictions.test.accuracy"].message.startswith("Accuracy on the 10,000 held-out images: 50.00%")


def test_the_starter_earns_only_the_given_simplenn():
    report = grade(HERE.parent / "student_template" / "ece661_hw2", self_check=True)
    assert {c.check_id for c in report.checks if c.passed} == {
        "simplenn.construct.nc10", "simplenn.architecture.nc10", "simplenn.forward.nc10"}
    assert report.score == 2
    checks = by_id(report)
    assert checks["resnet20.construct.nc10"].message.startswith("ResNet20() is not implemented yet: it raises NotImplementedError")
    assert checks["swish.values"].message.startswith("Swish(x) is not implemented yet")
    assert "SimpleNN (not implemented yet: it raises NotImplementedError" in checks["simplennbn.construct.nc10"].message


def _notebook(path: Path, cells: list[str]) -> None:
    import json

    path.write_text(json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [
        {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None, "source": c.splitlines(True)}
        for c in cells]}))


def test_the_four_notebooks_grade_like_the_modules(tmp_path):
    """As submitted: notebooks that load tools.dataset and train at top level. The decay in
    the (never run) training loop is found in its cell."""
    folder = tmp_path / "notebooks"
    folder.mkdir()
    data = "from tools.dataset import CIFAR10\ntrain_set = CIFAR10(root='./data', mode='train', download=True)\n"
    loop = ("for i in range(EPOCHS):\n    if i % DECAY_EPOCHS == 0 and i != 0:\n"
            "        current_learning_rate = current_learning_rate * DECAY\n"
            "        for param_group in optimizer.param_groups:\n            param_group['lr'] = current_learning_rate\n")
    simple = (PLAIN / "simplenn_cifar10.py").read_text().split("def train(")[0]
    _notebook(folder / "simplenn-cifar10.ipynb", [simple, data, "EPOCHS = 30\ncurrent_learning_rate = INITIAL_LR\n", loop])
    _notebook(folder / "simplenn-cifar10-dev.ipynb", [(PLAIN / "simplenn_cifar10_dev.py").read_text(), data])
    _notebook(folder / "resnet-cifar10.ipynb", [(PLAIN / "resnet_cifar10.py").read_text(), "net = ResNet()\n"])
    shutil.copy(PLAIN / "predictions.csv", folder / "predictions.csv")
    report = grade(folder, self_check=True)
    assert {c.check_id: c.message for c in report.checks if c.status is Status.FAILED} == {}
    assert report.score == 18 and report.hidden_checks == 1
    checks = by_id(report)
    assert checks["lr-decay.decay"].message.startswith("Found the optimizer's learning rate set in its param groups at "
                                                       "simplenn-cifar10.ipynb cell 4, line 5")
    assert checks["resnet20.construct.nc10"].message.startswith("ResNet (resnet-cifar10.ipynb cell 1)")


def test_functions_that_train_are_never_called_while_looking_for_the_model(tmp_path):
    folder = copy_plain(tmp_path)
    (folder / "resnet_cifar10.py").write_text((folder / "resnet_cifar10.py").read_text()
                                              + "\n\ndef train_resnet():\n    print('TRAINING RAN')\n    return ResNet()\n")
    edit(folder, "resnet_cifar10.py", ("class ResNet(nn.Module):", "class MyNet(nn.Module):"),
         ("ResNet()\n", "MyNet()\n"))
    report = grade(folder, "resnet20.construct.*")
    assert by_id(report)["resnet20.construct.nc10"].message.startswith("MyNet (resnet_cifar10.py line 35) is graded as ResNet-20")
    assert "TRAINING RAN" not in report.student_output


def test_conv_biases_are_accepted_with_a_note(tmp_path):
    folder = copy_plain(tmp_path)
    path = folder / "resnet_cifar10.py"
    path.write_text(path.read_text().replace("bias=False", "bias=True"))
    structure = by_id(grade(folder, "resnet20.structure.*"))["resnet20.structure.nc10"]
    assert structure.passed, structure.message
    # 16 (stem) + 6 x 16 + 6 x 32 + 6 x 64 biases
    assert "Convolutions with bias=True add 688 parameters that batch norm makes redundant." in structure.message
    assert "270,410 parameters" in structure.message
