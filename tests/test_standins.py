"""Imports of modules the grading environment lacks (cv2, thop, bs4, a course
helper package): the rest of the file still loads and grades, code that uses one fails
with a message naming it, and a student's own `except ImportError:` fallback still runs.

The finder is unit-tested in this process on small files; the rest grades submissions
derived from the plain ones through the sandboxed worker."""
from __future__ import annotations

import importlib.util
import json
import shutil
import sys

import pytest

from gradekit import HERE, by_id, grade, mutate, plain_source, write_submission
from grader import api
from grader.results import Status
from grader.worker import compat, failures, standins

# Modules the grading environment does not provide (scikit-learn, torchsummary and the others
# README lists are installed); the tests fail, rather than skip, if one is ever added.
ABSENT = ("bs4", "cv2", "thop", "pytorch_lightning")


def test_the_modules_these_tests_import_are_really_absent():
    assert [m for m in ABSENT if importlib.util.find_spec(m)] == []


# ----------------------------------------------------------------------------- the finder itself


@pytest.fixture
def student(tmp_path, monkeypatch):
    """Import a file from a submission folder the way the worker does, with stand-ins on."""
    folder = tmp_path / "submission"
    folder.mkdir()
    monkeypatch.setattr(failures, "ROOTS", [str(folder.resolve())])
    monkeypatch.setattr(compat, "HAZARDS", compat.Hazards())
    monkeypatch.setattr(standins, "_noted", set())
    monkeypatch.setattr(standins, "_guarded", {})
    monkeypatch.setattr(sys, "meta_path", list(sys.meta_path))
    before = set(sys.modules)
    standins.install()

    def load(source: str, name: str = "student_mod"):
        path = folder / f"{name}.py"
        path.write_text(source)
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    yield load
    standins._state["strict"] = False
    for name in set(sys.modules) - before:  # stand-ins and this test's files; real modules stay imported
        module = sys.modules[name]
        if isinstance(module, standins.StandIn) or str(tmp_path) in str(getattr(module, "__file__", "")):
            del sys.modules[name]


def test_every_import_form_loads_and_fails_only_when_used(student):
    module = student("import torch.nn as nn\n"
                     "import missing_pkg.sub.deep\n"
                     "from missing_pkg.other import helper, Thing\n"
                     "import bs4 as skl\n"
                     "import pytorch_lightning as pl\n"
                     "skl.set_config(display='text')\n"
                     "THEME = missing_pkg.sub.deep.theme('dark')['palette']\n"
                     "@missing_pkg.decorators.register(name='net')\n"
                     "def double(x):\n    return 2 * x\n"
                     "class Lit(pl.LightningModule):\n    pass\n"
                     "class Net(nn.Module):\n"
                     "    def forward(self, x):\n        return helper(x)\n"
                     "def split(data):\n    return skl.model_selection.train_test_split(data)\n")
    assert module.double(3) == 6  # the decorator kept the student's function
    assert issubclass(module.Lit, nn_module()) and not isinstance(3, module.Thing)
    standins.strict()
    with pytest.raises(standins.NotInstalledError) as err:
        module.split([1, 2, 3])
    assert str(err.value) == ("bs4.model_selection.train_test_split needs beautifulsoup4 (bs4), "
                              "which is not installed where grading runs")
    assert err.value.name == "bs4" and isinstance(err.value, ModuleNotFoundError)
    with pytest.raises(ModuleNotFoundError, match=r"^missing_pkg\.other\.helper needs missing_pkg, which is not installed"):
        module.Net()(1)
    with pytest.raises(ModuleNotFoundError, match=r"^Lit \(a subclass of pytorch_lightning\.LightningModule\) needs "
                                                  r"pytorch_lightning, which is not installed"):
        module.Lit()
    with pytest.raises(ModuleNotFoundError, match=r"^iterating over missing_pkg\.other\.Thing needs missing_pkg"):
        list(module.Thing)
    assert "missing_pkg" not in sys.modules  # a library looking for it later finds it missing


def nn_module():
    import torch.nn as nn

    return nn.Module


