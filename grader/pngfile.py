"""Reading a PNG the submission saved: only a small regular file inside its folder, reached
without a link, that really is a PNG."""
from __future__ import annotations

import os
import stat
import struct
from pathlib import Path

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_IMAGE_BYTES = 4 * 1024 * 1024


def read_png(base: Path, name: str) -> tuple[bytes | None, str]:
    """A PNG file under `base`, or None and the reason it was refused."""
    if Path(name).is_absolute() or ".." in Path(name).parts:
        return None, "outside the submission folder"
    path = base / name
    if path.resolve() != path or not str(path.resolve()).startswith(str(base) + os.sep):
        return None, "reached through a symbolic link"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        return None, exc.strerror or "unreadable"
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(f.fileno())
        if not stat.S_ISREG(info.st_mode):
            return None, "not a regular file"
        if info.st_size > MAX_IMAGE_BYTES:
            return None, "larger than 4 MB"
        data = f.read(MAX_IMAGE_BYTES + 1)
    if not data.startswith(PNG_SIGNATURE) or data[12:16] != b"IHDR":
        return None, "not a PNG image"
    width, height = struct.unpack(">II", data[16:24])
    if not (0 < width <= 8192 and 0 < height <= 8192):
        return None, "implausible image size"
    return data, ""
