"""A one-screen plain-text summary of a GradeReport, for the terminal.

Parts where nothing failed take one line; parts with a failure list every check, and
each failed check shows the first lines of its message and its hint. Manual checks are
always listed. Colour (ANSI) only when asked for; text that came from a submission is
stripped of control characters so it cannot move the cursor or recolour the terminal.
"""
from __future__ import annotations

import os
import re

from grader.results import CheckResult, GradeReport, Status

MESSAGE_LINES = 3  # lines of a failed check's message shown under it
HINT_LINES = 2
LINE_CHARS = 200  # longer lines are cut (the full text is in report.html)
INDENT = " " * 10

_TAG = {Status.PASSED: "[PASS]", Status.FAILED: "[FAIL]", Status.MANUAL: "[STAFF]"}
_COLOR = {
    "pass": "32",  # green
    "fail": "31",  # red
    "todo": "33",  # yellow
    "bold": "1",
    "dim": "2",
    "error": "1;31",
    "warning": "33",
}
_TAG_COLOR = {Status.PASSED: "pass", Status.FAILED: "fail", Status.MANUAL: "todo"}
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def _safe(text: object) -> str:
    """Text from a report made harmless for a terminal: control characters become visible escapes."""
    text = str(text).replace("\r\n", "\n")
    return _CONTROL_RE.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def _cut(line: str, limit: int = LINE_CHARS) -> str:
    return line if len(line) <= limit else line[: limit - 1] + "\u2026"


def _points(value: object) -> str:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return _safe(value)
    text = f"{round(number, 2):.2f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def summary(report: GradeReport, *, color: bool = False, out_dir: str | None = None) -> str:
    """The report on one screen: score, notes, one line per check or per all-good part."""

    def paint(text: str, style: str) -> str:
        return f"\x1b[{_COLOR[style]}m{text}\x1b[0m" if color else text

    lines: list[str] = []
    title = _safe(report.title or "Grade report")
    if report.assignment:
        title += f"  ({_safe(report.assignment)})"
    lines.append(paint(title, "bold"))
    label_width = 14
    lines.append(f"{'Submission:':<{label_width}}{_safe(report.submission) or '(unnamed)'}")
    files = ", ".join(_safe(f) for f in report.graded_files) or "(none recorded)"
    lines.append(f"{'Graded files:':<{label_width}}{_cut(files)}")

    score = f"{_points(report.score)} / {_points(report.max_score)} points"
    if report.grader_error:
        score += " (incomplete: the grader did not finish)"
    lines.append(f"{'Score:':<{label_width}}" + paint(score, "bold"))
    pad = " " * label_width
    if report.manual_points > 0:
        staff = _points(report.manual_points)
        lines.append(pad + paint(f"+ {staff} point{'s' if report.manual_points != 1 else ''} graded by course staff, pending", "todo"))
    if report.self_check:
        more = (
            f"{_plural(report.hidden_checks, 'more check')} run at grading time"
            if report.hidden_checks
            else "more checks may run at grading time"
        )
        lines.append(pad + f"Self-check: public checks only; {more}.")

    # Problems first: a grader error, then warnings and errors.
    head_break = False
    if report.grader_error:
        lines.append("")
        head_break = True
        lines.append(paint("GRADER ERROR: grading did not finish. Tell course staff.", "error"))
        error_lines = _safe(report.grader_error).strip("\n").split("\n")
        lines += [INDENT[:2] + _cut(ln) for ln in error_lines[:MESSAGE_LINES]]
        if len(error_lines) > MESSAGE_LINES:
            lines.append(INDENT[:2] + paint(f"... {len(error_lines) - MESSAGE_LINES} more lines", "dim"))
    infos = 0
    for note in report.notes:
        if note.level not in ("warning", "error"):
            infos += 1
            continue
        if not head_break:
            lines.append("")
            head_break = True
        text = _safe(note.text).strip("\n").split("\n")
        label = "Error" if note.level == "error" else "Warning"
        lines.append(paint(f"{label}:", note.level) + " " + _cut(text[0]))
        lines += [INDENT[:2] + _cut(ln) for ln in text[1:MESSAGE_LINES]]
    if infos:
        if not head_break:
            lines.append("")
        lines.append(paint(f"({_plural(infos, 'more note')} in the full report)", "dim"))

    # Checks, part by part in the order they were run.
    groups: dict[str, list[CheckResult]] = {}
    for check in report.checks:
        groups.setdefault(str(check.part or ""), []).append(check)
    lines.append("")
    if not groups:
        lines.append("No checks were run.")
    points_width = max(
        (len(_check_points(c)) for c in report.checks),
        default=0,
    )
    for part, checks in groups.items():
        name = f"Part {_safe(part)}" if part else "Other checks"
        auto = [c for c in checks if c.status is not Status.MANUAL]
        passed = sum(c.status is Status.PASSED for c in auto)
        failed = len(auto) - passed
        part_points = f"{_points(sum(c.points for c in checks))} / {_points(sum(c.max_points for c in checks))} points"
        manual = [c for c in checks if c.status is Status.MANUAL]
        if not auto:
            staff = sum(_staff_points(c) for c in manual)
            state = f"{_plural(len(manual), 'check')} graded by course staff, pending"
            lines.append(f"{paint(name, 'bold')}: {paint(state, 'todo')} ({_points(staff)} points)")
            shown = manual
        elif failed == 0:
            state = f"{passed}/{len(auto)} checks passed"
            pending = f", {len(manual)} pending" if manual else ""
            lines.append(f"{paint(name, 'bold')}: {paint(state, 'pass')}{pending} ({part_points})")
            shown = manual
        else:
            state = f"{passed}/{len(auto)} checks passed, {failed} failed"
            lines.append(f"{paint(name, 'bold')}: {paint(state, 'fail')} ({part_points})")
            shown = [c for c in checks if c.status is not Status.PASSED]  # the passes are in the report
        lines += _listing(shown, points_width, paint)
        if failed and passed:
            lines.append(paint(f"  ({_plural(passed, 'other check')} passed; see the report)", "dim"))

    if out_dir:
        lines.append("")
        lines.append(f"{'Results:':<{label_width}}{os.path.join(out_dir, 'results.json')}")
        lines.append(f"{'Report:':<{label_width}}{os.path.join(out_dir, 'report.html')}")
    return "\n".join(lines)


