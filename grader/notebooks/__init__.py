"""Take the definitions a rubric needs out of a student's Jupyter notebook, without running it.

Notebooks mix what the grader needs (imports, classes, functions, constants) with what it
must not run (training loops, dataset downloads, plots, `!pip install`, `drive.mount`).
This module only parses (json + ast): it never executes student code. It writes a .py file
beside the notebook that the sandboxed worker imports later, keeping the statements that
define things and leaving out the ones that do things.

Kept assignments and imports are wrapped so that one that fails at import (a NameError
because it used something left out, a Colab-only package) is recorded in the module's
`__dlgrade_skipped__` list instead of stopping the import. Every generated line maps back
to (cell, line in that cell) so errors can point at the notebook the student knows.
"""
from __future__ import annotations

from pathlib import Path

from grader.intake import StagedSubmission
from grader.results import Note

from .actions import _ActionRules
from .ipython import _prepare_cell
from .module import _ModuleBuilder, _module_path, _write_new_file
from .reading import _read_code_cells
from .report import _Report, _shown
from .rules import ConvertedNotebook, NotebookError


# --------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------


def _convert(path: Path, display: str | None):
    path = Path(path)
    shown = _shown(display or path.name)
    report = _Report(shown)
    cells = [c for c in (_prepare_cell(n, src, report) for n, src in _read_code_cells(path, shown)) if c]
    rules = _ActionRules.from_cells(cells)
    builder = _ModuleBuilder(shown)
    for cell in cells:
        builder.add_cell(cell, rules, report)
    # Each cell's code was compiled on its own, and cells only add top-level statements, so
    # the module compiles too; compiling it whole again costs seconds on large inputs.
    text, line_map = builder.finish()
    return text, line_map, report.notes(builder.definitions), builder.definitions, report.undefined


def convert_notebook(path: Path, display: str | None = None
                     ) -> tuple[str, list[tuple[int, int]], list[Note], dict[str, list[int]]]:
    """Parse the notebook at `path` and return (module text, line map, notes, definitions).

    `display` is the name used in messages (default: the file name). Raises NotebookError
    when the file is not a readable notebook or has no code cells."""
    return _convert(path, display)[:4]


def convert_staged(staged: StagedSubmission) -> list[ConvertedNotebook]:
    """Write a module beside every notebook in `staged` and add it to `staged.files`.

    A notebook that cannot be converted becomes an error note in `staged.notes` and is not
    in the result; the others still convert. The notes of converted notebooks are in the
    result only (the caller reports them), so they are not repeated in `staged.notes`."""
    converted = []
    for rel in [f for f in staged.files if f.lower().endswith(".ipynb")]:
        try:
            text, line_map, notes, definitions, left_out = _convert(staged.root / rel, display=rel)
        except NotebookError as exc:
            staged.notes.append(Note("error", f"{exc}; it was not graded"))
            continue
        except Exception as exc:  # whatever a hostile notebook provokes costs that notebook, never the grade
            staged.notes.append(Note("error", f"{_shown(rel)} could not be read as a notebook "
                                              f"({type(exc).__name__}); it was not graded"))
            continue
        module = _module_path(staged, rel)
        _write_new_file(staged.root / module, text)
        staged.files.append(module)
        staged.files.sort()
        converted.append(ConvertedNotebook(rel, module, line_map, notes, definitions, left_out))
    return converted


def locate(converted: ConvertedNotebook, line: int) -> str:
    """Where generated line `line` came from, e.g. "hw3-part-CD.ipynb cell 12, line 3"."""
    if 1 <= line <= len(converted.line_map):
        cell, cell_line = converted.line_map[line - 1]
        if cell:
            return f"{converted.notebook} cell {cell}, line {cell_line}"
    return f"{converted.module} line {line} (added by dlgrade to the code taken from {converted.notebook})"
