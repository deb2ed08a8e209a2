"""Assignment 2 reference: model sizes and shapes, activation maps, the CSV reader, and a
short training run on a generated dataset in the real layout. Small enough for a 2-core CPU.
"""
import importlib.util
import inspect
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:  # plain modules, imported by name as the grader does
    sys.path.insert(0, HERE)

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torchvision  # noqa: E402
from PIL import Image  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402

import assignment2  # noqa: E402
import caltech_data  # noqa: E402
import fake_caltech  # noqa: E402
from assignment2 import (IMPROVED_LENET5_PARAMS, LENET5_PARAMS, RESNET18_PARAMS,  # noqa: E402
                         ImprovedLeNet5, LeNet5, ResNet18, count_params)

TEMPLATE = os.path.join(HERE, "..", "..", "student_template", "dl_assignment2", "assignment2.py")
FAKE_CLASSES = len(fake_caltech.CLASSES)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """These models are small: a second thread gains little, and where another process holds
    a core, two threads waiting on each other made the training tests 10 to 30 times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def fake_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("caltech")
    assert fake_caltech.make_fake_caltech(root) == {"train": 54, "validation": 18}
    return root


# ---------------------------------------------------------------- models

@pytest.mark.parametrize("padding, side", [(0, 2), (2, 4)])
def test_lenet5_parameters_and_output(padding, side):
    model = LeNet5(padding=padding)
    by_hand = (3 * 25 * 32 + 32) + (32 * 25 * 64 + 64) + (64 * side * side * 1021 + 1021) \
        + (1021 * 84 + 84) + (84 * 101 + 101)
    assert count_params(model) == LENET5_PARAMS[padding] == by_hand
    assert model(torch.zeros(3, 3, 64, 64)).shape == (3, 101)
    # each class has 84 weights and 1 bias in the last layer
    assert count_params(LeNet5(10, padding=padding)) == by_hand - 85 * (101 - 10)


def test_lenet5_default_is_unpadded_and_matches_the_handout_layers():
    model = LeNet5()
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size, c.stride, c.padding) for c in convs] \
        == [(3, 32, (5, 5), (1, 1), (0, 0)), (32, 64, (5, 5), (1, 1), (0, 0))]
    pools = [m for m in model.modules() if isinstance(m, nn.MaxPool2d)]
    assert [(p.kernel_size, p.stride) for p in pools] == [(4, 4), (4, 4)]
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert [(fc.in_features, fc.out_features) for fc in linears] == [(256, 1021), (1021, 84), (84, 101)]
    assert not any(isinstance(m, nn.Softmax) for m in model.modules())  # softmax is in the loss


def test_resnet18_matches_torchvision():
    ours = ResNet18()
    theirs = torchvision.models.resnet18(num_classes=101)
    assert count_params(ours) == RESNET18_PARAMS == count_params(theirs) == 11_228_325
    # same names and shapes, so torchvision's weights load and give the same outputs
    assert {k: v.shape for k, v in ours.state_dict().items()} == \
        {k: v.shape for k, v in theirs.state_dict().items()}
    ours.load_state_dict(theirs.state_dict())
    ours.eval()
    theirs.eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(x))
    assert ours(x).shape == (2, 101)


def test_resnet18_strides_follow_the_paper():
    model = ResNet18()
    sides = {}

    def record(name):
        def hook(module, inputs, output):
            sides[name] = tuple(output.shape[1:])  # returns None: the output is kept
        return hook

    for name in ("maxpool", "layer1", "layer2", "layer3", "layer4", "avgpool"):
        getattr(model, name).register_forward_hook(record(name))
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, 3, 64, 64))
    assert sides == {"maxpool": (64, 16, 16), "layer1": (64, 16, 16), "layer2": (128, 8, 8),
                     "layer3": (256, 4, 4), "layer4": (512, 2, 2), "avgpool": (512, 1, 1)}
    # projection shortcuts exactly where the shape changes: first block of stages 2-4
    projections = [name for name, m in model.named_modules()
                   if isinstance(m, assignment2.BasicBlock) and m.downsample is not None]
    assert projections == ["layer2.0", "layer3.0", "layer4.0"]


def test_resnet_variants_are_data():
    resnet34 = ResNet18(blocks=(3, 4, 6, 3))
    assert count_params(resnet34) == count_params(torchvision.models.resnet34(num_classes=101))
    narrow = ResNet18(10, blocks=(1, 1), widths=(16, 32))
    assert narrow(torch.zeros(2, 3, 64, 64)).shape == (2, 10)
    with pytest.raises(ValueError):
        ResNet18(blocks=(2, 2), widths=(64, 128, 256))


def test_improved_lenet5():
    model = ImprovedLeNet5()
    assert count_params(model) == IMPROVED_LENET5_PARAMS == LENET5_PARAMS[2] + 2 * (32 + 64 + 1021 + 84)
    assert model(torch.zeros(4, 3, 64, 64)).shape == (4, 101)
    kinds = {type(m) for m in model.modules()}
    assert {nn.BatchNorm2d, nn.BatchNorm1d, nn.Dropout} <= kinds
    biases = [m.bias for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert all(torch.all(b == 0) for b in biases)  # Xavier weights, zero biases
    fc = model.classifier[2]
    bound = (6 / (fc.in_features + fc.out_features)) ** 0.5
    assert fc.weight.abs().max() <= bound and fc.weight.abs().max() > 0.9 * bound
    model.eval()  # batch norm on one image needs running statistics
    assert model(torch.zeros(1, 3, 64, 64)).shape == (1, 101)


# ---------------------------------------------------------------- activations

@pytest.mark.parametrize("make, first, second", [
    (lambda: LeNet5(padding=0), (32, 60, 60), (64, 11, 11)),
    (lambda: LeNet5(padding=2), (32, 64, 64), (64, 16, 16)),
    (lambda: ImprovedLeNet5(), (32, 64, 64), (64, 16, 16)),
])
def test_conv_activations_shapes(make, first, second):
    torch.manual_seed(0)
    model = make().train()
    image = torch.randn(3, 64, 64)
    a1, a2 = assignment2.conv_activations(model, image)
    assert (tuple(a1.shape), tuple(a2.shape)) == (first, second)
    assert a1.min() >= 0 and a2.min() >= 0 and a1.max() > 0  # after the ReLU
    assert model.training  # mode restored
    with torch.no_grad():  # the same numbers as running the layers by hand
        model.eval()
        torch.testing.assert_close(a1, model.conv1(image[None])[0])
    with pytest.raises(TypeError):
        assignment2.conv_activations(ResNet18(), image)


def test_plot_activations_writes_one_panel_per_map(tmp_path):
    a1, a2 = assignment2.conv_activations(LeNet5(), torch.rand(3, 64, 64))
    for acts, panels in ((a1, 32), (a2, 64)):
        path = tmp_path / f"maps{panels}.png"
        fig = assignment2.plot_activations(acts, str(path), "accordion conv")
        assert len(fig.axes) == panels
        with Image.open(path) as png:
            assert png.format == "PNG"
            width, height = png.size
        assert width > height if panels == 32 else height > 0.8 * width  # rows of 8: 4 or 8
    fig = assignment2.plot_activations(torch.rand(1, 12, 5, 5), str(tmp_path / "odd.png"))
    assert len(fig.axes) == 12  # a part row keeps no empty axes


# ---------------------------------------------------------------- data

def test_dataset_reads_fake_caltech(fake_root):
    train = caltech_data.CaltechDataset(str(fake_root / "train.csv"), str(fake_root))
    assert len(train) == 54
    assert train.classes == sorted(fake_caltech.CLASSES)
    assert np.bincount(train.labels).tolist() == [9] * FAKE_CLASSES
    for path, label in zip(train.paths, train.labels):
        assert train.classes[label] == path.split("/")[0]
    gray = train.paths.index("camera/image_0003.jpg")
    with Image.open(fake_root / train.paths[gray]) as on_disk:
        assert on_disk.mode == "L"
    image, label = train[gray]
    assert image.shape == (3, 64, 64) and image.dtype == torch.float32
    assert train.classes[label] == "camera"
    torch.testing.assert_close(image[0], image[2])  # gray copied to all three channels
    for relative in caltech_data.HANDOUT_IMAGES:
        assert (fake_root / relative).is_file()

    val = caltech_data.CaltechDataset(str(fake_root / "validation.csv"), str(fake_root),
                                      transform=caltech_data.eval_transform(), classes=train.classes)
    assert len(val) == 18 and val.classes == train.classes
    image, _ = val[0]
    assert -1.0 <= image.min() and image.max() <= 1.0


def write_csv(path, lines):
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return str(path)


# Three images of two classes, as (path, class name, sorted index), in every form below.
ROWS = (("camera/image_0001.jpg", "camera", 1), ("accordion/image_0001.jpg", "accordion", 0),
        ("camera/image_0002.jpg", "camera", 1))


@pytest.mark.parametrize("header, row, has_label_column", [
    (None, "{path}", False),
    ("path", "{path}", False),
    (None, "{path},{name}", True),
    ("image,label", "{path},{name}", True),
    ("filename,class", "{path},{index}", True),
    (None, "{path},{index}", True),
    (",path,label", "{n},{path},{name}", True),         # pandas' to_csv with its index
    (None, "{n},{path}", False),                        # an index is no label column
    ("label,path", "{name},{path}", True),
    ("\ufeffpath,comment", "{path},seen on {n}", False),  # a BOM and an unrelated column
])
def test_csv_forms(fake_root, tmp_path, header, row, has_label_column):
    lines = [] if header is None else [header, ""]  # blank lines are skipped
    lines += [row.format(path=p, name=c, index=i, n=n) for n, (p, c, i) in enumerate(ROWS)]
    ds = caltech_data.CaltechDataset(write_csv(tmp_path / "split.csv", lines), str(fake_root))
    assert ds.paths == [p for p, _, _ in ROWS]
    assert ds.classes == ["accordion", "camera"] and ds.labels == [i for _, _, i in ROWS]
    assert (ds.csv_labels is not None) == has_label_column
    assert ds[0][0].shape == (3, 64, 64)


def test_csv_backslash_paths(fake_root, tmp_path):
    ds = caltech_data.CaltechDataset(write_csv(tmp_path / "win.csv", ["camera\\image_0001.jpg"]),
                                     str(fake_root))
    assert ds.paths == ["camera/image_0001.jpg"] and ds.classes == ["camera"]


@pytest.mark.parametrize("lines", [
    ["path,label", "camera/image_0001.jpg,accordion"],                     # wrong name
    ["path,label", "camera/image_0001.jpg,0", "camera/image_0002.jpg,1"],  # two numbers, one class
    ["path,label", "camera/image_0001.jpg,0", "pizza/image_0001.jpg,0"],   # one number, two classes
    ["path,label"],                                                        # no images
    ["path,label", "camera,3"],                                            # no image column
    ["image_0001.jpg"],                                                    # no class folder
])
def test_csv_errors(fake_root, tmp_path, lines):
    with pytest.raises(ValueError):
        caltech_data.CaltechDataset(write_csv(tmp_path / "bad.csv", lines), str(fake_root))


def test_validation_classes_must_be_known(fake_root, tmp_path):
    csv_path = write_csv(tmp_path / "v.csv", ["pizza/image_0004.jpg"])
    with pytest.raises(ValueError, match="pizza"):
        caltech_data.CaltechDataset(csv_path, str(fake_root), classes=["camera"])


# ---------------------------------------------------------------- training

def loaders(root, batch_size=9, one_hot=False):
    target = (lambda y: nn.functional.one_hot(torch.tensor(y), FAKE_CLASSES).float()) if one_hot else None
    train = caltech_data.CaltechDataset(str(root / "train.csv"), str(root),
                                        caltech_data.eval_transform(), target_transform=target)
    val = caltech_data.CaltechDataset(str(root / "validation.csv"), str(root),
                                      caltech_data.eval_transform(), classes=train.classes,
                                      target_transform=target)
    return (DataLoader(train, batch_size=batch_size, shuffle=True),
            DataLoader(val, batch_size=len(val)))


def test_lenet5_training_beats_chance(fake_root):
    torch.manual_seed(0)
    train_loader, val_loader = loaders(fake_root)
    model = LeNet5(FAKE_CLASSES)
    history = assignment2.train(model, train_loader, val_loader, epochs=8, lr=2e-3, verbose=False)
    assert sorted(history) == ["train_accuracy", "train_loss", "val_accuracy", "val_loss"]
    assert all(len(curve) == 8 for curve in history.values())
    assert history["train_loss"][-1] < 0.6 * history["train_loss"][0]
    assert history["val_accuracy"][-1] >= 0.6  # chance is 1/6
    loss, accuracy = assignment2.evaluate(model, val_loader)
    assert (loss, accuracy) == pytest.approx((history["val_loss"][-1], history["val_accuracy"][-1]))

    images, labels = next(iter(val_loader))
    predictions = assignment2.predict(model, val_loader)
    assert predictions.shape == (18,) and predictions.dtype == torch.int64
    assert (predictions == labels).float().mean().item() == pytest.approx(accuracy)
    torch.testing.assert_close(assignment2.predict(model, images), predictions)
    assert assignment2.predict(model, images[0]).tolist() == predictions[:1].tolist()


def test_one_hot_targets_give_the_same_numbers(fake_root):
    torch.manual_seed(1)
    model = LeNet5(FAKE_CLASSES)
    _, by_index = loaders(fake_root)
    _, by_one_hot = loaders(fake_root, one_hot=True)
    assert assignment2.evaluate(model, by_one_hot) == pytest.approx(assignment2.evaluate(model, by_index))
    history = assignment2.train(model, by_one_hot, None, epochs=1, lr=1e-3, verbose=False)
    assert history["val_loss"] == [] and len(history["train_loss"]) == 1


def test_resnet18_learns_a_fixed_batch(fake_root):
    torch.manual_seed(0)
    images, labels = next(iter(loaders(fake_root, batch_size=12)[0]))
    model = ResNet18(FAKE_CLASSES)
    history = assignment2.train(model, [(images, labels)] * 6, None, epochs=1, lr=1e-3, verbose=False)
    model.train()
    with torch.no_grad():
        after = nn.functional.cross_entropy(model(images), labels).item()
    assert after < 0.5 * history["train_loss"][0]


# ---------------------------------------------------------------- the module as a submission

def test_import_is_quiet_and_safe(tmp_path):
    code = "import assignment2, caltech_data, fake_caltech, sys; print('matplotlib.pyplot' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": HERE}, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "False\n"  # nothing printed, no pyplot (no backend chosen)
    assert list(tmp_path.iterdir()) == []


def test_main_trains_and_draws(fake_root, tmp_path, capsys):
    torch.manual_seed(0)
    history = assignment2.main(["--root", str(fake_root), "--epochs", "1", "--batch-size", "27",
                                "--out", str(tmp_path)])
    assert len(history["val_accuracy"]) == 1
    written = sorted(os.listdir(tmp_path / "lenet5"))
    assert written == ["accordion_image_0001_conv1.png", "accordion_image_0001_conv2.png",
                       "camera_image_0001_conv1.png", "camera_image_0001_conv2.png",
                       "history.json", "model.pt"]
    out = capsys.readouterr().out
    assert "54 training and 18 validation images, 6 classes" in out
    assert f"lenet5: {count_params(LeNet5(FAKE_CLASSES)):,} parameters" in out


def load_template():
    spec = importlib.util.spec_from_file_location("dl_assignment2_template", TEMPLATE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_template_matches_the_reference():
    template = load_template()
    names = ("LeNet5", "ImprovedLeNet5", "ResNet18", "conv_activations", "plot_activations",
             "train", "evaluate", "predict")
    for name in names:
        given, ours = getattr(template, name), getattr(assignment2, name)
        given_params = list(inspect.signature(given).parameters.values())
        our_params = list(inspect.signature(ours).parameters.values())
        # the reference may add optional arguments after the starter's
        assert [(p.name, p.default) for p in given_params] == \
            [(p.name, p.default) for p in our_params[:len(given_params)]], name
        assert all(p.default is not inspect.Parameter.empty for p in our_params[len(given_params):])
    model, loader = LeNet5(), [(torch.zeros(1, 3, 64, 64), torch.zeros(1, dtype=torch.long))]
    for call in (template.LeNet5, template.ImprovedLeNet5, template.ResNet18,
                 lambda: template.conv_activations(model, torch.zeros(3, 64, 64)),
                 lambda: template.plot_activations(torch.zeros(32, 60, 60), "unused.png"),
                 lambda: template.train(model, loader, loader, 1, 1e-3),
                 lambda: template.evaluate(model, loader),
                 lambda: template.predict(model, loader)):
        with pytest.raises(NotImplementedError):
            call()
