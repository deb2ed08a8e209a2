"""ECE661 HW2 reference: models against the handout's numbers, the data layout, the batched
augmentation against a per-image reference, and short trainings on generated data (CPU).

The folder is laid out like a submission (plain modules, no __init__.py), so this file puts
it on sys.path itself and imports the modules by name, as the grader does.
"""
import inspect
import itertools
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

import cifar_data  # noqa: E402
import gpu_pipeline  # noqa: E402
import resnet_cifar10  # noqa: E402
import simplenn_cifar10  # noqa: E402
import simplenn_cifar10_dev  # noqa: E402
from fake_cifar import CLASS_COLOURS, make_fake_cifar  # noqa: E402
from resnet_cifar10 import RESNET20_PARAMS, ResNet20, ResNetCIFAR, count_params  # noqa: E402
from simplenn_cifar10_dev import Swish, l1_penalty  # noqa: E402

CPU = torch.device("cpu")
MODULES = ("simplenn_cifar10", "simplenn_cifar10_dev", "resnet_cifar10", "gpu_pipeline",
           "cifar_data", "fake_cifar")


# ---------------------------------------------------------------- models

def test_simplenn_matches_table1_and_its_parameter_count():
    model = simplenn_cifar10.SimpleNN()
    assert count_params(model) == simplenn_cifar10.SIMPLENN_PARAMS == 82_030
    for name, expected in simplenn_cifar10.LAYER_PARAMS.items():
        assert count_params(getattr(model, name)) == expected, name
    assert sum(simplenn_cifar10.LAYER_PARAMS.values()) == 82_030
    convs = [(m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding)
             for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert convs == [(3, 8, (5, 5), (1, 1), (0, 0)), (8, 16, (3, 3), (1, 1), (0, 0))]
    fcs = [(m.in_features, m.out_features) for m in model.modules() if isinstance(m, nn.Linear)]
    assert fcs == [(576, 120), (120, 84), (84, 10)]


def test_dev_simplenn_counts_and_variants():
    dev = simplenn_cifar10_dev
    assert count_params(dev.SimpleNN()) == dev.SIMPLENN_BN_PARAMS == 82_078
    assert count_params(dev.SimpleNN(batch_norm=False, activation="relu")) == dev.SIMPLENN_PLAIN_PARAMS
    bns = [m.num_features for m in dev.SimpleNN().modules() if isinstance(m, nn.BatchNorm2d)]
    assert bns == [8, 16]
    assert isinstance(dev.SimpleNN().act, Swish) and isinstance(dev.SimpleNN(activation="relu").act, nn.ReLU)
    # the plain variant is Lab 1's network: the given model's weights load into it
    plain = dev.SimpleNN(batch_norm=False, activation="relu")
    given = simplenn_cifar10.SimpleNN()
    plain.load_state_dict(given.state_dict())
    x = torch.randn(3, 3, 32, 32)
    torch.testing.assert_close(plain(x), given(x))
    with pytest.raises(ValueError):
        dev.SimpleNN(activation="tanh")


@pytest.mark.parametrize("shortcut", ["A", "B"])
def test_resnet20_parameter_counts(shortcut):
    assert count_params(ResNet20(shortcut=shortcut)) == RESNET20_PARAMS[shortcut]
    assert count_params(resnet_cifar10.resnet20(shortcut)) == RESNET20_PARAMS[shortcut]
    assert count_params(ResNetCIFAR((3, 3, 3), (16, 32, 64), shortcut)) == RESNET20_PARAMS[shortcut]
    projections = [m for m in ResNet20(shortcut=shortcut).modules()
                   if isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1)]
    assert len(projections) == (2 if shortcut == "B" else 0)  # only where the shape changes


def test_deeper_resnets_round_to_the_papers_table6():
    for depth, millions in resnet_cifar10.PAPER_TABLE6_MILLIONS.items():
        assert 6 * resnet_cifar10.STAGE_BLOCKS[depth][0] + 2 == depth
        params = count_params(resnet_cifar10.resnet_cifar(depth, "A"))
        assert round(params / 1e6, 2 if depth < 100 else 1) == millions, depth


