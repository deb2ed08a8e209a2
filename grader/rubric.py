"""Rubrics: one TOML file per homework, loaded into typed, validated objects.

A rubric names the module students submit, the models and functions to grade, the
handout's layer tables (pasted as published), points and visibility. `Rubric.checks()`
expands it into the flat, numbered list of checks every grade reports.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from . import kinds
from .kinds.cell.spec import CHECK_KINDS as CELL_CHECK_KINDS
from .kinds.cell.spec import CellSpec
from .spectable import SpecRow, with_num_classes

MODEL_CHECK_KINDS = ("construct", "architecture", "structure", "forward", "gradients", "dropout", "training")
STRUCTURE_KINDS = ("resnet", "batchnorm")
# Task parameters that name something the submission defines.
SYMBOL_PARAMS = ("function", "helper", "model", "symbol", "cell")
# Each task kind: the checks it can award points to, and its parameters with their types.
TASK_KINDS = {
    "lr_decay": (("decay",), {}),
    "companion_files": (("present",), {"extensions": "strings", "note": "text?"}),
}
# Task kinds judged from the source alone: nothing runs in the sandbox for them.
STATIC_TASK_KINDS = ("lr_decay", "companion_files")
_CHECK_ID = re.compile(r"^[a-z0-9_.-]+$")


@dataclass(frozen=True)
class Limits:
    import_seconds: float = 120
    probe_seconds: float = 150
    total_seconds: float = 900
    memory_mb: int = 3000


@dataclass(frozen=True)
class TrainingSpec:
    batch: int = 8
    steps: int = 6
    lr: float = 1e-4
    min_drop: float = 0.03  # relative fall of the eval-mode loss required
    seed: int = 0


@dataclass(frozen=True)
class Variant:
    values: dict[str, Any]  # e.g. {"num_classes": 7}
    visibility: str = "visible"

    @property
    def suffix(self) -> str:
        return ".".join(f"{_short(k)}{v}" for k, v in self.values.items())

    @property
    def num_classes(self) -> int | None:
        return self.values.get("num_classes")


@dataclass(frozen=True)
class ModelSpec:
    symbol: str
    part: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    input: tuple[int, ...]
    variants: tuple[Variant, ...]
    points: dict[str, float]
    table_name: str = "the handout's table"
    table: tuple[SpecRow, ...] | None = None
    table_num_classes: int | None = None
    hints: dict[str, str] = field(default_factory=dict)
    training: TrainingSpec | None = None  # this model's own smoke-test settings, if it needs them
    structure: dict | None = None  # for the `structure` check: {"kind": "resnet" | "batchnorm", ...}
    pick: bool = False  # names vary: when `symbol` is not defined, grade the student's class that fits best
    pick_functions: tuple[str, ...] = ()  # factory functions whose names contain these may be picked too
    title: str = ""  # how messages name the model, e.g. "ResNet-20"
    # Other readings of the table the handout allows (e.g. LeNet5's conv padding): (name, rows).
    alternatives: tuple[tuple[str, tuple[SpecRow, ...]], ...] = ()
    table_reading: str = ""  # what the first table's reading is called, when there are alternatives
    final_softmax_ok: bool = False  # the handout's last layer "is" a softmax: accept one, with a note

    def rows_for(self, variant: Variant, table: tuple[SpecRow, ...] | None = None) -> list[SpecRow]:
        table = table if table is not None else self.table
        assert table is not None
        if variant.num_classes is None or self.table_num_classes is None:
            return list(table)
        return with_num_classes(list(table), self.table_num_classes, variant.num_classes)

    def readings(self) -> list[tuple[str, tuple[SpecRow, ...]]]:
        """Every table the model may match: the first, then the alternatives."""
        return [(self.table_reading, self.table)] + list(self.alternatives) if self.table is not None else []

    def call_for(self, variant: Variant) -> tuple[list[Any], dict[str, Any]]:
        """Constructor arguments with "$name" placeholders filled from the variant."""
        return _substitute(list(self.args), variant.values), _substitute(dict(self.kwargs), variant.values)


@dataclass(frozen=True)
class TaskSpec:
    id: str
    kind: str
    part: str
    points: dict[str, float]
    visibility: str
    params: dict[str, Any]  # kind-specific settings, e.g. function/helper/model names


@dataclass(frozen=True)
class ManualItem:
    id: str
    part: str
    name: str
    points: float


@dataclass(frozen=True)
class PredictionsSpec:
    """A predictions.csv the submission includes, scored against held-out labels the
    course staff keeps (`grade --labels FILE`, or labels/ inside the Gradescope zip)."""

    id: str
    part: str
    name: str  # what the accuracy check is called, e.g. "ResNet-20 accuracy on the test set"
    file: str  # the file students submit, e.g. "predictions.csv"
    labels: str  # the held-out labels' file name, e.g. "cifar10-test-labels.csv"
    num_classes: int
    first_id: int
    count: int  # rows expected; 0 when only the labels file knows (a validation split's size)
    thresholds: tuple[tuple[float, float], ...]  # (minimum accuracy, points), ascending
    class_names: tuple[str, ...] = ()
    format_points: float = 0.0
    leaderboard: str = ""  # Gradescope leaderboard column; empty for none
    visibility: str = "visible"

    @property
    def ids(self) -> range | None:
        return range(self.first_id, self.first_id + self.count) if self.count else None

    def rows_text(self) -> str:
        if self.count:
            return f"{self.count:,} rows of Id,Label, ids {self.first_id}-{self.first_id + self.count - 1}"
        return f"one Id,Label row per image, ids from {self.first_id}"

    @property
    def points(self) -> float:
        return max(p for _, p in self.thresholds)

    def class_name(self, index: int) -> str:
        return self.class_names[index] if index < len(self.class_names) else str(index)


@dataclass(frozen=True)
class ModuleGroup:
    """One file the submission should contain: its accepted names (the handout's first;
    .py or .ipynb) and the symbols the rubric takes from it."""

    names: tuple[str, ...]
    symbols: tuple[str, ...]


@dataclass(frozen=True)
class Check:
    """One line of the grade: what is checked, for how many points, shown when."""

    check_id: str
    kind: str
    part: str
    number: str
    name: str
    points: float
    visibility: str
    model: ModelSpec | None = None
    variant: Variant | None = None
    task: TaskSpec | None = None
    manual: ManualItem | None = None
    cell: CellSpec | None = None
    predictions: PredictionsSpec | None = None


@dataclass(frozen=True)
class Rubric:
    id: str
    title: str
    handout: str
    path: str
    groups: tuple[ModuleGroup, ...]
    parts: dict[str, str]
    limits: Limits
    training: TrainingSpec
    models: tuple[ModelSpec, ...]
    tasks: tuple[TaskSpec, ...]
    manual: tuple[ManualItem, ...]
    cells: tuple[CellSpec, ...] = ()
    predictions: tuple[PredictionsSpec, ...] = ()

    def symbols(self) -> list[str]:
        names = [m.symbol for m in self.models] + [c.symbol for c in self.cells]
        for task in self.tasks:
            names += [v for k, v in task.params.items() if k in SYMBOL_PARAMS]
        return list(dict.fromkeys(names))

    def module_groups(self) -> list[ModuleGroup]:
        """Every symbol in exactly one group: the groups as written, with symbols no group
        names added to the first."""
        listed = {s for g in self.groups for s in g.symbols}
        rest = tuple(s for s in self.symbols() if s not in listed)
        groups = list(self.groups)
        groups[0] = ModuleGroup(groups[0].names, groups[0].symbols + rest)
        return groups

    def model(self, symbol: str) -> ModelSpec:
        return next(m for m in self.models if m.symbol == symbol)

    def checks(self) -> list[Check]:
        by_part: dict[str, list[Check]] = {p: [] for p in self.parts}
        for m in self.models:
            for v in m.variants:
                for kind in MODEL_CHECK_KINDS:
                    if kind in m.points:
                        check_id = f"{m.symbol.lower()}.{kind}" + (f".{v.suffix}" if v.suffix else "")
                        by_part[m.part].append(Check(check_id, kind, m.part, "", _model_check_name(m, v, kind),
                                                     m.points[kind], v.visibility, model=m, variant=v))
        for c in self.cells:
            for kind in CELL_CHECK_KINDS:
                if kind in c.points:
                    by_part[c.part].append(Check(f"{c.symbol.lower()}.{kind}", f"cell.{kind}", c.part, "",
                                                 c.check_name(kind), c.points[kind], c.visibility, cell=c))
        for t in self.tasks:
            for kind, pts in t.points.items():
                by_part[t.part].append(Check(f"{t.id}.{kind}", f"{t.kind}.{kind}", t.part, "",
                                             _task_check_name(t, kind), pts, t.visibility, task=t))
        for pr in self.predictions:
            by_part[pr.part].append(Check(f"predictions.{pr.id}.format", "predictions.format", pr.part, "",
                                          f"{pr.file}: {pr.rows_text()}, labels 0-{pr.num_classes - 1}",
                                          pr.format_points, "visible", predictions=pr))
            by_part[pr.part].append(Check(f"predictions.{pr.id}.accuracy", "predictions.accuracy", pr.part, "",
                                          pr.name, pr.points, pr.visibility, predictions=pr))
        for item in self.manual:
            by_part[item.part].append(Check(f"manual.{item.id}", "manual", item.part, "", item.name, 0.0,
                                            "visible", manual=item))
        out = []
        for p_index, part in enumerate(self.parts, start=1):
            for c_index, check in enumerate(by_part[part], start=1):
                out.append(_with_number(check, f"{p_index}.{c_index}"))
        return out



def _model_check_name(m: ModelSpec, v: Variant, kind: str) -> str:
    several = len(m.variants) > 1
    who = (m.title or m.symbol) + (f" ({v.num_classes} classes)" if several and v.num_classes is not None else "")
    return {
        "construct": f"{who}: defined and builds from its constructor arguments",
        "architecture": f"{who}: layers match {m.table_name}",
        "structure": f"{who}: {(m.structure or {}).get('name', 'the required structure')}",
        "forward": f"{who}: forward gives one finite score per class",
        "gradients": f"{who}: every parameter gets a finite gradient",
        "dropout": f"{who}: dropout is active in train mode and off in eval mode",
        "training": f"{who}: a few training steps lower the loss",
    }[kind]


def _task_check_name(t: TaskSpec, kind: str) -> str:
    moved = kinds.check_name(t, kind)
    if moved is not None:
        return moved
    p = t.params
    if t.kind == "companion_files":
        return f"The notebook is also submitted as {' or '.join(p['extensions'])}"
    if t.kind == "lr_decay":
        return "The learning rate decays during training (a scheduler, or the optimizer's lr updated)"
    return f"{t.id}: {kind}"


def _with_number(check: Check, number: str) -> Check:
    from dataclasses import replace

    return replace(check, number=number)


def _short(key: str) -> str:
    return {"num_classes": "nc"}.get(key, key)


def _placeholders(value: Any) -> set[str]:
    if isinstance(value, str) and value.startswith("$"):
        return {value[1:]}
    if isinstance(value, dict):
        return set().union(*(_placeholders(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(_placeholders(v) for v in value)) if value else set()
    return set()


def _substitute(value: Any, values: dict[str, Any]) -> Any:
    if isinstance(value, str) and value.startswith("$"):
        return values[value[1:]]
    if isinstance(value, dict):
        return {k: _substitute(v, values) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, values) for v in value]
    return value


# Loading lives beside the types it builds; these are the names callers use.
from .rubric_load import available, load_rubric, load_rubric_file, rubric_dirs  # noqa: E402,F401
