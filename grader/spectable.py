"""Parse the layer tables handouts publish (torchsummary's layout) into spec rows.

The published tables leave columns blank, so a row such as ``MaxPool2d-3 3 2`` or
``Conv2d-9 3 x 3 2`` only lists the numbers that were filled in. Which column a lone
number belongs to (padding, stride or dilation) is decided by the output shapes: we try
every order-preserving assignment and keep those that reproduce the published shape.
"""
from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, replace

# Columns after "Kernel", in the order the tables print them.
_OPTIONAL_COLUMNS = ("padding", "stride", "dilation")
_ROW = re.compile(
    r"^(?P<type>[A-Za-z][A-Za-z0-9_]*)-(?P<index>\d+)\s+(?P<middle>.*?)\s*"
    r"\[(?P<shape>[^\]]*)\]\s+(?P<params>[\d,]+)$"
)
_KERNEL = re.compile(r"^(\d+)\s*x\s*(\d+)\s*(.*)$")
_CONV = {"Conv2d"}
_POOL = {"MaxPool2d", "AvgPool2d"}


class TableError(ValueError):
    def __init__(self, line: int, reason: str):
        self.line = line
        super().__init__(f"line {line}: {reason}")


@dataclass(frozen=True)
class SpecRow:
    name: str  # the table's row label, e.g. "Conv2d-1"
    type: str  # e.g. "Conv2d"
    shape: tuple[int, ...]  # output shape without the batch dimension, e.g. (96, 55, 55)
    params: int
    line: int  # line within the pasted table, for rubric error messages
    kernel: tuple[int, int] | None = None
    # None where the table's blanks leave the value open (several readings fit the shapes).
    padding: tuple[int, int] | None = None
    stride: tuple[int, int] | None = None
    dilation: tuple[int, int] | None = None

    def shape_text(self) -> str:
        return "[" + ", ".join(["-1", *map(str, self.shape)]) + "]"

    def attrs_text(self) -> str:
        if self.kernel is None:
            return ""
        k = self.kernel
        parts = [f"{k[0]} x {k[1]}" if self.type in _CONV else str(k[0])]
        for label in _OPTIONAL_COLUMNS:
            value = getattr(self, label)
            default = 1 if label != "padding" else 0
            if label == "stride" and self.type in _POOL:
                default = k[0]
            if value is not None and value[0] != default:
                parts.append(f"{label} {value[0]}")
        return ", ".join(parts)


def parse_table(text: str, input_shape: tuple[int, ...]) -> list[SpecRow]:
    """Rows of a pasted table, with blank columns resolved against the shapes."""
    rows: list[SpecRow] = []
    previous_shape = tuple(input_shape)
    for number, raw in enumerate(text.strip("\n").splitlines(), start=1):
        line = raw.strip()
        if not line or set(line) <= set("=-") or line.startswith("Layer (type)"):
            continue
        match = _ROW.match(line)
        if not match:
            raise TableError(number, f"cannot read row {line!r}")
        row = _parse_row(match, number)
        if row.type in _CONV | _POOL:
            row = _resolve_columns(row, match.group("middle"), previous_shape)
        elif match.group("middle").strip():
            raise TableError(number, f"{row.name} lists kernel/stride numbers but is not a conv or pool layer")
        _check_params(row, previous_shape)
        rows.append(row)
        previous_shape = row.shape
    if not rows:
        raise TableError(1, "no layer rows found")
    expected = list(range(1, len(rows) + 1))
    found = [int(r.name.rsplit("-", 1)[1]) for r in rows]
    if found != expected:
        raise TableError(rows[0].line, f"rows are numbered {found[:5]}..., expected 1, 2, 3, ... in order")
    return rows


