# Lab 2: SimpleNN with batch norm and Swish; L1 penalty.
import torch
import torch.nn as nn


class Swish(nn.Module):
    def forward(self, x):
        return x * torch.sigmoid(x)


class SimpleNN(nn.Module):
    def __init__(self, act=Swish):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 5), nn.BatchNorm2d(8), act(), nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3), nn.BatchNorm2d(16), act(), nn.MaxPool2d(2))
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(576, 120), act(), nn.Linear(120, 84), act(), nn.Linear(84, 10))

    def forward(self, x):
        return self.classifier(self.features(x))


def l1_penalty(model, strength):
    return strength * sum(p.abs().sum() for name, p in model.named_parameters() if "weight" in name)
