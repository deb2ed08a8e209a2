"""What the kernel checks know: the worker's report of each helper call (KernelReply), and the
same with each call matched by the scorer against the checkpoint (KernelFacts)."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field


@dataclass(frozen=True)
class HelperCall:
    name: str  # the name the analysis gave the helper (the layer's)
    shape: list[int]  # of the weight it passed
    values: list[float] = field(default_factory=list)  # at pattern.positions(shape); emptied once matched
    matches: int | None = None  # which checkpoint conv it is: set by the scorer, never read from the worker


@dataclass(frozen=True)
class KernelReply:
    calls: list[HelperCall] = field(default_factory=list)
    conv_shapes: list[list[int]] = field(default_factory=list)  # the checkpoint's conv weights, in order
    images: list[str] = field(default_factory=list)  # PNGs saved since the call began
    made_folders: list[str] = field(default_factory=list)
    fewer_channels: int | None = None
    served: dict = field(default_factory=dict)
    error: dict | None = None


@dataclass(frozen=True)
class KernelFacts(KernelReply):
    def as_wire(self) -> dict:
        return dataclasses.asdict(self)
