"""The notes a conversion leaves: what was left out, and why."""
from __future__ import annotations


from grader.results import Note

from .rules import _ACTION_ASSIGNMENTS, _KIND_ORDER, _MAX_CELL_WARNINGS, _MAX_DUPLICATE_WARNINGS, _MAX_LISTED_CELLS, _MAX_LISTED_NAMES


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