def test_each_missing_module_is_noted_once_with_its_line(student):
    student("import os\nimport cv2\nfrom cv2 import resize\nimport tools.dataset\nimport thop\n", name="main")
    assert compat.HAZARDS.notes == [
        "opencv-python (cv2) is not installed where grading runs (imported at main.py:2); a stand-in let the rest of "
        "the file load, and anything that uses cv2 fails with a message naming it.",
        "tools is not in the submission (imported at main.py:4); a stand-in let the rest of the file load, and "
        "anything that uses tools fails with a message naming it.",
        "thop is not installed where grading runs (imported at main.py:5); a stand-in let the rest of the file load, "
        "and anything that uses thop fails with a message naming it."]


@pytest.mark.parametrize("handler", ["except ImportError:", "except (ValueError, ModuleNotFoundError) as e:",
                                     "except Exception:", "except:", "except builtins.ImportError:"])
def test_a_fallback_the_student_wrote_still_runs(student, handler):
    module = student(f"import builtins\ntry:\n    import definitely_missing_mod\n{handler}\n"
                     "    definitely_missing_mod = None\n")
    assert module.definitely_missing_mod is None
    assert compat.HAZARDS.notes == []


def test_a_try_that_does_not_catch_import_errors_gets_the_stand_in(student):
    module = student("try:\n    import definitely_missing_mod\nexcept ValueError:\n    definitely_missing_mod = None\n"
                     "try:\n    import other_missing_mod\nfinally:\n    DONE = True\n")
    assert isinstance(module.definitely_missing_mod, standins.StandIn) and module.DONE
    assert len(compat.HAZARDS.notes) == 2


def test_a_notebooks_wrapped_imports_get_stand_ins_and_its_own_fallbacks_run(student, tmp_path):
    """The converter wraps each kept line in its own try; only the student's handlers count."""
    from grader.notebooks import convert_notebook

    path = tmp_path / "nb.ipynb"
    path.write_text(json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [
        {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
         "source": "import cv2\ntry:\n    import definitely_missing_mod\nexcept ImportError:\n"
                   "    definitely_missing_mod = None\n"}]}))
    module = student(convert_notebook(path)[0], name="nb")
    assert isinstance(module.cv2, standins.StandIn) and module.definitely_missing_mod is None
    assert module.__dlgrade_skipped__ == []
    assert [n.split(" (imported")[0] for n in compat.HAZARDS.notes] == [
        "opencv-python (cv2) is not installed where grading runs"]


@pytest.mark.parametrize("source", ["import torch.not_a_module_of_torch\n", "import xml.not_a_module_of_xml\n",
                                    "import numpy.not_a_module_of_numpy\n"])
def test_protected_and_standard_library_names_never_get_stand_ins(student, source):
    with pytest.raises(ModuleNotFoundError):
        student(source)


def test_libraries_and_existence_checks_get_no_stand_in(student, tmp_path, monkeypatch):
    library = tmp_path / "site"
    library.mkdir()
    (library / "some_library.py").write_text("try:\n    import its_optional_dependency\nexcept ValueError:\n    pass\n")
    monkeypatch.syspath_prepend(str(library))
    with pytest.raises(ModuleNotFoundError, match="its_optional_dependency"):
        student("import some_library\n")
    module = student("import importlib.util\nFOUND = importlib.util.find_spec('definitely_missing_mod')\n", name="asks")
    assert module.FOUND is None


# ----------------------------------------------------------------------------- graded submissions


def test_missing_imports_at_the_top_do_not_cost_the_alexnet_checks(tmp_path):
    source = ("from bs4.model_selection import train_test_split\nimport cv2\nimport course_logger_not_installed\n"
              "course_logger_not_installed.init(project='hw4')\n" + plain_source())
    report = grade(write_submission(tmp_path, source), "alexnet.*")
    assert {c.check_id: c.message for c in report.checks if c.status is not Status.PASSED} == {}
    assert len(report.checks) == 12 and report.score == report.max_score > 0
    notes = [n.text for n in report.notes]
    assert any(n.startswith("beautifulsoup4 (bs4) is not installed where grading runs (imported at "
                            "cnn_trainer.py:1)") for n in notes)
    assert any(n.startswith("opencv-python (cv2) is not installed where grading runs (imported at "
                            "cnn_trainer.py:2)") for n in notes)


