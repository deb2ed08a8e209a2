"""IPython syntax -> Python, one cell at a time."""
from __future__ import annotations

import ast
import warnings
from dataclasses import dataclass

from .report import _Report, _one_line
from .rules import _ASSIGN_FROM_IPYTHON, _AUTOMAGIC_LINE, _CELL_MAGIC, _HELP, _HELP_LINE, _MAGIC, _OTHER_AUTOMAGICS, _PYTHON_CELL_MAGICS, _SHELL, _SHELL_AUTOMAGICS


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
