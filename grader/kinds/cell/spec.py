"""A rubric's [[cell]] table: a recurrent cell students write, graded on behaviour.

No layer table describes a cell, so the rubric gives its family (which state it carries
and which equations hold), its parameter count at the handout's sizes and the counts of
known variants, and points for each of the kind's checks.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ...errors import RubricError
from ...rubric_fields import Reader, identifier, points, positive, visibility

CHECK_KINDS = ("contract", "parameters", "builtins", "behaviour", "memory")
FAMILIES = ("gru", "lstm", "peephole", "coupled")
INPUT, HIDDEN = 128, 100  # the handout's sizes for the parameter count


@dataclass(frozen=True)
class CellSpec:
    symbol: str
    part: str
    family: str  # gru | lstm | peephole | coupled: which state it carries and what counts are right
    params: int  # parameter count at input 128, hidden 100, bias=True
    deviations: dict[int, str]  # other counts a known variant gives, and what that variant is
    points: dict[str, float]
    visibility: str = "visible"

    @property
    def has_cell_state(self) -> bool:
        return self.family != "gru"

    def check_name(self, kind: str) -> str:
        state = "(h, c)" if self.has_cell_state else "h"
        return {
            "contract": f"{self.symbol}: builds as {self.symbol}(input_size, hidden_size, bias=False) and steps with "
                        f"state {state}",
            "parameters": f"{self.symbol}: {self.params:,} parameters at input {INPUT}, hidden {HIDDEN}, bias=True, "
                          "and count_parameters agrees",
            "builtins": f"{self.symbol}: written from scratch, without torch's built-in recurrent cells",
            "behaviour": f"{self.symbol}: gates behave as the equations say",
            "memory": f"{self.symbol}: learns to recall a token seen many steps earlier",
        }[kind]


def parse(path: str, where: str, data: Any, part_of) -> CellSpec:
    r = Reader(path, where, data, {"symbol", "part", "family", "params", "deviations", "points", "visibility"})
    deviations = {}
    for key, text in r.get("deviations", dict, {}).items():
        if not key.isdigit() or not isinstance(text, str):
            raise RubricError(path, f"{where}.deviations.{key}", "use `count = \"what that variant is\"`")
        deviations[int(key)] = text
    return CellSpec(r.get("symbol", str, check=identifier), part_of(r),
                    r.get("family", str, check=lambda v: None if v in FAMILIES else f"not one of {', '.join(FAMILIES)}"),
                    r.get("params", int, check=positive), deviations,
                    points(path, f"{where}.points", r.get("points", dict), CHECK_KINDS),
                    r.get("visibility", str, "visible", check=visibility))
