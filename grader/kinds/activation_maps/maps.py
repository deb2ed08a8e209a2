"""The images a CNN is shown and the maps that come back, the same in the verifier and, where
export fails, in the worker: each map scaled to 0-255 on its own, as bytes."""
from __future__ import annotations

import base64
import math

import torch
import torch.nn.functional as F

MAX_SIDE = 128  # maps larger than this are not drawn at full size anyway
MAX_MAPS = 128  # and no more maps than this per layer: the reply stays a few MB
LAYERS = 2  # the first two conv layers are drawn


def image(path: str | None, size: tuple[int, int], index: int) -> tuple[torch.Tensor, bool]:
    """[1, 3, H, W] in [0, 1]: the named image, or a generated stand-in when there is none."""
    if path:
        from PIL import Image

        with Image.open(path) as img:
            img = img.convert("RGB").resize((size[1], size[0]))
            data = torch.frombuffer(bytearray(img.tobytes()), dtype=torch.uint8)
        return data.reshape(size[0], size[1], 3).permute(2, 0, 1).float().div(255).unsqueeze(0), False
    ys, xs = torch.meshgrid(torch.linspace(0, 1, size[0]), torch.linspace(0, 1, size[1]), indexing="ij")
    stripes = 0.5 + 0.5 * torch.sin(2 * math.pi * (4 + 3 * index) * (xs + 0.5 * ys))
    disc = ((xs - 0.5) ** 2 + (ys - 0.5) ** 2 < 0.08).float()
    return torch.stack([stripes, disc, 0.5 * stripes + 0.5 * disc]).unsqueeze(0), True


def shown(images: list[list], size: tuple[int, int]) -> tuple[list[tuple[str, torch.Tensor, bool]], list[str]]:
    """Each [name, path or None] as (name, [1, 3, H, W], synthetic), and the names that did not
    decode (drawn as stand-ins, and said)."""
    out, unreadable = [], []
    for index, (name, path) in enumerate(images):
        try:
            x, synthetic = image(path, size, index)
        except Exception as exc:  # a staff image that does not decode: draw the stand-in and say so
            x, synthetic = image(None, size, index)
            unreadable.append(f"{name}: {type(exc).__name__}")
        out.append((name, x, synthetic))
    return out, unreadable


def encode(maps: torch.Tensor, relu_seen: bool) -> dict:
    """One layer's maps of one image ([1, C, H, W], after the ReLU) as the reply carries them."""
    channels = int(maps.shape[1])
    maps = maps[0, :MAX_MAPS].float()  # [C, H, W], at most MAX_MAPS of them
    if max(maps.shape[1:]) > MAX_SIDE:
        maps = F.adaptive_avg_pool2d(maps.unsqueeze(0), MAX_SIDE)[0]
    low = maps.amin(dim=(1, 2), keepdim=True)
    high = maps.amax(dim=(1, 2), keepdim=True)
    scaled = ((maps - low) / (high - low).clamp(min=1e-12) * 255).round().to(torch.uint8)
    return {"channels": channels, "shown": int(maps.shape[0]), "size": list(maps.shape[1:]),
            "data": base64.b64encode(scaled.contiguous().numpy().tobytes()).decode("ascii"),
            "flat": [bool(h == l) for h, l in zip(high.flatten().tolist(), low.flatten().tolist())],
            "relu_seen": relu_seen}


def layers(convs: list[torch.Tensor], relus: dict[int, torch.Tensor]) -> list[dict]:
    """The encoded layers: each conv's ReLU where one was applied right to it, else one applied here."""
    out = []
    for i, conv in enumerate(convs):
        relu = relus.get(i)
        out.append(encode(relu if relu is not None else conv.detach().clamp(min=0), relu is not None))
    return out
