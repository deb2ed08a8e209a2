"""GradeReport -> Gradescope's results.json (a plain dict; the caller serialises it).

Students read every `output` here, and much of it is text the submission controls
(exception messages, names, notes), so each piece is cut to a bound with a visible
"(cut: N characters)" marker: a submission cannot carry data out in bulk through its
results, nor make the file too large for Gradescope. What the submission printed is not
in results.json at all; it is in the staff's HTML report.
"""
from __future__ import annotations

from .. import __version__
from ..protocol import clip, utf8
from ..results import CheckResult, GradeReport, Status

MAX_MESSAGE = 4_000  # a check's message, in characters
MAX_HINT = 1_000
MAX_CELL = 120  # one cell of a layer table
MAX_ROWS = 80  # rows of a layer table shown (the HTML report shows all)
MAX_OUTPUT = 12_000  # one test's whole output; Gradescope cuts near 100,000 characters
MAX_NOTE = 1_500  # one warning in the overview
MAX_OVERVIEW = 16_000
MAX_NAME = 300  # a file or submission name
MAX_ENV = 200  # one environment value
MAX_GRADER_ERROR = 8_000  # the staff's traceback of a grader failure


def _md_escape(text: str, limit: int = MAX_CELL) -> str:
    return clip(str(text), limit).replace("|", "\\|").replace("\n", " ")


def _table_md(table: dict) -> str:
    lines = [f"**{_md_escape(table.get('title', 'Layer table'))}**", "",
             "| status | expected | output | params | found | output | params | where |",
             "|---|---|---|---:|---|---|---:|---|"]
    rows = table.get("rows", [])
    for row in rows[:MAX_ROWS]:
        exp, fnd = row.get("expected") or {}, row.get("found") or {}
        cells = [row.get("status", ""),
                 " ".join(filter(None, [exp.get("name", ""), exp.get("attrs", "")])) or "—",
                 exp.get("shape", ""), f"{exp['params']:,}" if "params" in exp else "",
                 " ".join(filter(None, [fnd.get("type", ""), fnd.get("attrs", "")])) or "—",
                 fnd.get("shape", ""), f"{fnd['params']:,}" if "params" in fnd else "", fnd.get("where", "")]
        lines.append("| " + " | ".join(_md_escape(c) for c in cells) + " |")
    if len(rows) > MAX_ROWS:
        lines += ["", f"({len(rows) - MAX_ROWS} more rows are in the HTML report.)"]
    return "\n".join(lines)


def _scores_md(data: dict) -> str:
    lines = ["| class | images | correct | accuracy |", "|---|---:|---:|---:|"]
    for row in data.get("per_class", []):
        lines.append(f"| {_md_escape(row.get('name', row.get('class')))} | {row.get('total', 0):,} | "
                     f"{row.get('correct', 0):,} | {row.get('accuracy', 0):.1%} |")
    mistakes = data.get("top_confusions")
    if mistakes:
        lines += ["", "Most frequent mistakes: " + "; ".join(
            f"{_md_escape(m['true'])} as {_md_escape(m['predicted'])} ({m['count']:,})" for m in mistakes[:8])]
    return "\n".join(lines)


def _test_output(check: CheckResult) -> str:
    parts = [clip(check.message, MAX_MESSAGE)]
    if check.hint:
        parts.append(f"**What to look at:** {clip(check.hint, MAX_HINT)}")
    table = check.details.get("table")
    if table and check.status is Status.FAILED:
        parts.append(_table_md(table))
    if isinstance(check.details.get("predictions"), dict):
        parts.append(_scores_md(check.details["predictions"]))
    if check.details.get("images"):
        parts.append(f"{len(check.details['images'])} image(s) are shown in the HTML report.")
    return clip("\n\n".join(p for p in parts if p), MAX_OUTPUT)


def _test(check: CheckResult) -> dict:
    test = {
        "name": check.name,
        "name_format": "text",
        "number": check.number,
        "score": check.points,
        "max_score": check.max_points,
        "output": _test_output(check),
        "output_format": "md",
        "tags": list(check.tags),
        "visibility": check.visibility,
        "extra_data": {"check_id": check.check_id, "part": check.part},
    }
    if check.details.get("measured_inside"):
        test["extra_data"]["measured_inside"] = clip(str(check.details["measured_inside"]), 600)
    if check.status is Status.MANUAL:
        test["name"] = f"[Graded by course staff] {check.name}"
        test["extra_data"]["manual_points"] = check.details.get("manual_points", 0)
    else:
        test["status"] = check.status.value
    return test


def _overview(report: GradeReport) -> str:
    lines = [f"**{report.title}**: {report.score:g} / {report.max_score:g} points from the autograder."]
    if report.manual_points:
        lines.append(f"{report.manual_points:g} more points are graded by course staff.")
    if report.self_check:
        lines.append(f"This is a **self-check**: only the public checks ran; {report.hidden_checks} more run at grading time.")
    if report.graded_files:
        files = ", ".join(f"`{clip(f, MAX_NAME)}`" for f in report.graded_files)
        lines.append(f"Graded file{'s' if len(report.graded_files) > 1 else ''}: {files}.")
    if report.grader_error:
        lines.append("**The grader itself failed**; the course staff has been told. Your score here is not final.")
    for note in report.notes:
        if note.level in ("warning", "error"):
            lines.append(f"- {note.level}: {clip(note.text, MAX_NOTE)}")
    return clip("\n\n".join(lines), MAX_OVERVIEW)


def _leaderboard(report: GradeReport) -> list[dict]:
    return [dict(c.details["leaderboard"]) for c in report.checks if isinstance(c.details.get("leaderboard"), dict)]


def to_results(report: GradeReport) -> dict:
    results = {
        "score": report.score,
        "execution_time": round(report.seconds, 2),
        "output": _overview(report),
        "output_format": "md",
        "test_output_format": "md",
        "test_name_format": "text",
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "extra_data": {
            "dlgrade": __version__,
            "assignment": report.assignment,
            "submission": clip(report.submission, MAX_NAME),
            "graded_files": [clip(f, MAX_NAME) for f in report.graded_files],
            "self_check": report.self_check,
            "grader_error": clip(report.grader_error, MAX_GRADER_ERROR, tail=True) if report.grader_error else None,
            "manual_points": report.manual_points,
            "environment": {clip(str(k), MAX_ENV): clip(str(v), MAX_ENV) for k, v in report.environment.items()},
            "check_errors": report.check_errors,  # for the staff: checks that raised, with the traceback
        },
        "tests": [_test(c) for c in report.checks],
    }
    board = _leaderboard(report)
    if board:
        results["leaderboard"] = board
    return _utf8(results)


def _utf8(value):
    """Every string writable as UTF-8 (a lone surrogate in a file name or message would stop
    results.json from being written at all). Our own structure, a few levels deep."""
    if isinstance(value, str):
        return utf8(value)
    if isinstance(value, dict):
        return {_utf8(k): _utf8(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_utf8(v) for v in value]
    return value
