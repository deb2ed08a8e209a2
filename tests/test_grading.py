"""Whole-pipeline grading of submissions with the mistakes real students make.

Each submission is the plain correct one with marked lines replaced, so every test says
exactly what is wrong; several mistakes in different classes share one grade, which also
proves that one broken class costs only its own checks.
"""
import zipfile

import pytest

from gradekit import FUNCTIONAL, TEMPLATE, by_id, failed_ids, grade, mutate, plain_source, write_submission
from grader.results import Status

LK_FORWARD = '''    def forward(self, x):  # LKFORWARD
        x = self.features(x)
        x = torch.flatten(x, 1)
        return self.classifier(x)'''
AVG_FORWARD = '''    def forward(self, x):  # AVGFORWARD
        x = self.features(x)
        x = torch.flatten(x, 1)
        return self.classifier(x)'''


@pytest.fixture(scope="module")
def architecture_family(tmp_path_factory):
    """AlexNet too wide, LargeKernel hard-codes 4 classes, AvgPooling max-pools at the end."""
    source = mutate(plain_source(),
                    ("nn.Linear(256 * 6 * 6, 4096),  # FC1", "nn.Linear(256 * 6 * 6, 9216),"),
                    ("nn.Linear(4096, 4096),  # FC2", "nn.Linear(9216, 4096),"),
                    ("nn.Linear(4096, configs['num_classes']),  # LKFC3", "nn.Linear(4096, 4),"),
                    ("nn.AvgPool2d(kernel_size=3, stride=2),  # AVGPOOL3", "nn.MaxPool2d(kernel_size=3, stride=2),"))
    folder = write_submission(tmp_path_factory.mktemp("arch"), source)
    return grade(folder, "*.construct.*", "*.architecture.*", "*.forward.nc7")


def test_wrong_width_is_reported_in_the_tables_terms(architecture_family):
    checks = by_id(architecture_family)
    arch = checks["alexnet.architecture.nc4"]
    assert arch.status is Status.FAILED and arch.points == 0
    assert arch.message.startswith("Linear-16: expected [-1, 4096] and 37,752,832 parameters, got [-1, 9216] and "
                                   "84,943,872 (cnn_trainer.py:")
    assert "3 more rows differ" in arch.message
    rows = arch.details["table"]["rows"]
    assert len(rows) == 21 and [r["status"] for r in rows[15:]] == ["mismatch"] * 4 + ["match"] * 2
    assert checks["alexnet.construct.nc4"].passed and checks["alexnet.forward.nc7"].passed


def test_hard_coded_class_count_fails_only_where_it_shows(architecture_family):
    checks = by_id(architecture_family)
    assert checks["alexnetlargekernel.architecture.nc4"].passed
    seven = checks["alexnetlargekernel.architecture.nc7"]
    assert not seven.passed
    assert seven.message.startswith("Linear-18: expected [-1, 7] and 28,679 parameters, got [-1, 4] and 16,388")
    assert "configs['num_classes']" in seven.hint
    forward = checks["alexnetlargekernel.forward.nc7"]
    assert not forward.passed and "returned [2, 4]; expected [2, 7]" in forward.message
    assert checks["alexnetlargekernel.construct.nc7"].passed


def test_wrong_pooling_type(architecture_family):
    checks = by_id(architecture_family)
    for suffix in ("nc4", "nc7"):
        arch = checks[f"alexnetavgpooling.architecture.{suffix}"]
        assert not arch.passed
        assert arch.message.startswith("AvgPool2d-13: expected AvgPool2d, found MaxPool2d (cnn_trainer.py:")
        assert "pooling type" in arch.hint
    assert failed_ids(architecture_family) == {
        "alexnet.architecture.nc4", "alexnet.architecture.nc7", "alexnetlargekernel.architecture.nc7",
        "alexnetlargekernel.forward.nc7", "alexnetavgpooling.architecture.nc4", "alexnetavgpooling.architecture.nc7"}


@pytest.fixture(scope="module")
def behaviour_family(tmp_path_factory):
    """AlexNet's padding moved between two convs and gradients cut after the features;
    LargeKernel hard-codes CUDA and returns softmax; AvgPooling's dropout never switches off."""
    source = mutate(
        plain_source(),
        ("nn.Conv2d(96, 256, kernel_size=5, padding=2),  # CONV2", "nn.Conv2d(96, 256, kernel_size=5, padding=1),"),
        ("nn.Conv2d(256, 384, kernel_size=3, padding=1),  # CONV3", "nn.Conv2d(256, 384, kernel_size=3, padding=2),"),
        ("        return self.classifier(x)  # OUT", "        return self.classifier(x.detach())"),
        ("nn.Conv2d(3, 96, kernel_size=21, stride=8, padding=1),  # LK1",
         "nn.Conv2d(3, 96, kernel_size=21, stride=8, padding=1).cuda(),"),
        (LK_FORWARD, LK_FORWARD.replace("return self.classifier(x)", "return F.softmax(self.classifier(x), dim=1)")),
        (AVG_FORWARD, '''    def forward(self, x):
        x = torch.flatten(self.features(x), 1)
        for layer in self.classifier:
            x = F.dropout(x, 0.5) if isinstance(layer, nn.Dropout) else layer(x)
        return x'''))
    folder = write_submission(tmp_path_factory.mktemp("behaviour"), source)
    return grade(folder, "*.nc4")


