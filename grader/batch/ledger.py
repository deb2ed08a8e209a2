"""What a batch has finished, so a rerun grades only what changed.

Each finished submission leaves OUT/<key>/batch.json beside its results.json, written last
and atomically: a run stopped by Ctrl-C or a lost worker loses only the submissions still
being graded. The fingerprint covers everything a grade depends on: the submission's bytes,
the rubric, the held-out labels, the course data, the grader's own code and the options.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path

LEDGER = "batch.json"
_CHUNK = 1 << 20


def digest_path(path: Path | None, h=None) -> str:
    """sha256 over a file's bytes, or a folder's relative names and bytes (links by their target text)."""
    h = h or hashlib.sha256()
    if path is None:
        h.update(b"<none>")
        return h.hexdigest()
    path = Path(path)
    if path.is_symlink():
        h.update(b"L" + os.fsencode(os.readlink(path)))
    elif path.is_file():
        with open(path, "rb") as f:
            while chunk := f.read(_CHUNK):
                h.update(chunk)
    elif path.is_dir():
        for root, dirs, files in os.walk(path):  # os.walk does not follow links to folders
            dirs.sort()
            for name in sorted(files) + [d for d in dirs if os.path.islink(os.path.join(root, d))]:
                full = Path(root, name)
                h.update(b"\0N" + os.fsencode(full.relative_to(path)))
                digest_path(full, h)
    else:
        h.update(b"<absent>")
    return h.hexdigest()


def digest_listing(path: Path | None) -> str:
    """A folder's relative names, sizes and modification times: cheap for course data folders of
    thousands of images, which a grade reads but which change only when a TA replaces them."""
    h = hashlib.sha256()
    if path is not None and Path(path).is_dir():
        for root, dirs, files in os.walk(path):
            dirs.sort()
            for name in sorted(files):
                full = Path(root, name)
                st = full.lstat()
                h.update(f"{full.relative_to(path)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode("utf-8", "replace"))
    return h.hexdigest()


@cache
def grader_digest() -> str:
    """The grader's own code and templates: a new grader regrades the class."""
    package = Path(__file__).resolve().parents[1]
    h = hashlib.sha256()
    for path in sorted(package.rglob("*")):
        if path.is_file() and path.suffix in (".py", ".j2", ".json", ".toml", ".sh", "") and "__pycache__" not in path.parts:
            h.update(os.fsencode(path.relative_to(package)) + b"\0")
            digest_path(path, h)
    return h.hexdigest()


@dataclass(frozen=True)
class Context:
    """What every submission's fingerprint shares in one batch."""
    rubric: str  # digest of the rubric file
    labels: str  # digest of the held-out labels files
    data: str  # listing digest of the course data folder
    options: tuple[str, ...]

    def fingerprint(self, submission: Path | None) -> str:
        h = hashlib.sha256()
        for part in (self.rubric, self.labels, self.data, grader_digest(), "\0".join(self.options)):
            h.update(part.encode() + b"\n")
        return digest_path(submission, h)


def finished(folder: Path, fingerprint: str) -> dict | None:
    """The ledger entry of a submission already graded with this fingerprint, else None."""
    try:
        entry = json.loads((folder / LEDGER).read_text(encoding="utf-8"))
        if entry.get("fingerprint") != fingerprint:
            return None
        json.loads((folder / "results.json").read_text(encoding="utf-8"))
        return entry
    except (OSError, ValueError, AttributeError):
        return None


def record(folder: Path, entry: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    write_atomic(folder / LEDGER, json.dumps(entry, indent=1, sort_keys=True))


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
