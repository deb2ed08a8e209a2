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

import __future__
import ast
import json
import keyword
import os
import re
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from grader.intake import StagedSubmission, size_text
from grader.results import Note

_MB = 1024 * 1024
# Outputs (images, logs) make notebooks large; code alone is never near this.
MAX_NOTEBOOK_BYTES = 50 * _MB
# Homework notebooks hold a few hundred cells; these bound the parsing work a hostile one can cause.
MAX_CODE_CELLS = 2000
MAX_CODE_LINES = 50_000
_MAX_LISTED_CELLS = 10
_MAX_CELL_WARNINGS = 5
_MAX_DUPLICATE_WARNINGS = 5
_MAX_LISTED_NAMES = 6
_MAX_RECORDED_TEXT = 200
_MAX_STEM_CHARS = 100

# Cell magics whose body is ordinary Python that defines names in the notebook.
_PYTHON_CELL_MAGICS = frozenset({"time", "timeit", "capture", "prun"})
# Colab runs these without a leading % ("automagic"); the shell-like ones read as shell commands.
_SHELL_AUTOMAGICS = frozenset({"pip", "conda", "cd", "ls", "pwd", "mkdir", "rm", "rmdir", "cp", "mv", "cat"})
_OTHER_AUTOMAGICS = frozenset({"load_ext", "reload_ext", "matplotlib", "run", "time", "timeit", "tensorboard",
                               "env", "config", "who", "whos", "history", "autoreload", "sx", "system"})

# Kinds of left-out code, in the order the summary note lists them.
_CALLS = "training and other calls"
_ACTION_ASSIGNMENTS = "assignments that train, load data or do I/O"
_LOOPS = "loops"
_WITH = "with blocks"
_MAIN = "`if __name__ == '__main__':` blocks"
_OTHER = "asserts, raises and other statements"
_SHELL = "shell commands"
_MAGIC = "IPython magics"
_HELP = ""  # `obj?` lines are replaced silently: leaving them out loses nothing
_KIND_ORDER = (_CALLS, _ACTION_ASSIGNMENTS, _LOOPS, _WITH, _MAIN, _OTHER, _SHELL, _MAGIC)

# Final names of calls that do I/O, load data, train, plot or have other side effects.
_ACTION_NAMES = frozenset({
    "open", "load", "read", "read_csv", "read_json", "read_table", "read_excel", "read_parquet", "read_pickle",
    "loadtxt", "genfromtxt", "fromfile", "imread", "imsave", "urlretrieve", "urlopen", "download", "mount",
    "fit", "main", "run", "system", "popen", "Popen", "call", "check_call", "check_output", "sleep", "input",
    "show", "savefig", "imshow", "plot", "figure", "subplots", "subplot", "scatter", "hist", "backward", "step",
    "save", "dump", "init", "login", "SummaryWriter",
})
# Lower-case names starting with one of these words (train, train_model, trainModel) are actions.
# CapWords names are constructors, which are allowed (TrainConfig).
_ACTION_PREFIXES = ("train", "training", "evaluate", "run", "load", "download", "fit", "plot", "save", "show", "read")
_ACTION_SUFFIXES = ("dataset", "loader", "download")  # compared lower-cased: TensorDataset, get_loader
# `get`/`post` are only web requests on a web client or with a URL; dict.get is everywhere in configs.
_WEB_METHODS = frozenset({"get", "post", "put", "patch", "delete", "head", "request"})
_WEB_CLIENTS = frozenset({"requests", "httpx", "urllib3", "session", "http"})
# Generated module names must not shadow what the student's code imports.
_SHADOWED = frozenset({"torch", "torchvision", "torchaudio", "torchtext", "numpy", "matplotlib", "absl", "skimage",
                       "seaborn", "tqdm", "tensorboard", "PIL", "pandas", "sklearn", "scipy", "google", "IPython",
                       "grader", "dlgrade"})

_ASSIGN_FROM_IPYTHON = re.compile(r"[A-Za-z_][\w.]*(\s*,\s*[A-Za-z_][\w.]*)*\s*=\s*[!%]")
_HELP_LINE = re.compile(r"\?.*|[\w.\[\]()'\"%*]+\?\??")
_AUTOMAGIC_LINE = re.compile(r"([A-Za-z_]\w*)[ \t]+[^\s=:(\[{,]")
_CELL_MAGIC = re.compile(r"%%(\w*)")