def test_moved_padding_fails_the_table_but_not_the_rest(behaviour_family):
    checks = by_id(behaviour_family)
    arch = checks["alexnet.architecture.nc4"]
    assert arch.message.startswith("Conv2d-4: expected [-1, 256, 27, 27] and 614,656 parameters, got [-1, 256, 25, 25]")
    assert "padding 1, expected 2" in arch.message
    assert checks["alexnet.forward.nc4"].passed and checks["alexnet.dropout.nc4"].passed


def test_detached_features_get_no_gradient(behaviour_family):
    grads = by_id(behaviour_family)["alexnet.gradients.nc4"]
    assert not grads.passed
    assert "no gradient reached features.0.weight, features.0.bias" in grads.message
    assert "cut off from autograd by .detach()" in grads.message


def test_softmax_output_and_hard_coded_cuda(behaviour_family):
    checks = by_id(behaviour_family)
    arch = checks["alexnetlargekernel.architecture.nc4"]
    assert arch.message.startswith("Your network has an extra Softmax [-1, 4]")
    assert "CrossEntropyLoss" in arch.hint
    assert checks["alexnetlargekernel.construct.nc4"].passed  # .cuda() on a GPU-less grader: graded on the CPU
    assert checks["alexnetlargekernel.forward.nc4"].passed
    assert any("CUDA" in n.text and "CPU" in n.text for n in behaviour_family.notes)


def test_dropout_left_on_in_eval_mode(behaviour_family):
    checks = by_id(behaviour_family)
    drop = checks["alexnetavgpooling.dropout.nc4"]
    assert not drop.passed and "stays on after model.eval()" in drop.message
    assert "training=self.training" in drop.hint
    assert checks["alexnetavgpooling.architecture.nc4"].passed  # the same layers, in the table's order


def test_functional_style_gets_full_marks(tmp_path):
    report = grade(FUNCTIONAL)
    assert report.score == report.max_score == 22
    assert report.grader_error is None
    assert {c.status for c in report.checks} == {Status.PASSED, Status.MANUAL}
    assert report.manual_points == 8
    assert len(report.artifacts) == 5  # one kernel image per conv layer, shown in the report


def test_untouched_template_scores_zero_with_not_implemented(tmp_path):
    report = grade(TEMPLATE)
    assert report.score == 0 and report.max_score == 22 and report.grader_error is None
    checks = by_id(report)
    for symbol in ("alexnet", "alexnetlargekernel", "alexnetavgpooling"):
        assert "is not implemented yet: it raises NotImplementedError" in checks[f"{symbol}.construct.nc4"].message
        assert checks[f"{symbol}.training.nc7"].message.startswith("Not graded:")
    assert "not implemented yet" in checks["kernels.calls"].message


def test_import_error_fails_every_check_with_one_clear_reason(tmp_path):
    source = "import torch.tensorflow_hub_not_installed\n" + plain_source()  # torch's own: no stand-in
    report = grade(write_submission(tmp_path, source), "alexnet.*.nc4", "kernels.*")
    assert report.score == 0 and report.grader_error is None
    construct = by_id(report)["alexnet.construct.nc4"]
    assert "import stopped first" in construct.message
    assert "ModuleNotFoundError at cnn_trainer.py line 1" in construct.message
    assert any("tensorflow_hub_not_installed" in n.text for n in report.notes)


def test_syntax_error_is_located(tmp_path):
    source = mutate(plain_source(), ("        return self.classifier(x)  # OUT", "        return self.classifier(x"))
    report = grade(write_submission(tmp_path, source), "alexnet.construct.nc4")
    message = report.checks[0].message
    assert message.startswith("Importing cnn_trainer.py raised SyntaxError at cnn_trainer.py line")


def test_sys_exit_at_import_still_grades_what_was_defined(tmp_path):
    source = plain_source().replace("if __name__ == '__main__':\n    app.run(main)", "import sys\nsys.exit(app.run(main))")
    assert "sys.exit(app.run(main))" in source
    report = grade(write_submission(tmp_path, source), "*.architecture.nc4")
    assert report.score == report.max_score > 0
    assert any("SystemExit" in n.text and "defined before that line was graded" in n.text for n in report.notes)


def test_zip_with_escaping_entries(tmp_path):
    archive = tmp_path / "hw4.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("hw4/cnn_trainer.py", plain_source())
        zf.writestr("../../escaped.py", "print('outside')")
        zf.writestr("/tmp/absolute.py", "print('absolute')")
        zf.writestr("__MACOSX/hw4/._cnn_trainer.py", "junk")
    report = grade(archive, "alexnet.architecture.nc4")
    assert report.checks[0].passed
    assert report.graded_files == ["hw4/cnn_trainer.py"]
    refused = " ".join(n.text for n in report.notes if n.level == "warning")
    assert "escaped.py" in refused and "absolute.py" in refused
    assert not (tmp_path.parent / "escaped.py").exists() and not (tmp_path / "escaped.py").exists()


def test_renamed_module_is_found_by_its_classes(tmp_path):
    report = grade(write_submission(tmp_path, plain_source(), name="CNN.py"), "alexnet.architecture.nc4")
    assert report.checks[0].passed and report.graded_files == ["CNN.py"]
    assert any("graded CNN.py" in n.text and "cnn_trainer.py" in n.text for n in report.notes if n.level == "warning")


def test_kernels_of_a_fresh_model_are_not_the_checkpoint(tmp_path):
    source = mutate(plain_source(), ("    model.load_state_dict(checkpoint['model'])\n", ""))
    report = grade(write_submission(tmp_path, source), "kernels.*")
    calls = by_id(report)["kernels.calls"]
    assert not calls.passed and "none of the weights it passed are in the checkpoint" in calls.message
    assert by_id(report)["kernels.images"].passed  # it did draw five images, just of the wrong weights
