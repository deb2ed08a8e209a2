"""Course files the grader may show a submission: the images a rubric's tasks name
(dl-assignment2's activation maps), looked up in the course data folder (`--data`)."""
from __future__ import annotations

import shutil
from pathlib import Path

from .rubric import Rubric


IMAGE_SUFFIXES = ("", ".jpg", ".jpeg", ".png")


def course_images(rubric: Rubric) -> list[str]:
    """The images the rubric's tasks name, e.g. `accordion/image_0001` (no suffix needed)."""
    return [name for task in rubric.tasks if task.kind == "activation_maps" for name in task.params["images"]]


def find_course_image(data: Path, name: str) -> Path | None:
    """`name` under the course data folder, with or without an image suffix; never outside it."""
    base = Path(data).resolve()
    for suffix in IMAGE_SUFFIXES:
        src = (base / (name + suffix)).resolve()
        if src.is_file() and base in src.parents and src.stat().st_size < 20 << 20:
            return src
    return None


def find_inputs(rubric: Rubric, data: Path | None) -> dict[str, Path]:
    """The course images the rubric's tasks name that --data holds: name -> the file there."""
    if data is None:
        return {}
    found = {name: find_course_image(data, name) for name in course_images(rubric)}
    return {name: path for name, path in found.items() if path is not None}


def copy_inputs(sources: dict[str, Path], folder: Path) -> dict[str, str]:
    """Copy the course images (find_inputs) into the sandbox, where the worker may read them;
    names not found get a stand-in there."""
    out: dict[str, str] = {}
    for name, src in sources.items():
        dest = folder / f"{len(out)}{src.suffix}"
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest)
        out[name] = str(dest)
    return out