MODEL_FACTORIES = {
    "simplenn": lambda k: simplenn_cifar10.SimpleNN(num_classes=k),
    "simplenn_dev": lambda k: simplenn_cifar10_dev.SimpleNN(num_classes=k),
    "simplenn_dev_plain": lambda k: simplenn_cifar10_dev.SimpleNN(k, batch_norm=False, activation="relu"),
    "resnet20_A": lambda k: ResNet20(num_classes=k, shortcut="A"),
    "resnet20_B": lambda k: ResNet20(num_classes=k, shortcut="B"),
}


@pytest.mark.parametrize("num_classes", [10, 7])
@pytest.mark.parametrize("name", sorted(MODEL_FACTORIES))
def test_output_shapes(name, num_classes):
    model = MODEL_FACTORIES[name](num_classes).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 3, 32, 32)).shape == (2, num_classes)


def test_resnet_stage_shapes():
    model, shapes = ResNet20().eval(), []
    for stage in model.stages:
        stage.register_forward_hook(lambda m, i, o: shapes.append(tuple(o.shape)))
    with torch.no_grad():
        model(torch.randn(2, 3, 32, 32))
    assert shapes == [(2, 16, 32, 32), (2, 32, 16, 16), (2, 64, 8, 8)]


@pytest.mark.parametrize("shortcut", ["A", "B"])
@pytest.mark.parametrize("first", [True, False])
def test_block_adds_its_shortcut(shortcut, first):
    """With the residual branch silenced (last BN all zero) a block outputs relu(shortcut(x))."""
    torch.manual_seed(0)
    block = ResNet20(shortcut=shortcut).stages[1][0 if first else 1].eval()
    with torch.no_grad():
        block.bn2.weight.zero_()
        block.bn2.bias.zero_()
        x = torch.randn(2, 16 if first else 32, 16 if first else 8, 16 if first else 8)
        out = block(x)
        torch.testing.assert_close(out, F.relu(block.shortcut(x)))
        if first and shortcut == "A":  # subsample, then zero channels appended
            expected = torch.cat([x[:, :, ::2, ::2], torch.zeros(2, 16, 8, 8)], 1)
            torch.testing.assert_close(block.shortcut(x), expected)
        if not first:
            assert isinstance(block.shortcut, nn.Identity)
            torch.testing.assert_close(out, F.relu(x))


# ---------------------------------------------------------------- Swish and L1

def test_swish_values_and_gradient():
    x = torch.linspace(-8, 8, 201, dtype=torch.float64, requires_grad=True)
    y = Swish()(x)
    torch.testing.assert_close(y, x * torch.sigmoid(x))
    (grad,) = torch.autograd.grad(y.sum(), x)
    s = torch.sigmoid(x.detach())
    torch.testing.assert_close(grad, s * (1 + x.detach() * (1 - s)))
    assert torch.autograd.gradcheck(Swish(), (torch.randn(6, dtype=torch.float64, requires_grad=True),))


def test_swish_is_written_by_hand(monkeypatch):
    assert "silu" not in inspect.getsource(Swish).lower()

    def refuse(*args, **kwargs):
        raise AssertionError("Swish must not call silu")
    monkeypatch.setattr(F, "silu", refuse)
    monkeypatch.setattr(torch, "silu", refuse, raising=False)
    monkeypatch.setattr(nn.SiLU, "forward", refuse)
    simplenn_cifar10_dev.SimpleNN(activation="swish")(torch.randn(2, 3, 32, 32))


def test_l1_penalty_value_and_gradient():
    torch.manual_seed(0)
    model = simplenn_cifar10_dev.SimpleNN()  # with BN: its scales are "weight"s too
    with torch.no_grad():
        model.bn1.weight.uniform_(-1, 1)
    strength = 3e-4
    penalty = l1_penalty(model, strength)
    weights = {n: p for n, p in model.named_parameters() if n.endswith("weight")}
    assert "bn1.weight" in weights and "fc1.weight" in weights
    expected = strength * sum(p.detach().abs().sum() for p in weights.values())
    torch.testing.assert_close(penalty.detach(), expected)
    names, params = zip(*model.named_parameters())
    grads = torch.autograd.grad(penalty, params, allow_unused=True)
    for name, p, g in zip(names, params, grads):
        if name.endswith("weight"):
            torch.testing.assert_close(g, strength * torch.sign(p.detach()))
        else:  # biases and BN shifts are not penalised
            assert g is None or not g.any(), name


