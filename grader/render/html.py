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
import struct
from pathlib import Path
from typing import Any

import jinja2

from grader import __version__
from grader.results import Artifact, CheckResult, GradeReport, Status

from .htmltables import scores_view, table_view
from .htmltext import clean, format_count, format_points, slug, terminal_text

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
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_SMALL_IMAGE_PX = 160  # images narrower than this are scaled up with crisp pixels

_environment: jinja2.Environment | None = None


def environment() -> jinja2.Environment:
    """The templates' one environment: autoescaped, and an undefined name is an error."""
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
    return environment().get_template(TEMPLATE_NAME).render(r=_report_view(report))


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
    student_output = terminal_text(report.student_output or "")
    return {
        "title": clean(report.title or "Grade report"),
        "assignment": clean(report.assignment or ""),
        "submission": clean(report.submission or ""),
        "graded_files": [clean(str(f)) for f in report.graded_files],
        "score": format_points(report.score),
        "max_score": format_points(max_score),
        "percent": percent,
        "manual_points": format_points(report.manual_points) if report.manual_points > 0 else "",
        "manual_points_plural": report.manual_points != 1,
        "self_check": bool(report.self_check),
        "hidden_checks": int(report.hidden_checks or 0),
        "grader_error": clean(report.grader_error) if report.grader_error else "",
        "notes": [
            {
                "level": n.level if n.level in _NOTE_LABEL else "info",
                "label": _NOTE_LABEL.get(n.level, clean(str(n.level)).capitalize() or "Note"),
                "text": clean(str(n.text)),
            }
            for n in report.notes
        ],
        "counts": counts,
        "parts": parts,
        "leftover_figures": leftover,
        "student_output": student_output,
        "student_output_lines": len(student_output.rstrip("\n").split("\n")) if student_output else 0,
        "environment": [(clean(str(k)), clean(str(v))) for k, v in report.environment.items()],
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
                "label": f"Part {clean(part)}" if part else "Other checks",
                "anchor": "part-" + slug(part or "other"),
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
    anchor = "check-" + slug(str(check.check_id))
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
        "check_id": clean(str(check.check_id)),
        "number": clean(str(check.number or "")),
        "name": clean(str(check.name)),
        "status": status.value,
        "status_label": _STATUS_LABEL[status],
        "symbol": _STATUS_SYMBOL[status],
        "points": points,
        "max_points": max_points,
        "message": clean(str(check.message or "")),
        "hint": clean(str(check.hint or "")),
        "visibility": (
            _VISIBILITY_LABEL.get(check.visibility, f"visibility: {clean(str(check.visibility))}")
            if check.visibility != "visible"
            else ""
        ),
        "resources": ", ".join(resources),
        "table": table_view(details.get("table")),
        "figures": figures,
        "scores": scores_view(details.get("predictions")),
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
        "key": clean(key),
        "caption": clean(artifact.caption) if artifact is not None and artifact.caption else clean(key),
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
        view["problem"] = f"Not embedded: {clean(str(artifact.media_type))} is not an image/png."
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
