"""ECE661 HW2 Lab 2: SimpleNN with BatchNorm and a hand-written Swish, plus an L1 penalty.

Lab 2 improves the Lab 1 pipeline step by step: augmentation (random crop with 4-pixel
padding, horizontal flip), a BatchNorm2d after each convolution, Swish instead of ReLU
(written by hand, not nn.SiLU), then sweeps of learning rate and L2 strength, and an L1
penalty added to the loss (the bonus), since SGD's weight_decay is L2 only.

The model keeps Lab 1's layer names and adds bn1/bn2, so the variants differ only in the
constructor's arguments:
    SimpleNN(batch_norm=False, activation="relu")  82,030 parameters (Lab 1's network)
    SimpleNN(batch_norm=True,  activation=...)     82,078 (+ 2 x (8 + 16) BN scales/shifts)

Training runs only as a script (importing reads no data):

    python simplenn_cifar10_dev.py [--lr 0.1] [--reg 1e-4] [--l1 0] [--activation swish] [--no-bn]
"""
import argparse

import torch
import torch.nn.functional as F
from torch import nn
from torchvision import transforms

SIMPLENN_BN_PARAMS = 82_078  # batch_norm=True, num_classes=10
SIMPLENN_PLAIN_PARAMS = 82_030  # batch_norm=False

# CIFAR-10 statistics the starter gives (pixel values in [0, 1]).
CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2023, 0.1994, 0.2010)

# Lab 2's settings. (b) trains BN + Swish at lr 0.1; (c) sweeps these values.
DATA_ROOT = "./data"
TRAIN_BATCH_SIZE = 128
VAL_BATCH_SIZE = 100
INITIAL_LR = 0.1
MOMENTUM = 0.9
REG = 1e-4
EPOCHS = 30
DECAY_EPOCHS = 10  # our choice: the starter uses these two names without values
DECAY = 0.5
LEARNING_RATES = (1.0, 0.1, 0.05, 0.01, 0.005, 0.001)  # (c), first sweep
L2_STRENGTHS = (1e-2, 1e-3, 1e-4, 1e-5, 0.0)          # (c), second sweep, at lr 0.01
L2_SWEEP_LR = 0.01


class Swish(nn.Module):
    """Swish(x) = x * sigmoid(x) (Ramachandran et al., 2017), from its definition."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(x)


ACTIVATIONS = {"relu": nn.ReLU, "swish": Swish}


class SimpleNN(nn.Module):
    """Lab 1's SimpleNN with an optional BatchNorm2d after each conv and a chosen activation."""

    def __init__(self, num_classes: int = 10, batch_norm: bool = True, activation: str = "swish"):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, not {activation!r}")
        norm = nn.BatchNorm2d if batch_norm else (lambda channels: nn.Identity())
        self.conv1 = nn.Conv2d(3, 8, kernel_size=5)
        self.bn1 = norm(8)
        self.conv2 = nn.Conv2d(8, 16, kernel_size=3)
        self.bn2 = norm(16)
        self.fc1 = nn.Linear(16 * 6 * 6, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, num_classes)
        self.act = ACTIVATIONS[activation]()  # no parameters: one instance serves every layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.max_pool2d(self.act(self.bn1(self.conv1(x))), 2)    # [B, 3, 32, 32] -> [B, 8, 14, 14]
        out = F.max_pool2d(self.act(self.bn2(self.conv2(out))), 2)  # [B, 16, 6, 6]
        out = torch.flatten(out, 1)                                 # [B, 576]
        out = self.act(self.fc1(out))                               # [B, 120]
        out = self.act(self.fc2(out))                               # [B, 84]
        return self.fc3(out)                                        # [B, num_classes]


def l1_penalty(model: nn.Module, strength: float) -> torch.Tensor:
    """strength * sum(|w|) over every parameter whose name ends in "weight".

    That covers conv and linear kernels and also BatchNorm's scales (gamma); biases and
    BatchNorm's shifts (beta) are left out, as weight decay conventionally leaves biases.
    Added to the loss, its gradient w.r.t. each such weight is strength * sign(w) (0 at 0).
    """
    weights = [p for name, p in model.named_parameters() if name.endswith("weight")]
    if not weights:
        return torch.zeros(())
    return strength * torch.stack([w.abs().sum() for w in weights]).sum()  # scalar


def weight_sparsity(model: nn.Module, threshold: float = 1e-3) -> float:
    """Fraction of the penalised weights with |w| < threshold, to compare L1 with L2."""
    weights = [p.detach().flatten() for name, p in model.named_parameters() if name.endswith("weight")]
    flat = torch.cat(weights)  # [total weights]
    return (flat.abs() < threshold).float().mean().item()


def train_transform() -> transforms.Compose:
    """Lab 2 (a)'s augmentation for the DataLoader path: crop with 4-pixel padding, flip."""
    return transforms.Compose([
        transforms.RandomCrop(32, padding=4),
        transforms.RandomHorizontalFlip(),
        transforms.ToTensor(),
        transforms.Normalize(CIFAR_MEAN, CIFAR_STD),
    ])


def val_transform() -> transforms.Compose:
    return transforms.Compose([transforms.ToTensor(), transforms.Normalize(CIFAR_MEAN, CIFAR_STD)])


def main(argv=None) -> None:
    import cifar_data
    import gpu_pipeline

    parser = argparse.ArgumentParser(description="Lab 2: SimpleNN with augmentation, BN, Swish, L1/L2.")
    parser.add_argument("--data-root", default=DATA_ROOT)
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--lr", type=float, default=INITIAL_LR)
    parser.add_argument("--reg", type=float, default=REG, help="L2 strength (SGD weight_decay)")
    parser.add_argument("--l1", type=float, default=0.0, help="L1 strength added to the loss (bonus)")
    parser.add_argument("--activation", default="swish", choices=sorted(ACTIVATIONS))
    parser.add_argument("--no-bn", action="store_true")
    parser.add_argument("--no-augment", action="store_true")
    parser.add_argument("--decay-epochs", type=int, default=DECAY_EPOCHS)
    parser.add_argument("--decay", type=float, default=DECAY)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--amp", default="auto", choices=gpu_pipeline.AMP_MODES)
    args = parser.parse_args(argv)

    train_images, train_labels = cifar_data.load_split(args.data_root, "train")
    val_images, val_labels = cifar_data.load_split(args.data_root, "val")
    torch.manual_seed(0)
    model = SimpleNN(batch_norm=not args.no_bn, activation=args.activation)
    penalty = (lambda m: l1_penalty(m, args.l1)) if args.l1 > 0 else None
    history = gpu_pipeline.train(
        model, train_images, train_labels, val_images, val_labels,
        epochs=args.epochs, batch_size=TRAIN_BATCH_SIZE, eval_batch_size=VAL_BATCH_SIZE,
        lr=args.lr, momentum=MOMENTUM, weight_decay=args.reg, decay_epochs=args.decay_epochs,
        decay=args.decay, augment=not args.no_augment, penalty=penalty,
        device=args.device, amp=args.amp)
    print(f"best validation accuracy {history['best_val_acc']:.4f}; "
          f"weights below 1e-3: {weight_sparsity(model):.1%}")


if __name__ == "__main__":
    main()