def test_lab2_torchvision_transforms():
    ops = simplenn_cifar10_dev.train_transform().transforms
    crop = next(t for t in ops if type(t).__name__ == "RandomCrop")
    assert (crop.size, crop.padding) == ((32, 32), 4)
    assert any(type(t).__name__ == "RandomHorizontalFlip" for t in ops)
    image = np.full((32, 32, 3), 128, np.uint8)
    out = simplenn_cifar10_dev.val_transform()(image)
    expected = (128 / 255 - torch.tensor(gpu_pipeline.CIFAR_MEAN)) / torch.tensor(gpu_pipeline.CIFAR_STD)
    torch.testing.assert_close(out[:, 0, 0], expected)


# ---------------------------------------------------------------- schedule

def starter_schedule(epochs, initial_lr, decay_epochs, decay):
    """The starter notebook's loop, verbatim in effect: the lr each epoch trains with."""
    rates, current = [], initial_lr
    for i in range(epochs):
        if i % decay_epochs == 0 and i != 0:
            current = current * decay
        rates.append(current)
    return rates


@pytest.mark.parametrize("initial_lr, decay_epochs, decay", [(0.1, 60, 0.1), (0.01, 10, 0.5), (0.05, 1, 0.9),
                                                              (0.01, 7, 1.0)])
def test_learning_rate_schedule_follows_the_starter(initial_lr, decay_epochs, decay):
    ours = [gpu_pipeline.learning_rate(i, initial_lr, decay_epochs, decay) for i in range(185)]
    np.testing.assert_allclose(ours, starter_schedule(185, initial_lr, decay_epochs, decay), rtol=1e-12)


def test_learning_rate_schedule_edges():
    assert gpu_pipeline.learning_rate(50, 0.1, None, 0.1) == 0.1
    assert gpu_pipeline.learning_rate(50, 0.1, 0, 0.1) == 0.1
    rates = [gpu_pipeline.learning_rate(i, 0.1, 60, 0.1) for i in (0, 59, 60, 119, 120, 179)]
    np.testing.assert_allclose(rates, [0.1, 0.1, 0.01, 0.01, 0.001, 0.001])


# ---------------------------------------------------------------- batched augmentation

def slow_crop_flip(images: np.ndarray, offsets: np.ndarray, flip: np.ndarray, padding: int = 4) -> np.ndarray:
    """One image at a time: zero-pad, slice the window, mirror it (what torchvision does)."""
    out = np.empty_like(images)
    h, w = images.shape[2:]
    for i in range(len(images)):
        padded = np.pad(images[i], ((0, 0), (padding, padding), (padding, padding)))
        dy, dx = offsets[i]
        window = padded[:, dy:dy + h, dx:dx + w]
        out[i] = window[:, :, ::-1] if flip[i] else window
    return out


def test_crops_are_shifted_copies_of_the_padded_image():
    gen = torch.Generator().manual_seed(1)
    images = torch.randint(1, 256, (64, 3, 32, 32), dtype=torch.uint8, generator=gen)  # no zeros
    offsets, flip = gpu_pipeline.sample_crop_flip(64, CPU, generator=gen)
    out = gpu_pipeline.crop_flip(images, offsets, flip)
    assert out.shape == (64, 3, 32, 32) and out.dtype == torch.uint8
    expected = slow_crop_flip(images.numpy(), offsets.numpy(), flip.numpy())
    np.testing.assert_array_equal(out.numpy(), expected)
    # the zero border shows exactly where the window leaves the image
    zero_rows = (out == 0).all(dim=(1, 3)).sum(1)  # [B] all-zero rows per image
    np.testing.assert_array_equal(zero_rows.numpy(), (offsets[:, 0] - 4).abs().numpy())


def test_every_offset_and_corner_matches_the_reference():
    images = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(2))
    grid = list(itertools.product(range(9), range(9), [False, True]))
    batch = images[torch.arange(len(grid)) % 2]                       # [162, 3, 32, 32]
    offsets = torch.tensor([(dy, dx) for dy, dx, _ in grid])          # [162, 2]
    flip = torch.tensor([f for _, _, f in grid])                      # [162]
    out = gpu_pipeline.crop_flip(batch, offsets, flip)
    np.testing.assert_array_equal(out.numpy(), slow_crop_flip(batch.numpy(), offsets.numpy(), flip.numpy()))


