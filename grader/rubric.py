"""Rubrics: one TOML file per homework, loaded into typed, validated objects.

A rubric names the module students submit, the models and functions to grade, the
handout's layer tables (pasted as published), points and visibility. `Rubric.checks()`
expands it into the flat, numbered list of checks every grade reports.
"""
from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import kinds
from .errors import RubricError
from .rubric_fields import IDENT as _IDENT
from .rubric_fields import Reader as _Reader
from .rubric_fields import identifier as _identifier
from .rubric_fields import points as _points
from .rubric_fields import positive as _positive
from .rubric_fields import visibility as _visibility
from .kinds.cell.spec import CHECK_KINDS as CELL_CHECK_KINDS
from .kinds.cell.spec import CellSpec
from .kinds.cell.spec import parse as _cell
from .spectable import SpecRow, TableError, parse_table, with_num_classes

MODEL_CHECK_KINDS = ("construct", "architecture", "structure", "forward", "gradients", "dropout", "training")
STRUCTURE_KINDS = ("resnet", "batchnorm")
# Task parameters that name something the submission defines.
SYMBOL_PARAMS = ("function", "helper", "model", "symbol", "cell")
# Each task kind: the checks it can award points to, and its parameters with their types.
TASK_KINDS = {
    "sentiment_model": (("forward", "last_token"), {"symbol": "name", "cell": "name"}),
    "next_char_model": (("forward", "continuation"), {"symbol": "name", "cell": "name"}),
    "lr_decay": (("decay",), {}),
    "activation_maps": (("maps",), {"model": "name", "images": "strings", "channels": "ints"}),
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


# ---------------------------------------------------------------- finding rubrics

def rubric_dirs() -> list[Path]:
    dirs = [Path(p) for p in os.environ.get("DLGRADE_RUBRICS", "").split(os.pathsep) if p]
    dirs.append(Path(__file__).resolve().parent.parent / "rubrics")  # a source checkout
    return [d for d in dirs if d.is_dir()]


def available() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for d in rubric_dirs():
        for path in sorted(d.glob("*.toml")):
            found.setdefault(path.stem, path)
    return found


def load_rubric(assignment: str) -> Rubric:
    paths = available()
    if assignment not in paths:
        known = ", ".join(sorted(paths)) or "none"
        raise KeyError(f"unknown assignment {assignment!r} (known: {known})")
    return load_rubric_file(paths[assignment])


def load_rubric_file(path: Path | str) -> Rubric:
    path = Path(path)
    return _build(_read_with_bases(path, seen=()), str(path))


# ---------------------------------------------------------------- reading and checking

def _read_with_bases(path: Path, seen: tuple[str, ...]) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise RubricError(str(path), "(file)", f"not valid TOML: {exc}") from None
    except OSError as exc:
        raise RubricError(str(path), "(file)", f"cannot read: {exc.strerror}") from None
    base = data.pop("extends", None)
    if base is None:
        return data
    if not isinstance(base, str) or base in seen:
        raise RubricError(str(path), "extends", f"cannot extend {base!r}")
    base_path = path.with_name(f"{base}.toml")
    if not base_path.exists():
        raise RubricError(str(path), "extends", f"no rubric named {base!r} beside this file")
    merged = _read_with_bases(base_path, seen + (path.stem,))
    for key, value in data.items():
        if key in ("model", "task", "manual", "cell", "predictions"):
            merged[key] = merged.get(key, []) + value  # a variant adds items to its base's lists
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


def _build(data: dict[str, Any], path: str) -> Rubric:
    top = _Reader(path, "", data, {"schema", "id", "title", "handout", "submission", "limits", "parts",
                                    "training", "model", "task", "manual", "cell", "predictions"})
    if top.get("schema", int) != 1:
        top.fail("schema", "this grader reads schema 1")
    rubric_id = top.get("id", str, check=lambda v: None if _CHECK_ID.match(v) else "use lowercase letters, digits, - and .")
    groups = _groups(path, top.get("submission", dict))
    parts = top.get("parts", dict, check=lambda v: None if v and all(isinstance(x, str) for x in v.values()) else "must map part letters to titles")

    lim = _Reader(path, "limits", top.get("limits", dict, {}), {"import_seconds", "probe_seconds", "total_seconds", "memory_mb"})
    limits = Limits(**{k: lim.get(k, float if k != "memory_mb" else int, getattr(Limits, k), check=_positive)
                       for k in ("import_seconds", "probe_seconds", "total_seconds", "memory_mb")})
    training = _training(path, "training", top.get("training", dict, {}), TrainingSpec())

    def part_of(reader: _Reader) -> str:
        return reader.get("part", str, check=lambda v: None if v in parts else f"{v!r} is not one of the [parts]: {', '.join(parts)}")

    models = tuple(_model(path, f"model[{i}]", m, part_of, training) for i, m in enumerate(top.get("model", list, [])))
    tasks = tuple(_task(path, f"task[{i}]", t, part_of) for i, t in enumerate(top.get("task", list, [])))
    cells = tuple(_cell(path, f"cell[{i}]", c, part_of) for i, c in enumerate(top.get("cell", list, [])))
    predictions = tuple(_predictions(path, f"predictions[{i}]", p, part_of)
                        for i, p in enumerate(top.get("predictions", list, [])))
    manual = []
    for i, item in enumerate(top.get("manual", list, [])):
        r = _Reader(path, f"manual[{i}]", item, {"id", "part", "name", "points"})
        manual.append(ManualItem(r.get("id", str, check=lambda v: None if _CHECK_ID.match(v) else "use lowercase letters, digits, - and ."),
                                 part_of(r), r.get("name", str), r.get("points", float, check=_positive)))
    if not models and not tasks and not cells and not predictions:
        top.fail("model", "a rubric needs at least one [[model]], [[cell]], [[task]] or [[predictions]]")

    rubric = Rubric(rubric_id, top.get("title", str), top.get("handout", str), path, groups, dict(parts),
                    limits, training, models, tasks, tuple(manual), cells, predictions)
    seen: set[str] = set()
    for check in rubric.checks():
        if check.check_id in seen:
            raise RubricError(path, "(checks)", f"two checks share the id {check.check_id!r}")
        seen.add(check.check_id)
    return rubric


def _file_names(value: Any) -> str | None:
    ok = value and all(isinstance(m, str) and m.endswith((".py", ".ipynb")) for m in value)
    return None if ok else "must list file names ending in .py or .ipynb"


def _groups(path: str, data: Any) -> tuple[ModuleGroup, ...]:
    """`modules = [...]` for one file holding everything, or `[[submission.group]]` entries."""
    sub = _Reader(path, "submission", data, {"modules", "group"})
    if ("modules" in data) == ("group" in data):
        sub.fail("", "give either `modules` (one file) or `[[submission.group]]` entries")
    if "modules" in data:
        return (ModuleGroup(tuple(sub.get("modules", list, check=_file_names)), ()),)
    groups = []
    for i, item in enumerate(sub.get("group", list)):
        g = _Reader(path, f"submission.group[{i}]", item, {"names", "symbols"})
        symbols = g.get("symbols", list, check=lambda v: None if v and all(isinstance(x, str) and _IDENT.match(x) for x in v)
                        else "must list Python names")
        groups.append(ModuleGroup(tuple(g.get("names", list, check=_file_names)), tuple(symbols)))
    if not groups:
        sub.fail("group", "needs at least one group")
    return tuple(groups)


def _training(path: str, where: str, data: Any, base: TrainingSpec) -> TrainingSpec:
    tr = _Reader(path, where, data, {"batch", "steps", "lr", "min_drop", "seed"})
    return TrainingSpec(
        batch=tr.get("batch", int, base.batch, check=_positive), steps=tr.get("steps", int, base.steps, check=_positive),
        lr=tr.get("lr", float, base.lr, check=_positive),
        min_drop=tr.get("min_drop", float, base.min_drop, check=lambda v: None if 0 <= v < 1 else "must be in [0, 1)"),
        seed=tr.get("seed", int, base.seed))


def _model(path: str, where: str, data: Any, part_of, training: TrainingSpec) -> ModelSpec:
    r = _Reader(path, where, data, {"symbol", "part", "args", "kwargs", "input", "variants", "points", "table",
                                    "table_name", "table_num_classes", "hints", "training", "structure", "pick",
                                    "pick_functions", "title", "tables", "final_softmax_ok"})
    symbol = r.get("symbol", str, check=_identifier)
    part = part_of(r)
    args = r.get("args", list, [])
    kwargs = r.get("kwargs", dict, {})
    shape = r.get("input", list, check=lambda v: None if v and all(isinstance(x, int) and x > 0 for x in v) else "must list positive sizes")
    variants = []
    for j, v in enumerate(r.get("variants", list, [{}])):
        vr = _Reader(path, f"{where}.variants[{j}]", v, set(v) if isinstance(v, dict) else set())
        vis = vr.get("visibility", str, "visible", check=_visibility)
        values = {k: val for k, val in v.items() if k != "visibility"}
        variants.append(Variant(values, vis))
    needed = _placeholders(args) | _placeholders(kwargs)
    for j, v in enumerate(variants):
        missing = needed - set(v.values)
        if missing:
            raise RubricError(path, f"{where}.variants[{j}]", f"no value for ${sorted(missing)[0]} used in args")
    points = _points(path, f"{where}.points", r.get("points", dict), MODEL_CHECK_KINDS)
    table = table_nc = None
    readings: list[tuple[str, tuple[SpecRow, ...]]] = []
    if "architecture" in points and "tables" in data:
        for j, item in enumerate(r.get("tables", list)):
            tr = _Reader(path, f"{where}.tables[{j}]", item, {"name", "table"})
            try:
                readings.append((tr.get("name", str), tuple(parse_table(tr.get("table", str), tuple(shape)))))
            except TableError as exc:
                raise RubricError(path, f"{where}.tables[{j}].table", str(exc)) from None
        if not readings:
            r.fail("tables", "needs at least one {name, table}")
        table = readings[0][1]
    elif "architecture" in points:
        text = r.get("table", str)
        try:
            table = tuple(parse_table(text, tuple(shape)))
        except TableError as exc:
            raise RubricError(path, f"{where}.table", str(exc)) from None
        if any(v.num_classes is not None for v in variants):
            table_nc = r.get("table_num_classes", int, check=_positive)
            if table[-1].shape[-1] != table_nc:
                r.fail("table_num_classes", f"the table's last row has {table[-1].shape[-1]} outputs, not {table_nc}")
    hints = r.get("hints", dict, {})
    for k in hints:
        if k not in MODEL_CHECK_KINDS:
            raise RubricError(path, f"{where}.hints.{k}", f"not a check kind ({', '.join(MODEL_CHECK_KINDS)})")
    own = _training(path, f"{where}.training", r.get("training", dict), training) if "training" in data else None
    structure = None
    if "structure" in points:
        structure = r.get("structure", dict)
        if structure.get("kind") not in STRUCTURE_KINDS:
            raise RubricError(path, f"{where}.structure.kind", f"must be one of {', '.join(STRUCTURE_KINDS)}")
        if structure["kind"] == "resnet" and not (isinstance(structure.get("stages"), list) and all(
                isinstance(s, list) and len(s) == 2 and all(isinstance(x, int) and x > 0 for x in s) for s in structure["stages"])):
            raise RubricError(path, f"{where}.structure.stages", "list [width, blocks] pairs")
    return ModelSpec(symbol, part, tuple(args), kwargs, tuple(shape), tuple(variants), points,
                     r.get("table_name", str, "the handout's table"), table, table_nc, hints, own, structure,
                     r.get("pick", bool, False), tuple(r.get("pick_functions", list, [])), r.get("title", str, ""),
                     tuple(readings[1:]), readings[0][0] if readings else "", r.get("final_softmax_ok", bool, False))


def _task(path: str, where: str, data: Any, part_of) -> TaskSpec:
    kind = data.get("kind") if isinstance(data, dict) else None
    known = {**TASK_KINDS, **kinds.task_kinds()}
    if kind not in known:
        raise RubricError(path, f"{where}.kind", f"unknown task kind {kind!r} (known: {', '.join(known)})")
    point_kinds, param_types = known[kind]
    r = _Reader(path, where, data, {"id", "kind", "part", "points", "visibility"} | set(param_types))
    checks = {"name": lambda: r.get(name, str, check=_identifier), "int": lambda: r.get(name, int, check=_positive),
              "float": lambda: r.get(name, float, check=_positive),
              "text": lambda: r.get(name, str),
              "ints": lambda: r.get(name, list, check=lambda v: None if v and all(isinstance(x, int) and x > 0 for x in v)
                                    else "must list positive whole numbers"),
              "strings": lambda: r.get(name, list, check=lambda v: None if v and all(isinstance(x, str) and x for x in v)
                                       else "must list non-empty strings"),
              "table": lambda: r.get(name, dict, check=lambda v: None if all(
                  isinstance(k, str) and k and isinstance(x, str) for k, x in v.items()) else "must map names to strings")}
    params = {}
    for name, kind_of in param_types.items():
        if kind_of.endswith("?") and name not in data:
            continue  # optional
        params[name] = checks[kind_of.rstrip("?")]()
    return TaskSpec(r.get("id", str, check=lambda v: None if _CHECK_ID.match(v) else "use lowercase letters, digits, - and ."),
                    kind, part_of(r), _points(path, f"{where}.points", r.get("points", dict), point_kinds),
                    r.get("visibility", str, "visible", check=_visibility), params)


def _predictions(path: str, where: str, data: Any, part_of) -> PredictionsSpec:
    r = _Reader(path, where, data, {"id", "part", "name", "file", "labels", "num_classes", "first_id", "count",
                                    "thresholds", "class_names", "format_points", "leaderboard", "visibility"})
    csv_name = lambda v: None if re.fullmatch(r"[\w.-]+\.csv", v) else "must be a plain file name ending in .csv"
    thresholds = []
    for j, pair in enumerate(r.get("thresholds", list)):
        ok = (isinstance(pair, list) and len(pair) == 2 and all(isinstance(x, (int, float)) and not isinstance(x, bool)
                                                                 for x in pair) and 0 <= pair[0] <= 1 and pair[1] > 0)
        if not ok:
            raise RubricError(path, f"{where}.thresholds[{j}]", "use [minimum accuracy between 0 and 1, points > 0]")
        thresholds.append((float(pair[0]), float(pair[1])))
    if not thresholds:
        r.fail("thresholds", "needs at least one [minimum accuracy, points] pair")
    if sorted(thresholds) != thresholds or len({p for _, p in thresholds}) != len(thresholds) \
            or [p for _, p in thresholds] != sorted(p for _, p in thresholds):
        r.fail("thresholds", "list pairs from the lowest accuracy up, each worth more points than the last")
    num_classes = r.get("num_classes", int, check=_positive)
    names = tuple(r.get("class_names", list, [], check=lambda v: None if all(isinstance(x, str) and x for x in v)
                        else "must list class names"))
    if names and len(names) != num_classes:
        r.fail("class_names", f"lists {len(names)} names for {num_classes} classes")
    return PredictionsSpec(
        id=r.get("id", str, check=lambda v: None if _CHECK_ID.match(v) else "use lowercase letters, digits, - and ."),
        part=part_of(r), name=r.get("name", str), file=r.get("file", str, check=csv_name),
        labels=r.get("labels", str, check=csv_name), num_classes=num_classes,
        first_id=r.get("first_id", int, 0, check=lambda v: None if v >= 0 else "cannot be negative"),
        count=r.get("count", int, 0, check=lambda v: None if v >= 0 else "cannot be negative"), thresholds=tuple(thresholds), class_names=names,
        format_points=r.get("format_points", float, 0.0, check=lambda v: None if v >= 0 else "cannot be negative"),
        leaderboard=r.get("leaderboard", str, ""), visibility=r.get("visibility", str, "visible", check=_visibility))


# ---------------------------------------------------------------- naming

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
    if t.kind == "activation_maps":
        ch = " and ".join(str(c) for c in p["channels"])
        return f"{p['model']}'s first two conv layers give {ch} activation maps on the handout's images (drawn in the report)"
    if t.kind == "companion_files":
        return f"The notebook is also submitted as {' or '.join(p['extensions'])}"
    if t.kind == "lr_decay":
        return "The learning rate decays during training (a scheduler, or the optimizer's lr updated)"
    names = {
        "sentiment_model": {"forward": f"{p.get('symbol')} gives two scores per review",
                            "last_token": f"{p.get('symbol')} reads each review's last real token, whatever the padding"},
        "next_char_model": {"forward": f"{p.get('symbol')} predicts scores over the vocabulary and returns its state",
                            "continuation": f"{p.get('symbol')} continues from a passed state exactly"}
    }
    return names.get(t.kind, {}).get(kind, f"{t.id}: {kind}")


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
