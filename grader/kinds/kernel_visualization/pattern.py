"""The kernels of the checkpoint the grader writes, from a key the scorer draws for each grade.

The first conv layer gets oriented stripes, which a person recognises at a glance in the
student's images, turned by a drawn angle; the others get noise from a drawn hash. Every
value is a function of the key and the weight's position (conv c, out o, in i, row y,
column x), so the scorer computes any value in pure Python (`value`) and the worker fills
whole tensors with torch (`fill`, in probe.py). A submission that reports the weights it
drew must have read them from that checkpoint.
"""
from __future__ import annotations

import math
import random
import secrets

MODULUS = 2_147_483_647  # 2**31 - 1: products with a key stay below 2**62, in int64
PRIMES = (1009, 1013, 1019, 1021)
STRIPES = 0.1  # amplitude of the first layer's stripes
NOISE = 0.05  # ... and of the others' noise
SAMPLES = 64  # values of each drawn weight sent back, spread over it


def draw() -> dict:
    rng = random.Random(secrets.randbits(64))
    return {"a": rng.randrange(1, MODULUS), "b": rng.randrange(MODULUS), "turn": rng.uniform(0, math.pi / 12)}


def _coordinate(k: int, size: int) -> float:
    """torch.linspace(-1, 1, size)[k]."""
    return -1.0 if size == 1 else -1.0 + 2.0 * k / (size - 1)


def stripe(key: dict, shape: list[int], o: int, i: int, y: int, x: int) -> float:
    _, in_c, kh, kw = shape
    ys, xs = _coordinate(y, kh), _coordinate(x, kw)
    theta = math.pi * (o % 12) / 12 + key["turn"]
    freq = 1.5 + (o // 12) % 4
    u = xs * math.cos(theta) + ys * math.sin(theta)
    envelope = math.exp(-(xs ** 2 + ys ** 2) / 0.5)
    return STRIPES * envelope * math.cos(2 * math.pi * freq * u + i * math.pi / max(in_c, 1))


def noise(key: dict, c: int, o: int, i: int, y: int, x: int) -> float:
    k = c
    for prime, part in zip(PRIMES, (o, i, y, x)):
        k = (k * prime + part) % MODULUS
    h = (key["a"] * k + key["b"]) % MODULUS
    return NOISE * (2.0 * h / MODULUS - 1.0)


def value(key: dict, c: int, shape: list[int], position: tuple[int, int, int, int]) -> float:
    """The checkpoint's value of conv c (of `shape`) at (o, i, y, x)."""
    return stripe(key, shape, *position) if c == 0 else noise(key, c, *position)


def positions(shape: list[int]) -> list[int]:
    """The flat indices of a passed weight whose values come back: SAMPLES of them, spread evenly."""
    numel = math.prod(shape)
    count = min(SAMPLES, numel)
    return sorted({j * numel // count for j in range(count)}) if numel else []


def unravel(flat: int, shape: list[int]) -> tuple[int, ...]:
    out = []
    for size in reversed(shape):
        out.append(flat % size)
        flat //= size
    return tuple(reversed(out))


def matches(key: dict, stored: list[list[int]], shape: list[int], values: list[float]) -> int | None:
    """Which stored conv the passed weight is (or a leading slice of): its values at
    `positions(shape)` must be the checkpoint's, to float32 precision."""
    if len(shape) != 4 or len(values) != len(positions(shape)):
        return None
    for c, full in enumerate(stored):
        if len(full) != 4 or any(a > b for a, b in zip(shape, full)):
            continue
        if all(abs(got - value(key, c, full, unravel(flat, shape))) <= 1e-5
               for flat, got in zip(positions(shape), values)):
            return c
    return None
