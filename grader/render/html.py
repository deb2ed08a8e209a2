"""Render a GradeReport as one self-contained HTML page (report.html).

The page works offline and from a file: CSS is inline, there are no scripts, fonts
or remote resources, and PNG artifacts are embedded as data URIs. Output depends only
on the report (no dates), so the same report always renders to the same bytes.

Everything the template shows is prepared here as plain dicts with every key present,
so the template can run under StrictUndefined however sparse or odd the report's
`details` are. All student-controlled text reaches the page through Jinja's autoescape.
"""
from __future__ import annotations

import base64
import re
import struct
from pathlib import Path
from typing import Any

import jinja2

from grader import __version__
from grader.results import Artifact, CheckResult, GradeReport, Status

TEMPLATE_NAME = "report.html.j2"
_TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"

_STATUS_LABEL = {
    Status.PASSED: "Passed",
    Status.FAILED: "Failed",
    Status.MANUAL: "Manual, pending",
}
_STATUS_SYMBOL = {Status.PASSED: "\u2713", Status.FAILED: "\u2717", Status.MANUAL: "\u25cb"}
_VISIBILITY_LABEL = {
    "hidden": "hidden from students",
    "after_due_date": "shown to students after the due date",
    "after_published": "shown to students after grades are published",
}
_NOTE_LABEL = {"info": "Note", "warning": "Warning", "error": "Error"}
# Layer-table row statuses: (label, symbol). Anything else renders as-is.
_ROW_STATUS = {
    "match": ("Match", "\u2713"),  # check mark
    "equivalent": ("Equivalent", "\u2248"),  # almost equal
    "mismatch": ("Mismatch", "\u2717"),  # ballot x
    "missing": ("Missing", "\u2212"),  # minus
    "extra": ("Extra", "+"),
}
# Fields compared between the expected and the found layer, in column order.
_LAYER_FIELDS = ("type", "attrs", "shape", "params")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_SMALL_IMAGE_PX = 160  # images narrower than this are scaled up with crisp pixels
# ANSI escape sequences (CSI and OSC) and the control characters HTML cannot carry.
_ANSI_RE = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]")
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")

_environment: jinja2.Environment | None = None


def _env() -> jinja2.Environment:
    global _environment
    if _environment is None:
        _environment = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(_TEMPLATE_DIR)),
            autoescape=jinja2.select_autoescape(("html", "j2"), default_for_string=True, default=True),
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
        )
    return _environment


def render_html(report: GradeReport) -> str:
    """The report as a complete HTML document (a str; write it as UTF-8)."""
    return _env().get_template(TEMPLATE_NAME).render(r=_report_view(report))


# --------------------------------------------------------------------------- text


