"""Deep Learning Assignment 2 (2024) reference: LeNet5, an improved LeNet5 and ResNet-18
on the 101-class Caltech subset (64x64 RGB images), plus activation maps and training.

This is what a student's notebook holds, as one module so it can be imported and graded:
nothing trains, reads data or draws at import time. Training runs from a shell:

  python assignment2.py --root caltech --model lenet5 --epochs 30

with caltech/train.csv, caltech/validation.csv and caltech/<class>/image_NNNN.jpg (the
dataset reader is caltech_data.py, beside this file, imported only when training).

The handout leaves LeNet5's conv padding open. Without padding (PyTorch's default) a
64x64 image becomes 60 -> 15 -> 11 -> 2, so 64 * 2 * 2 = 256 features reach the 1021-unit
layer and the model has 410,526 parameters; with padding 2 ("same") it is 64 -> 16 -> 16
-> 4, 1024 features and 1,194,654 parameters. Both readings are fair.

Models return raw class scores [B, num_classes]; the softmax of the handout's last layer
is inside nn.CrossEntropyLoss. Cross-entropy on class indices is the same number as on
one-hot targets, and `train`/`evaluate` accept either (a [B] index or a [B, C] one-hot).
"""
import math
from typing import Iterable, Optional, Union

import torch
import torch.nn as nn
import torch.nn.functional as F

NUM_CLASSES = 101
IMAGE_SIZE = 64

# Trainable parameters at 101 classes; checked by test_assignment2.py.
LENET5_PARAMS = {0: 410_526, 2: 1_194_654}  # by conv padding
IMPROVED_LENET5_PARAMS = 1_197_056          # padding 2 plus batch-norm scales and shifts
RESNET18_PARAMS = 11_228_325                # equals torchvision.models.resnet18(num_classes=101)


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def lenet5_sides(padding: int, image_size: int = IMAGE_SIZE) -> tuple[int, int, int, int]:
    """Spatial side after conv1, pool1, conv2 and pool2 (5x5 convs, 4x4 pools of stride 4)."""
    conv1 = image_size + 2 * padding - 4
    pool1 = conv1 // 4
    conv2 = pool1 + 2 * padding - 4
    pool2 = conv2 // 4
    if pool2 < 1:
        raise ValueError(f"a {image_size}x{image_size} image with padding {padding} leaves "
                         f"nothing after the second pool")
    return conv1, pool1, conv2, pool2


class LeNet5(nn.Module):
    """LeNet5 as the handout lists it.

    conv1 = Conv 5x5, 3 -> 32, stride 1 + ReLU;  pool1 = MaxPool 4, stride 4
    conv2 = Conv 5x5, 32 -> 64, stride 1 + ReLU; pool2 = MaxPool 4, stride 4
    classifier = Flatten, Linear -> 1021 + ReLU, Linear 1021 -> 84 + ReLU, Linear 84 -> classes

    `conv1` and `conv2` end with their ReLU, so their outputs are the activations that part 2
    of the handout asks to draw (see conv_activations).
    """

    def __init__(self, num_classes: int = NUM_CLASSES, padding: int = 0,
                 image_size: int = IMAGE_SIZE):
        super().__init__()
        self.padding = padding
        side = lenet5_sides(padding, image_size)[-1]
        # not inplace: a hook on the Conv2d would otherwise see its output after the ReLU
        self.conv1 = nn.Sequential(nn.Conv2d(3, 32, 5, stride=1, padding=padding), nn.ReLU())
        self.pool1 = nn.MaxPool2d(4, stride=4)
        self.conv2 = nn.Sequential(nn.Conv2d(32, 64, 5, stride=1, padding=padding), nn.ReLU())
        self.pool2 = nn.MaxPool2d(4, stride=4)
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(64 * side * side, 1021), nn.ReLU(),
            nn.Linear(1021, 84), nn.ReLU(),
            nn.Linear(84, num_classes),  # raw scores: the softmax is in the loss
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool1(self.conv1(x))  # [B, 3, 64, 64] -> [B, 32, 60, 60] -> [B, 32, 15, 15]
        x = self.pool2(self.conv2(x))  # -> [B, 64, 11, 11] -> [B, 64, 2, 2]  (padding 0)
        return self.classifier(x)      # -> [B, 256] -> [B, num_classes]


