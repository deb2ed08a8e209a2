"""AlexNet and the CS1678 HW4 variants for PACS, written as data plus one module.

A variant is an `AlexNetSpec`: a tuple of conv stages (each a Conv2d -> ReLU, maybe a
pool) and the classifier's hidden widths. `PACSAlexNet(spec, num_classes)` builds any of
them, so the variants cannot drift apart in code and all share the state_dict layout
`features.<i>.*` / `classifier.<i>.*`. The starter's classes (`AlexNet(configs)`, ...)
are thin wrappers that pick a spec and read `configs['num_classes']`.

Input images are RGB 227x227 (the PACS release). Layer order follows the handout tables:
features = [Conv2d, ReLU, (pool)] x 5; classifier = Flatten, Dropout, Linear, ReLU,
Dropout, Linear, ReLU, Linear.
"""
from dataclasses import dataclass, replace

import torch
from torch import nn


@dataclass(frozen=True)
class ConvStage:
    """One Conv2d -> ReLU step of `features`, optionally followed by a pool."""
    out_channels: int
    kernel: int
    stride: int = 1
    padding: int = 0
    dilation: int = 1
    pool: bool = False  # a pool (spec.pool_kernel, spec.pool_stride) follows the ReLU


@dataclass(frozen=True)
class AlexNetSpec:
    convs: tuple[ConvStage, ...]
    pooling: str = "max"                    # "max" or "avg", used by every pool in `features`
    hidden: tuple[int, ...] = (4096, 4096)  # classifier widths before the output layer
    dropout: float = 0.5                    # before each hidden Linear, as in the tables
    in_channels: int = 3
    image_size: int = 227
    pool_kernel: int = 3                    # AlexNet's overlapping pools: 3x3, stride 2
    pool_stride: int = 2


def stage_sizes(spec: AlexNetSpec) -> list[tuple[int, int]]:
    """Spatial side after each stage's conv and after its pool (same value when no pool)."""
    sizes, n = [], spec.image_size
    for s in spec.convs:
        n = (n + 2 * s.padding - s.dilation * (s.kernel - 1) - 1) // s.stride + 1
        after_conv = n
        if s.pool:
            n = (n - spec.pool_kernel) // spec.pool_stride + 1
        sizes.append((after_conv, n))
    return sizes


def flat_features(spec: AlexNetSpec) -> int:
    """Width of the flattened feature map that the classifier's first Linear sees."""
    side = stage_sizes(spec)[-1][1]
    return spec.convs[-1].out_channels * side * side


# Part A. 227 -> conv 55 -> pool 27 -> conv 27 -> pool 13 -> 13 -> 13 -> 13 -> pool 6.
ALEXNET = AlexNetSpec(convs=(
    ConvStage(96, 11, stride=4, pool=True),
    ConvStage(256, 5, padding=2, pool=True),
    ConvStage(384, 3, padding=1),
    ConvStage(384, 3, padding=1),
    ConvStage(256, 3, padding=1, pool=True),
))

# Part B, larger kernels: strided convs do the pools' downsampling, so there are no pools.
# (227 + 2 - 21) / 8 + 1 = 27;  (27 + 4 - 7) / 2 + 1 = 13;  13, 13;  (13 - 3) / 2 + 1 = 6.
LARGE_KERNEL = AlexNetSpec(convs=(
    ConvStage(96, 21, stride=8, padding=1),
    ConvStage(256, 7, stride=2, padding=2),
    ConvStage(384, 3, padding=1),
    ConvStage(384, 3, padding=1),
    ConvStage(256, 3, stride=2),
))

# Part B, pooling: identical to AlexNet except every pool averages.
AVG_POOLING = replace(ALEXNET, pooling="avg")

