"""What counts as doing something (training, loading data, I/O) rather than defining it."""
from __future__ import annotations

import ast
from collections.abc import Iterator

from .ipython import _Cell
from .rules import _ACTION_NAMES, _ACTION_PREFIXES, _ACTION_SUFFIXES, _WEB_CLIENTS, _WEB_METHODS


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
