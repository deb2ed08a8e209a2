"""Reading a notebook: its JSON, its code cells, within limits."""
from __future__ import annotations

import json
from pathlib import Path

from grader.staging import size_text

from .report import _one_line
from .rules import NotebookError

_MB = 1024 * 1024
# Outputs (images, logs) make notebooks large; code alone is never near this.
MAX_NOTEBOOK_BYTES = 50 * _MB
# Homework notebooks hold a few hundred cells; these bound the parsing work a hostile one can cause.
MAX_CODE_CELLS = 2000
MAX_CODE_LINES = 50_000


def _read_code_cells(path: Path, shown: str) -> list[tuple[int, str | None]]:
    """(cell number, source) of every code cell; source is None when it is not text.

    Cell numbers count all cells, markdown included: what a student counts when scrolling."""
    notebook = _load_json(path, shown)
    cells = _cell_list(notebook, shown)
    code = []
    for number, cell in enumerate(cells, start=1):
        if isinstance(cell, dict) and cell.get("cell_type") == "code":
            # nbformat 4 calls it "source", nbformat 3 "input".
            code.append((number, _source_text(cell.get("source", cell.get("input")))))
    if not code:
        raise NotebookError(f"{shown} has no code cells")
    _check_code_size(code, shown)
    return code


def _check_code_size(code: list[tuple[int, str | None]], shown: str) -> None:
    if len(code) > MAX_CODE_CELLS:
        raise NotebookError(f"{shown} has {len(code)} code cells, more than the {MAX_CODE_CELLS} a notebook "
                            "may have to be graded")
    lines = sum(source.count("\n") + (not source.endswith("\n")) for _, source in code if source)
    if lines > MAX_CODE_LINES:
        raise NotebookError(f"{shown} has {lines} lines of code, more than the {MAX_CODE_LINES} a notebook "
                            "may have to be graded")


def _load_json(path: Path, shown: str) -> object:
    if path.stat().st_size > MAX_NOTEBOOK_BYTES:
        raise NotebookError(_too_large(shown))
    with open(path, "rb") as f:
        data = f.read(MAX_NOTEBOOK_BYTES + 1)  # the file may grow after stat; never read past the cap
    if len(data) > MAX_NOTEBOOK_BYTES:
        raise NotebookError(_too_large(shown))
    try:
        return json.loads(data)
    except RecursionError:  # json's C decoder stops at the recursion limit rather than overflow the stack
        raise NotebookError(f"{shown} is not a valid notebook: its JSON is nested too deeply to read") from None
    except (ValueError, MemoryError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise NotebookError(f"{shown} is not a valid notebook: {_one_line(str(exc)) or type(exc).__name__}") from None


def _too_large(shown: str) -> str:
    return (f"{shown} is larger than {size_text(MAX_NOTEBOOK_BYTES)}, the limit for a notebook; "
            "clear its outputs (Edit > Clear all outputs) and save it again")


def _cell_list(notebook: object, shown: str) -> list:
    if isinstance(notebook, dict) and isinstance(notebook.get("cells"), list):
        return notebook["cells"]
    worksheets = notebook.get("worksheets") if isinstance(notebook, dict) else None
    if isinstance(worksheets, list) and worksheets and isinstance(worksheets[0], dict) \
            and isinstance(worksheets[0].get("cells"), list):
        return worksheets[0]["cells"]
    raise NotebookError(f"{shown} is not a valid notebook: it has no list of cells")


def _source_text(source: object) -> str | None:
    if isinstance(source, str):
        return source
    if isinstance(source, list) and all(isinstance(part, str) for part in source):
        return "".join(source)
    return None
