"""The assignment's 101-class Caltech subset as a torch Dataset, read from its CSV lists.

The release is a folder of `<class>/image_NNNN.jpg` files (64x64; some grayscale, which
are converted to RGB so every item is [3, 64, 64]) plus train.csv and validation.csv naming
the images of each split by their path relative to that folder.

What the CSV may look like (the handout does not show one, so the reader is lenient):
- with or without a header row; the first row is a header when none of its cells is an
  image file name (ends with .jpg, .jpeg, .png, .bmp or .gif);
- the path column is the first column holding an image file name in the first data row;
  other columns, such as a pandas index, are ignored unless they are the label column;
- optionally a label column: with a header, the one named label, class, class_name,
  category or target; without a header, the first other column that agrees with the
  folders. Agreeing means: every class name equals the image's folder, or the integers give
  one number per folder and one folder per number (so a pandas index is not taken for
  labels, except when every class has a single image, where it would do no harm). A named
  label column that disagrees is an error. Either way the label is taken from the path.
Labels index the sorted class-folder names (`classes`): those of this CSV's images unless
`classes` is given, which a validation set should take from its training set.
"""
import csv
import os
from typing import Callable, Optional, Sequence

from PIL import Image
from torch.utils.data import Dataset
from torchvision import transforms
from torchvision.transforms import functional as TF

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")
LABEL_HEADERS = ("label", "labels", "class", "class_name", "classname", "category", "target")
# The two images the handout asks to visualise (part 2).
HANDOUT_IMAGES = ("accordion/image_0001.jpg", "camera/image_0001.jpg")
# No statistics of the real images are given; 0.5 maps [0, 1] to [-1, 1].
MEAN = (0.5, 0.5, 0.5)
STD = (0.5, 0.5, 0.5)


def eval_transform() -> transforms.Compose:
    return transforms.Compose([transforms.ToTensor(),  # HxWx3 uint8 -> [3, H, W] in [0, 1]
                               transforms.Normalize(MEAN, STD)])


def train_transform(image_size: int = 64) -> transforms.Compose:
    """eval_transform plus mirror images and crops shifted by up to 4 pixels."""
    return transforms.Compose([
        transforms.RandomHorizontalFlip(),
        transforms.RandomCrop(image_size, padding=4, padding_mode="reflect"),
        transforms.ToTensor(),
        transforms.Normalize(MEAN, STD),
    ])


def is_image_name(cell: str) -> bool:
    return cell.strip().lower().endswith(IMAGE_EXTENSIONS)


def class_of(path: str) -> str:
    """The folder that holds the image: 'accordion' for 'accordion/image_0001.jpg'."""
    parts = path.replace("\\", "/").strip("/").split("/")
    if len(parts) < 2:
        raise ValueError(f"{path!r} is not inside a class folder (<class>/image_NNNN.jpg)")
    return parts[-2]


def load_image(path: str, transform: Optional[Callable] = None):
    """One image file as RGB (grayscale, palette and RGBA converted), then `transform`."""
    with Image.open(path) as image:
        image = image.convert("RGB")
    return transform(image) if transform is not None else TF.to_tensor(image)


def read_split_csv(csv_path: str) -> tuple[list[str], Optional[list[str]]]:
    """(image paths, label cells or None) from a split CSV, following the module docstring."""
    with open(csv_path, newline="", encoding="utf-8-sig") as f:  # -sig: drop an Excel BOM
        rows = [[cell.strip() for cell in row] for row in csv.reader(f)]
    rows = [row for row in rows if any(row)]
    if not rows:
        raise ValueError(f"{csv_path} lists no images")
    header = None if any(is_image_name(cell) for cell in rows[0]) else rows[0]
    data = rows[1:] if header is not None else rows
    if not data:
        raise ValueError(f"{csv_path} has a header but lists no images")
    path_column = next((i for i, cell in enumerate(data[0]) if is_image_name(cell)), None)
    if path_column is None:
        raise ValueError(f"{csv_path}: no column of image file names ({', '.join(IMAGE_EXTENSIONS)}) "
                         f"in the first data row {data[0]}")
    for line, row in enumerate(data, start=2 if header else 1):
        if len(row) <= path_column or not is_image_name(row[path_column]):
            raise ValueError(f"{csv_path} line {line}: no image path in column {path_column + 1}")
    paths = [row[path_column].replace("\\", "/") for row in data]

    others = [i for i in range(max(len(row) for row in data)) if i != path_column]
    if header is not None:
        named = [i for i in others if i < len(header) and header[i].lower() in LABEL_HEADERS]
        if not named:
            return paths, None
        label_column = named[0]
        labels = [row[label_column] if label_column < len(row) else "" for row in data]
        _check_labels(csv_path, paths, labels, strict=True)
        return paths, labels
    for column in others:
        labels = [row[column] if column < len(row) else "" for row in data]
        if _check_labels(csv_path, paths, labels, strict=False):
            return paths, labels
    return paths, None


def _check_labels(csv_path: str, paths: list[str], labels: list[str], strict: bool) -> bool:
    """Whether `labels` agree with the images' folders; strict: raise when they do not."""
    folders = [class_of(p) for p in paths]
    if all(label == folder for label, folder in zip(labels, folders)):
        return True
    problem = None
    if all(label.lstrip("-").isdigit() for label in labels):
        number_of, folder_of = {}, {}
        for label, folder in zip(labels, folders):
            if number_of.setdefault(folder, label) != label:
                problem = f"folder {folder!r} has labels {number_of[folder]} and {label}"
                break
            if folder_of.setdefault(label, folder) != folder:
                problem = f"label {label} is given to folders {folder_of[label]!r} and {folder!r}"
                break
        else:
            return True
    else:
        row = next(i for i, (label, folder) in enumerate(zip(labels, folders)) if label != folder)
        problem = f"row {row + 1}: label {labels[row]!r} but the image is in {folders[row]!r}"
    if strict:
        raise ValueError(f"{csv_path}: the label column disagrees with the class folders: {problem}")
    return False


class CaltechDataset(Dataset):
    """One split; items are (image, label) with label an index into `classes`.

    transform=None gives the image as a float tensor [3, H, W] in [0, 1]; pass
    eval_transform() or train_transform() to normalise. target_transform, if given, maps
    the integer label (e.g. to a one-hot vector).
    """

    def __init__(self, csv_path: str, root: str, transform: Optional[Callable] = None,
                 classes: Optional[Sequence[str]] = None,
                 target_transform: Optional[Callable] = None):
        self.root = root
        self.transform = transform
        self.target_transform = target_transform
        self.paths, self.csv_labels = read_split_csv(csv_path)
        folders = [class_of(p) for p in self.paths]
        self.classes = sorted(set(folders)) if classes is None else list(classes)
        self.class_to_idx = {name: i for i, name in enumerate(self.classes)}
        unknown = sorted(set(folders) - set(self.class_to_idx))
        if unknown:
            raise ValueError(f"{csv_path} has images of classes not in `classes`: {unknown[:5]}")
        self.labels = [self.class_to_idx[folder] for folder in folders]

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int):
        image = load_image(os.path.join(self.root, self.paths[index]), self.transform)
        label = self.labels[index]
        if self.target_transform is not None:
            label = self.target_transform(label)
        return image, label
