"""The report's tables, as plain dicts with every key present: a model's layer table (expected
against found, the fields that differ marked) and a predictions file's per-class scores and
confusion matrix."""
from __future__ import annotations

import re
from typing import Any

from .htmltext import clean, format_count

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


def scores_view(data: Any) -> dict[str, Any] | None:
    """Per-class accuracy and the confusion matrix (or its largest cells) of a predictions file."""
    if not isinstance(data, dict) or not isinstance(data.get("per_class"), list):
        return None
    per_class = []
    for row in data["per_class"]:
        if not isinstance(row, dict):
            continue
        acc = row.get("accuracy")
        per_class.append({"name": clean(str(row.get("name", row.get("class", "?")))),
                          "total": format_count(row.get("total")), "correct": format_count(row.get("correct")),
                          "accuracy": f"{acc:.1%}" if isinstance(acc, (int, float)) else "",
                          "percent": round(100 * acc) if isinstance(acc, (int, float)) else 0})
    matrix = None
    confusion, names = data.get("confusion"), data.get("class_names")
    if isinstance(confusion, list) and isinstance(names, list) and len(confusion) == len(names):
        peak = max((v for row in confusion for v in row if isinstance(v, int)), default=1) or 1
        matrix = {"names": [clean(str(n)) for n in names],
                  "rows": [{"name": clean(str(names[i])),
                            "cells": [{"count": format_count(v), "shade": min(9, int(9 * v / peak + 0.999)) if v else 0,
                                       "diagonal": i == j} for j, v in enumerate(row)]}
                           for i, row in enumerate(confusion)]}
    top = [{"true": clean(str(m.get("true"))), "predicted": clean(str(m.get("predicted"))),
            "count": format_count(m.get("count"))}
           for m in data.get("top_confusions") or [] if isinstance(m, dict)]
    acc = data.get("accuracy")
    return {"accuracy": f"{acc:.2%}" if isinstance(acc, (int, float)) else "", "per_class": per_class,
            "matrix": matrix, "top": top}


def table_view(table: Any) -> dict[str, Any] | None:
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
        "title": clean(str(table.get("title") or "Layers")),
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
            cells[name] = "" if value is None else clean(str(value))
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
    status = clean(str(row.get("status") or "unknown")).lower()
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
        "note": clean(str(row.get("note") or "")),
    }
