"""A small generated stand-in for the ECE661 CIFAR-10 release, in its file layout (tests only).

Each image is filled with its class's colour plus Gaussian noise, so the class can be read
from colour alone and a small model learns it in a couple of epochs. Colours stay
recognisable after a padded random crop (which only blacks out a border) and a flip.
The layout is the one `cifar_data` reads; see its docstring for what is known about it.
"""
import os

import numpy as np

import cifar_data

# One RGB colour per class, each at least 100 from every other in RGB space.
CLASS_COLOURS = np.array([
    (220, 40, 40), (40, 200, 40), (40, 60, 220), (235, 235, 60), (220, 60, 220),
    (60, 220, 230), (245, 245, 245), (30, 30, 30), (240, 140, 20), (120, 120, 130),
], dtype=np.float64)


def fake_images(labels: np.ndarray, rng: np.random.Generator, noise: float = 20.0) -> np.ndarray:
    """uint8 [N, 32, 32, 3]: image i is CLASS_COLOURS[labels[i]] plus noise."""
    jitter = rng.normal(0.0, noise, (len(labels), *cifar_data.IMAGE_SHAPE))  # [N, 32, 32, 3]
    images = CLASS_COLOURS[labels][:, None, None, :] + jitter
    return np.clip(np.rint(images), 0, 255).astype(np.uint8)  # [N, 32, 32, 3]


def fake_split(count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(images, labels) with the classes as balanced as count allows, shuffled."""
    labels = rng.permutation(np.arange(count) % cifar_data.NUM_CLASSES).astype(np.int64)  # [N]
    return fake_images(labels, rng), labels


def make_fake_cifar(root, n_train: int = 256, n_val: int = 64, n_test: int = 64,
                    seed: int = 0) -> dict[str, np.ndarray]:
    """Write the five .npy files under root; return every split's labels (the test's too)."""
    rng = np.random.default_rng(seed)
    os.makedirs(root, exist_ok=True)
    labels = {}
    for mode, count in (("train", n_train), ("val", n_val), ("test", n_test)):
        images, labels[mode] = fake_split(count, rng)
        np.save(os.path.join(root, cifar_data.IMAGE_FILES[mode]), images)
        if mode in cifar_data.LABEL_FILES:  # the release keeps the test labels back
            np.save(os.path.join(root, cifar_data.LABEL_FILES[mode]), labels[mode])
    return labels
