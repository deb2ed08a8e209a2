"""Gradescope: the container entrypoint (`python -m grader.gradescope`) and the autograder zip.

Inside the container the layout is fixed: $AUTOGRADER_ROOT (default /autograder) holds
source/ (our zip, unpacked), submission/ (the student's files) and results/ (where
results.json must appear). Whatever happens, results.json is written, by us, last.
"""
from __future__ import annotations

import argparse
import json
import os
import stat
import sys
import time
import traceback
import zipfile
from pathlib import Path

from . import api, courseinputs
from .errors import InputError, RubricError
from .rubric import load_rubric

REPO = Path(__file__).resolve().parent.parent
FILES = Path(__file__).resolve().parent / "gradescope_files"
ASSIGNMENT_FILE = "dlgrade-assignment"
LABELS_DIR = "labels"  # held-out labels inside the autograder source
DATA_DIR = "data"  # course images a rubric names (activation maps), inside the autograder source
DEFAULT_BUDGET = 540  # Gradescope's default timeout is 600 s; finish and write before it


def run(root: Path, assignment: str | None = None, budget: float | None = None) -> dict:
    """Grade root/submission, write root/results/results.json, return what was written."""
    started = time.monotonic()
    results_dir = root / "results"
    results_dir.mkdir(parents=True, exist_ok=True)
    _private(results_dir, root / "submission_metadata.json")
    assignment = assignment or _assignment(root)
    budget = budget or _budget()
    try:
        if assignment is None:
            raise InputError(f"this autograder does not say which assignment it grades: {ASSIGNMENT_FILE} is "
                             "missing from its source folder; rebuild it with `grade build-autograder ID`")
        total = min(load_rubric(assignment).limits.total_seconds, budget)
        options = api.Options(device="cpu", limits={"total_seconds": total},
                              hidden_paths=(str(root / "source"), str(results_dir),
                                            str(root / "submission_metadata.json")),
                              labels=_labels(root), require_labels=False,
                              data=root / "source" / DATA_DIR if (root / "source" / DATA_DIR).is_dir() else None)
        report = api.grade(root / "submission", assignment, options)
    except (InputError, RubricError, KeyError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) else str(exc)
        report = api.failure_report(assignment or "unknown", "submission", message)
    except BaseException:  # noqa: BLE001 - the one place that must never let go
        detail = traceback.format_exc(limit=8)
        report = api.failure_report(assignment or "unknown", "submission",
                                    "the grader failed: " + detail.splitlines()[-1], grader_error=detail)
    report.seconds = round(time.monotonic() - started, 2)
    paths = api.write_outputs(report, results_dir)
    return json.loads(paths["json"].read_text())


def _private(*paths: Path) -> None:
    """As root, where the sandbox may be only a uid of its own (no bubblewrap in the
    container): the results folder and the student's metadata are for root alone."""
    if os.geteuid() != 0:
        return
    for path in paths:
        try:
            if path.exists() and not path.is_symlink():
                os.chmod(path, 0o700 if path.is_dir() else 0o600)
        except OSError:
            pass


def _labels(root: Path) -> tuple[Path, ...]:
    """The held-out labels shipped in the autograder's labels/ folder. As root, make that
    folder root-only first, so a worker running as a uid of its own cannot read it either."""
    folder = root / "source" / LABELS_DIR
    if not folder.is_dir():
        return ()
    if os.geteuid() == 0:
        try:
            os.chmod(folder, 0o700)
        except OSError:  # a read-only mount: the grade's notes say if nobody could read the files
            pass
    return tuple(sorted(p for p in folder.iterdir() if p.suffix.lower() == ".csv" and p.is_file()))


def _assignment(root: Path) -> str | None:
    """The assignment this autograder grades: $DLGRADE_ASSIGNMENT, else the marker file in source/."""
    if os.environ.get("DLGRADE_ASSIGNMENT"):
        return os.environ["DLGRADE_ASSIGNMENT"]
    marker = root / "source" / ASSIGNMENT_FILE
    try:
        return marker.read_text(encoding="utf-8").strip() or None
    except (OSError, ValueError):  # missing, a folder, or not text
        return None


def _budget() -> float:
    """$DLGRADE_TIME_BUDGET seconds; a value that is not a positive number falls back to the default."""
    try:
        value = float(os.environ.get("DLGRADE_TIME_BUDGET", DEFAULT_BUDGET))
    except ValueError:
        return DEFAULT_BUDGET
    return value if value > 0 else DEFAULT_BUDGET


def build_zip(assignment: str, output: Path, labels: tuple[Path, ...] = (),
              data: Path | None = None) -> tuple[Path, list[str]]:
    """The zip an instructor uploads: setup.sh and run_autograder at its root, beside the
    grader; held-out labels, checked here, under labels/."""
    rubric = load_rubric(assignment)  # fails early, with a clear message, on a bad rubric
    rubric_files = _rubric_chain(Path(rubric.path))
    from .heldout import load_truth, match_labels

    matched = match_labels(rubric, tuple(labels))
    for spec in rubric.predictions:
        if spec.id not in matched:
            raise InputError(f"{assignment} scores {spec.file} against held-out labels: pass --labels {spec.labels}")
        load_truth(spec, matched[spec.id])  # a bad labels file fails now, not in every student's grade
    entries: dict[str, bytes] = {
        "setup.sh": (FILES / "setup.sh").read_bytes(),
        "run_autograder": (FILES / "run_autograder").read_bytes(),
        ASSIGNMENT_FILE: (assignment + "\n").encode(),
    }
    for name in ("pyproject.toml", "constraints.txt", "README.md"):
        entries[name] = (REPO / name).read_bytes()
    for path in sorted((REPO / "grader").rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            entries[str(path.relative_to(REPO))] = path.read_bytes()
    for path in rubric_files:
        entries[f"rubrics/{path.name}"] = path.read_bytes()
    for spec in rubric.predictions:
        entries[f"{LABELS_DIR}/{spec.labels}"] = matched[spec.id].read_bytes()
    if data is not None:
        for name in courseinputs.course_images(rubric):
            found = courseinputs.find_course_image(data, name)
            if found is None:
                raise InputError(f"--data {data}: {name} is not there (looked for {name}.jpg and .png)")
            entries[f"{DATA_DIR}/{found.relative_to(Path(data).resolve()).as_posix()}"] = found.read_bytes()
    output.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(output, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            info.create_system = 3  # Unix, so unzip restores the modes below
            mode = 0o755 if name in ("setup.sh", "run_autograder") else 0o600 if name.startswith(f"{LABELS_DIR}/") else 0o644
            info.external_attr = (stat.S_IFREG | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    return output, sorted(entries)


def _rubric_chain(path: Path) -> list[Path]:
    """A rubric and the rubrics it extends."""
    import tomllib

    chain = [path]
    data = tomllib.loads(path.read_text())
    while "extends" in data:
        path = path.with_name(f"{data['extends']}.toml")
        chain.append(path)
        data = tomllib.loads(path.read_text())
    return chain


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m grader.gradescope",
                                     description="Gradescope entrypoint: grade $AUTOGRADER_ROOT/submission.")
    parser.add_argument("--root", type=Path, default=Path(os.environ.get("AUTOGRADER_ROOT", "/autograder")))
    parser.add_argument("--assignment", default=None)
    args = parser.parse_args(argv)
    results = run(args.root, args.assignment)
    print(f"dlgrade: {results.get('score', 0):g} points; results written to {args.root / 'results' / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