def test_centre_window_is_identity_and_flip_mirrors():
    images = torch.randint(0, 256, (5, 3, 32, 32), dtype=torch.uint8)
    centre = torch.full((5, 2), 4)
    keep = gpu_pipeline.crop_flip(images, centre, torch.zeros(5, dtype=torch.bool))
    mirror = gpu_pipeline.crop_flip(images, centre, torch.ones(5, dtype=torch.bool))
    assert torch.equal(keep, images)
    assert torch.equal(mirror, images.flip(-1))
    mixed = gpu_pipeline.crop_flip(images, centre, torch.tensor([True, False, True, False, False]))
    assert torch.equal(mixed[[0, 2]], images[[0, 2]].flip(-1)) and torch.equal(mixed[[1, 3, 4]], images[[1, 3, 4]])


def test_flip_rate_and_offsets_are_uniform():
    n = 40_000
    offsets, flip = gpu_pipeline.sample_crop_flip(n, CPU, generator=torch.Generator().manual_seed(3))
    assert abs(flip.float().mean().item() - 0.5) < 0.015
    for axis in range(2):
        counts = torch.bincount(offsets[:, axis], minlength=9)
        assert len(counts) == 9  # values 0..8 only
        assert (counts.float() / n - 1 / 9).abs().max().item() < 0.01
    # dy and dx are drawn independently: the corners are as likely as the centre
    joint = torch.bincount(offsets[:, 0] * 9 + offsets[:, 1], minlength=81).float() / n
    assert (joint - 1 / 81).abs().max().item() < 0.004


def test_normalizer_output():
    images = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8)
    x = gpu_pipeline.Normalizer(CPU)(images)
    assert x.dtype == torch.float32 and x.is_contiguous(memory_format=torch.channels_last)
    mean = torch.tensor(gpu_pipeline.CIFAR_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(gpu_pipeline.CIFAR_STD).view(1, 3, 1, 1)
    torch.testing.assert_close(x, (images.float() / 255 - mean) / std)
    assert gpu_pipeline.Normalizer(CPU, channels_last=False)(images).is_contiguous()


def test_amp_choices():
    assert gpu_pipeline.autocast_dtype(CPU, "off") is None
    assert gpu_pipeline.autocast_dtype(CPU, "bf16") is torch.bfloat16
    assert gpu_pipeline.autocast_dtype(CPU, "auto") in (None, torch.bfloat16)
    with pytest.raises(ValueError):
        gpu_pipeline.autocast_dtype(CPU, "fp8")


# ---------------------------------------------------------------- data layout

@pytest.fixture(scope="module")
def small_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("cifar") / "data"
    labels = make_fake_cifar(root)  # 256 / 64 / 64
    return root, labels


def test_fake_release_has_the_real_file_names(small_root):
    root, _ = small_root
    assert sorted(os.listdir(root)) == sorted([
        "train-images-batch.npy", "train-labels-batch.npy", "val-images-batch.npy",
        "val-labels-batch.npy", "test-images-batch.npy"])


@pytest.mark.parametrize("mode, count", [("train", 256), ("val", 64), ("test", 64)])
def test_load_split(small_root, mode, count):
    root, labels = small_root
    images, got = cifar_data.load_split(str(root), mode)
    assert images.shape == (count, 32, 32, 3) and images.dtype == np.uint8
    if mode == "test":
        assert got is None
    else:
        assert got.dtype == np.int64 and np.array_equal(got, labels[mode])
        assert np.bincount(got, minlength=10).min() >= count // 10
        # the colour really encodes the class
        centre = images[:, 8:24, 8:24].reshape(count, -1, 3).mean(1)
        nearest = np.argmin(((centre[:, None] - CLASS_COLOURS[None]) ** 2).sum(-1), 1)
        assert np.array_equal(nearest, got)


def test_dataset_class_serves_like_the_course_one(small_root):
    root, labels = small_root
    train = cifar_data.CIFAR10(str(root), mode="train", download=True)
    image, target = train[3]
    assert image.size == (32, 32) and image.mode == "RGB" and target == labels["train"][3]
    assert isinstance(target, int)
    test = cifar_data.CIFAR10(str(root), mode="test", transform=lambda im: np.asarray(im))
    assert len(test) == 64 and test[0].shape == (32, 32, 3)  # an image alone, no label
    assert "test" in repr(test)


def test_reader_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="train-images-batch.npy"):
        cifar_data.load_split(str(tmp_path), "train")
    with pytest.raises(ValueError, match="mode"):
        cifar_data.load_split(str(tmp_path), "holdout")
    np.save(tmp_path / "val-images-batch.npy", np.zeros((4, 3, 32, 32), np.uint8))  # CHW: not the layout
    with pytest.raises(ValueError, match=r"uint8 \[N, 32, 32, 3\]"):
        cifar_data.load_split(str(tmp_path), "val")
    np.save(tmp_path / "val-images-batch.npy", np.zeros((4, 32, 32, 3), np.uint8))
    np.save(tmp_path / "val-labels-batch.npy", np.array([0, 1, 2, 9], np.uint8))  # any int dtype
    _, labels = cifar_data.load_split(str(tmp_path), "val")
    assert labels.dtype == np.int64 and labels.tolist() == [0, 1, 2, 9]
    np.save(tmp_path / "val-labels-batch.npy", np.array([0, 1, 2], np.int64))
    with pytest.raises(ValueError, match="3 labels for 4 images"):
        cifar_data.load_split(str(tmp_path), "val")


