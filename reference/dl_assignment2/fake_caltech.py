"""A small generated stand-in for the assignment's Caltech subset (tests only), same layout.

<root>/<class>/image_NNNN.jpg, 64x64, plus <root>/train.csv and <root>/validation.csv
listing `<class>/image_NNNN.jpg`. Every class has its own colour and its own stripe
pattern (direction, or rings or checks), shifted at random and overlaid with noise, so a
small CNN can learn the classes in a few epochs. Every third image is saved grayscale,
as some real ones are; there only the pattern tells the class. The class names include
accordion and camera, so the handout's two visualisation images exist.
"""
import csv
import os
from typing import Optional, Sequence

import numpy as np
from PIL import Image

CLASSES = ("accordion", "airplanes", "camera", "dolphin", "pizza", "sunflower")
COLOURS = ((220, 40, 40), (40, 190, 60), (50, 70, 220), (230, 210, 40), (200, 50, 200),
           (40, 200, 210))
PATTERNS = ("horizontal", "vertical", "diagonal", "checks", "rings", "antidiagonal")
SIZE = 64


def pattern(kind: str, size: int, period: float, phase: float) -> np.ndarray:
    """A [size, size] map in [0, 1]: two-level stripes of the given kind."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float64)
    centre = (size - 1) / 2
    coordinate = {
        "horizontal": y,
        "vertical": x,
        "diagonal": (x + y) / np.sqrt(2),
        "antidiagonal": (x - y) / np.sqrt(2),
        "rings": np.hypot(x - centre, y - centre),
    }
    if kind == "checks":
        wave = np.sin(2 * np.pi * (x + phase) / period) * np.sin(2 * np.pi * (y + phase) / period)
    else:
        wave = np.sin(2 * np.pi * (coordinate[kind] + phase) / period)
    return (wave > 0).astype(np.float64)


def fake_image(label: int, rng: np.random.Generator, size: int = SIZE) -> np.ndarray:
    """[size, size, 3] uint8: the class colour, darkened along the class pattern, plus noise."""
    stripes = pattern(PATTERNS[label % len(PATTERNS)], size, period=rng.uniform(10, 14),
                      phase=rng.uniform(0, 14))
    shade = 0.35 + 0.65 * stripes                                   # [size, size]
    colour = np.array(COLOURS[label % len(COLOURS)], dtype=np.float64) * rng.uniform(0.8, 1.1)
    image = shade[..., None] * colour + rng.normal(0.0, 15.0, (size, size, 3))
    return np.clip(image, 0, 255).astype(np.uint8)


def make_fake_caltech(root, classes: Sequence[str] = CLASSES, per_class: int = 12,
                      seed: int = 0, header: bool = True, label: Optional[str] = "name") -> dict:
    """Write the images and both CSVs under root; return {'train': n, 'validation': n}.

    Images image_0001 .. image_<per_class> of each class; every fourth (0004, 0008, ...) goes
    to validation.csv, the rest (image_0001 among them) to train.csv. The CSVs have a header
    `path,label` when header is True; label is 'name' (class name), 'index' (position in the
    sorted class names) or None (a path column only).
    """
    if label not in ("name", "index", None):
        raise ValueError(f"label must be 'name', 'index' or None, not {label!r}")
    rng = np.random.default_rng(seed)
    sorted_names = sorted(classes)
    rows = {"train": [], "validation": []}
    for class_number, name in enumerate(classes):
        os.makedirs(os.path.join(root, name), exist_ok=True)
        for n in range(1, per_class + 1):
            relative = f"{name}/image_{n:04d}.jpg"
            image = Image.fromarray(fake_image(class_number, rng))
            if n % 3 == 0:
                image = image.convert("L")  # one channel on disk
            image.save(os.path.join(root, relative), quality=95)
            split = "validation" if n % 4 == 0 else "train"
            cells = [relative]
            if label == "name":
                cells.append(name)
            elif label == "index":
                cells.append(str(sorted_names.index(name)))
            rows[split].append(cells)
    for split, split_rows in rows.items():
        with open(os.path.join(root, f"{split}.csv"), "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f, lineterminator="\n")
            if header:
                writer.writerow(["path", "label"] if label else ["path"])
            writer.writerows(split_rows)
    return {split: len(split_rows) for split, split_rows in rows.items()}
