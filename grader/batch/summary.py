"""How the class did: summary.json, and summary.html rendered from the same data.

Everything here is read from the per-submission results.json files and the batch's own
records. The HTML is one offline file, like report.html: no scripts, no network.
"""
from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from pathlib import Path

from .. import __version__
from ..rubric import Rubric
from . import jobs
from .gradebook import automatic_checks
from .grading import BatchResult, Row, people_label

TOP_FAILURES = 15
SLOWEST = 10
BINS = 10  # score histogram: 0-10%, ..., 90-100%


def build(result: BatchResult, rubric: Rubric, engine: str, jobs_used: int, integrity: dict | None) -> dict:
    rows, export = result.rows, result.export
    checks = automatic_checks(rubric)
    possible = sum(c.points for c in checks)
    graded = [r for r in rows if r.status == jobs.GRADED and r.results]
    statuses = Counter(r.status for r in rows)
    if export.missing:
        statuses[jobs.MISSING] = len(export.missing)
    return {
        "dlgrade": __version__,
        "assignment": rubric.id,
        "title": rubric.title,
        "format": export.format,
        "engine": engine,
        "jobs": jobs_used,
        "seconds": result.seconds,
        "submissions": len(rows),
        "graded_now": result.graded_now,
        "reused": sum(r.reused for r in rows),
        "students": sum(len(r.submission.people) for r in rows) + len(export.missing),
        "possible": possible,
        "statuses": dict(sorted(statuses.items())),
        "scores": _scores(graded, possible),
        "checks": _checks(checks, rows),
        "failures": _failures(rows),
        "slowest": [_who(r) | {"seconds": r.seconds, "status": r.status}
                    for r in sorted(rows, key=lambda r: -r.seconds)[:SLOWEST] if not r.reused or r.seconds],
        "accuracy": _accuracy(graded),
        "problems": list(export.problems),
        "not_graded": [_who(r) | {"status": r.status, "message": r.message} for r in rows if r.status != jobs.GRADED],
        "missing": [{"id": p.id, "name": p.name, "email": p.email} for p in export.missing],
        "notes": [_who(r) | {"notes": list(r.submission.notes)} for r in rows if r.submission.notes],
        "students_table": [_who(r) | {"status": r.status, "score": (r.results or {}).get("score", 0.0),
                                     "seconds": r.seconds, "late": r.submission.late,
                                     "submitted_at": r.submission.submitted_at} for r in rows],
        "integrity": integrity,
    }


def _who(row: Row) -> dict:
    return {"key": row.submission.key, "who": people_label(row.submission.people) or row.submission.key,
            "report": f"{row.submission.key}/report.html"}


def _scores(graded: list[Row], possible: float) -> dict:
    totals = [float(r.results.get("score", 0.0)) for r in graded]
    counts = [0] * BINS
    for total in totals:
        share = total / possible if possible else 0.0
        counts[min(BINS - 1, max(0, math.floor(share * BINS)))] += 1
    ordered = sorted(totals)
    return {"count": len(totals), "histogram": [{"from": 100 * i / BINS, "to": 100 * (i + 1) / BINS, "count": n}
                                                 for i, n in enumerate(counts)],
            "mean": round(sum(totals) / len(totals), 3) if totals else None,
            "median": (ordered[len(ordered) // 2] if len(ordered) % 2 else
                       (ordered[len(ordered) // 2 - 1] + ordered[len(ordered) // 2]) / 2) if ordered else None}


def _tests(row: Row) -> list[dict]:
    return [t for t in (row.results or {}).get("tests", []) if "status" in t and (t.get("extra_data") or {}).get("check_id")]


def _checks(checks: list, rows: list[Row]) -> list[dict]:
    seen: dict[str, list[dict]] = defaultdict(list)
    held: Counter = Counter()
    for row in rows:
        if row.status == jobs.GRADED:
            for test in _tests(row):
                seen[test["extra_data"]["check_id"]].append(test)
            for test in (row.results or {}).get("tests", []):
                if "status" not in test and (test.get("extra_data") or {}).get("measured_inside"):
                    held[test["extra_data"].get("check_id")] += 1
    out = []
    for check in checks:
        tests = seen.get(check.check_id, [])
        passed = sum(t["status"] == "passed" for t in tests)
        out.append({"id": check.check_id, "name": check.name, "part": check.part, "points": check.points,
                    "graded": len(tests), "passed": passed, "held": held.get(check.check_id, 0),
                    "pass_rate": round(passed / len(tests), 4) if tests else None,
                    "mean_points": round(sum(float(t.get("score") or 0) for t in tests) / len(tests), 3) if tests else None})
    return out


def _message(test: dict) -> str:
    """The message a student read, without the hint and tables after it."""
    return (test.get("output") or "").split("\n\n", 1)[0].strip()[:400]


def _failures(rows: list[Row]) -> list[dict]:
    groups: dict[tuple[str, str], list[Row]] = defaultdict(list)
    names: dict[str, str] = {}
    for row in rows:
        if row.status != jobs.GRADED:
            continue
        for test in _tests(row):
            if test["status"] == "failed":
                check_id = test["extra_data"]["check_id"]
                names[check_id] = test.get("name", check_id)
                groups[(check_id, _message(test))].append(row)
    ranked = sorted(groups.items(), key=lambda item: (-len(item[1]), item[0]))[:TOP_FAILURES]
    return [{"check": check_id, "name": names[check_id], "message": message, "count": len(members),
             "students": [_who(r) for r in members]} for (check_id, message), members in ranked]


def _accuracy(graded: list[Row]) -> list[dict]:
    """The leaderboard values the predictions checks report (test accuracy, in percent)."""
    values: dict[str, list[float]] = defaultdict(list)
    for row in graded:
        for entry in row.results.get("leaderboard") or []:
            if isinstance(entry, dict) and isinstance(entry.get("value"), (int, float)):
                values[str(entry.get("name", "accuracy"))].append(float(entry["value"]))
    out = []
    for name, found in sorted(values.items()):
        ordered = sorted(found)
        out.append({"name": name, "count": len(found), "min": ordered[0], "max": ordered[-1],
                    "median": ordered[len(ordered) // 2], "values": ordered})
    return out


def write(summary: dict, out: Path) -> dict[str, Path]:
    from .ledger import write_atomic

    paths = {"summary_json": out / "summary.json", "summary_html": out / "summary.html"}
    write_atomic(paths["summary_json"], json.dumps(summary, indent=1, ensure_ascii=False))
    write_atomic(paths["summary_html"], render(summary))
    return paths


def render(summary: dict) -> str:
    from ..render.html import environment

    peak = max([b["count"] for b in summary["scores"]["histogram"]] + [1])
    return environment().get_template("summary.html.j2").render(s=summary, peak=peak)
