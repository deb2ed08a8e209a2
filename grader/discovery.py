"""Pick the module to grade among a staged submission's files, by name or by what it defines.

Files are only parsed with `ast`, never imported: a renamed module (CNN.py) is found by the
classes it defines, and every choice the handout did not dictate is explained in a note.
"""
from __future__ import annotations

import ast
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from grader.errors import InputError
from grader.intake import StagedSubmission
from grader.staging import size_text
from grader.results import Note

_MB = 1024 * 1024
_MAX_OTHER_NOTES = 5
_MAX_PARSE_BYTES = 10 * _MB


@dataclass
class ModuleChoice:
    path: str  # relative path of the chosen .py file within root
    defines: list[str]  # which of the wanted symbols it makes available
    notes: list[Note]


@dataclass
class _ModuleInfo:
    path: str
    defined: set[str]  # wanted symbols the module defines at top level
    imported: set[str]  # wanted symbols it only imports by name
    problem: str | None  # why it could not be parsed, in words for the student
    sources: set[str] = field(default_factory=set)  # modules it imports from, e.g. {"alexnet", "torch.nn"}

    @property
    def available(self) -> set[str]:
        return self.defined | self.imported

    @property
    def depth(self) -> int:
        return self.path.count("/")

    @property
    def basename(self) -> str:
        return self.path.rsplit("/", 1)[-1]


def choose_module(staged: StagedSubmission, file_names: list[str], symbols: list[str]) -> ModuleChoice:
    """Pick the .py file to grade: by accepted name first, else by the wanted symbols it provides."""
    paths = [f for f in staged.files if f.endswith(".py")]
    if not paths:
        raise InputError(_no_python_message(staged))
    modules = [_inspect_module(staged.root, p, set(symbols)) for p in paths]
    chosen, notes = _choose(modules, file_names, symbols, staged.source)
    if chosen.problem:
        notes.append(Note("error", f"{chosen.path} {chosen.problem}; it cannot be imported as it is"))
    notes.extend(_other_candidate_notes(chosen, modules, symbols))
    return ModuleChoice(path=chosen.path, defines=_ordered(chosen.available, symbols), notes=notes)


def _choose(modules: list[_ModuleInfo], file_names: list[str], symbols: list[str],
            source: str) -> tuple[_ModuleInfo, list[Note]]:
    named = _named_modules(modules, file_names)
    if named:
        return named[0], _name_notes(named[0], file_names)
    providers = sorted((m for m in modules if m.available), key=_symbol_rank)
    if providers:
        return providers[0], [Note("warning", _renamed_text(providers[0], symbols, file_names))]
    if len(modules) == 1:
        only = modules[0]
        handout = f"; the handout names the module {file_names[0]}" if file_names else ""
        wanted = f"it defines none of {', '.join(symbols)}" if symbols else "it is the only Python file"
        return only, [Note("warning", f"graded {only.path}, the only Python file: {wanted}{handout}")]
    raise InputError(_nothing_found_message(modules, file_names, symbols, source))


def _named_modules(modules: list[_ModuleInfo], file_names: list[str]) -> list[_ModuleInfo]:
    # Case-insensitive: a student on Windows or macOS may not notice "CNN_trainer.py".
    wanted = [n.casefold() for n in file_names]
    ranked = [(wanted.index(m.basename.casefold()), m) for m in modules if m.basename.casefold() in wanted]
    ranked.sort(key=lambda pair: (pair[0], pair[1].depth, -len(pair[1].available), pair[1].path))
    return [m for _, m in ranked]


def _symbol_rank(m: _ModuleInfo) -> tuple:
    # Most wanted symbols first; a module that defines them beats one that only imports them.
    return (-len(m.available), -len(m.defined), m.depth, m.path)


def _name_notes(chosen: _ModuleInfo, file_names: list[str]) -> list[Note]:
    expected = file_names[0]
    if chosen.basename == expected:
        return []
    if chosen.basename.casefold() == expected.casefold():
        return [Note("info", f"graded {chosen.path}; the handout spells the name {expected}")]
    return [Note("info", f"graded {chosen.path}, an accepted name for the module the handout calls {expected}")]


def _renamed_text(chosen: _ModuleInfo, symbols: list[str], file_names: list[str]) -> str:
    parts = []
    if chosen.defined:
        parts.append(f"it defines {', '.join(_ordered(chosen.defined, symbols))}")
    only_imported = chosen.imported - chosen.defined
    if only_imported:
        parts.append(f"it imports {', '.join(_ordered(only_imported, symbols))}")
    handout = [f"the handout names the module {file_names[0]}"] if file_names else []
    return f"graded {chosen.path}: " + "; ".join(parts + handout)


