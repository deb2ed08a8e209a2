"""The class's integrity report: which submissions look copied. It flags; it never changes a score.

    report = analyse(entries, starter, truth, out)   # writes out/integrity.html and out/integrity.csv

Code: grader/batch/code_similarity.py (copydetect fingerprints, starter code and passages most of
the class shares ignored). Predictions: grader/batch/predictions_agreement.py (identical files;
wrong labels shared far more often than independent errors would).

integrity.csv is one table for a spreadsheet (UTF-8 with a byte-order mark, so names keep their
accents), one row per finding, the columns:
    a, b, a_label, b_label, similarity_a, similarity_b, longest_fragment_tokens, flagged,
    kind, item, rows_both_wrong, same_wrong_label, expected_same_wrong, chance, summary
kind "code": every pair with a similarity of at least FLOOR, or flagged (prediction columns empty);
similarity_a is the share of a's code (boilerplate aside) also found in b, from 0 to 1; flagged is
"yes" or "no"; a text cell that a spreadsheet would read as a formula starts with an apostrophe.
kind "predictions_identical" / "predictions_shared_errors": the prediction findings (similarity
columns empty); chance is the probability of that much agreement with independent errors.
"""
from __future__ import annotations

import os
import stat
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # numpy and copydetect load only when a report is made (the scoring side never does)
    from .code_similarity import CodePair
    from .predictions_agreement import PredictionFinding

FLOOR = 0.2  # pairs below this similarity are neither listed nor written to the CSV
MAX_FILE_BYTES = 2 * 1024 * 1024
MAX_FILES = 1000
SKIP_FOLDERS = {"__MACOSX", "__pycache__", ".ipynb_checkpoints"}
CSV_COLUMNS = ["a", "b", "a_label", "b_label", "similarity_a", "similarity_b", "longest_fragment_tokens",
               "flagged", "kind", "item", "rows_both_wrong", "same_wrong_label", "expected_same_wrong", "chance",
               "summary"]


@dataclass
class Entry:
    """One graded submission, as the integrity report sees it."""
    key: str  # its folder under OUT (link target: f"{key}/report.html")
    label: str  # who, for the tables, e.g. "Ada Lovelace (1001)"; a group's names joined
    files: dict[str, str]  # relative path -> text of each .py and .ipynb the student sent
    predictions: dict[str, dict[int, int]] = field(default_factory=dict)  # item id -> {row id: label}


@dataclass
class Cluster:
    """Submissions joined by flagged pairs (code or predictions), directly or through others."""
    members: list[str]  # keys, sorted
    labels: list[str]
    code_pairs: int
    prediction_pairs: int
    highest_similarity: float