class ImprovedLeNet5(nn.Module):
    """Part 1(b): LeNet5's layout with "same" padding, batch norm, dropout and Xavier init.

    Each conv is followed by BatchNorm2d before its ReLU, the two hidden Linear layers by
    BatchNorm1d, and dropout precedes each hidden Linear. Padding 2 keeps the border pixels
    (1024 features instead of 256). Weights are Xavier-uniform, biases zero. Train it with
    caltech_data.train_transform() (flips and shifted crops) and some weight decay. Its
    accuracy on the real data was not measured here; the handout asks for 65% or more.
    """

    def __init__(self, num_classes: int = NUM_CLASSES, dropout: float = 0.5,
                 padding: int = 2, image_size: int = IMAGE_SIZE):
        super().__init__()
        side = lenet5_sides(padding, image_size)[-1]
        self.conv1 = nn.Sequential(nn.Conv2d(3, 32, 5, padding=padding), nn.BatchNorm2d(32),
                                   nn.ReLU())
        self.pool1 = nn.MaxPool2d(4, stride=4)
        self.conv2 = nn.Sequential(nn.Conv2d(32, 64, 5, padding=padding), nn.BatchNorm2d(64),
                                   nn.ReLU())
        self.pool2 = nn.MaxPool2d(4, stride=4)
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(dropout), nn.Linear(64 * side * side, 1021), nn.BatchNorm1d(1021), nn.ReLU(),
            nn.Dropout(dropout), nn.Linear(1021, 84), nn.BatchNorm1d(84), nn.ReLU(),
            nn.Linear(84, num_classes),
        )
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool1(self.conv1(x))  # [B, 3, 64, 64] -> [B, 32, 64, 64] -> [B, 32, 16, 16]
        x = self.pool2(self.conv2(x))  # -> [B, 64, 16, 16] -> [B, 64, 4, 4]
        return self.classifier(x)      # -> [B, 1024] -> [B, num_classes]


