"""Read a student's predictions.csv (`Id,Label` rows) and score it against held-out labels.

Runs in the scoring process: plain Python, streaming, bounded. A bad file is a
PredictionsError whose message says what is wrong and where (line numbers as an editor
shows them), never a crash. Common header spellings are accepted and named in notes.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

# Header spellings seen in practice, compared after lower-casing and dropping ' _-"'.
ID_NAMES = ("id", "imageid", "image", "index", "idx", "sampleid", "testid")
LABEL_NAMES = ("label", "labels", "prediction", "predictions", "predicted", "predictedlabel", "pred", "class",
               "category", "target", "y")
MAX_LISTED = 5
_INT = re.compile(r"[+-]?\d+")


class PredictionsError(ValueError):
    """The file cannot be scored; str() is the message for the student."""


@dataclass
class Predictions:
    labels: dict[int, int]  # id -> predicted class
    notes: list[str] = field(default_factory=list)


@dataclass
class Score:
    accuracy: float
    correct: int
    total: int
    per_class: list[dict]  # {"class", "total", "correct", "accuracy"} per true class
    confusion: list[list[int]]  # confusion[true][predicted]


def _norm(name: str) -> str:
    return re.sub(r"[\s_\-\"']", "", name).lower()


def _columns(header: list[str], shown: str) -> tuple[int, int, list[str]]:
    names = [_norm(h) for h in header]
    if all(_INT.fullmatch(h.strip()) for h in header if h.strip()):
        raise PredictionsError(f"{shown} has no header: line 1 is `{','.join(header)[:60]}`. "
                               "The first line must be `Id,Label`.")
    ids = [i for i, n in enumerate(names) if n in ID_NAMES]
    labels = [i for i, n in enumerate(names) if n in LABEL_NAMES]
    if len(ids) != 1 or len(labels) != 1:
        raise PredictionsError(f"{shown}'s header is `{','.join(header)[:80]}`; it must be `Id,Label` "
                               "(one id column and one label column).")
    notes = []
    if [header[ids[0]].strip(), header[labels[0]].strip()] != ["Id", "Label"] or len(header) != 2:
        notes.append(f"Read column `{header[ids[0]].strip()}` as Id and `{header[labels[0]].strip()}` as Label"
                     + (f"; {len(header) - 2} other column(s) ignored" if len(header) > 2 else "")
                     + ". The expected header is `Id,Label`.")
    return ids[0], labels[0], notes


def read_predictions(path: Path, num_classes: int, expected_ids: range | None, shown: str = "predictions.csv",
                     max_bytes: int | None = None, class_names: tuple[str, ...] = ()) -> Predictions:
    """Parse and validate; the ids must be exactly `expected_ids` (any distinct ids from 0 up
    when None: the count is not known before the labels are), labels in [0, num_classes).

    `class_names` (index order) lets the message for labels written as names say which
    index each name has."""
    path = Path(path)
    open_ended = expected_ids is None
    if open_ended:
        expected_ids = range(0, 10**9)
    limit = max_bytes if max_bytes is not None else 64 * (len(expected_ids) + 100) if not open_ended else 16 << 20
    size = path.stat().st_size
    if size == 0:
        raise PredictionsError(f"{shown} is empty.")
    if size > limit:
        need = "" if open_ended else f"; {len(expected_ids):,} rows of `Id,Label` need far less"
        raise PredictionsError(f"{shown} is {size:,} bytes{need} (at most {limit:,} bytes are read). "
                               "Write one row per image.")
    labels: dict[int, int] = {}
    problems: list[str] = []
    duplicates: list[str] = []
    outside: list[int] = []  # ids out of range, gathered whole to recognise ids counted from 1
    named: list[str] = []  # labels written as class names
    names = {n.lower(): i for i, n in enumerate(class_names)}
    id_col = label_col = width = None
    notes: list[str] = []
    with path.open("r", encoding="utf-8-sig", errors="replace", newline="") as f:
        for number, raw in enumerate(f, start=1):
            line = raw.rstrip("\r\n").strip()
            if not line:
                continue  # blank lines, trailing or not, carry nothing
            fields = [x.strip() for x in line.split(",")]
            if id_col is None:
                id_col, label_col, notes = _columns(fields, shown)
                width = len(fields)
                continue
            if len(fields) != width:
                problems.append(f"line {number} has {len(fields)} fields, the header {width}: `{line[:40]}`")
                continue
            raw_id, raw_label = fields[id_col], fields[label_col]
            if not _INT.fullmatch(raw_id):
                problems.append(f"line {number}: the id `{raw_id[:20]}` is not a whole number")
                continue
            if not _INT.fullmatch(raw_label) and raw_label.strip('"').lower() in names:
                named.append(raw_label.strip('"'))
                continue
            if not _INT.fullmatch(raw_label):
                problems.append(f"line {number}: the label `{raw_label[:20]}` is not a whole number "
                                f"(write the class index 0-{num_classes - 1}, not a name or a probability)")
                continue
            ident, label = int(raw_id), int(raw_label)
            if ident not in expected_ids:
                if len(outside) < len(expected_ids) + 1:
                    outside.append(ident)
                if len(outside) <= 2:
                    problems.append(f"line {number}: id {ident} is outside {expected_ids.start}-{expected_ids.stop - 1}")
            elif not 0 <= label < num_classes:
                problems.append(f"line {number}: label {label} is outside 0-{num_classes - 1}")
            elif ident in labels:
                duplicates.append(str(ident))
            else:
                labels[ident] = label
            if len(problems) > MAX_LISTED:
                break
    if id_col is None:
        raise PredictionsError(f"{shown} has only blank lines.")
    if named:
        mapping = ", ".join(f"{n}={i}" for i, n in enumerate(class_names))
        raise PredictionsError(f"{shown} gives class names as labels (`{named[0]}` first, {len(named):,} rows), but "
                               f"each label must be the class index, as in the sample file. The indices are: {mapping}.")
    first, last = expected_ids.start, expected_ids.stop - 1
    if not open_ended and outside and len(outside) + len(labels) == len(expected_ids) and min(outside) == last + 1 \
            and all(i > first for i in labels) and not duplicates:
        raise PredictionsError(f"{shown}'s ids run from {first + 1} to {last + 1:,}; they must run from {first} to "
                               f"{last:,} (the first test image is Id {first}). Number the rows from {first}.")
    if duplicates:
        problems.append(f"ids given more than once: {', '.join(duplicates[:MAX_LISTED])}"
                        + (f" and {len(duplicates) - MAX_LISTED} more" if len(duplicates) > MAX_LISTED else ""))
    missing = len(expected_ids) - len(labels) if not problems and not open_ended else 0
    if missing:
        absent = [str(i) for i in expected_ids if i not in labels][:MAX_LISTED]
        problems.append(f"{missing:,} of the {len(expected_ids):,} ids are missing (first: {', '.join(absent)})")
    if problems:
        shown_problems = problems[:MAX_LISTED]
        more = "; and more" if len(problems) > MAX_LISTED else ""
        raise PredictionsError(f"{shown} cannot be scored: " + "; ".join(shown_problems) + more + ".")
    return Predictions(labels, notes)


def score(predictions: Predictions, truth: dict[int, int], num_classes: int) -> Score:
    confusion = [[0] * num_classes for _ in range(num_classes)]
    for ident, true in truth.items():
        confusion[true][predictions.labels[ident]] += 1
    correct = sum(confusion[c][c] for c in range(num_classes))
    per_class = []
    for c in range(num_classes):
        total = sum(confusion[c])
        per_class.append({"class": c, "total": total, "correct": confusion[c][c],
                          "accuracy": confusion[c][c] / total if total else 0.0})
    total = len(truth)
    return Score(correct / total if total else 0.0, correct, total, per_class, confusion)


def points_for(accuracy: float, thresholds: list[tuple[float, float]]) -> float:
    """The points of the highest threshold reached; thresholds as (minimum accuracy, points)."""
    reached = [points for minimum, points in thresholds if accuracy >= minimum]
    return max(reached, default=0.0)
