"""Deep Learning Assignment 2 (2024) starter: CNNs on a 101-class Caltech subset.

The handout gives empty notebook cells ("# implement your Lenet5 here", ...). Write your
answers in the places below; keep the names and arguments, since the grader imports this
module and builds the models itself. Do not train, read data or draw at import time: put
that under `if __name__ == "__main__":` (or in notebook cells after these definitions).

Data: train.csv and validation.csv list images `<class>/image_XXXX.jpg` (64x64; some are
grayscale, convert them to RGB). There are 101 classes; number them by their sorted names.

Models return raw class scores [B, num_classes]: nn.CrossEntropyLoss applies the softmax of
the handout's last layer. Cross-entropy on class indices equals cross-entropy on one-hot
labels.
"""
from typing import Iterable, Optional, Union

import torch
import torch.nn as nn

NUM_CLASSES = 101


# 1.2.1 Implement and improve a CNN model  (# implement your Lenet5 here)

class LeNet5(nn.Module):
    """LeNet5 for 3x64x64 images, as the handout lists it.

    Conv 5x5, 32 filters, stride 1 + ReLU; max pool 4, stride 4;
    Conv 5x5, 64 filters, stride 1 + ReLU; max pool 4, stride 4;
    Linear -> 1021 + ReLU; Linear 1021 -> 84 + ReLU; Linear 84 -> num_classes.
    `padding` is the padding of both convolutions (0, or 2 to keep the size).
    Name the conv + ReLU steps `conv1` and `conv2` (part 2 draws their outputs).
    """

    def __init__(self, num_classes: int = NUM_CLASSES, padding: int = 0):
        super().__init__()
        raise NotImplementedError("build the layers of LeNet5")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError("[B, 3, 64, 64] -> [B, num_classes]")


class ImprovedLeNet5(nn.Module):
    """Part 1(b): your improved LeNet5 (e.g. batch norm, dropout, Xavier init, L2).

    Reach at least 65% validation accuracy. Keep `conv1` and `conv2` as the first two
    conv (+ normalisation) + ReLU steps.
    """

    def __init__(self, num_classes: int = NUM_CLASSES):
        super().__init__()
        raise NotImplementedError("build your improved model")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError("[B, 3, 64, 64] -> [B, num_classes]")


def train(model: nn.Module, train_loader: Iterable, val_loader: Optional[Iterable], epochs: int,
          lr: float, device: Union[str, torch.device] = "cpu") -> dict[str, list[float]]:
    """Train with Adam and cross-entropy. Return one value per epoch under the keys
    train_loss, train_accuracy, val_loss and val_accuracy."""
    raise NotImplementedError("write the training loop")


def evaluate(model: nn.Module, loader: Iterable, device: Union[str, torch.device] = "cpu"
             ) -> tuple[float, float]:
    """(mean cross-entropy, accuracy) of the model on a loader of (images, labels)."""
    raise NotImplementedError("write the evaluation loop")


def predict(model: nn.Module, data: Union[torch.Tensor, Iterable],
            device: Union[str, torch.device] = "cpu") -> torch.Tensor:
    """Predicted class indices for an image [3, H, W], a batch [B, 3, H, W] or a loader."""
    raise NotImplementedError("return the argmax of the model's scores")


# 1.2.2 Visualize layer activation  (# implement your visualization here)

def conv_activations(model: nn.Module, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Outputs of the first and second (conv + ReLU) layers for one image [3, 64, 64],
    each [channels, height, width]."""
    raise NotImplementedError("run the model on the image and keep the two activations")


def plot_activations(acts: torch.Tensor, path: str, title: str = ""):
    """Draw every map of acts [C, H, W] side by side, 8 to a row, and save it at path.
    Draw it for accordion/image_0001 and camera/image_0001, both conv layers."""
    raise NotImplementedError("draw the maps with matplotlib subplots")


# 1.2.3 ResNet Implementation  (# implement a ResNet model here)

class ResNet18(nn.Module):
    """ResNet-18 (He et al., "Deep Residual Learning for Image Recognition").

    conv_1: 7x7, 64 filters, stride 2; conv_2: 3x3 max pool, then 2 blocks of two 3x3 convs
    with 64 filters; conv_3, conv_4, conv_5: 2 blocks each, 128, 256 and 512 filters; then
    global average pooling and a Linear layer to num_classes. A block adds its input (or a
    projection of it where the shape changes) to the output of its two convs.
    """

    def __init__(self, num_classes: int = NUM_CLASSES):
        super().__init__()
        raise NotImplementedError("build ResNet-18")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError("[B, 3, 64, 64] -> [B, num_classes]")


if __name__ == "__main__":
    pass  # load the data, train the models and draw the activations here