class BasicBlock(nn.Module):
    """ResNet's two-layer block: relu(bn(conv3x3(relu(bn(conv3x3(x))))) + shortcut(x)).

    The shortcut is the identity when the shape is kept, else a 1x1 conv of the block's
    stride plus batch norm (the paper's projection shortcut, option B).
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        super().__init__()
        # no conv biases: the batch norm right after each conv has its own shift
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.downsample = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)  # [B, C_out, H/s, W/s]
        out = F.relu(self.bn1(self.conv1(x)))                              # [B, C_out, H/s, W/s]
        out = self.bn2(self.conv2(out))                                    # [B, C_out, H/s, W/s]
        return F.relu(out + shortcut)


class ResNet18(nn.Module):
    """ResNet-18 as in He et al., "Deep Residual Learning for Image Recognition", Table 1.

    conv1: 7x7, 64, stride 2, padding 3 + BN + ReLU; max pool 3x3, stride 2, padding 1;
    stages conv2_x .. conv5_x: `blocks[i]` BasicBlocks of width `widths[i]`, the first block
    of every stage after the first with stride 2 (and a projection shortcut); global average
    pool; fc -> num_classes. `blocks` and `widths` make the other depths and widths (e.g.
    blocks=(3, 4, 6, 3) is ResNet-34) without new code.

    The handout says every conv of conv_2 has stride 2. That conflicts with the paper, where
    conv2_x keeps stride 1 after the max pool, and with eight stride-2 convs a 64x64 input
    would shrink to 1x1 inside conv_2 and could not be halved again later. We follow the
    paper: 64 -> 32 (conv1) -> 16 (pool) -> 16 -> 8 -> 4 -> 2 -> pooled to 1.

    Submodule names match torchvision's resnet18 (conv1, bn1, layer1..layer4, fc), so the
    state_dicts are interchangeable.
    """

    def __init__(self, num_classes: int = NUM_CLASSES, blocks: tuple[int, ...] = (2, 2, 2, 2),
                 widths: tuple[int, ...] = (64, 128, 256, 512)):
        super().__init__()
        if len(blocks) != len(widths) or not blocks:
            raise ValueError(f"blocks {blocks} and widths {widths} must have the same, "
                             f"nonzero length")
        self.blocks, self.widths = tuple(blocks), tuple(widths)
        self.conv1 = nn.Conv2d(3, widths[0], 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.stage_names = []
        in_channels = widths[0]
        for index, (count, width) in enumerate(zip(blocks, widths)):
            stride = 1 if index == 0 else 2
            stage = [BasicBlock(in_channels, width, stride)]
            stage += [BasicBlock(width, width) for _ in range(count - 1)]
            name = f"layer{index + 1}"  # conv{index + 2}_x in the paper
            self.add_module(name, nn.Sequential(*stage))
            self.stage_names.append(name)
            in_channels = width
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(in_channels, num_classes)
        for module in self.modules():  # He init, as in the paper (batch norm starts at 1, 0)
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))  # [B, 3, 64, 64] -> [B, 64, 32, 32]
        x = self.maxpool(x)                     # [B, 64, 16, 16]
        for name in self.stage_names:
            x = getattr(self, name)(x)          # [B, 64, 16, 16] .. [B, 512, 2, 2]
        x = torch.flatten(self.avgpool(x), 1)   # [B, 512]
        return self.fc(x)                       # [B, num_classes]


# ---------------------------------------------------------------- part 2: activations

ACTIVATIONS_PER_ROW = 8


def conv_activations(model: nn.Module, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Outputs of model.conv1 and model.conv2 (each a conv followed by its ReLU) for one image.

    image is [3, H, W] (or [1, 3, H, W]), already transformed as in training. The model runs
    in eval mode without gradients and is put back in its previous mode. For LeNet5 with
    padding 0 on a 64x64 image the results are [32, 60, 60] and [64, 11, 11]; with padding
    2, [32, 64, 64] and [64, 16, 16]. Both come back detached, on the CPU.
    """
    for name in ("conv1", "conv2"):
        if not isinstance(getattr(model, name, None), nn.Module):
            raise TypeError(f"{type(model).__name__} has no submodule {name!r} (conv + ReLU)")
    batch = image.unsqueeze(0) if image.dim() == 3 else image  # [1, 3, H, W]
    if batch.shape[0] != 1:
        raise ValueError(f"one image please, not a batch of {batch.shape[0]}")
    captured = {}

    def keep(name):
        def hook(module, inputs, output):
            captured[name] = output.detach()[0].cpu()  # [C, H', W']
        return hook

    handles = [getattr(model, name).register_forward_hook(keep(name)) for name in ("conv1", "conv2")]
    was_training = model.training
    device = next(model.parameters()).device
    try:
        model.eval()
        with torch.no_grad():
            model(batch.to(device))
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    return captured["conv1"], captured["conv2"]