def _subject(check: CheckResult) -> str:
    """What a check is about: the text before the colon in its name, e.g. 'AlexNet (4 classes)'."""
    return check.name.split(":", 1)[0]


def _listing(checks: list[CheckResult], points_width: int, paint) -> list[str]:
    """One entry per check, except that checks not graded because of an earlier failure of
    the same subject fold into one line: the first failure already says why."""
    out: list[str] = []
    i = 0
    while i < len(checks):
        check = checks[i]
        out += _check_lines(check, points_width, paint)
        j = i + 1
        if check.status is Status.FAILED:
            while (j < len(checks) and checks[j].status is Status.FAILED and _subject(checks[j]) == _subject(check)
                   and (checks[j].message.startswith("Not graded") or checks[j].message == check.message)):
                j += 1
        if j > i + 1:
            folded = checks[i + 1:j]
            pts = f"0 / {_points(sum(c.max_points for c in folded))}"
            tag = paint(_TAG[Status.FAILED], _TAG_COLOR[Status.FAILED])
            out.append(f"  {tag} {pts:>{points_width}}  {_cut(_safe(_subject(check)))}: "
                       f"{_plural(len(folded), 'more check')} not graded for the same reason")
        i = j
    return out


def _staff_points(check: CheckResult) -> float:
    """Points a manual check is worth (course staff grade it; it carries no automatic points)."""
    value = check.details.get("manual_points", check.max_points) if isinstance(check.details, dict) else check.max_points
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def _check_points(check: CheckResult) -> str:
    if check.status is Status.MANUAL:
        return f"- / {_points(_staff_points(check))}"
    return f"{_points(check.points)} / {_points(check.max_points)}"


def _check_lines(check: CheckResult, points_width: int, paint) -> list[str]:
    tag = paint(_TAG[check.status], _TAG_COLOR[check.status])
    name = _cut(_safe(check.name).replace("\n", " "))
    if check.status is Status.MANUAL:
        name += paint("  (graded by course staff)", "dim")
    out = [f"  {tag} {_check_points(check):>{points_width}}  {name}"]
    if check.status is Status.FAILED:
        message = [ln for ln in _safe(check.message).strip("\n").split("\n")] if check.message.strip() else []
        out += [INDENT + _cut(ln) for ln in message[:MESSAGE_LINES]]
        if len(message) > MESSAGE_LINES:
            out.append(INDENT + paint(f"... {len(message) - MESSAGE_LINES} more lines in the full report", "dim"))
        hint = [ln for ln in _safe(check.hint).strip("\n").split("\n")] if check.hint.strip() else []
        if hint:
            out.append(INDENT + paint("Hint:", "bold") + " " + _cut(hint[0]))
            out += [INDENT + "      " + _cut(ln) for ln in hint[1:HINT_LINES]]
    return out
