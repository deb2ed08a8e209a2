"""Which of torch's own kernels ran while student code did, whatever route reached them.

F.silu, nn.SiLU, torch.ops.aten.silu.default, torch._C._nn.silu and a getattr with a
computed name all end in one kernel, so the watch looks at kernels, not Python names.
Layers, each seeing what another cannot:

- a TorchFunctionMode sees the Python entry point as an object (F.silu, an OpOverload,
  torch._VF.lstm_cell), so the report can name the route and the student's line. It sees
  composite ops (lstm_cell) before they decompose, but not Python that torch calls back into
  while the mode's own handler runs (the mode is off the stack meanwhile).
- a TorchDispatchMode sees the aten op that ran (aten.silu, silu_, silu_backward), from any
  route or depth; composite ops arrive decomposed (aten.lstm_cell is addmm and sigmoid_ on CPU).
- optionally the legacy autograd profiler (RecordFunction, in C++) names every op at the
  dispatcher's door, composite or not, with both modes switched off.
- `graph_kernels` reads the autograd graph afterwards: SiluBackward0 is made by the engine.

Student code runs in this interpreter and can switch any of these off (the student has read
this file). Each mode checks that the other is still in place whenever it fires, exit checks
the mode stacks, and the profile must still hold a random marker from its start, so
switching one off is itself reported (`tampered`). What none of them sees: kernels run on
another thread, and code that patches this module's objects.
"""
from __future__ import annotations

import re
import secrets
import sys
from collections import Counter

import torch
from torch.overrides import TorchFunctionMode, _get_current_function_mode_stack
from torch.utils._python_dispatch import TorchDispatchMode, _get_current_dispatch_mode_stack, _pop_mode, _push_mode

from . import failures

LIMIT = 10  # sightings kept; counts go on


def student_line(depth: int = 2) -> str:
    """The innermost frame in the submission's folders, as "file.py:line"."""
    try:
        frame = sys._getframe(depth)
    except ValueError:
        return ""
    while frame is not None:
        for root in failures.ROOTS:
            root = root.rstrip("/")
            if frame.f_code.co_filename.startswith(root + "/"):
                return f"{frame.f_code.co_filename[len(root) + 1:]}:{frame.f_lineno}"
        frame = frame.f_back
    return ""


def _op_name(func) -> tuple[str, str] | None:
    """("aten", "silu") for aten.silu.default and aten.silu; None for anything else."""
    if isinstance(func, (torch._ops.OpOverload, torch._ops.OpOverloadPacket)):
        ns, _, rest = str(func).partition(".")
        return ns, rest.split(".")[0]
    return None


def route(func) -> str:
    """How the student's code spelled the call: torch.ops.aten.silu.default, torch._C._nn.silu, ..."""
    if _op_name(func):
        return f"torch.ops.{func}"
    name = getattr(func, "__name__", "?")
    module = getattr(func, "__module__", None) or ""
    if getattr(func, "__qualname__", "").startswith("_VariableFunctionsClass"):
        return f"torch.{name} (torch._VF.{name})"
    return f"{module}.{name}" if module else name


class _FunctionWatch(TorchFunctionMode):
    def __init__(self, watch: "KernelWatch"):
        super().__init__()
        self.watch = watch
        self.inside = 0  # our handler is running (this mode is off the stack meanwhile)
        self.in_forbidden = 0  # ... for a forbidden call, whose kernels the dispatch layer need not repeat

    def __torch_function__(self, func, types, args=(), kwargs=None):
        watch = self.watch
        op = _op_name(func)
        base = op[1] if op and op[0] == "aten" else (None if op else getattr(func, "__name__", None))
        forbidden = base in watch.kernels
        if forbidden:
            watch.python[base] += 1
            watch._saw(base, route(func), "function")
        if not watch._dm.inside and watch._dm not in _get_current_dispatch_mode_stack():
            watch._tamper("the grader's dispatch watch was taken off the mode stack")
        self.inside += 1
        self.in_forbidden += forbidden
        try:
            return func(*args, **(kwargs or {}))
        finally:
            self.inside -= 1
            self.in_forbidden -= forbidden


class _DispatchWatch(TorchDispatchMode):
    def __init__(self, watch: "KernelWatch"):
        super().__init__()
        self.watch = watch
        self.inside = 0
        self._names: dict = {}  # OpOverload -> forbidden base name or None, so each op is looked at once

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        watch, fm = self.watch, self.watch._fm
        base = self._names.get(func, 0)
        if base == 0:
            op = _op_name(func)
            base = self._names[func] = op[1] if op and op[0] == "aten" and op[1] in watch.kernels else None
        if base:
            watch.aten[base] += 1
            if not fm.in_forbidden:  # else the same call its Python entry point already reported
                watch._saw(base, None, "dispatch")
        watching = torch._C._is_torch_function_mode_enabled() and fm in _get_current_function_mode_stack()
        if not fm.inside and not watching:
            watch._tamper("torch function modes were switched off")
        self.inside += 1
        try:
            return func(*args, **(kwargs or {}))
        finally:
            self.inside -= 1


