"""ECE661 HW2 Lab 3 starter: implement ResNet-20 for CIFAR-10 (He et al. 2016, Sec. 4.2).

Build it yourself; do not copy an implementation from elsewhere. The plan of Sec. 4.2:
a 3x3 conv with 16 filters (+ BN + ReLU), then three stages of 3 basic blocks each with
16, 32 and 64 filters on 32x32, 16x16 and 8x8 maps (the first block of stages 2 and 3
uses stride 2), global average pooling and a fully-connected layer to the classes.
A basic block is conv3x3-BN-ReLU-conv3x3-BN, plus its shortcut, then ReLU.

Shortcuts where the shape changes: shortcut="A" is the identity on every second pixel with
zero-padded extra channels (no parameters, 269,722 parameters in all); shortcut="B" a 1x1
convolution + BN (272,474 in all). Train it to > 90% validation accuracy (at most 200
epochs) and write predictions.csv (`Id,Label`, one row per test image) with
save_test_predictions.ipynb. Keep training code under `if __name__ == "__main__":`.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F


class ResNet20(nn.Module):
    def __init__(self, num_classes: int = 10, shortcut: str = "A"):
        super().__init__()
        # TODO: the stem, three stages of basic blocks, the pooling and the classifier.
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # TODO: [B, 3, 32, 32] -> [B, num_classes] logits
        raise NotImplementedError


if __name__ == "__main__":
    # TODO: Lab 3: train ResNet-20 and save your best checkpoint.
    pass
