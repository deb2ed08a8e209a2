"""GradeReport -> Gradescope's results.json (a plain dict; the caller serialises it)."""
from __future__ import annotations

from .. import __version__
from ..results import CheckResult, GradeReport, Status

MAX_OUTPUT = 60_000  # Gradescope cuts outputs near 100,000 characters; stay well under


def _md_escape(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _table_md(table: dict) -> str:
    lines = [f"**{_md_escape(table.get('title', 'Layer table'))}**", "",
             "| status | expected | output | params | found | output | params | where |",
             "|---|---|---|---:|---|---|---:|---|"]
    for row in table.get("rows", []):
        exp, fnd = row.get("expected") or {}, row.get("found") or {}
        cells = [row.get("status", ""),
                 " ".join(filter(None, [exp.get("name", ""), exp.get("attrs", "")])) or "—",
                 exp.get("shape", ""), f"{exp['params']:,}" if "params" in exp else "",
                 " ".join(filter(None, [fnd.get("type", ""), fnd.get("attrs", "")])) or "—",
                 fnd.get("shape", ""), f"{fnd['params']:,}" if "params" in fnd else "", fnd.get("where", "")]
        lines.append("| " + " | ".join(_md_escape(c) for c in cells) + " |")
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
    parts = [check.message]
    if check.hint:
        parts.append(f"**What to look at:** {check.hint}")
    table = check.details.get("table")
    if table and check.status is Status.FAILED:
        parts.append(_table_md(table))
    if isinstance(check.details.get("predictions"), dict):
        parts.append(_scores_md(check.details["predictions"]))
    if check.details.get("images"):
        parts.append(f"{len(check.details['images'])} image(s) are shown in the HTML report.")
    text = "\n\n".join(p for p in parts if p)
    return text if len(text) <= MAX_OUTPUT else text[:MAX_OUTPUT] + "\n\n(output cut)"


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
        files = ", ".join(f"`{f}`" for f in report.graded_files)
        lines.append(f"Graded file{'s' if len(report.graded_files) > 1 else ''}: {files}.")
    if report.grader_error:
        lines.append("**The grader itself failed**; the course staff has been told. Your score here is not final.")
    for note in report.notes:
        if note.level in ("warning", "error"):
            lines.append(f"- {note.level}: {note.text}")
    return "\n\n".join(lines)


def _leaderboard(report: GradeReport) -> list[dict]:
    return [dict(c.details["leaderboard"]) for c in report.checks if isinstance(c.details.get("leaderboard"), dict)]


def to_results(report: GradeReport) -> dict:
    results = {
        "score": report.score,
        "execution_time": round(report.seconds, 2),
        "output": _overview(report)[:MAX_OUTPUT],
        "output_format": "md",
        "test_output_format": "md",
        "test_name_format": "text",
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "extra_data": {
            "dlgrade": __version__,
            "assignment": report.assignment,
            "submission": report.submission,
            "graded_files": list(report.graded_files),
            "self_check": report.self_check,
            "grader_error": report.grader_error,
            "manual_points": report.manual_points,
            "environment": dict(report.environment),
        },
        "tests": [_test(c) for c in report.checks],
    }
    board = _leaderboard(report)
    if board:
        results["leaderboard"] = board
    return results