_HELPERS = '''\
__dlgrade_skipped__ = []


def _dlgrade_skip(error, cell, line, code):
    """Record a notebook statement that failed here, so the rest of the notebook still loads."""
    try:
        message = str(error)
    except BaseException:
        message = "(the error could not be shown)"
    __dlgrade_skipped__.append({"cell": cell, "line": line, "code": code,
                                "type": type(error).__name__, "message": message[:500]})


def _dlgrade_condition(test, cell, line, code):
    """Evaluate an if-condition; one that fails counts as false and is recorded."""
    try:
        return bool(test())
    except BaseException as error:
        _dlgrade_skip(error, cell, line, code)
        return False
'''

_Line = tuple[str, int]  # generated text, line in the cell it came from (0: added by the converter)


class NotebookError(Exception):
    """A notebook that cannot be converted at all; the message is one line for the student."""


@dataclass
class ConvertedNotebook:
    notebook: str  # relative path of the .ipynb within the staged root
    module: str  # relative path of the generated .py (beside the notebook)
    line_map: list[tuple[int, int]]  # generated line i+1 -> (cell number, line in that cell); (0, 0) if added
    notes: list[Note]  # what was left out and why, duplicate definitions, cells that could not be taken
    definitions: dict[str, list[int]]  # top-level class/def name -> cell numbers defining it, in order
    left_out: dict[str, int] = field(default_factory=dict)  # name whose assignment was not run -> its cell


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


# --------------------------------------------------------------------------------------
# Reading the notebook
# --------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------
# IPython syntax -> Python, one cell at a time
# --------------------------------------------------------------------------------------


@dataclass
class _Cell:
    number: int
    lines: list[str]  # Python after IPython syntax was replaced; line k of the cell is lines[k - 1]
    tree: ast.Module
    placeholders: set[int]  # lines that held IPython syntax and now read `pass`
    ipython_kinds: list[str]  # what IPython syntax was replaced, for the summary


def _prepare_cell(number: int, source: str | None, report: _Report) -> _Cell | None:
    """The cell as parsed Python, or None (with a note) when it cannot be taken."""
    if source is None:
        report.cell_left_out(number, "its source is not text")
        return None
    if not _is_valid_text(source):
        report.cell_left_out(number, "it contains characters that are not valid text")
        return None
    lines = source.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    placeholders: set[int] = set()
    kinds: list[str] = []
    magic = _cell_magic(lines)
    if magic is not None:
        name, index = magic
        if name not in _PYTHON_CELL_MAGICS:
            report.left_out(f"%%{name} cells", number)
            return None
        lines[index] = "pass"
        placeholders.add(index + 1)
    tree = _parse("\n".join(lines))
    if tree is not None:
        return _Cell(number, lines, tree, placeholders, kinds)
    # Only a cell that is not plain Python is rewritten, so plain code is never touched.
    lines = _strip_leading_indent(lines)
    _replace_ipython_lines(lines, placeholders, kinds)
    return _parsed_cell(number, lines, placeholders, kinds, report)


def _parsed_cell(number: int, lines: list[str], placeholders: set[int], kinds: list[str],
                 report: _Report) -> _Cell | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # SyntaxWarnings (invalid escapes) are not ours to print
            tree = ast.parse("\n".join(lines))
    except SyntaxError as exc:
        # An error at the end of the input (an unclosed bracket) may name the line after the last.
        report.cell_left_out(number, _syntax_text(exc.msg, min(exc.lineno or 0, len(lines))))
        return None
    except (RecursionError, MemoryError):  # what CPython's parser raises for code nested thousands deep
        report.cell_left_out(number, "it is nested too deeply to parse")
        return None
    except ValueError as exc:
        report.cell_left_out(number, f"it could not be parsed ({_one_line(str(exc)) or type(exc).__name__})")
        return None
    return _Cell(number, lines, tree, placeholders, kinds)


def _is_valid_text(source: str) -> bool:
    try:
        source.encode("utf-8")  # JSON may carry lone surrogates, which no file can hold
    except UnicodeEncodeError:
        return False
    return True


def _parse(text: str) -> ast.Module | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None


def _cell_magic(lines: list[str]) -> tuple[str, int] | None:
    """(magic name, line index) when the cell starts with `%%name`; IPython skips blank lines first."""
    for index, line in enumerate(lines):
        if line.strip():
            match = _CELL_MAGIC.match(line.strip())
            return (match.group(1), index) if match else None
    return None


def _strip_leading_indent(lines: list[str]) -> list[str]:
    """IPython removes the first line's indentation from every line that has it."""
    first = next((line for line in lines if line.strip()), "")
    prefix = first[:len(first) - len(first.lstrip(" \t"))]
    if not prefix:
        return lines
    return [line[len(prefix):] if line.startswith(prefix) else line for line in lines]


