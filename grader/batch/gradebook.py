"""The class's gradebook: one row per student, read from each submission's results.json.

gradebook.csv has every column a TA sorts on: who, when, late, status, one column per
rubric check (by its stable check id: blank where it did not run, or is held for the staff),
each part's points, the total, the percent, and the points held for the staff to decide. The
import files hold only what Gradescope's and Canvas's score uploads read.
"""
from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd

from ..rubric import Rubric
from . import jobs
from .grading import Row

ID_COLUMNS = ["student_id", "name", "email", "submission", "submitted_at", "late", "status", "message", "group"]


def automatic_checks(rubric: Rubric) -> list:
    return [c for c in rubric.checks() if c.kind != "manual"]


def frame(rows: list[Row], missing: list, rubric: Rubric) -> pd.DataFrame:
    """One row per student: a group's members each get the group's grade."""
    checks = automatic_checks(rubric)
    parts = sorted({c.part for c in checks})
    possible = sum(c.points for c in checks)
    records = []
    for row in rows:
        scores = _scores(row.results) if row.status in (jobs.GRADED, jobs.UNGRADABLE) else {}
        held = _held(row.results, {c.check_id for c in checks}) if row.status == jobs.GRADED else 0.0
        by_part: dict[str, float] = {}
        for check in checks:
            if check.check_id in scores:
                by_part[check.part] = by_part.get(check.part, 0.0) + scores[check.check_id]
        total = round(sum(scores.values()), 4)
        sub = row.submission
        for person in sub.people:
            others = [p.id for p in sub.people if p is not person]
            record = {"student_id": person.id, "name": person.name, "email": person.email, "submission": sub.key,
                      "submitted_at": sub.submitted_at, "late": sub.late, "status": row.status,
                      "message": row.message, "group": "; ".join(others)}
            record.update({c.check_id: scores.get(c.check_id) for c in checks})
            record.update({f"part {p}": round(by_part.get(p, 0.0), 4) for p in parts})
            record.update({"total": total, "possible": possible,
                           "percent": round(100 * total / possible, 2) if possible else 0.0, "held": held})
            records.append(record)
    for person in missing:
        record = {"student_id": person.id, "name": person.name, "email": person.email, "submission": "",
                  "submitted_at": "", "late": False, "status": jobs.MISSING, "message": "no submission", "group": ""}
        record.update({c.check_id: None for c in checks})
        record.update({f"part {p}": 0.0 for p in parts})
        record.update({"total": 0.0, "possible": possible, "percent": 0.0, "held": 0.0})
        records.append(record)
    columns = ID_COLUMNS + [c.check_id for c in checks] + [f"part {p}" for p in parts] + ["total", "possible", "percent", "held"]
    table = pd.DataFrame.from_records(records, columns=columns)
    return table.sort_values(["student_id"], kind="stable", key=lambda s: s.str.lower()).reset_index(drop=True)


def _scores(results: dict | None) -> dict[str, float]:
    out: dict[str, float] = {}
    for test in (results or {}).get("tests", []):
        check_id = (test.get("extra_data") or {}).get("check_id")
        if check_id and "status" in test:  # a staff-graded item has no status, and no automatic score
            out[check_id] = float(test.get("score") or 0.0)
    return out


def _held(results: dict | None, automatic: set[str]) -> float:
    """Points of automatic checks held for the course staff (measured inside the submission's
    process): not in the total until a TA decides."""
    return round(sum(float((t.get("extra_data") or {}).get("manual_points") or 0)
                     for t in (results or {}).get("tests", [])
                     if "status" not in t and (t.get("extra_data") or {}).get("check_id") in automatic), 4)


def write(table: pd.DataFrame, out: Path, rubric: Rubric) -> dict[str, Path]:
    paths = {"gradebook": out / "gradebook.csv", "gradescope": out / "gradescope-scores.csv",
             "canvas": out / "canvas-scores.csv"}
    table.to_csv(paths["gradebook"], index=False, quoting=csv.QUOTE_MINIMAL)
    # Gradescope's "Import scores" matches a row by its Email or SID and reads one score column.
    table[["name", "student_id", "email", "total"]].rename(
        columns={"name": "Name", "student_id": "SID", "email": "Email", "total": "Total Score"}
    ).to_csv(paths["gradescope"], index=False)
    # Canvas's gradebook import: its own export's columns, a "Points Possible" row first, and the
    # assignment as one column. Canvas matches on ID (its user id) or SIS User ID.
    column = rubric.title
    canvas = pd.DataFrame({"Student": table["name"], "ID": table["student_id"].where(table["student_id"].str.isdigit(), ""),
                           "SIS User ID": table["student_id"], "SIS Login ID": table["email"], "Section": "",
                           column: table["total"]})
    possible = pd.DataFrame([{"Student": "Points Possible", "ID": "", "SIS User ID": "", "SIS Login ID": "", "Section": "",
                              column: table["possible"].iloc[0] if len(table) else sum(c.points for c in automatic_checks(rubric))}])
    pd.concat([possible, canvas], ignore_index=True).to_csv(paths["canvas"], index=False)
    return paths
