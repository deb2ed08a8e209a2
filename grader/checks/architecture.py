"""Compare a traced forward pass with the handout's layer table, row by row.

We judge the computation: the trace already makes F.relu and nn.ReLU the same row.
Here two more things count as the same network: layers that commute (ReLU applied after
max-pooling, dropout before or after a ReLU or a flatten) and layers that do nothing at
the graded input size (an adaptive pool to the size it already has). Rows are aligned
with a small edit-distance alignment, so one extra or missing layer is reported as such
and the rows after it are still compared on their own.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..spectable import SpecRow

# Pairs (a, b) where a-then-b computes exactly what b-then-a does.
_COMMUTES = {frozenset(p) for p in [("ReLU", "MaxPool2d"), ("ReLU", "Dropout"), ("ReLU", "Flatten"), ("Dropout", "Flatten")]}
_CANONICAL_RANK = {"ReLU": 0, "MaxPool2d": 1, "Flatten": 2, "Dropout": 3}
_SHAPE_PRESERVING = {"ReLU", "Dropout"}
_ATTRS = ("kernel", "stride", "padding", "dilation")


@dataclass
class Found:
    type: str
    shape: tuple[int, ...]
    params: int
    attrs: dict
    where: str = ""
    module: str = ""
    in_shape: tuple[int, ...] = ()

    @classmethod
    def from_row(cls, row: dict) -> "Found":
        return cls(str(row.get("type", "?")), tuple(int(s) for s in row.get("shape", [])), int(row.get("params", 0)),
                   dict(row.get("attrs") or {}), str(row.get("where", "")), str(row.get("module", "")),
                   tuple(int(s) for s in row.get("in_shape", [])))

    def shape_text(self) -> str:
        return "[" + ", ".join(["-1", *map(str, self.shape)]) + "]"

    def attrs_text(self) -> str:
        a = self.attrs
        if not a.get("kernel"):
            return ""  # the tables list kernel, padding, stride and dilation only
        k = a["kernel"]
        parts = [" x ".join(map(str, k)) if self.type.startswith("Conv") else str(k[0])]  # Conv1d has one size
        defaults = {"padding": 0, "stride": k[0] if "Pool" in self.type else 1, "dilation": 1}
        for name in ("padding", "stride", "dilation"):
            value = a.get(name)
            if isinstance(value, list) and value and value[0] != defaults[name]:
                parts.append(f"{name} {value[0]}" if len(set(value)) == 1 else f"{name} {tuple(value)}")
        return ", ".join(parts)

    def location(self) -> str:
        place = self.where
        if self.module:
            attr = "self." + ".".join(f"[{p}]" if p.isdigit() else p for p in self.module.split(".")).replace(".[", "[")
            place = f"{place}, {attr}" if place else attr
        return place


@dataclass
class DiffRow:
    status: str  # match | equivalent | mismatch | missing | extra
    expected: SpecRow | None
    found: Found | None
    problems: list[str] = field(default_factory=list)
    note: str = ""

    def as_dict(self) -> dict:
        exp = self.expected
        fnd = self.found
        return {
            "status": self.status,
            "expected": None if exp is None else {"name": exp.name, "type": exp.type, "attrs": exp.attrs_text(),
                                                  "shape": exp.shape_text(), "params": exp.params},
            "found": None if fnd is None else {"type": fnd.type, "attrs": fnd.attrs_text(), "shape": fnd.shape_text(),
                                               "params": fnd.params, "where": fnd.location()},
            "note": "; ".join(filter(None, [*self.problems, self.note])),
        }


@dataclass
class TableDiff:
    rows: list[DiffRow]
    notes: list[str]

    @property
    def passed(self) -> bool:
        return all(r.status in ("match", "equivalent") for r in self.rows)

    def first_problem(self) -> DiffRow | None:
        return next((r for r in self.rows if r.status not in ("match", "equivalent")), None)

    def problem_count(self) -> int:
        return sum(r.status not in ("match", "equivalent") for r in self.rows)


# ---------------------------------------------------------------- preparing the rows

def _drop_identities(found: list[Found], notes: list[str]) -> list[Found]:
    kept = []
    for row in found:
        if row.type.startswith("Adaptive") and row.shape == row.in_shape:
            notes.append(f"{row.type} at {row.location() or 'forward'} leaves a {row.shape_text()} input unchanged "
                         "at this input size, so it was not counted as a layer.")
            continue
        kept.append(row)
    return kept


def _canonical(rows: list, type_of) -> tuple[list, set[int]]:
    """Sort runs of commuting layers into one order. Returns the rows and ids of moved ones."""
    rows = list(rows)
    moved: set[int] = set()
    changed = True
    while changed:
        changed = False
        for i in range(len(rows) - 1):
            a, b = type_of(rows[i]), type_of(rows[i + 1])
            if frozenset((a, b)) in _COMMUTES and a != b and _CANONICAL_RANK[a] > _CANONICAL_RANK[b]:
                rows[i], rows[i + 1] = rows[i + 1], rows[i]
                moved.update({id(rows[i]), id(rows[i + 1])})
                changed = True
    return rows, moved


def _reshape_after_reorder(found: list[Found], input_shape: tuple[int, ...]) -> None:
    previous = tuple(input_shape)
    for row in found:
        if row.type in _SHAPE_PRESERVING:
            row.shape = previous
        previous = row.shape


# ---------------------------------------------------------------- alignment

def _cost(exp: SpecRow | None, fnd: Found | None) -> float:
    if exp is None or fnd is None:
        return 1.0
    if exp.type != fnd.type:
        return 1.9  # below delete+insert, so a wrong layer type shows as one row
    return 0.0 if (exp.shape == fnd.shape and exp.params == fnd.params) else 0.4


def _align(expected: list[SpecRow], found: list[Found]) -> list[tuple[SpecRow | None, Found | None]]:
    n, m = len(expected), len(found)
    cost = [[0.0] * (m + 1) for _ in range(n + 1)]
    for i in range(1, n + 1):
        cost[i][0] = float(i)
    for j in range(1, m + 1):
        cost[0][j] = float(j)
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            cost[i][j] = min(cost[i - 1][j - 1] + _cost(expected[i - 1], found[j - 1]),
                             cost[i - 1][j] + 1.0, cost[i][j - 1] + 1.0)
    pairs = []
    i, j = n, m
    while i > 0 or j > 0:
        if i > 0 and j > 0 and abs(cost[i][j] - (cost[i - 1][j - 1] + _cost(expected[i - 1], found[j - 1]))) < 1e-9:
            pairs.append((expected[i - 1], found[j - 1]))
            i, j = i - 1, j - 1
        elif i > 0 and abs(cost[i][j] - (cost[i - 1][j] + 1.0)) < 1e-9:
            pairs.append((expected[i - 1], None))
            i -= 1
        else:
            pairs.append((None, found[j - 1]))
            j -= 1
    return pairs[::-1]


# ---------------------------------------------------------------- comparing

def _attr_problems(exp: SpecRow, fnd: Found) -> list[str]:
    problems = []
    for name in _ATTRS:
        want = getattr(exp, name)
        got = fnd.attrs.get(name)
        if want is None or got is None or name == "dilation" and "Pool" in exp.type and got == [1, 1] and want == (1, 1):
            continue
        if isinstance(got, list) and tuple(got) != tuple(want):
            label = "kernel" if name == "kernel" else name
            show = lambda v: " x ".join(map(str, v)) if name == "kernel" and exp.type.startswith("Conv") else (str(v[0]) if len(set(v)) == 1 else str(tuple(v)))
            problems.append(f"{label} {show(got)}, expected {show(want)}")
    return problems


def compare(expected: list[SpecRow], rows: list[dict], input_shape: tuple[int, ...]) -> TableDiff:
    notes: list[str] = []
    found = _drop_identities([Found.from_row(r) for r in rows], notes)
    expected_c, _ = _canonical(expected, lambda r: r.type)
    found_c, moved = _canonical(found, lambda r: r.type)
    if moved:
        _reshape_after_reorder(found_c, input_shape)
    diff = []
    for exp, fnd in _align(expected_c, found_c):
        if fnd is None:
            diff.append(DiffRow("missing", exp, None, [f"{exp.name} is missing"]))
            continue
        if exp is None:
            diff.append(DiffRow("extra", None, fnd, ["not in the table"]))
            continue
        if exp.type != fnd.type:
            diff.append(DiffRow("mismatch", exp, fnd, [f"found {fnd.type}, expected {exp.type}"]))
            continue
        problems = []
        if fnd.shape != exp.shape:
            problems.append(f"output {fnd.shape_text()}, expected {exp.shape_text()}")
        if fnd.params != exp.params:
            problems.append(f"{fnd.params:,} parameters, expected {exp.params:,}")
        problems += _attr_problems(exp, fnd)
        if problems:
            diff.append(DiffRow("mismatch", exp, fnd, problems))
        elif id(fnd) in moved:
            diff.append(DiffRow("equivalent", exp, fnd, note="in another order that computes the same result"))
        else:
            diff.append(DiffRow("match", exp, fnd))
    return TableDiff(diff, notes)


def describe_problem(row: DiffRow, table_classes: int | None = None, num_classes: int | None = None) -> str:
    """One sentence in the table's terms: the row, what was expected, what was found."""
    exp, fnd = row.expected, row.found
    where = f" ({fnd.location()})" if fnd is not None and fnd.location() else ""
    if row.status == "missing":
        return f"{exp.name}: expected {exp.type} {exp.shape_text()}, but your network has no such layer here."
    if row.status == "extra":
        return f"Your network has an extra {fnd.type} {fnd.shape_text()}{where} that the table does not have."
    if exp.type != fnd.type:
        return f"{exp.name}: expected {exp.type}, found {fnd.type}{where}."
    if fnd.shape != exp.shape or fnd.params != exp.params:
        text = (f"{exp.name}: expected {exp.shape_text()} and {exp.params:,} parameters, "
                f"got {fnd.shape_text()} and {fnd.params:,}{where}.")
        attrs = _attr_problems(exp, fnd)
        if attrs:
            text += " Its " + "; ".join(attrs) + "."
        return text
    return f"{exp.name}: " + "; ".join(_attr_problems(exp, fnd)) + f"{where} (the output shape is right, the layer is not)."