def _replace_ipython_lines(lines: list[str], placeholders: set[int], kinds: list[str]) -> None:
    """Turn shell, magic and help lines into `pass` at their indentation, so blocks stay valid."""
    for index, starts in enumerate(_logical_line_starts(lines)):
        code = lines[index].lstrip(" \t")
        kind = _ipython_line_kind(code) if starts and code else None
        if kind is None:
            continue
        lines[index] = lines[index][:len(lines[index]) - len(code)] + "pass"
        placeholders.add(index + 1)
        if kind and kind not in kinds:
            kinds.append(kind)


def _ipython_line_kind(code: str) -> str | None:
    """The kind of IPython syntax a logical line (without its indentation) is, or None for Python."""
    assigned = _ASSIGN_FROM_IPYTHON.match(code)
    if code.startswith("!") or (assigned and code[assigned.end() - 1] == "!"):
        return _SHELL
    if code.startswith("%") or assigned:
        return _MAGIC
    if _HELP_LINE.fullmatch(code.rstrip()):
        return _HELP
    automagic = _AUTOMAGIC_LINE.match(code)
    if automagic and automagic.group(1) in _SHELL_AUTOMAGICS | _OTHER_AUTOMAGICS and _parse(code) is None:
        return _SHELL if automagic.group(1) in _SHELL_AUTOMAGICS else _MAGIC
    return None


def _logical_line_starts(lines: list[str]) -> list[bool]:
    """For each line, whether it starts a logical line: not inside a string, brackets or a
    backslash continuation. IPython only reads `!cmd` or `%magic` there, and a line of a
    docstring that starts with `%` must stay as it is."""
    starts = []
    depth, quote, continued = 0, "", False
    for line in lines:
        starts.append(not quote and depth == 0 and not continued)
        depth, quote, continued = _scan_line(line, depth, quote)
    return starts


def _scan_line(line: str, depth: int, quote: str) -> tuple[int, str, bool]:
    """Bracket depth, open string delimiter and whether a backslash continues the line, after `line`."""
    i, escaped_newline, comment = 0, False, False
    while i < len(line):
        c = line[i]
        if quote:
            if c == "\\":
                escaped_newline = i + 1 >= len(line)
                i += 2
            elif line.startswith(quote, i):
                i, quote = i + len(quote), ""
            else:
                i += 1
            continue
        if c == "#":
            comment = True
            break
        if c in "'\"":
            quote = line[i:i + 3] if line[i:i + 3] in ('"""', "'''") else c
            i += len(quote)
            continue
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth = max(0, depth - 1)
        i += 1
    if quote in ("'", '"') and not escaped_newline:
        quote = ""  # an unterminated one-line string: a syntax error the parser will name
    return depth, quote, not quote and not comment and line.endswith("\\")


def _syntax_text(message: str | None, line: int) -> str:
    """"invalid syntax at line 3"; `line` is a line of the cell, 0 when unknown."""
    return f"{message or 'invalid syntax'}" + (f" at line {line}" if line else "")


# --------------------------------------------------------------------------------------
# What counts as doing something
# --------------------------------------------------------------------------------------


class _ActionRules:
    """Decides whether an expression performs an action (trains, loads data, does I/O, plots)."""

    def __init__(self, active: set[str], dataset_names: set[str]) -> None:
        self.active = active  # notebook functions that loop or act when called
        self.dataset_names = dataset_names  # names imported from a `datasets` module (MNIST, CIFAR10)

    @classmethod
    def from_cells(cls, cells: list[_Cell]) -> _ActionRules:
        functions: dict[str, list[ast.AST]] = {}
        dataset_names: set[str] = set()
        for cell in cells:
            for node in _top_level_statements(cell.tree.body):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    functions.setdefault(node.name, []).append(node)
                elif isinstance(node, ast.ImportFrom) and node.module and "datasets" in node.module.split("."):
                    dataset_names.update(a.asname or a.name for a in node.names if a.name != "*")
        rules = cls(set(), dataset_names)
        rules.active = rules._active_functions(functions)
        return rules

    def _active_functions(self, functions: dict[str, list[ast.AST]]) -> set[str]:
        """Functions whose body loops or calls an action, and those that call them (transitively)."""
        callers: dict[str, set[str]] = {}
        pending = []
        for name, defs in functions.items():
            calls = [c for d in defs for c in ast.walk(d) if isinstance(c, ast.Call)]
            if any(_has_loop(d) for d in defs) or any(self.is_action_call(c) for c in calls):
                pending.append(name)
            for c in calls:
                callee = _final_name(c.func)
                if callee in functions:
                    callers.setdefault(callee, set()).add(name)
        active: set[str] = set()
        while pending:
            name = pending.pop()
            if name not in active:
                active.add(name)
                pending.extend(callers.get(name, ()))
        return active

    def performs_action(self, node: ast.AST) -> bool:
        return any(isinstance(n, (ast.Await, ast.Yield, ast.YieldFrom)) or
                   (isinstance(n, ast.Call) and self.is_action_call(n)) for n in _evaluated_nodes(node))

    def is_action_call(self, call: ast.Call) -> bool:
        name = _final_name(call.func)
        if name is None:
            return False
        if name in self.active or name in self.dataset_names or name in _ACTION_NAMES:
            return True
        if name in _WEB_METHODS:
            return _is_web_request(call)
        if any(_starts_with_word(name, p) for p in _ACTION_PREFIXES) or name.lower().endswith(_ACTION_SUFFIXES):
            return True
        # torchvision.datasets.CIFAR10(..., download=True) downloads whatever its name.
        return any(k.arg == "download" for k in call.keywords) or "datasets" in _dotted_parts(call.func)


