"""What the cell checks know about a recurrent cell: typed, and checked as it is decoded.

The verifier (grader.kinds.cell.measure) or, where export failed, the worker
(grader.kinds.cell.probe) sends these as JSON objects; grader.kinds.wire.decode builds
them. The field names are the wire names.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class KernelCall:
    """One sighting of torch's own recurrent code: in the graph, or by the worker's watch."""

    kernel: str
    route: str | None = None
    where: str = ""
    by: str = ""
    node: str | None = None
    note: str | None = None


@dataclass(frozen=True)
class ReportedCount:
    """What the class's count_parameters said (the starter prints it and returns None)."""

    present: bool
    value: int | None = None
    printed: str = ""


@dataclass(frozen=True)
class DeadPart:
    """A parameter, or rows or columns of one, whose gradient is exactly zero for every input."""

    name: str
    shape: list[int]
    whole: bool
    touched: bool = False  # handed to some torch function in forward
    rows: list[list[int]] = field(default_factory=list)  # [[first, last], ...], inclusive
    row_blocks: list[list[int]] = field(default_factory=list)  # [[1-based block, blocks], ...]
    columns: list[list[int]] = field(default_factory=list)
    column_blocks: list[list[int]] = field(default_factory=list)


@dataclass(frozen=True)
class CellStatePath:
    """dc_t/dc_{t-1} and h_t against tanh(c_t), for cells that carry a cell state."""

    measured: bool
    trials: int = 0
    one: bool = False  # the derivative is exactly 1 everywhere: the old state carried over unscaled
    zero: bool = False  # exactly 0 everywhere: c_t does not depend on c_{t-1} (or it is detached)
    diagonal: bool = False
    units_one: int = 0
    units: int = 0
    diag_range: list[float] = field(default_factory=list)
    value_depends: bool = False  # c_t changes when c_{t-1} does
    h_is_tanh_c: bool = False


@dataclass(frozen=True)
class Anatomy:
    """Parts computed and never used; `error` when the test could not run."""

    error: str | None = None
    dtype: str = ""
    hidden: int = 100
    dead: list[DeadPart] | None = None
    parameters: dict[str, list[int]] = field(default_factory=dict)  # name -> shape
    cell_state: CellStatePath | None = None


@dataclass(frozen=True)
class CellFacts:
    """The contract, the counts and the behaviour of one cell class."""

    error: dict | None = None  # where the student's code stopped: grader.worker.failures.describe
    builtin_calls: list[KernelCall] = field(default_factory=list)
    builtin_modules: list[str] = field(default_factory=list)
    params: int | None = None  # at input 128, hidden 100, bias=True
    params_without_bias: int | None = None
    params_default_bias: int | None = None
    count_parameters: ReportedCount | None = None
    state_kind: str | None = None  # "tensor", "pair", or the type returned
    second_state_kind: str | None = None
    state_shapes: list[list[int]] = field(default_factory=list)
    max_abs_h: float | None = None
    finite: bool = False
    rows_independent: bool = False
    none_is_zeros: bool = False
    state_used: bool = False
    first_step_norm: float = 1.0
    first_step_depends_on_input: bool = False
    no_gradient: list[str] = field(default_factory=list)
    nonfinite_gradient: list[str] = field(default_factory=list)
    anatomy: Anatomy | None = None


@dataclass(frozen=True)
class MemoryFacts:
    """The memory task: a small recall task a correctly wired gated cell learns."""

    error: dict | None = None
    task: str = "recall a token seen many steps earlier"
    chance: float = 0.0
    threshold: float = 1.0
    budget: int = 0
    steps: int = 0
    accuracy: float = 0.0
    passed: bool = False
    losses: list[float] = field(default_factory=list)
    curve: list[list[float]] = field(default_factory=list)  # [[step, held-out accuracy], ...]
    stopped: str | None = None
    seconds: float = 0.0
    config: dict = field(default_factory=dict)
    builtin_calls: list[KernelCall] = field(default_factory=list)
