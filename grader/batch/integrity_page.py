"""integrity.html and integrity.csv from an IntegrityReport (see grader/batch/integrity.py).

The page is built like report.html (grader/render/html.py, whose Jinja environment it uses):
one offline file, inline CSS, no scripts; everything it shows is prepared here as plain dicts,
and all student text reaches it through autoescape, never as template source.
"""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Any
from urllib.parse import quote

from grader.render.html import environment
from grader.render.htmltext import clean

from .integrity import CSV_COLUMNS, IntegrityReport

TEMPLATE_NAME = "integrity.html.j2"
CLOSEST_SHOWN = 10  # unflagged pairs listed for comparison
_KIND_LABEL = {"identical": "Identical files", "shared_errors": "Same wrong labels"}


def render_page(report: IntegrityReport, *, top: int = 20) -> str:
    return environment().get_template(TEMPLATE_NAME).render(r=_view(report, top))


def _view(report: IntegrityReport, top: int) -> dict[str, Any]:
    flagged = [p for p in report.pairs if p.flagged]
    closest = [p for p in report.pairs if not p.flagged][:CLOSEST_SHOWN]
    shown = (flagged + closest)[:max(top, 0)]
    return {
        "threshold": _percent(report.threshold),
        "floor": _percent(report.floor),
        "compared": _compared(report),
        "starter_files": [clean(f) for f in report.starter_files],
        "starter_fingerprints": f"{report.starter_fingerprints:,}",
        "common_fingerprints": f"{report.common_fingerprints:,}",
        "common_examples": report.common_examples,
        "flagged": [_pair_row(n, p) for n, p in enumerate(flagged, 1)],
        "closest": [_pair_row(n, p) for n, p in enumerate(closest, len(flagged) + 1)],
        "fragments": [_fragments(n, p) for n, p in enumerate(shown, 1) if p.fragment_a and p.fragment_b],
        "clusters": [{"size": len(c.members), "people": [_person(k, label) for k, label in zip(c.members, c.labels)],
                      "evidence": _evidence(c.code_pairs, c.prediction_pairs)} for c in report.clusters],
        "predictions": [{"kind": _KIND_LABEL.get(f.kind, f.kind), "item": clean(f.item), "a": _person(f.a, f.a_label),
                         "b": _person(f.b, f.b_label), "summary": clean(f.summary), "flagged": f.flagged}
                        for f in report.predictions],
        "prediction_items": [clean(i) for i in report.prediction_items],
        "items_with_truth": [clean(i) for i in report.items_with_truth],
        "notes": [clean(n) for n in report.notes],
    }


def _compared(report: IntegrityReport) -> str:
    return (f"{report.submissions:,} submissions, {report.with_code:,} of them with Python or notebook code: "
            f"{report.code_pairs_compared:,} pairs of submissions compared, each submission's files read as one "
            "program (notebooks: their code cells).")


def _percent(value: float) -> str:
    return f"{100 * value:.0f}%"


def _person(key: str, label: str) -> dict[str, str]:
    # The key is a folder name under OUT; quoting keeps the link relative whatever it holds.
    return {"href": quote(key, safe="") + "/report.html", "label": clean(label or key)}


def _pair_row(n: int, pair) -> dict[str, Any]:
    return {"n": n, "a": _person(pair.a, pair.a_label), "b": _person(pair.b, pair.b_label),
            "similarity_a": _percent(pair.similarity_a), "similarity_b": _percent(pair.similarity_b),
            "tokens": f"{pair.longest_fragment_tokens:,}", "lines": f"{pair.longest_fragment_lines:,}",
            "anchor": f"pair-{n}" if pair.fragment_a and pair.fragment_b else ""}


def _fragments(n: int, pair) -> dict[str, Any]:
    sides = []
    for key, label, frag in ((pair.a, pair.a_label, pair.fragment_a), (pair.b, pair.b_label, pair.fragment_b)):
        sides.append({"person": _person(key, label), "where": clean(frag.where), "before": frag.before,
                      "match": frag.match, "after": frag.after})
    return {"n": n, "anchor": f"pair-{n}", "tokens": f"{pair.longest_fragment_tokens:,}",
            "lines": f"{pair.longest_fragment_lines:,}", "flagged": pair.flagged, "sides": sides}


def _evidence(code: int, predictions: int) -> str:
    parts = []
    if code:
        parts.append(f"{code} flagged code pair{'s' if code != 1 else ''}")
    if predictions:
        parts.append(f"{predictions} flagged prediction finding{'s' if predictions != 1 else ''}")
    return " and ".join(parts)


def write_csv(report: IntegrityReport, path: Path) -> None:
    with open(path, "w", encoding="utf-8-sig", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(CSV_COLUMNS)
        for p in report.pairs:
            writer.writerow(_cells({"a": p.a, "b": p.b, "a_label": p.a_label, "b_label": p.b_label,
                                    "similarity_a": p.similarity_a, "similarity_b": p.similarity_b,
                                    "longest_fragment_tokens": p.longest_fragment_tokens, "flagged": p.flagged,
                                    "kind": "code"}))
        for f_ in report.predictions:
            writer.writerow(_cells({"a": f_.a, "b": f_.b, "a_label": f_.a_label, "b_label": f_.b_label,
                                    "flagged": f_.flagged, "kind": f"predictions_{f_.kind}", "item": f_.item,
                                    "rows_both_wrong": f_.both_wrong, "same_wrong_label": f_.same_wrong,
                                    "expected_same_wrong": f_.expected_same_wrong,
                                    "chance": None if f_.p_value is None else f"{f_.p_value:.3g}",
                                    "summary": f_.summary}))


def _cells(row: dict[str, Any]) -> list[str]:
    out = []
    for column in CSV_COLUMNS:
        value = row.get(column)
        if value is None:
            out.append("")
        elif isinstance(value, bool):
            out.append("yes" if value else "no")
        elif isinstance(value, float):
            out.append(f"{value:.3f}")
        elif isinstance(value, int):
            out.append(str(value))
        else:
            text = clean(str(value))
            # A cell starting with = + - @ is a formula to a spreadsheet; names come from students.
            out.append("'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text)
    return out