def _final_name(func: ast.expr) -> str | None:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def _dotted_parts(func: ast.expr) -> list[str]:
    parts = []
    while isinstance(func, ast.Attribute):
        parts.append(func.attr)
        func = func.value
    if isinstance(func, ast.Name):
        parts.append(func.id)
    return parts[::-1]


def _is_web_request(call: ast.Call) -> bool:
    parts = _dotted_parts(call.func)
    if len(parts) > 1 and parts[0].lower() in _WEB_CLIENTS:
        return True
    first = call.args[0] if call.args else None
    return isinstance(first, ast.Constant) and isinstance(first.value, str) and \
        first.value.startswith(("http://", "https://"))


def _starts_with_word(name: str, word: str) -> bool:
    """train, train_model and trainModel start with the word "train"; trainer and Train do not."""
    if not name.startswith(word):
        return False
    rest = name[len(word):]
    return not rest or rest[0] == "_" or rest[0].isupper()


def _has_loop(node: ast.AST) -> bool:
    return any(isinstance(n, (ast.For, ast.AsyncFor, ast.While)) for n in ast.walk(node))


def _evaluated_nodes(node: ast.AST) -> Iterator[ast.AST]:
    """Nodes evaluated when `node` runs: a lambda's body only runs when it is called."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        if isinstance(current, ast.Lambda):
            stack.extend(current.args.defaults)
            stack.extend(d for d in current.args.kw_defaults if d is not None)
        else:
            stack.extend(ast.iter_child_nodes(current))


def _top_level_statements(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """Statements at module level, including those inside top-level if and try blocks."""
    for node in body:
        yield node
        if isinstance(node, ast.If) and not _is_main_guard(node):
            yield from _top_level_statements(node.body)
            yield from _top_level_statements(node.orelse)
        elif isinstance(node, (ast.Try, ast.TryStar)):
            for block in (node.body, node.orelse, node.finalbody, *(h.body for h in node.handlers)):
                yield from _top_level_statements(block)


def _is_main_guard(node: ast.If) -> bool:
    test = node.test
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq)):
        return False
    sides = [test.left, test.comparators[0]]
    return any(isinstance(s, ast.Name) and s.id == "__name__" for s in sides) and \
        any(isinstance(s, ast.Constant) and s.value == "__main__" for s in sides)


def _defines_flag(value: ast.expr) -> bool:
    """absl's flags.DEFINE_integer(...) and friends: calls that define, not do."""
    return isinstance(value, ast.Call) and (_final_name(value.func) or "").startswith("DEFINE_")


def _target_names(target: ast.expr) -> list[str]:
    if isinstance(target, ast.Name):
        return [target.id]
    if isinstance(target, (ast.Tuple, ast.List)):
        return [n for t in target.elts for n in _target_names(t)]
    if isinstance(target, ast.Starred):
        return _target_names(target.value)
    return []


# --------------------------------------------------------------------------------------
# Converting one cell's statements
# --------------------------------------------------------------------------------------


