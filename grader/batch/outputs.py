"""The class's files under OUT: gradebook, summary and integrity report.

Written after every submission has a row, from the rows alone (and, for the integrity
report, from each submission's own files, staged again by grader.intake as `grade` stages
them): a rerun that grades nothing still rewrites them all.
"""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from .. import heldout, intake
from ..errors import InputError
from ..predictions import PredictionsError, read_predictions
from ..rubric import Rubric
from . import gradebook, integrity, summary
from .grading import BatchOptions, BatchResult, Row, people_label

_REPO = Path(__file__).resolve().parents[2]


def write_class_outputs(result: BatchResult, rubric: Rubric, labels: dict[str, Path],
                        options: BatchOptions) -> dict[str, Path]:
    out = result.out
    table = gradebook.frame(result.rows, result.export.missing, rubric)
    paths = gradebook.write(table, out, rubric)
    found = integrity_report(result.rows, rubric, labels, options, out)
    paths.update({"integrity_html": out / "integrity.html", "integrity_csv": out / "integrity.csv"})
    from .engines import default_jobs

    jobs_used = options.jobs or default_jobs()
    data = summary.build(result, rubric, options.engine, jobs_used, found)
    paths.update(summary.write(data, out))
    return paths


def integrity_report(rows: list[Row], rubric: Rubric, labels: dict[str, Path], options: BatchOptions,
                     out: Path) -> dict:
    truth = {spec.id: heldout.load_truth(spec, labels[spec.id]) for spec in rubric.predictions if spec.id in labels}
    entries = []
    scratch = Path(tempfile.mkdtemp(prefix="integrity-", dir=out / ".batch"))
    try:
        for row in rows:
            sub = row.submission
            if sub.path is None:
                continue
            try:
                staged = intake.stage(sub.path, scratch / sub.key)
            except (InputError, OSError):
                continue  # its own row already says why it could not be read
            entries.append(integrity.Entry(key=sub.key, label=people_label(sub.people) or sub.key,
                                           files=integrity.entry_files(staged.root),
                                           predictions=_predictions(rubric, staged, truth)))
            shutil.rmtree(scratch / sub.key, ignore_errors=True)
        report = integrity.analyse(entries, starter_code(rubric, options.starter), truth, out)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    data = report.as_dict()
    return {"flagged_pairs": sum(1 for p in data.get("pairs", []) if p.get("flagged")),
            "flagged_predictions": sum(1 for p in data.get("predictions", []) if p.get("flagged")),
            "report": "integrity.html", **data}


def _predictions(rubric: Rubric, staged, truth: dict) -> dict[str, dict[int, int]]:
    found = {}
    for spec in rubric.predictions:
        rel = heldout.find_file(staged.root, staged.files, spec.file)
        if rel is None:
            continue
        try:
            found[spec.id] = read_predictions(staged.root / rel, spec.num_classes,
                                              heldout.expected_ids(spec, truth.get(spec.id)), shown=rel,
                                              class_names=spec.class_names).labels
        except (PredictionsError, OSError):
            continue  # the grade's own predictions checks say what is wrong with it
    return found


def starter_code(rubric: Rubric, given: tuple[Path, ...]) -> dict[str, str]:
    """The starter code the class began from, which never counts as copying: the folders or
    files given, else this project's student_template/ for the assignment when it is at hand."""
    paths = [Path(p) for p in given]
    if not paths:
        templates = _REPO / "student_template"
        if templates.is_dir():
            paths = [d for d in sorted(templates.iterdir())
                     if d.is_dir() and rubric.id.startswith(d.name.replace("_", "-"))][:1]
    code: dict[str, str] = {}
    for path in paths:
        if path.is_dir():
            code.update({f"{path.name}/{k}": v for k, v in integrity.entry_files(path).items()})
        elif path.is_file():
            code[path.name] = path.read_text(encoding="utf-8", errors="replace")
        else:
            raise InputError(f"--starter {path}: no such file or folder")
    return code