# Starter extra (no table): half the conv widths, so 128 * 6 * 6 = 4608 features,
# then 4608 -> 2048 -> 1024 -> classes.
TINY = replace(
    ALEXNET,
    convs=tuple(replace(c, out_channels=c.out_channels // 2) for c in ALEXNET.convs),
    hidden=(2048, 1024),
)

# Starter extra (no table): dilation 2 everywhere. A dilated k-kernel spans 2k - 1 pixels,
# so padding k - 1 (5/4/2/2/2) keeps AlexNet's sides 55/27/13/13/13 and the 6x6 output.
DILATION = replace(
    ALEXNET,
    convs=tuple(replace(c, dilation=2, padding=p) for c, p in zip(ALEXNET.convs, (5, 4, 2, 2, 2))),
)

SPECS = {
    "AlexNet": ALEXNET,
    "AlexNetLargeKernel": LARGE_KERNEL,
    "AlexNetAvgPooling": AVG_POOLING,
    "AlexNetTiny": TINY,
    "AlexNetDilation": DILATION,
}

# Trainable parameters per class and num_classes (4 = domain task, 7 = category task).
# Checked by test_models.py against the models and against the handout tables' totals.
EXPECTED_PARAMS = {
    "AlexNet": {4: 58_297_732, 7: 58_310_023},
    "AlexNetLargeKernel": {4: 58_979_716, 7: 58_992_007},
    "AlexNetAvgPooling": {4: 58_297_732, 7: 58_310_023},
    "AlexNetTiny": {4: 12_487_364, 7: 12_490_439},
    "AlexNetDilation": {4: 58_297_732, 7: 58_310_023},  # dilation adds no weights
}


class PACSAlexNet(nn.Module):
    """Any AlexNetSpec as `features` (conv stack) followed by `classifier` (MLP head)."""

    def __init__(self, spec: AlexNetSpec, num_classes: int):
        super().__init__()
        self.spec = spec
        pool = {"max": nn.MaxPool2d, "avg": nn.AvgPool2d}[spec.pooling]
        layers, c_in = [], spec.in_channels
        for s in spec.convs:
            layers.append(nn.Conv2d(c_in, s.out_channels, s.kernel, stride=s.stride,
                                    padding=s.padding, dilation=s.dilation))
            # not inplace: a forward hook on the conv then still sees its pre-ReLU output
            layers.append(nn.ReLU())
            if s.pool:
                layers.append(pool(spec.pool_kernel, stride=spec.pool_stride))
            c_in = s.out_channels
        self.features = nn.Sequential(*layers)

        head, width = [nn.Flatten()], flat_features(spec)
        for h in spec.hidden:
            head += [nn.Dropout(spec.dropout), nn.Linear(width, h), nn.ReLU()]
            width = h
        head.append(nn.Linear(width, num_classes))  # logits; CrossEntropyLoss adds the softmax
        self.classifier = nn.Sequential(*head)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)       # [B, 3, 227, 227] -> [B, C, 6, 6]
        return self.classifier(x)  # [B, C, 6, 6] -> [B, C*36] -> [B, num_classes]


# The starter's contract: `Cls(configs)` with configs = {'num_classes': 4 or 7}.

class AlexNet(PACSAlexNet):
    """Part A: the original AlexNet (one tower)."""

    def __init__(self, configs):
        super().__init__(ALEXNET, configs["num_classes"])


class AlexNetLargeKernel(PACSAlexNet):
    """Part B: larger, strided kernels instead of max pooling."""

    def __init__(self, configs):
        super().__init__(LARGE_KERNEL, configs["num_classes"])


class AlexNetAvgPooling(PACSAlexNet):
    """Part B: AlexNet with average pooling."""

    def __init__(self, configs):
        super().__init__(AVG_POOLING, configs["num_classes"])


class AlexNetTiny(PACSAlexNet):
    """Starter extra: AlexNet at half width."""

    def __init__(self, configs):
        super().__init__(TINY, configs["num_classes"])


class AlexNetDilation(PACSAlexNet):
    """Starter extra: AlexNet with dilated convolutions."""

    def __init__(self, configs):
        super().__init__(DILATION, configs["num_classes"])


MODELS = {cls.__name__: cls for cls in
          (AlexNet, AlexNetLargeKernel, AlexNetAvgPooling, AlexNetTiny, AlexNetDilation)}


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