def test_a_forward_that_uses_a_missing_module_fails_naming_it(tmp_path):
    source = mutate("import cv2\n" + plain_source(), ("        return self.classifier(x)  # OUT",
                                                        "        return self.classifier(cv2.normalize(x))  # OUT"))
    checks = by_id(grade(write_submission(tmp_path, source), "alexnet.construct.nc4", "alexnet.forward.nc4"))
    # export stopped at the same line, so the worker measured it: its pass is held for the staff
    assert checks["alexnet.construct.nc4"].status is Status.MANUAL
    assert "needs opencv-python" in checks["alexnet.construct.nc4"].details["measured_inside"]
    forward = checks["alexnet.forward.nc4"]
    assert forward.status is Status.FAILED
    assert "raised NotInstalledError at cnn_trainer.py line" in forward.message
    assert forward.message.endswith("cv2.normalize needs opencv-python (cv2), which is not installed where grading runs")


def test_a_model_built_with_a_missing_module_is_reported_with_it(tmp_path):
    """ece661-hw2 picks the class, and says why the only ResNet could not be built."""
    folder = tmp_path / "submission"
    shutil.copytree(HERE / "submissions" / "ece661_plain", folder)
    path = folder / "resnet_cifar10.py"
    path.write_text(mutate(path.read_text(), ("import torch\n", "import torch\nfrom thop import summary\n"),
                           ("        self.linear = nn.Linear(64, num_classes)\n",
                            "        self.linear = nn.Linear(64, num_classes)\n        summary(self, (3, 32, 32))\n")))
    report = api.grade(folder, "ece661-hw2", api.Options(device="cpu", only=("resnet20.construct.*", "simplenn.*")))
    checks = by_id(report)
    construct = checks["resnet20.construct.nc10"]
    assert construct.status is Status.FAILED
    assert ("ResNet (building it raised NotInstalledError at line 46: thop.summary needs thop, "
            "which is not installed where grading runs)") in construct.message
    assert all(c.passed for c in report.checks if c.check_id.startswith("simplenn."))


def test_the_students_fallback_branch_runs_in_a_graded_file(tmp_path):
    source = ("try:\n    import definitely_missing_mod\nexcept ImportError:\n    definitely_missing_mod = None\n"
              "if definitely_missing_mod is not None:\n    raise SystemExit('the fallback did not run')\n"
              + plain_source())
    report = grade(write_submission(tmp_path, source), "alexnet.construct.nc4")
    assert report.checks[0].passed, report.checks[0].message
    assert not any("definitely_missing_mod" in n.text for n in report.notes)


def test_a_class_derived_from_a_missing_module_fails_when_built_and_the_others_grade(tmp_path):
    source = mutate("import pytorch_lightning as pl\n" + plain_source(),
                    ("class AlexNet(nn.Module):", "class AlexNet(pl.LightningModule):"))
    checks = by_id(grade(write_submission(tmp_path, source), "*.construct.nc4"))
    construct = checks["alexnet.construct.nc4"]
    assert construct.status is Status.FAILED
    assert construct.message.endswith("AlexNet (a subclass of pytorch_lightning.LightningModule) needs "
                                      "pytorch_lightning, which is not installed where grading runs")
    assert checks["alexnetlargekernel.construct.nc4"].passed and checks["alexnetavgpooling.construct.nc4"].passed


def test_a_notebook_importing_missing_modules_still_grades_its_classes(tmp_path):
    folder = tmp_path / "submission"
    shutil.copytree(HERE / "submissions" / "dl2_plain", folder)
    book = json.loads((folder / "Assignment2.ipynb").read_text())
    [first] = [c for c in book["cells"] if "".join(c["source"]).startswith("import os\n")]
    first["source"] = "".join(first["source"]).replace("import os\n", "import os\nfrom thop import summary\n"
                                                                       "import cv2\n", 1)
    (folder / "Assignment2.ipynb").write_text(json.dumps(book))
    report = api.grade(folder, "dl-assignment2", api.Options(device="cpu", only=(
        "lenet5.construct.*", "lenet5.architecture.*", "resnet18.construct.*", "resnet18.structure.*")))
    assert {c.check_id: c.message for c in report.checks if c.status is not Status.PASSED} == {}
    assert len(report.checks) == 4
    notes = [n.text for n in report.notes]
    assert any(n.startswith("opencv-python (cv2) is not installed where grading runs (imported at Assignment2.ipynb "
                            "cell 2, line 3)") for n in notes), notes
    assert not any("was not run while grading" in n for n in notes)  # the imports ran, nothing was skipped