def plot_activations(acts: torch.Tensor, path: str, title: str = "",
                     per_row: int = ACTIVATIONS_PER_ROW):
    """Draw every map of acts [C, H, W] side by side, `per_row` to a row; save a PNG at path.

    Each map has its own grey scale (a dead map is uniformly black). Returns the Figure,
    which holds exactly C axes. It is built without pyplot, so it needs no display, leaves
    pyplot's global figure list alone and never changes the backend.
    """
    from matplotlib.figure import Figure  # here, not at import: plotting is optional

    maps = acts.detach().float().cpu()
    if maps.dim() == 4 and maps.shape[0] == 1:
        maps = maps[0]
    if maps.dim() != 3:
        raise ValueError(f"expected activations [C, H, W], got {list(acts.shape)}")
    channels = maps.shape[0]
    rows = math.ceil(channels / per_row)
    fig = Figure(figsize=(1.5 * per_row, 1.5 * rows + 0.6))
    axes = fig.subplots(rows, per_row, squeeze=False)
    for index, ax in enumerate(axes.flat):
        if index >= channels:
            fig.delaxes(ax)  # keep one axes per map
            continue
        ax.imshow(maps[index].numpy(), cmap="gray")
        ax.set_title(str(index), fontsize=7)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f"{title} {list(maps.shape)}".strip())
    fig.savefig(path, dpi=80, bbox_inches="tight")
    return fig


# ---------------------------------------------------------------- training

def _targets(labels: torch.Tensor) -> torch.Tensor:
    """Class indices [B] from indices [B] or one-hot / probability rows [B, C]."""
    return labels.argmax(dim=1) if labels.dim() == 2 else labels


def _loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    # cross-entropy with one-hot rows equals cross-entropy with their indices
    return F.cross_entropy(logits, labels.float() if labels.dim() == 2 else labels)


def evaluate(model: nn.Module, loader: Iterable, device: Union[str, torch.device] = "cpu"
             ) -> tuple[float, float]:
    """Mean cross-entropy and accuracy over a loader of (images, labels), in eval mode."""
    model.eval()
    total_loss, correct, seen = 0.0, 0, 0
    with torch.no_grad():
        for images, labels in loader:
            images, labels = images.to(device), labels.to(device)
            logits = model(images)  # [B, num_classes]
            total_loss += _loss(logits, labels).item() * len(labels)
            correct += (logits.argmax(dim=1) == _targets(labels)).sum().item()
            seen += len(labels)
    return total_loss / max(seen, 1), correct / max(seen, 1)