def _other_candidate_notes(chosen: _ModuleInfo, modules: list[_ModuleInfo], symbols: list[str]) -> list[Note]:
    others = sorted((m for m in modules if m is not chosen and m.available), key=_symbol_rank)
    notes = []
    helpers = [m for m in others if _imports_from(chosen, m)]
    for m in helpers:  # the graded module takes these from there: that file is graded too
        notes.append(Note("info", f"{chosen.path} imports {', '.join(_ordered(m.available, symbols))} from {m.path}"))
    others = [m for m in others if m not in helpers]
    for m in others[:_MAX_OTHER_NOTES]:
        # A warning when the other file has something the graded one lacks: the student may
        # have meant that file.
        level = "warning" if m.available - chosen.available else "info"
        notes.append(Note(level, f"also found {', '.join(_ordered(m.available, symbols))} in {m.path}; not graded"))
    if len(others) > _MAX_OTHER_NOTES:
        notes.append(Note("info", f"{len(others) - _MAX_OTHER_NOTES} more files also define wanted names; not graded"))
    return notes


def _imports_from(chosen: _ModuleInfo, other: _ModuleInfo) -> bool:
    dotted = other.path[:-3].replace("/", ".")
    return any(src == dotted or dotted.endswith("." + src) or src.endswith("." + dotted) for src in chosen.sources)


def _ordered(names: set[str], symbols: list[str]) -> list[str]:
    return [s for s in symbols if s in names]


def _no_python_message(staged: StagedSubmission) -> str:
    notebooks = [f for f in staged.files if f.lower().endswith(".ipynb")]
    if notebooks:
        return f"no Python file found in {staged.source} (only notebooks: {_listing(notebooks)})"
    return f"no Python file found in {staged.source}"


def _nothing_found_message(modules: list[_ModuleInfo], file_names: list[str], symbols: list[str], source: str) -> str:
    looked = [f"{m.path} (unreadable)" if m.problem else m.path
              for m in sorted(modules, key=lambda m: (m.depth, m.path))]
    names = " or ".join(file_names) or "the handout's module name"
    wanted = ", ".join(symbols) or "nothing"
    return (f"cannot tell which file to grade in {source}: looked at {_listing(looked)}; "
            f"none is named {names} or defines any of {wanted}")


def _listing(items: list[str], limit: int = 5) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


# ----- parsing --------------------------------------------------------------------------


def _inspect_module(root: Path, path: str, wanted: set[str]) -> _ModuleInfo:
    tree, problem = _parse(root / path)
    defined: set[str] = set()
    imported: set[str] = set()
    sources: set[str] = set()
    if tree is not None:
        _collect_top_level(tree.body, defined, imported, sources)
    return _ModuleInfo(path=path, defined=defined & wanted, imported=(imported - defined) & wanted, problem=problem,
                       sources=sources)


def _parse(file: Path) -> tuple[ast.Module | None, str | None]:
    if file.stat().st_size > _MAX_PARSE_BYTES:
        return None, f"is larger than {size_text(_MAX_PARSE_BYTES)}, too large to inspect"
    source = file.read_bytes()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # SyntaxWarnings (invalid escapes) are not ours to print
            return ast.parse(source, filename=file.name), None
    except SyntaxError as exc:
        return None, f"has a syntax error at line {exc.lineno}: {exc.msg}"
    except (ValueError, RecursionError, MemoryError) as exc:
        return None, f"could not be parsed: {exc or type(exc).__name__}"


def _collect_top_level(body: list[ast.stmt], defined: set[str], imported: set[str], sources: set[str]) -> None:
    """Names bound when the module is imported, including inside top-level if/try/with blocks,
    and the modules those imports come from."""
    for node in body:
        if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            defined.add(node.name)
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                defined.update(_target_names(target))
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            defined.update(_target_names(node.target))
        elif isinstance(node, ast.Import):
            imported.update(a.asname or a.name.split(".")[0] for a in node.names)
            sources.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            imported.update(a.asname or a.name for a in node.names if a.name != "*")
            if node.module:
                sources.add(node.module)
        elif isinstance(node, ast.If):
            # The body of `if __name__ == "__main__":` does not run on import.
            if not _is_main_guard(node):
                _collect_top_level(node.body, defined, imported, sources)
            _collect_top_level(node.orelse, defined, imported, sources)
        elif isinstance(node, (ast.Try, ast.TryStar)):
            for block in (node.body, node.orelse, node.finalbody, *(h.body for h in node.handlers)):
                _collect_top_level(block, defined, imported, sources)
        elif isinstance(node, ast.With):
            _collect_top_level(node.body, defined, imported, sources)


def _target_names(target: ast.expr) -> set[str]:
    if isinstance(target, ast.Name):
        return {target.id}
    if isinstance(target, (ast.Tuple, ast.List)):
        return set().union(*(_target_names(t) for t in target.elts))
    if isinstance(target, ast.Starred):
        return _target_names(target.value)
    return set()


def _is_main_guard(node: ast.If) -> bool:
    test = node.test
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq)):
        return False
    sides = [test.left, test.comparators[0]]
    has_name = any(isinstance(s, ast.Name) and s.id == "__name__" for s in sides)
    has_main = any(isinstance(s, ast.Constant) and s.value == "__main__" for s in sides)
    return has_name and has_main
