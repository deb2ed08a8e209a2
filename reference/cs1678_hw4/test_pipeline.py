"""PACSDataset, training and kernel analysis end to end on a generated PACS stand-in.

Kept small for a 2-core CPU: one image per (domain, category) and split, batches of 8.
Flags are parsed the way absl's app.run would, and unparsed after each test.
"""
import os

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import io
from torchvision import transforms

import cnn_trainer
from fake_pacs import CATEGORIES, DOMAINS, make_fake_pacs
from pacs import PACS_MEAN, PACS_STD, PACSDataset

PER_CLASS = 1
PER_SPLIT = len(DOMAINS) * len(CATEGORIES) * PER_CLASS  # 28


@pytest.fixture(scope="module")
def fake_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("pacs") / "pacs_dataset"
    assert make_fake_pacs(root, images_per_class=PER_CLASS) == PER_SPLIT
    return root


@pytest.fixture
def set_flags():
    """set_flags(name=value, ...) parses a fresh command line; defaults for the rest."""
    def parse(**values):
        cnn_trainer.FLAGS.unparse_flags()
        cnn_trainer.FLAGS(["cnn_trainer"] + [f"--{k}={v}" for k, v in values.items()])
    yield parse
    cnn_trainer.FLAGS.unparse_flags()


def test_flag_defaults(set_flags):
    set_flags()
    F = cnn_trainer.FLAGS
    assert (F.task_type, F.learning_rate, F.weight_decay, F.batch_size, F.epochs) == \
        ("training", 1e-3, 0.0, 128, 100)
    assert (F.experiment_name, F.label_type, F.model_checkpoint) == ("exp", "domain", "")
    assert (F.dataset_root, F.model_type) == ("pacs_dataset", "AlexNet")
    assert cnn_trainer.LABEL_SIZE == {"domain": 4, "category": 7}
    for name in ("AlexNet", "AlexNetLargeKernel", "AlexNetAvgPooling", "AlexNetTiny",
                 "AlexNetDilation", "PACSDataset"):
        assert hasattr(cnn_trainer, name), name