def with_num_classes(rows: list[SpecRow], table_classes: int, num_classes: int) -> list[SpecRow]:
    """The table for another class count: the rows after the last hidden layer scale with it."""
    if num_classes == table_classes:
        return list(rows)
    last_linear = max((i for i, r in enumerate(rows) if r.type == "Linear"), default=None)
    if last_linear is None:
        raise ValueError("table has no Linear layer to carry the class count")
    out = list(rows)
    for i in range(last_linear, len(rows)):
        row = rows[i]
        if row.shape[-1] != table_classes:
            continue
        params = row.params // table_classes * num_classes if row.params % table_classes == 0 else row.params
        out[i] = replace(row, shape=row.shape[:-1] + (num_classes,), params=params)
    return out


def _parse_row(match: re.Match, line: int) -> SpecRow:
    shape_items = [s.strip() for s in match.group("shape").split(",")]
    if not shape_items or shape_items[0] != "-1":
        raise TableError(line, "output shape must start with -1 (the batch)")
    try:
        shape = tuple(int(s) for s in shape_items[1:])
    except ValueError:
        raise TableError(line, f"output shape {match.group('shape')!r} is not a list of integers") from None
    return SpecRow(
        name=f"{match.group('type')}-{match.group('index')}",
        type=match.group("type"),
        shape=shape,
        params=int(match.group("params").replace(",", "")),
        line=line,
    )


def _resolve_columns(row: SpecRow, middle: str, in_shape: tuple[int, ...]) -> SpecRow:
    middle = middle.strip()
    kernel_match = _KERNEL.match(middle)
    if kernel_match:
        kernel = (int(kernel_match.group(1)), int(kernel_match.group(2)))
        rest = kernel_match.group(3).split()
    else:
        numbers = middle.split()
        if not numbers:
            raise TableError(row.line, f"{row.name} has no kernel size")
        kernel = (int(numbers[0]), int(numbers[0]))
        rest = numbers[1:]
    try:
        values = [int(v) for v in rest]
    except ValueError:
        raise TableError(row.line, f"cannot read {middle!r} as kernel and numbers") from None
    if len(values) > len(_OPTIONAL_COLUMNS):
        raise TableError(row.line, f"{row.name} lists more numbers than there are columns")
    if len(in_shape) != 3:
        raise TableError(row.line, f"{row.name} follows a layer whose output is not [C, H, W]")

    readings = []
    for columns in itertools.combinations(_OPTIONAL_COLUMNS, len(values)):
        setting = {"padding": 0, "stride": kernel[0] if row.type in _POOL else 1, "dilation": 1}
        setting.update(zip(columns, values))
        if _output_hw(in_shape[1:], kernel, **setting) == row.shape[1:]:
            readings.append(setting)
    if not readings:
        raise TableError(row.line, f"no reading of {middle!r} gives {row.shape_text()} from {list(in_shape)}")
    resolved = {}
    for column in _OPTIONAL_COLUMNS:
        options = {r[column] for r in readings}
        resolved[column] = (options.pop(),) * 2 if len(options) == 1 else None
    return replace(row, kernel=kernel, **resolved)


def _output_hw(hw, kernel, padding, stride, dilation):
    return tuple((size + 2 * padding - dilation * (k - 1) - 1) // stride + 1 for size, k in zip(hw, kernel))


def _check_params(row: SpecRow, in_shape: tuple[int, ...]) -> None:
    """A table whose counts contradict its shapes is a typo in the rubric; say so on load."""
    if row.type == "Conv2d":
        weights = row.shape[0] * in_shape[0] * row.kernel[0] * row.kernel[1]
        allowed = {weights, weights + row.shape[0]}
    elif row.type == "Linear":
        weights = in_shape[-1] * row.shape[-1]
        allowed = {weights, weights + row.shape[-1]}
    elif row.type in {"ReLU", "Flatten", "Dropout"} | _POOL:
        allowed = {0}
    else:
        return
    if row.params not in allowed:
        raise TableError(row.line, f"{row.name}: {row.params:,} parameters do not fit its shapes")