# ---------------------------------------------------------------- training and predictions

@pytest.fixture(scope="module")
def train_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("cifar_train")
    labels = make_fake_cifar(root, n_train=2048, n_val=128, n_test=128, seed=0)
    return root, labels


def test_two_epochs_learn_the_colour_coded_classes(train_root, tmp_path):
    root, labels = train_root
    train_images, train_labels = cifar_data.load_split(str(root), "train")
    val_images, val_labels = cifar_data.load_split(str(root), "val")
    torch.manual_seed(0)
    model = simplenn_cifar10_dev.SimpleNN()  # BN + Swish
    checkpoint = tmp_path / "saved_model" / "simplenn.pth"
    history = gpu_pipeline.train(
        model, train_images, train_labels, val_images, val_labels, epochs=2, batch_size=32,
        lr=0.02, decay_epochs=1, decay=0.2, device="cpu", checkpoint_path=str(checkpoint), log=None)
    assert set(history) >= {"train_loss", "train_acc", "val_acc", "lr", "best_val_acc"}
    assert all(len(history[k]) == 2 for k in ("train_loss", "train_acc", "val_acc", "lr"))
    np.testing.assert_allclose(history["lr"], [0.02, 0.004])
    assert history["train_loss"][1] < history["train_loss"][0]
    assert history["val_acc"][-1] >= 0.95
    state = torch.load(checkpoint, map_location="cpu")
    assert set(state) == {"state_dict", "epoch", "lr"}

    test_images, _ = cifar_data.load_split(str(root), "test")
    predicted = gpu_pipeline.predict(model, test_images, device="cpu")
    assert len(predicted) == 128 and all(isinstance(p, int) for p in predicted)
    assert np.mean(np.array(predicted) == labels["test"]) >= 0.95


def test_resnet20_trains_and_writes_predictions_csv(small_root, tmp_path):
    from grader.predictions import read_predictions

    root, _ = small_root
    train_images, train_labels = cifar_data.load_split(str(root), "train")
    val_images, val_labels = cifar_data.load_split(str(root), "val")
    torch.manual_seed(0)
    model = ResNet20()
    history = gpu_pipeline.train(model, train_images[:64], train_labels[:64], val_images, val_labels,
                                 epochs=1, batch_size=32, lr=0.05, device="cpu", log=None)
    assert np.isfinite(history["train_loss"][0])
    assert next(model.parameters()).device.type == "cpu"
    assert model.conv1.weight.is_contiguous(memory_format=torch.channels_last)

    test_images, _ = cifar_data.load_split(str(root), "test")
    predicted = gpu_pipeline.predict(model, test_images, batch_size=25, device="cpu")  # uneven batches
    path = tmp_path / "predictions.csv"
    gpu_pipeline.write_predictions(str(path), predicted)
    lines = path.read_text().splitlines()
    assert lines[0] == "Id,Label" and len(lines) == 65
    assert [int(line.split(",")[0]) for line in lines[1:]] == list(range(64))
    parsed = read_predictions(path, num_classes=10, expected_ids=range(64))
    assert parsed.notes == [] and [parsed.labels[i] for i in range(64)] == predicted


def test_importing_the_modules_reads_and_prints_nothing(tmp_path):
    """Run from an empty directory with no ./data: any import-time read or print would show."""
    env = {**os.environ, "PYTHONPATH": str(HERE), "PYTHONDONTWRITEBYTECODE": "1"}
    code = "import " + ", ".join(MODULES)
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""  # no prints (library warnings on stderr are not the modules' doing)
    assert os.listdir(tmp_path) == []
