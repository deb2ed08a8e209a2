"""PACS as a torch Dataset: <root>/{train,val}/<domain>/<category>/<image>.

PACS has 4 domains (art_painting, cartoon, photo, sketch) and 7 categories (dog, elephant,
giraffe, guitar, horse, house, person); its images are 227x227. Labels are indices into
the sorted folder names, so they do not depend on the order the file system lists them in.
"""
import os

import numpy as np
from skimage import io
from skimage.util import img_as_ubyte
from torch.utils.data import Dataset
from torchvision import transforms

# Per-channel statistics of the PACS training images (from the starter code).
PACS_MEAN = (0.7659, 0.7463, 0.7173)
PACS_STD = (0.3089, 0.3181, 0.3470)
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")


def default_transform(is_training: bool) -> transforms.Compose:
    steps = [transforms.ToTensor()]  # HxWx3 uint8 -> [3, H, W] float in [0, 1]
    if is_training:
        steps.append(transforms.RandomHorizontalFlip())  # a mirrored dog is still a dog
    steps.append(transforms.Normalize(PACS_MEAN, PACS_STD))
    return transforms.Compose(steps)


def to_rgb(image: np.ndarray) -> np.ndarray:
    """Any image skimage reads -> HxWx3 uint8, so every sample has the same shape."""
    if image.dtype != np.uint8:
        image = img_as_ubyte(image)
    if image.ndim == 2:                      # grayscale
        image = np.stack([image] * 3, axis=-1)
    elif image.shape[-1] == 1:
        image = np.repeat(image, 3, axis=-1)
    elif image.shape[-1] == 4:               # RGBA: PACS has no meaningful transparency
        image = image[..., :3]
    return np.ascontiguousarray(image)


def _subdirs(path: str) -> list[str]:
    return sorted(d for d in os.listdir(path) if os.path.isdir(os.path.join(path, d)))


class PACSDataset(Dataset):
    """Images of one split; each item is (image tensor [3, H, W], label index)."""

    def __init__(self, root_dir, label_type="domain", is_training=False, transform=None):
        if label_type not in ("domain", "category"):
            raise ValueError(f"label_type must be 'domain' or 'category', not {label_type!r}")
        self.label_type = label_type
        self.is_training = is_training
        self.split_dir = os.path.join(root_dir, "train" if is_training else "val")
        if not os.path.isdir(self.split_dir):
            raise FileNotFoundError(f"no PACS split folder at {self.split_dir}")
        self.transform = transform if transform is not None else default_transform(is_training)

        self.samples = []  # (path, domain, category), in sorted order
        for domain in _subdirs(self.split_dir):
            for category in _subdirs(os.path.join(self.split_dir, domain)):
                folder = os.path.join(self.split_dir, domain, category)
                for name in sorted(os.listdir(folder)):
                    if name.lower().endswith(IMAGE_EXTENSIONS):
                        self.samples.append((os.path.join(folder, name), domain, category))

        self.domains = sorted({d for _, d, _ in self.samples})
        self.categories = sorted({c for _, _, c in self.samples})
        self.label_list = self.domains if label_type == "domain" else self.categories
        self.label_to_id = {name: i for i, name in enumerate(self.label_list)}

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, index):
        path, domain, category = self.samples[index]
        image = to_rgb(io.imread(path))
        label = self.label_to_id[domain if self.label_type == "domain" else category]
        return self.transform(image), label