class _CellConverter:
    """Emits the statements of one cell that define things; records what it leaves out."""

    def __init__(self, cell: _Cell, rules: _ActionRules) -> None:
        self.cell = cell
        self.rules = rules
        self.encoded = [line.encode("utf-8") for line in cell.lines]  # ast offsets count UTF-8 bytes
        self.kinds: list[str] = list(cell.ipython_kinds)
        self.undefined: list[str] = []  # names whose assignment was left out
        self.defined: list[str] = []  # top-level class and def names, in order
        self.futures: list[str] = []  # `from __future__` features, hoisted to the module's top

    def convert(self) -> list[_Line]:
        return self.block(self.cell.tree.body, "", wrap=True)

    def block(self, body: list[ast.stmt], parent_indent: str, wrap: bool) -> list[_Line]:
        """The kept statements of a block. `wrap` is False inside a student's own try body,
        where exceptions must reach the student's handlers as they did in the notebook."""
        if not body:
            return []
        indent = self._block_indent(body, parent_indent)
        return [line for node in body for line in self.statement(node, indent, wrap)]

    def statement(self, node: ast.stmt, indent: str, wrap: bool) -> list[_Line]:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            self.defined.append(node.name)
            return self._verbatim(node)
        if isinstance(node, ast.Pass):
            return [] if node.lineno in self.cell.placeholders else [(indent + "pass", node.lineno)]
        if isinstance(node, ast.ImportFrom) and node.module == "__future__" and not node.level:
            return self._future(node)
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            return self._simple(node, indent, wrap)
        if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            return self._assignment(node, indent, wrap)
        if isinstance(node, ast.Expr):
            return self._expression(node, indent, wrap)
        if isinstance(node, ast.If):
            return self._if(node, indent, wrap)
        if isinstance(node, (ast.Try, ast.TryStar)):
            return self._try(node, indent, wrap)
        self._leave_out(_LOOPS if isinstance(node, (ast.For, ast.AsyncFor, ast.While)) else
                        _WITH if isinstance(node, (ast.With, ast.AsyncWith)) else _OTHER)
        return []

    # ----- simple statements ------------------------------------------------------------

    def _assignment(self, node: ast.stmt, indent: str, wrap: bool) -> list[_Line]:
        if self.rules.performs_action(node):
            self._leave_out(_ACTION_ASSIGNMENTS)
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            self.undefined.extend(n for t in targets for n in _target_names(t))
            return []
        return self._simple(node, indent, wrap)

    def _expression(self, node: ast.Expr, indent: str, wrap: bool) -> list[_Line]:
        if _defines_flag(node.value) and not self.rules.performs_action(node):
            return self._simple(node, indent, wrap)
        if isinstance(node.value, (ast.Yield, ast.YieldFrom)):
            self._leave_out(_OTHER)
        elif any(isinstance(n, (ast.Call, ast.Await)) for n in ast.walk(node.value)):
            self._leave_out(_CALLS)
        return []  # a bare name or string only displays something

    def _simple(self, node: ast.stmt, indent: str, wrap: bool) -> list[_Line]:
        """A simple statement, inside `try:` on its own line so that its text is never re-indented
        (re-indenting would change multi-line strings); continuation lines need no indentation."""
        text = self._segment(node).split("\n")
        first = node.lineno
        head = f"{indent}try: {text[0]}" if wrap else f"{indent}{text[0]}"
        lines = [(head, first)] + [(t, first + k) for k, t in enumerate(text[1:], start=1)]
        if wrap:
            lines.append((f"{indent}except BaseException as _dlgrade_error: "
                          f"{self._record('_dlgrade_skip(_dlgrade_error', node)}", 0))
        return lines

    def _future(self, node: ast.ImportFrom) -> list[_Line]:
        names = [a.name for a in node.names]
        if all(n in __future__.all_feature_names for n in names):
            self.futures.extend(n for n in names if n not in self.futures)
        else:
            self._leave_out(_OTHER)  # an unknown feature would make the whole module fail to compile
        return []

    def _verbatim(self, node: ast.stmt) -> list[_Line]:
        """A def or class, line for line: compound statements always own their whole lines."""
        first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
        return [(self.cell.lines[n - 1], n) for n in range(first, node.end_lineno + 1)]

    # ----- compound statements ----------------------------------------------------------

    def _if(self, node: ast.If, indent: str, wrap: bool) -> list[_Line]:
        if _is_main_guard(node):
            self._leave_out(_MAIN)
            return []
        branches = self._if_chain(node)
        if any(self.rules.performs_action(b.test) for b in branches):
            self._leave_out(_CALLS)
            return []
        bodies = [self.block(b.body, indent, wrap) for b in branches]
        last = branches[-1]
        orelse = self.block(last.orelse, indent, wrap)
        if not any(bodies) and not orelse:
            return []
        lines = []
        for i, (branch, body) in enumerate(zip(branches, bodies)):
            lines += self._condition("if" if i == 0 else "elif", branch, indent, wrap)
            lines += body or self._pass(branch.body, indent)
        if orelse:
            else_line = self._keyword_line("else", last.body[-1].end_lineno, last.orelse[0].lineno)
            lines.append((f"{indent}else:", else_line))
            lines += orelse
        return lines

    def _if_chain(self, node: ast.If) -> list[ast.If]:
        chain = [node]
        while len(chain[-1].orelse) == 1 and isinstance(chain[-1].orelse[0], ast.If) \
                and self._starts_with(chain[-1].orelse[0], b"elif"):
            chain.append(chain[-1].orelse[0])
        return chain

    def _condition(self, word: str, branch: ast.If, indent: str, wrap: bool) -> list[_Line]:
        """`if test:`; in wrapped code the test runs through _dlgrade_condition so that a
        failing one (a name left out) counts as false instead of stopping the import."""
        text = self._segment(branch.test).split("\n")
        named = any(isinstance(n, ast.NamedExpr) for n in ast.walk(branch.test))  # a lambda would hide the binding
        if wrap and not named:
            head, tail = f"{indent}{word} _dlgrade_condition(lambda: ({text[0]}", f"), {self._record('', branch)}):"
        else:
            head, tail = f"{indent}{word} ({text[0]}", "):"
        text[0] = head
        text[-1] += tail
        return [(t, branch.test.lineno + k) for k, t in enumerate(text)]

    def _try(self, node: ast.Try, indent: str, wrap: bool) -> list[_Line]:
        star = "*" if isinstance(node, ast.TryStar) else ""
        body = self.block(node.body, indent, wrap=False)
        defined_before_handlers = len(self.defined)
        handlers = [self.block(h.body, indent, wrap) for h in node.handlers]
        orelse = self.block(node.orelse, indent, wrap)
        final = self.block(node.finalbody, indent, wrap)
        if not body and not orelse and not final:
            del self.defined[defined_before_handlers:]  # with nothing to try, the handlers never run
            return []
        lines = [(f"{indent}try:", node.lineno)] + (body or self._pass(node.body, indent))
        for handler, handler_body in zip(node.handlers, handlers):
            lines += self._handler_header(handler, indent, star)
            lines += handler_body or self._pass(handler.body, indent)
        if wrap and all(h.type is not None for h in node.handlers):
            # What the student's handlers do not catch is recorded, as for any wrapped statement.
            lines.append((f"{indent}except{star} BaseException as _dlgrade_error: "
                          f"{self._record('_dlgrade_skip(_dlgrade_error', node)}", 0))
        previous = (node.handlers[-1].body if node.handlers else node.body)[-1].end_lineno
        if orelse:
            lines.append((f"{indent}else:", self._keyword_line("else", previous, node.orelse[0].lineno)))
            lines += orelse
            previous = node.orelse[-1].end_lineno
        if final:
            lines.append((f"{indent}finally:", self._keyword_line("finally", previous, node.finalbody[0].lineno)))
            lines += final
        return lines

    def _handler_header(self, handler: ast.ExceptHandler, indent: str, star: str) -> list[_Line]:
        if handler.type is None:
            return [(f"{indent}except:", handler.lineno)]
        text = self._segment(handler.type).split("\n")
        text[0] = f"{indent}except{star} ({text[0]}"
        text[-1] += f") as {handler.name}:" if handler.name else "):"
        return [(t, handler.type.lineno + k) for k, t in enumerate(text)]

    # ----- helpers ----------------------------------------------------------------------

    def _leave_out(self, kind: str) -> None:
        if kind not in self.kinds:
            self.kinds.append(kind)

    def _record(self, call_start: str, node: ast.stmt) -> str:
        """The arguments naming this statement to the helpers: cell, line and its first line."""
        code = self.cell.lines[node.lineno - 1].strip()[:_MAX_RECORDED_TEXT]
        args = f"{self.cell.number}, {node.lineno}, {code!r}"
        return f"{call_start}, {args})" if call_start else args

    def _segment(self, node: ast.AST) -> str:
        """The node's source text; ast.get_source_segment re-splits the whole cell on every call."""
        first, last = node.lineno - 1, node.end_lineno - 1
        if first == last:
            return self.encoded[first][node.col_offset:node.end_col_offset].decode("utf-8")
        parts = [self.encoded[first][node.col_offset:], *self.encoded[first + 1:last],
                 self.encoded[last][:node.end_col_offset]]
        return b"\n".join(parts).decode("utf-8")

    def _block_indent(self, body: list[ast.stmt], parent_indent: str) -> str:
        """The block's own indentation, or a deeper one when its statements share the header's
        line (`if x: y = 1`), since they are emitted on lines of their own."""
        line = self.encoded[body[0].lineno - 1]
        lead = line[:len(line) - len(line.lstrip(b" \t\f"))]
        if len(lead) == body[0].col_offset:
            return lead.decode("utf-8")
        return parent_indent + "    "

    def _pass(self, body: list[ast.stmt], parent_indent: str) -> list[_Line]:
        return [(self._block_indent(body, parent_indent) + "pass", 0)]

    def _starts_with(self, node: ast.AST, prefix: bytes) -> bool:
        return self.encoded[node.lineno - 1][node.col_offset:].startswith(prefix)

    def _keyword_line(self, word: str, after: int, before: int) -> int:
        """The cell line holding `else:` or `finally:` between two statements, for the line map."""
        for n in range(after, before + 1):
            code = self.cell.lines[n - 1].lstrip()
            if code.startswith(word) and code[len(word):].lstrip().startswith(":"):
                return n
        return 0


