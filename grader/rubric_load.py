"""Finding rubric files, and reading one (with the rubrics it extends) into a checked Rubric."""
from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any

from . import kinds
from .errors import RubricError
from .rubric import (MODEL_CHECK_KINDS, STRUCTURE_KINDS, TASK_KINDS, _CHECK_ID, Limits, ManualItem, ModelSpec, ModuleGroup,
                     PredictionsSpec, Rubric, TaskSpec, TrainingSpec, Variant, _placeholders)
from .rubric_fields import IDENT as _IDENT
from .rubric_fields import Reader as _Reader
from .rubric_fields import identifier as _identifier
from .rubric_fields import points as _points
from .rubric_fields import positive as _positive
from .rubric_fields import visibility as _visibility
from .kinds.cell.spec import parse as _cell
from .spectable import SpecRow, TableError, parse_table


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
