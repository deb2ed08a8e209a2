"""Draw activation maps as one grayscale PNG grid, in plain Python (the scoring process does
not import numpy or imaging libraries). Input: uint8 maps as the worker sends them."""
from __future__ import annotations

import base64
import re
import struct
import zlib

COLUMNS = 8
GAP = 2
MIN_CELL = 48  # small maps (11x11) are enlarged so a person can see them


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def encode_gray(width: int, height: int, rows: list[bytes]) -> bytes:
    raw = b"".join(b"\x00" + row for row in rows)  # filter type 0 on every scanline
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grayscale
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(raw, 9)) + _chunk(b"IEND", b"")


def grid(data: bytes, channels: int, height: int, width: int, columns: int = COLUMNS) -> bytes:
    """`data`: channels * height * width bytes, map after map. Maps are laid out in rows of
    `columns`, each enlarged by a whole factor, on a white background."""
    if len(data) != channels * height * width or channels <= 0:
        raise ValueError("activation data does not match its shape")
    scale = max(1, -(-MIN_CELL // max(height, width)))
    cell_h, cell_w = height * scale, width * scale
    cols = min(columns, channels)
    grid_rows = -(-channels // cols)
    out_w = cols * cell_w + (cols - 1) * GAP
    out_h = grid_rows * cell_h + (grid_rows - 1) * GAP
    canvas = [bytearray(b"\xff" * out_w) for _ in range(out_h)]
    for c in range(channels):
        top = (c // cols) * (cell_h + GAP)
        left = (c % cols) * (cell_w + GAP)
        base = c * height * width
        for y in range(height):
            src = data[base + y * width: base + (y + 1) * width]
            line = bytes(b for b in src for _ in range(scale))
            for dy in range(scale):
                canvas[top + y * scale + dy][left:left + cell_w] = line
    return encode_gray(out_w, out_h, [bytes(r) for r in canvas])


def draw_activation_maps(facts, task_id: str, result: dict) -> None:
    """Activation maps from the worker (bytes, already scaled) drawn as PNG grids here."""
    keys = []
    for image in result.get("images", [])[:4]:
        for n, layer in enumerate(image.get("layers", [])[:2], start=1):
            try:
                data = base64.b64decode(layer["data"], validate=True)
                png = grid(data, int(layer.get("shown", layer["channels"])), *map(int, layer["size"]))
            except (KeyError, ValueError, TypeError):
                continue
            stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", str(image.get("name", "image")))[:60]
            key = f"{task_id}/{stem}-conv{n}.png"
            facts.artifacts[key] = png
            facts.captions[key] = (f"{image.get('name')}: conv layer {n}, {layer['channels']} maps of "
                                   f"{layer['size'][0]}x{layer['size'][1]}"
                                   + (" (a generated stand-in image)" if image.get("synthetic") else ""))
            keys.append(key)
    facts.images[task_id] = keys