def format_points(value: Any) -> str:
    """23.5 -> "23.5", 24.0 -> "24", 1/3 -> "0.33"."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return _clean(str(value))
    if number != number:  # NaN
        return "?"
    text = f"{round(number, 2):.2f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def format_count(value: Any) -> str:
    """34944 -> "34,944"; leaves text that is not a number alone."""
    if value is None or value == "":
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{int(value):,}" if value.is_integer() else f"{value:,.2f}"
    text = _clean(str(value)).strip()
    if re.fullmatch(r"-?\d+", text):
        return f"{int(text):,}"
    return text


def _clean(text: str) -> str:
    """Text safe to put in a page: no ANSI colour codes, no raw control characters."""
    text = _ANSI_RE.sub("", text)
    return _CONTROL_RE.sub("\N{REPLACEMENT CHARACTER}", text)


def _terminal_text(text: str) -> str:
    """What a terminal would have shown: each carriage return (progress bars) redraws its line."""
    lines = []
    for line in text.replace("\r\n", "\n").split("\n"):
        if "\r" in line:
            parts = [p for p in line.split("\r") if p]
            line = parts[-1] if parts else ""
        lines.append(line)
    return _clean("\n".join(lines))


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-") or "x"


# ----------------------------------------------------------------------- view model


def _report_view(report: GradeReport) -> dict[str, Any]:
    checks = list(report.checks)
    counts = _counts(checks)
    max_score = report.max_score
    percent = 0 if max_score <= 0 else max(0, min(100, round(100 * report.score / max_score)))
    used_images: set[str] = set()
    parts = _parts_view(report, used_images)
    leftover = [
        _figure_view(report, key) for key in report.artifacts if key not in used_images
    ]
    student_output = _terminal_text(report.student_output or "")
    return {
        "title": _clean(report.title or "Grade report"),
        "assignment": _clean(report.assignment or ""),
        "submission": _clean(report.submission or ""),
        "graded_files": [_clean(str(f)) for f in report.graded_files],
        "score": format_points(report.score),
        "max_score": format_points(max_score),
        "percent": percent,
        "manual_points": format_points(report.manual_points) if report.manual_points > 0 else "",
        "manual_points_plural": report.manual_points != 1,
        "self_check": bool(report.self_check),
        "hidden_checks": int(report.hidden_checks or 0),
        "grader_error": _clean(report.grader_error) if report.grader_error else "",
        "notes": [
            {
                "level": n.level if n.level in _NOTE_LABEL else "info",
                "label": _NOTE_LABEL.get(n.level, _clean(str(n.level)).capitalize() or "Note"),
                "text": _clean(str(n.text)),
            }
            for n in report.notes
        ],
        "counts": counts,
        "parts": parts,
        "leftover_figures": leftover,
        "student_output": student_output,
        "student_output_lines": len(student_output.rstrip("\n").split("\n")) if student_output else 0,
        "environment": [(_clean(str(k)), _clean(str(v))) for k, v in report.environment.items()],
        "seconds": format_points(report.seconds) if report.seconds else "",
        "version": __version__,
    }


def _counts(checks: list[CheckResult]) -> dict[str, int]:
    return {
        "total": len(checks),
        "passed": sum(c.status is Status.PASSED for c in checks),
        "failed": sum(c.status is Status.FAILED for c in checks),
        "manual": sum(c.status is Status.MANUAL for c in checks),
    }


def _parts_view(report: GradeReport, used_images: set[str]) -> list[dict[str, Any]]:
    groups: dict[str, list[CheckResult]] = {}
    for check in report.checks:  # dicts keep first-appearance order: the handout's order
        groups.setdefault(str(check.part or ""), []).append(check)
    parts = []
    seen_anchors: set[str] = set()
    for part, checks in groups.items():
        counts = _counts(checks)
        automatic = counts["total"] - counts["manual"]
        tally = []
        if automatic:
            tally.append(f"{counts['passed']} of {automatic} passed")
            if counts["failed"]:
                tally.append(f"{counts['failed']} failed")
        if counts["manual"]:
            tally.append(f"{counts['manual']} pending review by course staff")
        points = format_points(sum(c.points for c in checks))
        max_points = sum(c.max_points for c in checks)
        staff = sum(_staff_points(c) for c in checks if c.status is Status.MANUAL)
        if max_points or not staff:
            overview = f"{points} / {format_points(max_points)}"
            if staff:
                overview += f" + {format_points(staff)} pending"
        else:
            overview = f"{format_points(staff)} pending"
        parts.append(
            {
                "label": f"Part {_clean(part)}" if part else "Other checks",
                "anchor": "part-" + _slug(part or "other"),
                "points": points,
                "max_points": format_points(max_points),
                "tally": ", ".join(tally),
                "overview_points": overview,
                "score_text": overview + " points",
                "counts": counts,
                "checks": [_check_view(report, c, used_images, seen_anchors) for c in checks],
            }
        )
    return parts


def _staff_points(check: CheckResult) -> float:
    """Points a manual check is worth: course staff grade it, so it adds nothing automatically."""
    details = check.details if isinstance(check.details, dict) else {}
    try:
        return float(details.get("manual_points", check.max_points))
    except (TypeError, ValueError):
        return 0.0


def _check_view(
    report: GradeReport, check: CheckResult, used_images: set[str], seen_anchors: set[str]
) -> dict[str, Any]:
    status = check.status if isinstance(check.status, Status) else Status(str(check.status))
    details = check.details if isinstance(check.details, dict) else {}
    if status is Status.MANUAL:
        points, max_points = "\u2014", format_points(_staff_points(check))
    else:
        points, max_points = format_points(check.points), format_points(check.max_points)
    anchor = "check-" + _slug(str(check.check_id))
    while anchor in seen_anchors:
        anchor += "-"
    seen_anchors.add(anchor)
    images = details.get("images")
    figures = []
    if isinstance(images, (list, tuple)):
        for key in images:
            key = str(key)
            used_images.add(key)
            figures.append(_figure_view(report, key))
    resources = []
    if check.seconds is not None:
        resources.append(f"{format_points(check.seconds)} s")
    if check.peak_mb is not None:
        resources.append(f"{format_count(round(check.peak_mb))} MB peak")
    return {
        "anchor": anchor,
        "check_id": _clean(str(check.check_id)),
        "number": _clean(str(check.number or "")),
        "name": _clean(str(check.name)),
        "status": status.value,
        "status_label": _STATUS_LABEL[status],
        "symbol": _STATUS_SYMBOL[status],
        "points": points,
        "max_points": max_points,
        "message": _clean(str(check.message or "")),
        "hint": _clean(str(check.hint or "")),
        "visibility": (
            _VISIBILITY_LABEL.get(check.visibility, f"visibility: {_clean(str(check.visibility))}")
            if check.visibility != "visible"
            else ""
        ),
        "resources": ", ".join(resources),
        "table": _table_view(details.get("table")),
        "figures": figures,
        "scores": _scores_view(details.get("predictions")),
    }


def _scores_view(data: Any) -> dict[str, Any] | None:
    """Per-class accuracy and the confusion matrix (or its largest cells) of a predictions file."""
    if not isinstance(data, dict) or not isinstance(data.get("per_class"), list):
        return None
    per_class = []
    for row in data["per_class"]:
        if not isinstance(row, dict):
            continue
        acc = row.get("accuracy")
        per_class.append({"name": _clean(str(row.get("name", row.get("class", "?")))),
                          "total": format_count(row.get("total")), "correct": format_count(row.get("correct")),
                          "accuracy": f"{acc:.1%}" if isinstance(acc, (int, float)) else "",
                          "percent": round(100 * acc) if isinstance(acc, (int, float)) else 0})
    matrix = None
    confusion, names = data.get("confusion"), data.get("class_names")
    if isinstance(confusion, list) and isinstance(names, list) and len(confusion) == len(names):
        peak = max((v for row in confusion for v in row if isinstance(v, int)), default=1) or 1
        matrix = {"names": [_clean(str(n)) for n in names],
                  "rows": [{"name": _clean(str(names[i])),
                            "cells": [{"count": format_count(v), "shade": min(9, int(9 * v / peak + 0.999)) if v else 0,
                                       "diagonal": i == j} for j, v in enumerate(row)]}
                           for i, row in enumerate(confusion)]}
    top = [{"true": _clean(str(m.get("true"))), "predicted": _clean(str(m.get("predicted"))),
            "count": format_count(m.get("count"))}
           for m in data.get("top_confusions") or [] if isinstance(m, dict)]
    acc = data.get("accuracy")
    return {"accuracy": f"{acc:.2%}" if isinstance(acc, (int, float)) else "", "per_class": per_class,
            "matrix": matrix, "top": top}


def _table_view(table: Any) -> dict[str, Any] | None:
    if not isinstance(table, dict):
        return None
    rows_in = table.get("rows")
    rows_in = rows_in if isinstance(rows_in, (list, tuple)) else []
    rows = [_row_view(i, row) for i, row in enumerate(rows_in, 1)]
    tally: dict[str, int] = {}
    for row in rows:
        tally[row["status"]] = tally.get(row["status"], 0) + 1
    order = ["mismatch", "missing", "extra", "equivalent", "match"]
    summary = [
        f"{tally[s]} {_ROW_STATUS[s][0].lower() if s in _ROW_STATUS else s}"
        for s in order + sorted(set(tally) - set(order))
        if s in tally
    ]
    return {
        "title": _clean(str(table.get("title") or "Layers")),
        "rows": rows,
        "summary": ", ".join(summary),
    }


def _layer_cells(layer: Any, fields: tuple[str, ...]) -> dict[str, str] | None:
    if not isinstance(layer, dict):
        return None
    cells = {}
    for name in fields:
        value = layer.get(name)
        if name == "params":
            cells[name] = format_count(value)
        else:
            cells[name] = "" if value is None else _clean(str(value))
    return cells


def _same(field: str, a: Any, b: Any) -> bool:
    """Whether an expected and a found value agree, ignoring spacing (and digit grouping for counts)."""

    def norm(value: Any) -> str:
        if value is None:
            return ""
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        text = re.sub(r"\s+", "", str(value))
        return text.replace(",", "") if field == "params" else text

    return norm(a) == norm(b)


def _row_view(index: int, row: Any) -> dict[str, Any]:
    if not isinstance(row, dict):
        row = {"status": "unknown", "note": f"Unreadable row: {row!r}"}
    status = _clean(str(row.get("status") or "unknown")).lower()
    label, symbol = _ROW_STATUS.get(status, (status.capitalize(), "?"))
    expected = row.get("expected")
    found = row.get("found")
    diff: list[str] = []
    # Fields are marked only on rows the check found wrong: an "equivalent" row may be
    # written differently and still be right.
    if isinstance(expected, dict) and isinstance(found, dict) and status not in ("match", "equivalent"):
        diff = [f for f in _LAYER_FIELDS if not _same(f, expected.get(f), found.get(f))]
    return {
        "index": index,
        "status": status if status in _ROW_STATUS else "other",
        "label": label,
        "symbol": symbol,
        "expected": _layer_cells(expected, ("name",) + _LAYER_FIELDS),
        "found": _layer_cells(found, _LAYER_FIELDS + ("where",)),
        "diff": diff,
        "note": _clean(str(row.get("note") or "")),
    }


def _png_size(data: bytes) -> tuple[int, int] | None:
    if len(data) >= 24 and data[:8] == _PNG_SIGNATURE and data[12:16] == b"IHDR":
        width, height = struct.unpack(">II", data[16:24])
        if width > 0 and height > 0:
            return width, height
    return None


def _figure_view(report: GradeReport, key: str) -> dict[str, Any]:
    artifact: Artifact | None = report.artifacts.get(key)
    view: dict[str, Any] = {
        "key": _clean(key),
        "caption": _clean(artifact.caption) if artifact is not None and artifact.caption else _clean(key),
        "src": "",
        "width": 0,
        "height": 0,
        "pixelated": False,
        "problem": "",
    }
    if artifact is None:
        view["problem"] = "This image was not produced."
        return view
    if artifact.media_type != "image/png":
        view["problem"] = f"Not embedded: {_clean(str(artifact.media_type))} is not an image/png."
        return view
    data = bytes(artifact.data or b"")
    size = _png_size(data)
    if size is None:
        view["problem"] = "Not embedded: the file is not a readable PNG image."
        return view
    view["src"] = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
    view["width"], view["height"] = size
    view["pixelated"] = size[0] < _SMALL_IMAGE_PX
    return view
