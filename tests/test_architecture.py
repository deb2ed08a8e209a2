"""Tracing judges the computation, and the comparison names the first wrong row in table terms."""
import torch
import torch.nn as nn
import torch.nn.functional as F

from grader.checks.architecture import compare, describe_problem
from grader.rubric import load_rubric
from grader.worker.trace import LayerTrace

RUBRIC = load_rubric("cs1678-hw4")
ALEX = RUBRIC.model("AlexNet")


def trace(build, *args, allow_error=False):
    with torch.device("meta"):
        model = build(*args)
    x = torch.zeros(2, 3, 227, 227, device="meta")
    recorder = LayerTrace(model, [])
    try:
        with recorder, torch.no_grad():
            model(x)
    except RuntimeError:
        if not allow_error:
            raise
    return [r.as_dict() for r in recorder.rows], model, recorder


def features(pool=nn.MaxPool2d, pool1=(3, 2), conv2_padding=2):
    return nn.Sequential(
        nn.Conv2d(3, 96, 11, 4), nn.ReLU(), pool(*pool1), nn.Conv2d(96, 256, 5, padding=conv2_padding), nn.ReLU(),
        pool(3, 2), nn.Conv2d(256, 384, 3, padding=1), nn.ReLU(), nn.Conv2d(384, 384, 3, padding=1), nn.ReLU(),
        nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(), pool(3, 2))


class Plain(nn.Module):
    def __init__(self, n=4, hidden=4096, tail=(), **kw):
        super().__init__()
        self.features = features(**kw)
        self.classifier = nn.Sequential(nn.Flatten(), nn.Dropout(), nn.Linear(9216, hidden), nn.ReLU(), nn.Dropout(),
                                        nn.Linear(hidden, 4096), nn.ReLU(), nn.Linear(4096, n), *tail)

    def forward(self, x):
        return self.classifier(self.features(x))


class Functional(nn.Module):
    """Same network: functional calls, other names, in-place ops, view, pool before ReLU."""

    def __init__(self, n=4):
        super().__init__()
        self.stem = nn.ModuleList([nn.Conv2d(3, 96, 11, 4), nn.Conv2d(96, 256, 5, padding=2)])
        self.body = nn.ModuleDict({"a": nn.Conv2d(256, 384, 3, padding=1), "b": nn.Conv2d(384, 384, 3, padding=1),
                                   "c": nn.Conv2d(384, 256, 3, padding=1)})
        self.w1 = nn.Parameter(torch.empty(4096, 9216))
        self.b1 = nn.Parameter(torch.empty(4096))
        self.fc2, self.fc3 = nn.Linear(4096, 4096), nn.Linear(4096, n)
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))  # torchvision's: a no-op at 227x227

    def forward(self, x):
        x = F.max_pool2d(self.stem[0](x), 3, 2).relu_()  # pool then ReLU: the same result
        x = F.max_pool2d(F.relu(self.stem[1](x), inplace=True), kernel_size=3, stride=2)
        x = torch.clamp(self.body["a"](x), min=0)
        x = F.relu(self.body["b"](x))
        x = F.max_pool2d(torch.relu(self.body["c"](x)), 3, 2)
        x = self.avgpool(x)
        x = x.view(x.size(0), -1)
        x = F.dropout(x, 0.5, self.training)
        x = F.relu(F.linear(x, self.w1, self.b1))
        x = self.fc2(F.dropout(x, p=0.5, training=self.training)).relu()
        return self.fc3(x)


def test_module_style_matches_every_row():
    rows, _, _ = trace(Plain)
    diff = compare(list(ALEX.table), rows, ALEX.input)
    assert diff.passed and [r.status for r in diff.rows] == ["match"] * 21
    assert rows[0]["module"] == "features.0"


def test_functional_style_is_the_same_computation():
    rows, model, recorder = trace(Functional)
    diff = compare(list(ALEX.table), rows, ALEX.input)
    assert diff.passed, [r.as_dict() for r in diff.rows if r.status != "match"]
    assert {r.status for r in diff.rows} == {"match", "equivalent"}
    assert any("AdaptiveAvgPool2d" in note for note in diff.notes)
    assert recorder.used_params == {id(p) for p in model.parameters()}


def test_seven_classes():
    rows, _, _ = trace(Plain, 7)
    assert compare(ALEX.rows_for(ALEX.variants[1]), rows, ALEX.input).passed
    assert not compare(list(ALEX.table), rows, ALEX.input).passed


def first(build, *args, table=None, **kw):
    rows, _, _ = trace(lambda: build(*args, **kw), allow_error=True)
    diff = compare(table or list(ALEX.table), rows, ALEX.input)
    assert not diff.passed
    return diff, describe_problem(diff.first_problem())


def test_wrong_width_names_the_row_like_the_handout():
    diff, message = first(Plain, hidden=9216)
    assert message == "Linear-16: expected [-1, 4096] and 37,752,832 parameters, got [-1, 9216] and 84,943,872 " \
                      "(self.classifier[2])."
    # ReLU-17 and Dropout-18 carry the wider shape, Linear-19 the wider input; the rows after still match.
    assert [r.status for r in diff.rows[15:]] == ["mismatch"] * 4 + ["match"] * 2


def test_moved_padding():
    diff, message = first(Plain, conv2_padding=1)  # forward then fails at Linear-16: 6,400 inputs, not 9,216
    assert message.startswith("Conv2d-4: expected [-1, 256, 27, 27] and 614,656 parameters, got [-1, 256, 25, 25]")
    assert "padding 1, expected 2" in message
    assert [r.status for r in diff.rows[:3]] == ["match"] * 3 and diff.rows[-1].status == "missing"


def test_wrong_pooling_type():
    diff, message = first(Plain, pool=nn.AvgPool2d)
    assert message == "MaxPool2d-3: expected MaxPool2d, found AvgPool2d (self.features[2])."
    assert diff.problem_count() == 3


def test_same_shapes_wrong_pool_kernel():
    diff, message = first(Plain, pool1=(2, 2))  # 55 -> 27 either way
    assert diff.problem_count() == 1
    assert message.startswith("MaxPool2d-3: kernel 2, expected 3")


def test_extra_softmax_and_missing_relu():
    diff, message = first(Plain, tail=(nn.Softmax(dim=1),))
    assert message == "Your network has an extra Softmax [-1, 4] (self.classifier[8]) that the table does not have."

    class NoRelu(Plain):
        def __init__(self):
            super().__init__()
            self.classifier[3] = nn.Identity()

    diff, message = first(NoRelu)
    assert message == "ReLU-17: expected ReLU [-1, 4096], but your network has no such layer here."
    assert diff.problem_count() == 1


def test_forward_error_keeps_the_rows_before_it():
    class Broken(Plain):
        def forward(self, x):
            x = self.features(x)
            return self.classifier[2](x)  # forgot to flatten

    with torch.device("meta"):
        model = Broken()
    recorder = LayerTrace(model, [])
    try:
        with recorder, torch.no_grad():
            model(torch.zeros(2, 3, 227, 227, device="meta"))
    except RuntimeError:
        pass
    diff = compare(list(ALEX.table), [r.as_dict() for r in recorder.rows], ALEX.input)
    assert [r.status for r in diff.rows[:13]] == ["match"] * 13