@dataclass
class IntegrityReport:
    submissions: int
    with_code: int  # submissions with any .py or notebook code
    code_pairs_compared: int
    prediction_pairs_compared: int
    threshold: float
    floor: float
    starter_files: list[str]
    starter_fingerprints: int  # k-grams of the starter code, ignored
    common_fingerprints: int  # fingerprints in more than half of the submissions, ignored
    common_examples: list[str]  # a few of those passages, as text
    prediction_items: list[str]
    items_with_truth: list[str]
    pairs: list[CodePair]  # similarity >= floor or flagged; most similar first
    clusters: list[Cluster]
    predictions: list[PredictionFinding]  # flagged first
    notes: list[str]
    seconds: float

    @property
    def flagged_pairs(self) -> list[CodePair]:
        return [p for p in self.pairs if p.flagged]

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON data (for summary.json); code fragments are left to the HTML page."""
        data = {k: v for k, v in asdict(self).items() if k not in ("pairs", "clusters", "predictions")}
        data["pairs"] = [_pair_dict(p) for p in self.pairs]
        data["clusters"] = [asdict(c) for c in self.clusters]
        data["predictions"] = [asdict(f) for f in self.predictions]
        data["seconds"] = round(self.seconds, 2)
        return data


def _pair_dict(pair: CodePair) -> dict[str, Any]:
    data = {k: v for k, v in asdict(pair).items() if not k.startswith("fragment_")}
    data["similarity"] = pair.similarity
    for side in ("fragment_a", "fragment_b"):
        frag = getattr(pair, side)
        data[side] = None if frag is None else {"where": frag.where, "first_line": frag.first_line,
                                                 "last_line": frag.last_line}
    return data


def entry_files(root: Path) -> dict[str, str]:
    """The .py and .ipynb files under a staged submission folder, as text (relative posix path ->
    text). Skipped: files over 2 MB, symlinks, hidden files and folders, __MACOSX, checkpoints."""
    found: dict[str, str] = {}
    for folder, dirs, names in os.walk(root, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in SKIP_FOLDERS
                         and not os.path.islink(os.path.join(folder, d)))
        for name in sorted(names):
            if name.startswith(".") or not name.lower().endswith((".py", ".ipynb")):
                continue
            path = os.path.join(folder, name)
            text = _read_small(path)
            if text is not None:
                found[Path(path).relative_to(root).as_posix()] = text
                if len(found) >= MAX_FILES:
                    return found
    return found


def _read_small(path: str) -> str | None:
    try:
        info = os.lstat(path)
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_FILE_BYTES:
            return None
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        with os.fdopen(fd, "rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
    except OSError:
        return None
    return None if len(data) > MAX_FILE_BYTES else data.decode("utf-8", errors="replace")


def analyse(entries: list[Entry], boilerplate: dict[str, str], truth: dict[str, dict[int, int]],
            out: Path, *, top: int = 20, threshold: float = 0.5) -> IntegrityReport:
    """Compare every pair of submissions; write out/integrity.html and out/integrity.csv.

    `boilerplate` is the starter code (relative path -> .py or .ipynb text); `truth` the
    held-out labels per predictions item (may be empty: then only identical files are found).
    `threshold` is the similarity from which a code pair is flagged; `top` how many pairs the
    page shows side by side."""
    from . import code_similarity, predictions_agreement
    from .integrity_page import render_page, write_csv

    started = time.perf_counter()
    entries = sorted(entries, key=lambda e: e.key)
    docs = [(e.key, e.label, code_similarity.build_document(e.files)) for e in entries]
    notes = [f"{e.label}: {note}" for e, (_, _, doc) in zip(entries, docs) for note in doc.notes]
    notes += [f"Starter code: {note}" for note in code_similarity.build_document(boilerplate).notes]
    code = code_similarity.compare_code(docs, boilerplate, threshold=threshold, floor=FLOOR)
    truth = {item: labels for item, labels in (truth or {}).items() if labels}
    findings, prediction_pairs = predictions_agreement.compare_predictions(
        [(e.key, e.label, e.predictions or {}) for e in entries], truth)
    items = sorted({item for e in entries for item, rows in (e.predictions or {}).items() if rows})
    report = IntegrityReport(
        submissions=len(entries), with_code=code.compared, code_pairs_compared=code.pairs_compared,
        prediction_pairs_compared=prediction_pairs, threshold=threshold, floor=FLOOR,
        starter_files=sorted(boilerplate), starter_fingerprints=code.starter_fingerprints,
        common_fingerprints=code.common_fingerprints, common_examples=code.common_examples,
        prediction_items=items, items_with_truth=[i for i in items if i in truth], pairs=code.pairs,
        clusters=_clusters(code.pairs, findings, {e.key: e.label for e in entries}),
        predictions=findings, notes=notes + code.notes, seconds=0.0)
    out.mkdir(parents=True, exist_ok=True)
    write_csv(report, out / "integrity.csv")
    (out / "integrity.html").write_text(render_page(report, top=top), encoding="utf-8")
    report.seconds = time.perf_counter() - started
    return report


def _clusters(pairs, findings, labels: dict[str, str]) -> list[Cluster]:
    parent: dict[str, str] = {}

    def root(key: str) -> str:
        while parent.setdefault(key, key) != key:
            parent[key] = parent[parent[key]]
            key = parent[key]
        return key

    edges = [(p.a, p.b, "code", p.similarity) for p in pairs if p.flagged]
    edges += [(f.a, f.b, "predictions", 0.0) for f in findings if f.flagged]
    for a, b, _, _ in edges:
        parent[root(a)] = root(b)
    groups: dict[str, list[str]] = {}
    for key in sorted(parent):
        groups.setdefault(root(key), []).append(key)
    out = []
    for members in groups.values():
        mine = [e for e in edges if root(e[0]) == root(members[0])]
        code = [e for e in mine if e[2] == "code"]
        out.append(Cluster(members, [labels.get(k, k) for k in members], len(code), len(mine) - len(code),
                           max((e[3] for e in code), default=0.0)))
    out.sort(key=lambda c: (-len(c.members), -c.highest_similarity, c.members))
    return out