def train(model: nn.Module, train_loader: Iterable, val_loader: Optional[Iterable], epochs: int,
          lr: float, device: Union[str, torch.device] = "cpu", weight_decay: float = 0.0,
          verbose: bool = True) -> dict[str, list[float]]:
    """Adam on cross-entropy for `epochs` passes; returns the per-epoch curves.

    The result has train_loss, train_accuracy, val_loss, val_accuracy, one entry per epoch.
    The training numbers are means over the epoch's batches as they were trained (train mode,
    so with dropout and augmentation); the validation numbers come from `evaluate` after the
    epoch. val_loader None leaves the validation lists empty. weight_decay is Adam's L2
    penalty.
    """
    model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    history = {"train_loss": [], "train_accuracy": [], "val_loss": [], "val_accuracy": []}
    for epoch in range(epochs):
        model.train()
        total_loss, correct, seen = 0.0, 0, 0
        for images, labels in train_loader:
            images, labels = images.to(device), labels.to(device)
            logits = model(images)  # [B, num_classes]
            loss = _loss(logits, labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total_loss += loss.item() * len(labels)
            correct += (logits.argmax(dim=1) == _targets(labels)).sum().item()
            seen += len(labels)
        history["train_loss"].append(total_loss / max(seen, 1))
        history["train_accuracy"].append(correct / max(seen, 1))
        line = (f"epoch {epoch + 1}/{epochs}: train loss {history['train_loss'][-1]:.4f} "
                f"accuracy {history['train_accuracy'][-1]:.4f}")
        if val_loader is not None:
            val_loss, val_accuracy = evaluate(model, val_loader, device)
            history["val_loss"].append(val_loss)
            history["val_accuracy"].append(val_accuracy)
            line += f" | validation loss {val_loss:.4f} accuracy {val_accuracy:.4f}"
        if verbose:
            print(line, flush=True)
    return history


def predict(model: nn.Module, data: Union[torch.Tensor, Iterable],
            device: Union[str, torch.device] = "cpu") -> torch.Tensor:
    """Predicted class indices (int64, on the CPU), in eval mode.

    data is an image [3, H, W], a batch [B, 3, H, W], or a loader of batches (either bare
    images or (images, labels) pairs); the result is [1], [B] or [N] for the whole loader.
    """
    model.eval()
    if isinstance(data, torch.Tensor):
        batches = [data.unsqueeze(0) if data.dim() == 3 else data]
    else:
        batches = (batch[0] if isinstance(batch, (tuple, list)) else batch for batch in data)
    predictions = []
    with torch.no_grad():
        for images in batches:
            predictions.append(model(images.to(device)).argmax(dim=1).cpu())  # [B]
    return torch.cat(predictions) if predictions else torch.empty(0, dtype=torch.long)


# ---------------------------------------------------------------- command line

MODELS = {
    "lenet5": lambda n: LeNet5(n, padding=0),
    "lenet5-same": lambda n: LeNet5(n, padding=2),
    "improved": lambda n: ImprovedLeNet5(n),
    "resnet18": lambda n: ResNet18(n),
}


def main(argv: Optional[list[str]] = None) -> dict[str, list[float]]:
    import argparse
    import json
    import os

    from torch.utils.data import DataLoader

    import caltech_data  # beside this file

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", required=True, help="folder holding <class>/image_NNNN.jpg")
    parser.add_argument("--train-csv", help="default: <root>/train.csv")
    parser.add_argument("--val-csv", help="default: <root>/validation.csv")
    parser.add_argument("--model", choices=sorted(MODELS), default="lenet5")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--weight-decay", type=float, default=0.0)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--augment", action="store_true", help="flips and shifted crops")
    parser.add_argument("--out", default="runs", help="folder for the results")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    torch.manual_seed(args.seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    train_set = caltech_data.CaltechDataset(
        args.train_csv or os.path.join(args.root, "train.csv"), args.root,
        transform=caltech_data.train_transform() if args.augment else caltech_data.eval_transform())
    val_set = caltech_data.CaltechDataset(
        args.val_csv or os.path.join(args.root, "validation.csv"), args.root,
        transform=caltech_data.eval_transform(), classes=train_set.classes)
    print(f"{len(train_set)} training and {len(val_set)} validation images, "
          f"{len(train_set.classes)} classes")
    workers = min(4, os.cpu_count() or 1) if device.type == "cuda" else 0
    # drop_last: a last batch of one image would stop batch norm in training mode
    train_loader = DataLoader(train_set, batch_size=args.batch_size, shuffle=True,
                              drop_last=len(train_set) > args.batch_size,
                              num_workers=workers, pin_memory=device.type == "cuda")
    val_loader = DataLoader(val_set, batch_size=args.batch_size, num_workers=workers)

    model = MODELS[args.model](len(train_set.classes))
    print(f"{args.model}: {count_params(model):,} parameters")
    history = train(model, train_loader, val_loader, args.epochs, args.lr, device,
                    weight_decay=args.weight_decay)

    out = os.path.join(args.out, args.model)
    os.makedirs(out, exist_ok=True)
    torch.save(model.state_dict(), os.path.join(out, "model.pt"))
    with open(os.path.join(out, "history.json"), "w") as f:
        json.dump(history, f, indent=1)
    if isinstance(model, (LeNet5, ImprovedLeNet5)):  # part 2 draws the LeNet activations
        for relative in caltech_data.HANDOUT_IMAGES:
            if not os.path.exists(os.path.join(args.root, relative)):
                continue
            image = caltech_data.load_image(os.path.join(args.root, relative),
                                            caltech_data.eval_transform())
            first, second = conv_activations(model, image)
            stem = relative.replace("/", "_").rsplit(".", 1)[0]
            for layer, acts in (("conv1", first), ("conv2", second)):
                plot_activations(acts, os.path.join(out, f"{stem}_{layer}.png"),
                                 f"{relative} {layer}")
    print(f"results in {out}")
    return history


if __name__ == "__main__":
    main()
