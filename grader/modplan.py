"""Which of a submission's files to import for which of the rubric's symbols: notebooks are
converted first, and a symbol missing from the chosen file is taken from the file that defines it."""
from __future__ import annotations

import dataclasses
from pathlib import Path

from . import discovery, notebooks
from .errors import InputError
from .localize import LineMap
from .results import Note
from .rubric import Rubric


@dataclasses.dataclass
class ModulePlan:
    """Which files to import for which symbols, and how to name them to the student."""

    modules: list[dict]  # [{"module": path, "symbols": [...]}], in import order
    displays: dict[str, str]  # module path -> the student's own file name (a notebook for its generated module)
    line_maps: dict[str, LineMap]  # generated module -> its notebook's cells
    unresolved: dict[str, str]  # symbol -> why no file provides it
    notes: list[Note]
    left_out: dict[str, str] = dataclasses.field(default_factory=dict)  # name a notebook cell set but was not run -> where


def plan_modules(rubric: Rubric, staged) -> ModulePlan:
    """Convert notebooks, then choose a file for each of the rubric's groups.

    A group no file satisfies costs only its own checks; input without any usable Python
    is an InputError."""
    converted = notebooks.convert_staged(staged)
    displays = {c.module: c.notebook for c in converted}
    line_maps = {c.module: LineMap(tuple(map(tuple, c.line_map))) for c in converted}
    notes = [n for c in converted for n in c.notes]
    modules: dict[str, list[str]] = {}
    unresolved: dict[str, str] = {}
    first_error: InputError | None = None
    for group in rubric.module_groups():
        names = [_generated_name(n, converted) for n in group.names]
        try:
            choice = discovery.choose_module(staged, names, list(group.symbols))
        except InputError as exc:
            first_error = first_error or exc
            for symbol in group.symbols:
                unresolved[symbol] = f"no file in the submission provides {symbol} (the handout's file is {group.names[0]})"
            notes.append(Note("warning", f"Nothing in the submission provides {', '.join(group.symbols)}: {exc}"))
            continue
        notes += [Note(n.level, _with_displays(n.text, displays)) for n in choice.notes]
        assigned = {s: choice.path for s in group.symbols}
        # Students split code across files: take what the chosen file lacks from where it is defined.
        missing = [s for s in group.symbols if s not in choice.defines]
        while missing:
            try:
                other = discovery.choose_module(staged, [], missing)
            except InputError:
                break
            found = [s for s in missing if s in other.defines]
            if other.path == choice.path or not found:
                break
            for symbol in found:
                assigned[symbol] = other.path
            notes.append(Note("info", f"{', '.join(found)} taken from {displays.get(other.path, other.path)}, where "
                                      f"{'it is' if len(found) == 1 else 'they are'} defined."))
            missing = [s for s in missing if s not in found]
        for symbol, path in assigned.items():
            if symbol not in modules.setdefault(path, []):
                modules[path].append(symbol)
    if not modules:
        raise first_error or InputError("no Python file or notebook found")
    used = {displays.get(m, m) for m in modules}
    notes = [n for n in notes if not any(f"in {u}; not graded" in n.text for u in used)]
    left_out = {name: f"{c.notebook} cell {cell}" for c in converted for name, cell in c.left_out.items()}
    return ModulePlan([{"module": m, "symbols": s} for m, s in modules.items()], displays, line_maps, unresolved,
                      _unique(notes), left_out)


def _generated_name(name: str, converted) -> str:
    """A rubric names notebooks; discovery looks at the modules generated from them."""
    if not name.endswith(".ipynb"):
        return name
    for c in converted:
        if Path(c.notebook).name.lower() == name.lower():
            return Path(c.module).name
    return name


def _with_displays(text: str, displays: dict[str, str]) -> str:
    for module, notebook in displays.items():
        text = text.replace(module, notebook)
    return text


def _unique(notes: list[Note]) -> list[Note]:
    seen, out = set(), []
    for note in notes:
        if (note.level, note.text) not in seen:
            seen.add((note.level, note.text))
            out.append(note)
    return out
