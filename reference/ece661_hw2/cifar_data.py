"""Read the ECE661 CIFAR-10 release with numpy alone, as the course's `tools.dataset` does.

Why a reader of our own: the course ships `tools.dataset.CIFAR10(root, mode, download=True,
transform=None, target_transform=None)`, which downloads a zip and casts labels with
`np.int`, which NumPy 1.24 removed. The reference and the tests need the same files read
offline on current NumPy, and the fast training path needs the raw uint8 arrays, not PIL
images one by one.

The layout, from public copies of the course's `tools/dataset.py` (2021 and 2022) and of
its starter notebooks:

    <root>/                       root is DATA_ROOT = "./data"; the zips unpack into it
        train-images-batch.npy    45,000 images   (read by mode='train')
        train-labels-batch.npy    45,000 labels
        val-images-batch.npy       5,000 images   (mode='val')
        val-labels-batch.npy       5,000 labels
        test-images-batch.npy     10,000 images   (mode='test': images only, no labels)

Established from that source: the five file names, that each is one `np.load`ed array at
the top of root, that test mode reads no labels and yields images alone, and the 45K/5K/10K
split (the notebooks' own words). Inferred, not seen in a file: each image is
`Image.fromarray(data[i])`, so the images array is uint8 [N, 32, 32, 3] (HWC, RGB), the
only layout PIL turns into a 32x32 RGB image. The labels' stored dtype is not known; any
integer array is accepted and returned as int64.
"""
import os
from typing import Callable, Optional

import numpy as np
from PIL import Image
from torch.utils.data import Dataset

MODES = ("train", "val", "test")
IMAGE_FILES = {mode: f"{mode}-images-batch.npy" for mode in MODES}
LABEL_FILES = {"train": "train-labels-batch.npy", "val": "val-labels-batch.npy"}  # test: none
SPLIT_SIZES = {"train": 45_000, "val": 5_000, "test": 10_000}  # the real release
IMAGE_SHAPE = (32, 32, 3)  # HWC
NUM_CLASSES = 10
CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
           "dog", "frog", "horse", "ship", "truck")


def _load(root: str, name: str) -> np.ndarray:
    path = os.path.join(root, name)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path} is missing: unpack the course's CIFAR-10 zips into {root}")
    return np.load(path, allow_pickle=False)


def check_images(images: np.ndarray, where: str = "images") -> np.ndarray:
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != IMAGE_SHAPE:
        raise ValueError(f"{where}: expected uint8 [N, 32, 32, 3], got {images.dtype} {list(images.shape)}")
    return images


def check_labels(labels: np.ndarray, count: int, where: str = "labels") -> np.ndarray:
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"{where}: expected integer [N], got {labels.dtype} {list(labels.shape)}")
    if len(labels) != count:
        raise ValueError(f"{where}: {len(labels)} labels for {count} images")
    if count and (labels.min() < 0 or labels.max() >= NUM_CLASSES):
        raise ValueError(f"{where}: labels must lie in 0-{NUM_CLASSES - 1}")
    return labels.astype(np.int64)


def load_split(root: str, mode: str = "train") -> tuple[np.ndarray, Optional[np.ndarray]]:
    """(images uint8 [N, 32, 32, 3], labels int64 [N]) for train/val; (images, None) for test."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
    images = check_images(_load(root, IMAGE_FILES[mode]), IMAGE_FILES[mode])
    if mode not in LABEL_FILES:
        return images, None
    labels = check_labels(_load(root, LABEL_FILES[mode]), len(images), LABEL_FILES[mode])
    return images, labels


class ArrayDataset(Dataset):
    """HWC uint8 images (and labels) in memory, served like the course's dataset.

    Item i is `(transform(PIL image), target_transform(label))`, or the transformed image
    alone when there are no labels (the test split).
    """

    def __init__(self, images: np.ndarray, labels: Optional[np.ndarray] = None,
                 transform: Optional[Callable] = None, target_transform: Optional[Callable] = None):
        self.data = check_images(images)
        self.targets = None if labels is None else check_labels(np.asarray(labels), len(images))
        self.transform = transform
        self.target_transform = target_transform

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int):
        image = Image.fromarray(self.data[index])  # [32, 32, 3] uint8 -> RGB
        if self.transform is not None:
            image = self.transform(image)
        if self.targets is None:
            return image
        target = int(self.targets[index])
        if self.target_transform is not None:
            target = self.target_transform(target)
        return image, target


class CIFAR10(ArrayDataset):
    """Drop-in for `tools.dataset.CIFAR10` that never touches the network.

    `download` is accepted for the starter's calls (`download=True`) and does nothing: the
    files must already be under root.
    """

    def __init__(self, root: str, mode: str = "train", download: bool = True,
                 transform: Optional[Callable] = None, target_transform: Optional[Callable] = None):
        images, labels = load_split(root, mode)
        super().__init__(images, labels, transform, target_transform)
        self.root = root
        self.mode = mode

    def __repr__(self) -> str:
        return f"CIFAR10(root={self.root!r}, mode={self.mode!r}, {len(self)} images)"
