"""Where a student's error is, in the files they know: a notebook's cell and line, not the line of
the module the grader generated from it."""
from __future__ import annotations

import re
from dataclasses import dataclass, field


@dataclass(frozen=True)
class LineMap:
    """Lines of a module generated from a notebook -> (cell, line in that cell)."""

    lines: tuple[tuple[int, int], ...]

    def cell_of(self, line: int) -> tuple[int, int]:
        if 1 <= line <= len(self.lines) and self.lines[line - 1] != (0, 0):
            return self.lines[line - 1]
        return (0, line)


@dataclass
class Localizer:
    line_maps: dict[str, LineMap] = field(default_factory=dict)  # generated module -> its notebook's cells
    displays: dict[str, str] = field(default_factory=dict)  # module path -> the name the student knows

    def localize(self, data):
        """Point at notebook cells, not at the module generated from them.

        The data comes from the worker, so its shape is the sender's choice: this walks it
        with an explicit stack (no recursion), and finds "x.py:N" in text in linear time
        (the plain pattern is quadratic on long runs of name characters)."""
        if not self.line_maps and not self.displays:
            return data

        def swap(match):
            try:
                return self._replace_location(match)
            except ValueError:  # a "line number" too long to convert
                return match.group(0)

        def text(value: str) -> str:
            if not self.line_maps or ".py:" not in value:
                return value  # _replace_location changes only modules with a line map
            return re.sub(r"(?<![\w./-])(?P<file>[\w./-]+?\.py):(?P<line>\d+)", swap, value)

        top = [data]
        stack = [(top, 0)]
        while stack:
            holder, key = stack.pop()
            value = holder[key]
            if isinstance(value, str):
                holder[key] = text(value)
            elif isinstance(value, (dict, list)):
                out = dict(value) if isinstance(value, dict) else list(value)
                holder[key] = out
                for k, item in (out.items() if isinstance(out, dict) else enumerate(out)):
                    if isinstance(item, (dict, list)):
                        stack.append((out, k))
                    elif isinstance(item, str):
                        out[k] = text(item)
                if isinstance(out, dict):  # its file and line are plain values, already localized
                    rel, line = out.get("file"), out.get("line")
                    if isinstance(rel, str) and rel in self.line_maps and isinstance(line, int):
                        cell, cell_line = self.line_maps[rel].cell_of(line)
                        out.update(file=self.displays.get(rel, rel), cell=cell, line=cell_line)
                    elif isinstance(rel, str) and rel in self.displays:
                        out["file"] = self.displays[rel]
        return top[0]

    def place(self, rel: str, line: int) -> str:
        """"hw.ipynb cell 4, line 2" for line `line` of the module generated as `rel`."""
        cell, cell_line = self.line_maps[rel].cell_of(line)
        return f"{self.displays.get(rel, rel)} cell {cell}, line {cell_line}"

    def _replace_location(self, match) -> str:
        rel, line = match.group("file"), int(match.group("line"))
        return self.place(rel, line) if rel in self.line_maps else match.group(0)