@pytest.mark.parametrize("is_training", [False, True])
@pytest.mark.parametrize("label_type", ["domain", "category"])
def test_dataset_finds_images_and_sorted_labels(fake_root, label_type, is_training):
    ds = PACSDataset(str(fake_root), label_type=label_type, is_training=is_training)
    assert len(ds) == PER_SPLIT
    names = sorted(DOMAINS) if label_type == "domain" else sorted(CATEGORIES)
    assert ds.label_list == names
    labels = [ds[i][1] for i in range(len(ds))]
    assert np.bincount(labels).tolist() == [PER_SPLIT // len(names)] * len(names)
    # each label is the index of the folder the file sits in
    level = -3 if label_type == "domain" else -2
    for (path, _, _), label in zip(ds.samples, labels):
        assert names.index(path.split(os.sep)[level]) == label
    image, _ = ds[0]
    assert image.shape == (3, 227, 227) and image.dtype == torch.float32
    has_flip = any(isinstance(t, transforms.RandomHorizontalFlip) for t in ds.transform.transforms)
    assert has_flip == is_training


def test_default_transform_normalises_with_pacs_statistics(fake_root):
    ds = PACSDataset(str(fake_root), is_training=False)  # val: no random flip
    raw = io.imread(ds.samples[5][0]).astype(np.float64) / 255.0  # [227, 227, 3]
    expected = (raw - np.array(PACS_MEAN)) / np.array(PACS_STD)
    got = ds[5][0].permute(1, 2, 0).double().numpy()
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_grayscale_and_rgba_become_rgb(tmp_path):
    folder = tmp_path / "val" / "sketch" / "dog"
    folder.mkdir(parents=True)
    gray = np.arange(227 * 227, dtype=np.uint32).reshape(227, 227) % 251
    Image.fromarray(gray.astype(np.uint8), mode="L").save(folder / "pic_001.png")
    rgba = np.zeros((227, 227, 4), dtype=np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 17
    Image.fromarray(rgba, mode="RGBA").save(folder / "pic_002.png")
    (folder / "notes.txt").write_text("not an image")

    ds = PACSDataset(str(tmp_path), transform=transforms.ToTensor())
    assert len(ds) == 2
    g, r = ds[0][0], ds[1][0]
    assert g.shape == r.shape == (3, 227, 227)
    assert torch.equal(g[0], g[1]) and torch.equal(g[1], g[2])
    assert abs(g[0, 0, 5].item() - 5 / 255) < 1e-6
    assert torch.allclose(r[0], torch.full((227, 227), 200 / 255)) and r[1:].abs().max() == 0


def test_visualize_kernels_draws_first_channels(tmp_path, monkeypatch):
    drawn = []
    real_heatmap = cnn_trainer.sns.heatmap
    monkeypatch.setattr(cnn_trainer.sns, "heatmap",
                        lambda data, **kw: drawn.append(data.shape) or real_heatmap(data, **kw))
    path = cnn_trainer.visualize_kernels("Conv-X", torch.randn(20, 15, 3, 3),
                                         saving_prefix=str(tmp_path / "k"))
    assert path == str(tmp_path / "k" / "conv-x.png")
    assert drawn == [(12 * 4 - 1, 12 * 4 - 1)]  # 12 x 12 kernels of 3x3 with 1-pixel gutters
    assert io.imread(path).ndim == 3


def test_training_then_kernel_analysis(fake_root, tmp_path, set_flags, monkeypatch):
    exp = tmp_path / "exp"
    set_flags(task_type="training", dataset_root=fake_root, experiment_name=exp,
              epochs=1, batch_size=8, label_type="domain")
    torch.manual_seed(0)
    best = cnn_trainer.model_training()

    checkpoint = torch.load(exp / "best_model.pt", map_location="cpu", weights_only=True)
    assert "features.0.weight" in checkpoint and "model" not in checkpoint  # a bare state_dict, as the starter saves
    assert 0.0 <= best <= 1.0
    assert any(name.startswith("events.out.tfevents") for name in os.listdir(exp))

    # the stored weights reproduce the stored validation accuracy
    model = cnn_trainer.AlexNet({"num_classes": 4})
    model.load_state_dict(checkpoint)
    val = torch.utils.data.DataLoader(PACSDataset(str(fake_root)), batch_size=8)
    _, accuracy = cnn_trainer.evaluate(model, val, torch.nn.CrossEntropyLoss(), "cpu")
    assert accuracy == pytest.approx(best)

    # Part C through main(), as `--task_type=analysis` runs it; PNGs land in ./kernel
    calls = []
    real = cnn_trainer.visualize_kernels
    monkeypatch.setattr(cnn_trainer, "visualize_kernels",
                        lambda name, w, **kw: calls.append((name, w.detach().clone())) or real(name, w, **kw))
    monkeypatch.chdir(tmp_path)
    set_flags(task_type="analysis", model_checkpoint=exp / "best_model.pt")
    cnn_trainer.main([])
    assert [(name, tuple(w.shape)) for name, w in calls] == [
        ("Conv2d-1", (96, 3, 11, 11)), ("Conv2d-4", (256, 96, 5, 5)), ("Conv2d-7", (384, 256, 3, 3)),
        ("Conv2d-9", (384, 384, 3, 3)), ("Conv2d-11", (256, 384, 3, 3))]
    for (name, w), index in zip(calls, (0, 3, 6, 8, 10)):  # the trained kernels, not fresh ones
        assert torch.equal(w, checkpoint[f"features.{index}.weight"]), name
    pngs = sorted(os.listdir(tmp_path / "kernel"))
    assert pngs == ["conv2d-1.png", "conv2d-11.png", "conv2d-4.png", "conv2d-7.png", "conv2d-9.png"]
    for name in pngs:
        assert io.imread(tmp_path / "kernel" / name).shape[0] > 100


def test_training_learns_and_keeps_the_best_epoch(fake_root, tmp_path, set_flags, monkeypatch):
    # chance is 1/4 on 28 validation images; the domain is the background colour
    exp = tmp_path / "tiny"
    set_flags(dataset_root=fake_root, experiment_name=exp, model_type="AlexNetTiny",
              epochs=5, batch_size=8, learning_rate=1e-4)
    accuracies = []
    real = cnn_trainer.evaluate
    monkeypatch.setattr(cnn_trainer, "evaluate",
                        lambda *a: accuracies.append(real(*a)[1]) or (0.0, accuracies[-1]))
    torch.manual_seed(0)
    best = cnn_trainer.model_training()
    assert len(accuracies) == 5 and best == max(accuracies) >= 0.5
    checkpoint = torch.load(exp / "best_model.pt", map_location="cpu", weights_only=True)
    assert checkpoint["classifier.7.weight"].shape == (4, 1024)
    # the file holds the best epoch's weights: they reproduce its accuracy
    model = cnn_trainer.AlexNetTiny({"num_classes": 4})
    model.load_state_dict(checkpoint)
    val = torch.utils.data.DataLoader(PACSDataset(str(fake_root)), batch_size=8)
    assert real(model, val, torch.nn.CrossEntropyLoss(), "cpu")[1] == pytest.approx(best)


def test_unparsed_flags_between_tests():
    # set_flags unparses on teardown, so state from other tests cannot leak in here
    assert not cnn_trainer.FLAGS.is_parsed()
