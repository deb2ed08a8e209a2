"""Score a submission's predictions files against the held-out labels, in the scoring process.

The labels never reach the worker: they are read here, from a path the sandbox hides,
and the predictions are read from the staged copy of the submission, which student code
cannot write. Everything returned is plain data for checks/predictions.py.
"""
from __future__ import annotations

from pathlib import Path

from .errors import InputError
from .predictions import PredictionsError, read_predictions, score
from .rubric import PredictionsSpec, Rubric

MAX_CONFUSION_CLASSES = 20  # a larger confusion matrix is summarised by its largest cells


def match_labels(rubric: Rubric, files: tuple[Path, ...]) -> dict[str, Path]:
    """Which labels file belongs to which [[predictions]] item: by the rubric's file name,
    or the only file for the only item."""
    specs = list(rubric.predictions)
    out: dict[str, Path] = {}
    for path in files:
        path = Path(path)
        if not path.is_file():
            raise InputError(f"--labels {path}: no such file")
        named = [s for s in specs if s.labels.lower() == path.name.lower()]
        if not named and len(specs) == 1 and len(files) == 1:
            named = specs
        if not named:
            expected = ", ".join(s.labels for s in specs) or "none (this assignment scores no predictions file)"
            raise InputError(f"--labels {path.name}: this assignment's labels files are named {expected}")
        out[named[0].id] = path
    return out


def find_file(root: Path, files: list[str], name: str) -> str | None:
    """The submitted file with this name (any case), the shallowest first."""
    found = [f for f in files if Path(f).name.lower() == name.lower()]
    return min(found, key=lambda f: (f.count("/"), f)) if found else None


def load_truth(spec: PredictionsSpec, path: Path) -> dict[int, int]:
    """The held-out labels, in the same `Id,Label` format students write. A bad file is the
    course staff's problem, so its error says so."""
    try:
        labels = read_predictions(path, spec.num_classes, spec.ids, shown=f"The labels file {path.name}",
                                  max_bytes=256 * (spec.count + 100) if spec.count else None).labels
    except (PredictionsError, OSError) as exc:
        raise InputError(f"cannot use the held-out labels for {spec.file}: {exc}") from None
    if not spec.count and sorted(labels) != list(range(spec.first_id, spec.first_id + len(labels))):
        raise InputError(f"cannot use the held-out labels for {spec.file}: the ids in {path.name} must run from "
                         f"{spec.first_id} without gaps")
    return labels


def expected_ids(spec: PredictionsSpec, truth: dict[int, int] | None) -> range | None:
    if spec.ids is not None:
        return spec.ids
    return range(spec.first_id, spec.first_id + len(truth)) if truth else None


def evaluate(spec: PredictionsSpec, root: Path, files: list[str], truth: dict[int, int] | None,
             intake_notes: list[str] = ()) -> dict:
    """What the checks need: where the file is, whether it reads, and its score when the
    labels are at hand. `intake_notes` say why a file may not have been staged (too large)."""
    rel = find_file(root, files, spec.file)
    out: dict = {"file": rel, "error": None, "notes": [], "score": None, "shift": None,
                 "others": [f for f in files if f.lower().endswith(".csv")][:8],
                 "refused": [n for n in intake_notes if spec.file.lower() in n.lower()]}
    if rel is None:
        return out
    try:
        predictions = read_predictions(root / rel, spec.num_classes, expected_ids(spec, truth), shown=rel,
                                       class_names=spec.class_names)
    except PredictionsError as exc:
        out["error"] = str(exc)
        return out
    except OSError as exc:
        out["error"] = f"{rel} could not be read ({exc.strerror})."
        return out
    out["notes"] = predictions.notes
    out["rows"] = len(predictions.labels)
    out["histogram"] = _histogram(predictions.labels.values(), spec.num_classes)
    if truth is None:
        return out
    result = score(predictions, truth, spec.num_classes)
    out["score"] = {"accuracy": result.accuracy, "correct": result.correct, "total": result.total,
                    "per_class": [{**row, "name": spec.class_name(row["class"])} for row in result.per_class],
                    **_confusion(result.confusion, spec)}
    out["shift"] = _best_shift(predictions.labels, truth, result.accuracy)
    return out


def _histogram(labels, num_classes: int) -> list[int]:
    counts = [0] * num_classes
    for label in labels:
        counts[label] += 1
    return counts


def _confusion(confusion: list[list[int]], spec: PredictionsSpec) -> dict:
    """The whole matrix for a few classes; for many, the most frequent mistakes."""
    if spec.num_classes <= MAX_CONFUSION_CLASSES:
        return {"confusion": confusion, "class_names": [spec.class_name(i) for i in range(spec.num_classes)]}
    mistakes = [(count, t, p) for t, row in enumerate(confusion) for p, count in enumerate(row) if t != p and count]
    mistakes.sort(key=lambda m: (-m[0], m[1], m[2]))
    return {"top_confusions": [{"true": spec.class_name(t), "predicted": spec.class_name(p), "count": c}
                               for c, t, p in mistakes[:15]]}


def _best_shift(predicted: dict[int, int], truth: dict[int, int], accuracy: float) -> dict | None:
    """Predictions written one or two rows off (an off-by-one in the writing loop) score
    near chance, yet match the labels once shifted back: say so, since the model is fine."""
    best = None
    for offset in (-2, -1, 1, 2):
        pairs = [(predicted[i + offset], label) for i, label in truth.items() if i + offset in predicted]
        if not pairs:
            continue
        shifted = sum(p == t for p, t in pairs) / len(pairs)
        if shifted >= max(2 * accuracy, accuracy + 0.25) and (best is None or shifted > best["accuracy"]):
            best = {"offset": offset, "accuracy": shifted}
    return best