class KernelWatch:
    """`with watch:` around student code only; re-enterable one use after another, sightings add up.

    calls: [{"kernel", "route", "where", "by"}] (at most LIMIT); python, aten, profiled: how
    often each layer saw each forbidden name; tampered: what the code did to the watch."""

    def __init__(self, kernels, profile: bool = False):
        self.kernels = frozenset(kernels)
        self.calls: list[dict] = []
        self.python: Counter = Counter()  # by the function layer: F.silu, torch.ops.aten.silu.default
        self.aten: Counter = Counter()  # by the dispatch layer: aten.silu, aten.silu_backward
        self.profiled: Counter = Counter()  # by the profiler: aten::silu
        self.tampered: list[str] = []  # "torch function modes were switched off at file.py:12"
        self.tamper_lines: list[str] = []
        self._fm, self._dm = _FunctionWatch(self), _DispatchWatch(self)
        self._profile = profile and hasattr(torch.autograd, "_enable_profiler_legacy")
        self._marker = ""
        self._profiling = False

    def _saw(self, base: str, how: str | None, by: str) -> None:
        if len(self.calls) < LIMIT:
            self.calls.append({"kernel": base, "route": how, "where": student_line(3), "by": by})

    def _tamper(self, what: str) -> None:
        if len(self.tampered) < 3 and not any(t.startswith(what) for t in self.tampered):
            where = student_line(3)
            self.tampered.append(what + (f" at {where}" if where else ""))
            self.tamper_lines.append(where)

    def __enter__(self):
        if self._profile:
            self._start_profile()
        self._dm.__enter__()
        self._fm.__enter__()
        return self

    def __exit__(self, *exc):
        _restore(self._fm, _get_current_function_mode_stack(), torch._C._pop_torch_function_stack,
                 torch._C._push_on_torch_function_stack, lambda: self._tamper("the grader's function watch was moved"))
        _restore(self._dm, _get_current_dispatch_mode_stack(), _pop_mode, _push_mode,
                 lambda: self._tamper("the grader's dispatch watch was moved"))
        if not torch._C._is_torch_function_enabled():
            self._tamper("torch functions were left switched off")
        if self._profiling:
            self._stop_profile()
        return False

    def _start_profile(self) -> None:
        from torch.autograd import ProfilerConfig, ProfilerState

        try:
            config = ProfilerConfig(ProfilerState.CPU, False, False, False, False, False,
                                    torch._C._profiler._ExperimentalConfig())
            torch.autograd._enable_profiler_legacy(config)
        except Exception:  # a profiler already running, or a torch without this one: the modes still watch
            return
        self._profiling = True
        self._marker = f"dlgrade.watch.{secrets.token_hex(8)}"
        with torch.autograd.profiler.record_function(self._marker):
            pass

    def _stop_profile(self) -> None:
        self._profiling = False
        try:
            records = torch.autograd._disable_profiler_legacy()
        except Exception:
            self._tamper("the grader's profiler was switched off")
            return
        names = Counter(r.name() for thread in records for r in thread if r.kind() == "push")
        if not names.get(self._marker):
            self._tamper("the grader's profiler was replaced")
        for base in self.kernels:
            # Each op the dispatch layer saw entered the dispatcher twice: the call, and the mode's own.
            self.profiled[base] += names.get(f"aten::{base}", 0)
            once = self.profiled[base] - self.aten[base]
            # More than either mode saw: it ran where neither looked (both switched off, or deeper
            # than the function layer for an op the dispatch layer only sees decomposed).
            if once > max(self.python[base], self.aten[base]) and len(self.calls) < LIMIT \
                    and not any(c["kernel"] == base and c["by"] == "profiler" for c in self.calls):
                self.calls.append({"kernel": base, "route": None, "where": "", "by": "profiler"})


def _restore(mode, stack: list, pop, push, complain) -> None:
    """Leave `mode` as if nothing had touched it: pop what was pushed above it, put it back if
    it was taken off (its __exit__ restores torch's flags), and complain if it was not on top."""
    if not stack or stack[-1] is not mode:
        complain()
    if mode in stack:
        for _ in range(len(stack) - 1 - stack.index(mode)):
            pop()
    else:
        push(mode)
    mode.__exit__(None, None, None)


_BACKWARD = re.compile(r"^([A-Za-z0-9]+?)Backward\d+$")


def graph_kernels(outputs, kernels, limit: int = 20000) -> list[list[str]]:
    """[[node, kernel], ...] for built-in autograd nodes of `kernels` in the graph behind
    `outputs`, e.g. [["SiluBackward0", "silu"]]. The engine names its nodes after the kernel
    whatever route reached it; a student's autograd.Function (class "SiluBackward") is not one."""
    wanted = {k.replace("_", "").lower(): k for k in kernels}
    tensors = outputs if isinstance(outputs, (list, tuple)) else [outputs]
    stack = [t.grad_fn for t in tensors if isinstance(t, torch.Tensor) and t.grad_fn is not None]
    seen, found = set(), []
    while stack and len(seen) < limit:
        node = stack.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        name = type(node).__name__
        match = _BACKWARD.match(name)
        if match and not isinstance(node, torch.autograd.function.BackwardCFunction) \
                and match.group(1).lower() in wanted and all(f[0] != name for f in found):
            found.append([name, wanted[match.group(1).lower()]])
        stack.extend(n for n, _ in getattr(node, "next_functions", ()))
    return found


def tamper_calls(watch: KernelWatch) -> list[dict]:
    """What the code did to the watch, as sightings of an unknown kernel: the kernel itself was
    hidden, so the check can only say where and how (`note`)."""
    return [{"kernel": "unknown", "route": None, "where": where, "by": "watch",
             "note": f"code that switched off the grader's kernel watch ({t})"}
            for t, where in zip(watch.tampered, watch.tamper_lines)]
