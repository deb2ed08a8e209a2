"""ECE661 HW2 Lab 2 starter: improve SimpleNN's training (augmentation, BN, Swish, L1/L2).

Start from your Lab 1 pipeline. In this module:
  * Swish: implement swish(x) = x * sigmoid(x) yourself. Do not use nn.SiLU, F.silu or
    torch.silu.
  * SimpleNN(num_classes=10, batch_norm=True, activation="swish"): add a BatchNorm2d after
    each convolution when batch_norm is True, and use the chosen activation ("relu" or
    "swish") everywhere ReLU was. With BN the model has 82,078 parameters.
  * l1_penalty(model, strength): strength * sum(|w|) over the parameters whose name ends
    in "weight", to add to the loss (SGD's weight_decay is an L2 penalty only).
Keep training code under `if __name__ == "__main__":`.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F


class Swish(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # TODO: return swish(x), written from its definition.
        raise NotImplementedError


class SimpleNN(nn.Module):
    def __init__(self, num_classes: int = 10, batch_norm: bool = True, activation: str = "swish"):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 5)
        self.conv2 = nn.Conv2d(8, 16, 3)
        self.fc1 = nn.Linear(16 * 6 * 6, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, num_classes)
        if batch_norm or activation != "relu":
            # TODO: a BatchNorm2d after conv1 and after conv2, and the activation switch.
            raise NotImplementedError

    def forward(self, x):
        out = F.max_pool2d(F.relu(self.conv1(x)), 2)
        out = F.max_pool2d(F.relu(self.conv2(out)), 2)
        out = out.view(out.size(0), -1)
        out = F.relu(self.fc1(out))
        out = F.relu(self.fc2(out))
        return self.fc3(out)


def l1_penalty(model: nn.Module, strength: float) -> torch.Tensor:
    # TODO: strength * the sum of |w| over every parameter whose name ends in "weight".
    raise NotImplementedError


if __name__ == "__main__":
    # TODO: Lab 2 (a)-(c): augmentation, BN, Swish, the learning-rate and L2 sweeps, L1 bonus.
    pass