# --------------------------------------------------------------------------------------
# Assembling the module
# --------------------------------------------------------------------------------------


class _ModuleBuilder:
    def __init__(self, shown: str) -> None:
        self.shown = shown
        self.cells: list[tuple[int, list[_Line]]] = []
        self.futures: list[str] = []
        self.definitions: dict[str, list[int]] = {}

    def add_cell(self, cell: _Cell, rules: _ActionRules, report: _Report) -> None:
        converter = _CellConverter(cell, rules)
        lines = converter.convert()
        futures = self.futures + [f for f in converter.futures if f not in self.futures]
        problem = _compile_problem(lines, futures)
        if problem:
            # ast.parse accepts some code only the compiler refuses (`nonlocal` at top level,
            # a repeated argument name); one such cell must not stop the whole module.
            report.cell_left_out(cell.number, problem)
            return
        self.futures = futures
        for kind in converter.kinds:
            report.left_out(kind, cell.number)
        report.undefined.update(dict.fromkeys(converter.undefined, cell.number))
        for name in converter.defined:
            cells = self.definitions.setdefault(name, [])
            if cell.number not in cells:
                cells.append(cell.number)
        if lines:
            self.cells.append((cell.number, lines))

    def finish(self) -> tuple[str, list[tuple[int, int]]]:
        out: list[tuple[str, tuple[int, int]]] = []
        for text in self._header():
            out.append((text, (0, 0)))
        for number, lines in self.cells:
            out += [("", (0, 0)), (f"# cell {number}", (0, 0))]
            out += [(text, (number, line) if line else (0, 0)) for text, line in lines]
        return "\n".join(text for text, _ in out) + "\n", [where for _, where in out]

    def _header(self) -> list[str]:
        taken = _ranges([number for number, _ in self.cells]) or "none"
        # The notebook's name comes on line 3: Python reads an encoding declaration on lines 1-2.
        lines = ["# Generated by dlgrade from a Jupyter notebook, for grading only; edit the notebook, not this file.",
                 "# Kept: imports, classes, functions, constants. Left out: training, downloads, plots, shell lines.",
                 f"# Notebook: {self.shown}; code taken from cells {taken}."]
        if self.futures:
            lines.append(f"from __future__ import {', '.join(self.futures)}")
        return lines + [""] + _HELPERS.rstrip("\n").split("\n")


