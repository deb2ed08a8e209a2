"""A tiny generated stand-in for PACS, laid out like the real release (tests only).

Every image is a flat background whose colour encodes the domain, with a centred square
whose colour encodes the category, plus mild noise. Both label types are therefore
learnable from colour alone, so a few training steps can lift accuracy above chance.
"""
import os

import numpy as np
from PIL import Image

DOMAINS = ("art_painting", "cartoon", "photo", "sketch")
CATEGORIES = ("dog", "elephant", "giraffe", "guitar", "horse", "house", "person")

# RGB colours far apart from each other within each table.
DOMAIN_COLOURS = ((230, 40, 40), (40, 200, 40), (40, 40, 230), (235, 235, 235))
CATEGORY_COLOURS = ((0, 0, 0), (255, 255, 0), (0, 255, 255), (255, 0, 255),
                    (128, 64, 0), (0, 128, 128), (128, 128, 255))


def fake_image(domain: int, category: int, size: int, rng: np.random.Generator) -> np.ndarray:
    image = np.empty((size, size, 3), dtype=np.float64)
    image[:] = DOMAIN_COLOURS[domain]
    lo, hi = size // 4, size - size // 4  # the central half
    image[lo:hi, lo:hi] = CATEGORY_COLOURS[category]
    image += rng.normal(0.0, 12.0, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)  # [size, size, 3]


def make_fake_pacs(root, images_per_class=2, size=227, seed=0):
    """Write <root>/{train,val}/<domain>/<category>/pic_NNN.jpg; return the count per split."""
    rng = np.random.default_rng(seed)
    for split in ("train", "val"):
        for d, domain in enumerate(DOMAINS):
            for c, category in enumerate(CATEGORIES):
                folder = os.path.join(root, split, domain, category)
                os.makedirs(folder, exist_ok=True)
                for n in range(1, images_per_class + 1):
                    Image.fromarray(fake_image(d, c, size, rng)).save(
                        os.path.join(folder, f"pic_{n:03d}.jpg"), quality=95)
    return len(DOMAINS) * len(CATEGORIES) * images_per_class