def _compile_problem(lines: list[_Line], futures: list[str]) -> str | None:
    """Why a cell's generated code would not compile, in cell terms, or None. Compiling runs nothing."""
    flags = 0
    for name in futures:
        flags |= getattr(__future__, name).compiler_flag
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            compile("\n".join(text for text, _ in lines), "<cell>", "exec", flags=flags, dont_inherit=True)
    except SyntaxError as exc:
        line = lines[exc.lineno - 1][1] if exc.lineno and 0 < exc.lineno <= len(lines) else 0
        return _syntax_text(exc.msg, line)
    except (ValueError, RecursionError, MemoryError) as exc:
        return f"it could not be compiled ({_one_line(str(exc)) or type(exc).__name__})"
    return None


# --------------------------------------------------------------------------------------
# Notes
# --------------------------------------------------------------------------------------


class _Report:
    """What was left out of one notebook, turned into a few notes at the end."""

    def __init__(self, shown: str) -> None:
        self.shown = shown
        self.kinds: dict[str, dict[int, None]] = {}  # kind of left-out code -> cells (an ordered set)
        self.undefined: dict[str, int] = {}  # names whose assignment was left out -> its cell, in order
        self.cells_left_out: list[tuple[int, str]] = []  # (cell, why)

    def left_out(self, kind: str, cell: int) -> None:
        self.kinds.setdefault(kind, {})[cell] = None

    def cell_left_out(self, cell: int, why: str) -> None:
        self.cells_left_out.append((cell, why))

    def notes(self, definitions: dict[str, list[int]]) -> list[Note]:
        notes = self._cell_notes() + self._duplicate_notes(definitions)
        summary = self._summary()
        return notes + ([Note("info", summary)] if summary else [])

    def _cell_notes(self) -> list[Note]:
        self.cells_left_out.sort()  # cells fail while parsing or, later, while compiling
        shown = self.cells_left_out[:_MAX_CELL_WARNINGS]
        notes = [Note("warning", f"cell {cell} of {self.shown} was left out: {why}") for cell, why in shown]
        rest = [cell for cell, _ in self.cells_left_out[_MAX_CELL_WARNINGS:]]
        if rest:
            notes.append(Note("warning", f"{_cells(rest)} of {self.shown} were also left out "
                                         "for the same kinds of reasons"))
        return notes

    def _duplicate_notes(self, definitions: dict[str, list[int]]) -> list[Note]:
        repeated = [(name, cells) for name, cells in definitions.items() if len(cells) > 1]
        notes = [Note("warning", f"{name} is defined in cells {_and_list(cells)} of {self.shown}; the last definition "
                                 f"(cell {cells[-1]}) is the one graded, as it is the one that ran last")
                 for name, cells in repeated[:_MAX_DUPLICATE_WARNINGS]]
        more = [name for name, _ in repeated[_MAX_DUPLICATE_WARNINGS:]]
        if more:
            notes.append(Note("warning", f"{len(more)} more names are defined in more than one cell of {self.shown} "
                                         f"({_names(more)}); the last definition of each is graded"))
        return notes

    def _summary(self) -> str:
        order = [k for k in _KIND_ORDER if k in self.kinds] + [k for k in self.kinds if k not in _KIND_ORDER]
        parts = []
        for kind in order:
            part = f"{kind} in {_cells(sorted(self.kinds[kind]))}"
            if kind == _ACTION_ASSIGNMENTS and self.undefined:
                part += f" (leaving {_names(list(self.undefined))} undefined)"
            parts.append(part)
        return f"Not run while grading ({self.shown}): " + "; ".join(parts) if parts else ""


def _cells(numbers: list[int]) -> str:
    if len(numbers) == 1:
        return f"cell {numbers[0]}"
    listed = ", ".join(map(str, numbers[:_MAX_LISTED_CELLS]))
    more = f" and {len(numbers) - _MAX_LISTED_CELLS} more" if len(numbers) > _MAX_LISTED_CELLS else ""
    return f"cells {listed}{more}"


def _and_list(numbers: list[int]) -> str:
    return ", ".join(map(str, numbers[:-1])) + f" and {numbers[-1]}"


def _names(names: list[str]) -> str:
    more = f" and {len(names) - _MAX_LISTED_NAMES} more" if len(names) > _MAX_LISTED_NAMES else ""
    return ", ".join(names[:_MAX_LISTED_NAMES]) + more


def _ranges(numbers: list[int]) -> str:
    """2, 3, 5, 6, 7 -> "2, 3, 5-7": short enough for a header comment."""
    runs: list[list[int]] = []
    for n in numbers:
        if runs and n == runs[-1][-1] + 1:
            runs[-1].append(n)
        else:
            runs.append([n])
    return ", ".join(f"{r[0]}-{r[-1]}" if len(r) > 2 else ", ".join(map(str, r)) for r in runs)


def _shown(name: str) -> str:
    # Names go into notes and a comment line: escape anything that is not plainly printable.
    return name if name.isprintable() else ascii(name)


def _one_line(text: str) -> str:
    return " ".join(text.split())


# --------------------------------------------------------------------------------------
# Writing the module beside the notebook
# --------------------------------------------------------------------------------------


def _module_path(staged: StagedSubmission, notebook: str) -> str:
    """hw3-part-CD.ipynb -> hw3_part_CD.py beside it; `_notebook` (and a number) when taken."""
    folder, _, name = notebook.rpartition("/")
    stem = _identifier(name[:-len(".ipynb")])
    taken = {f.casefold() for f in staged.files}  # casefolded: the student may work on macOS or Windows
    for candidate in _candidate_names(stem):
        rel = f"{folder}/{candidate}.py" if folder else f"{candidate}.py"
        clashes = rel.casefold() in taken or os.path.lexists(staged.root / rel) \
            or os.path.lexists(staged.root / rel[:-3])  # a package folder of that name would win the import
        if not clashes:
            return rel
    raise AssertionError("unreachable: candidate names never run out")


def _identifier(stem: str) -> str:
    name = re.sub(r"\W", "_", stem, flags=re.ASCII)[:_MAX_STEM_CHARS] or "notebook"
    return f"notebook_{name}" if name[0].isdigit() else name


def _candidate_names(stem: str) -> Iterator[str]:
    # A keyword cannot be imported, and a library's name would shadow the library for the student's code.
    if not (stem in sys.stdlib_module_names or stem in _SHADOWED or keyword.iskeyword(stem)):
        yield stem
    yield f"{stem}_notebook"
    number = 2
    while True:
        yield f"{stem}_notebook{number}"
        number += 1


def _write_new_file(path: Path, text: str) -> None:
    # O_EXCL and O_NOFOLLOW: never overwrite a student's file, and never write through a link.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "wb") as out:
        out.write(text.encode("utf-8"))
