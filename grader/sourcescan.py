"""Find torch's built-in implementations in a class's or function's source, whatever the spelling.

Parses only (never imports). Every expression that names something in torch is resolved to
its torch path first: `nn.LSTMCell`, `L` after `L = nn.LSTMCell`, `aten.silu.default`
after `aten = torch.ops.aten`, `silu` after `from torch.nn.functional import silu`, and
`getattr(F, "si" + "lu")` (a name that folds to a constant) all become paths through a
forbidden name. The scan is a hint with a line to point at, and catches a built-in that is
created but unused; the worker's kernel watch is the proof, and sees names made at run time.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass

# Names that are torch's recurrent building blocks, wherever they are reached from.
FORBIDDEN = {"LSTMCell", "LSTM", "GRUCell", "GRU", "RNN", "RNNCell", "RNNBase", "RNNCellBase",
             "lstm_cell", "gru_cell", "rnn_tanh_cell", "rnn_relu_cell", "lstm", "gru", "rnn_tanh", "rnn_relu",
             "_thnn_fused_lstm_cell", "_thnn_fused_gru_cell", "mkldnn_rnn_layer", "_cudnn_rnn", "_VF"}
# torch's own Swish, which students are asked to write themselves.
SILU = frozenset({"SiLU", "silu", "silu_", "silu_backward"})
# How a getattr whose name could not be worked out is shown; callers may treat it as unproven.
COMPUTED = "<a computed name>"


@dataclass(frozen=True)
class Finding:
    line: int
    what: str  # e.g. "nn.LSTMCell", "L (an alias of nn.LSTMCell)", "getattr(nn, 'LSTMCell')"
    code: str  # the source line, stripped


@dataclass(frozen=True)
class _Name:
    path: tuple[str, ...]  # ("torch", "ops", "aten")
    shown: str  # how the binding was written: "nn.LSTMCell", "torch.nn.functional.silu"
    imported: bool


def builtin_uses(source: str, class_name: str,
                 forbidden: frozenset | set = frozenset(FORBIDDEN)) -> list[Finding] | None:
    """Uses of `forbidden` torch names (by default the built-in recurrent modules) inside the
    class or function `class_name`, or None if the source does not parse."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError):
        return None
    lines = source.splitlines()
    # The last definition is the one Python keeps; a notebook may define a class twice.
    defs = [n for n in tree.body if isinstance(n, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
            and n.name == class_name]
    if not defs:
        return []
    scan = _Scan(forbidden)
    try:
        scan.bind_all(tree.body)
        scan.bind_all(sorted((n for n in ast.walk(defs[-1]) if isinstance(n, (ast.Assign, ast.Import, ast.ImportFrom))),
                             key=lambda n: (n.lineno, n.col_offset)))
        findings = scan.uses(defs[-1], lines)
    except RecursionError:
        return None
    return _dedupe(findings)


class _Scan:
    def __init__(self, forbidden):
        self.forbidden = frozenset(forbidden)
        self.names: dict[str, _Name] = {}
        self.strings: dict[str, str] = {}  # NAME = "si" + "lu": constant strings, for getattr

    # ------------------------------------------------------------------ bindings

    def bind_all(self, nodes) -> None:
        for node in nodes:
            if isinstance(node, ast.Import):
                for a in node.names:
                    if a.name.split(".")[0] == "torch":
                        path = tuple(a.name.split(".")) if a.asname else ("torch",)
                        self.names[a.asname or "torch"] = _Name(path, ".".join(path), True)
            elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "torch":
                for a in node.names:
                    path = (*node.module.split("."), a.name)
                    self.names[a.asname or a.name] = _Name(path, ".".join(path), True)
            elif isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                target, path = node.targets[0].id, self.path(node.value)
                self.names.pop(target, None)  # a name bound again to something else is no longer torch's
                self.strings.pop(target, None)
                if path:
                    self.names[target] = _Name(path, self.shown(node.value), False)
                elif (text := self.fold(node.value)) is not None:
                    self.strings[target] = text

    def path(self, node: ast.AST, depth: int = 0) -> tuple[str, ...] | None:
        """The torch path an expression names, or None when it is not torch's."""
        if depth > 50:
            return None
        if isinstance(node, ast.Name):
            bound = self.names.get(node.id)
            return bound.path if bound else None
        if isinstance(node, ast.Attribute):
            base = self.path(node.value, depth + 1)
            return (*base, node.attr) if base else None
        if _is_getattr(node):
            base = self.path(node.args[0], depth + 1)
            if base:
                name = self.fold(node.args[1])
                return (*base, COMPUTED if name is None else name)
        return None

    def fold(self, node: ast.AST, depth: int = 0) -> str | None:
        """The string a constant expression makes: "si" + "lu", "".join(["s", "i"]), f"{A}lu"."""
        if depth > 20:
            return None
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        if isinstance(node, ast.Name):
            return self.strings.get(node.id)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            left, right = self.fold(node.left, depth + 1), self.fold(node.right, depth + 1)
            return left + right if left is not None and right is not None else None
        if isinstance(node, ast.JoinedStr):
            parts = [self.fold(v.value if isinstance(v, ast.FormattedValue) and v.conversion == -1 and not v.format_spec
                               else v, depth + 1) for v in node.values]
            return "".join(parts) if all(p is not None for p in parts) else None
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and not node.keywords:
            owner = self.fold(node.func.value, depth + 1)
            if owner is None:
                return None
            if node.func.attr == "join" and len(node.args) == 1 and isinstance(node.args[0], (ast.List, ast.Tuple)):
                parts = [self.fold(e, depth + 1) for e in node.args[0].elts]
                return owner.join(parts) if all(p is not None for p in parts) else None
            if node.func.attr in ("lower", "upper", "strip", "lstrip", "rstrip", "casefold") and not node.args:
                return getattr(owner, node.func.attr)()
        return None

    # ------------------------------------------------------------------ uses

    def uses(self, definition: ast.AST, lines: list[str]) -> list[Finding]:
        # Only whole chains: `torch.ops.aten.silu.default` is one use, not one per dot.
        inner = {id(n.value) for n in ast.walk(definition) if isinstance(n, ast.Attribute)}
        inner |= {id(n.args[0]) for n in ast.walk(definition) if _is_getattr(n)}
        findings = []
        for node in ast.walk(definition):
            if id(node) in inner or not isinstance(node, (ast.Name, ast.Attribute, ast.Call)):
                continue
            what = self.forbidden_use(node)
            if what:
                line = getattr(node, "lineno", 0)
                findings.append(Finding(line, what, lines[line - 1].strip() if 0 < line <= len(lines) else ""))
        return findings

    def forbidden_use(self, node: ast.AST) -> str | None:
        path = self.path(node)
        if not path:
            return None
        if isinstance(node, ast.Name):
            return f"{node.id} (an alias of {self.names[node.id].shown})" if self._hits(path) else None
        if COMPUTED in path:  # a name worked out at run time: unproven, but worth pointing at
            return self.shown(node)
        if not self._hits(path):
            return None
        root = node
        while isinstance(root, ast.Attribute) or _is_getattr(root):
            root = root.value if isinstance(root, ast.Attribute) else root.args[0]
        bound = self.names.get(root.id) if isinstance(root, ast.Name) else None
        if bound and not bound.imported:  # `aten.silu` after `aten = torch.ops.aten`: say what aten is
            return f"{self.shown(node)} ({'.'.join(path)})"
        return self.shown(node)

    def _hits(self, path: tuple[str, ...]) -> bool:
        return any(p in self.forbidden for p in path[1:])

    def shown(self, node: ast.AST) -> str:
        """The expression as written, with folded getattr names: getattr(F, 'silu')."""
        if isinstance(node, ast.Attribute):
            return f"{self.shown(node.value)}.{node.attr}"
        if _is_getattr(node):
            name = self.fold(node.args[1])
            return f"getattr({self.shown(node.args[0])}, {COMPUTED if name is None else repr(name)})"
        text = ast.unparse(node)
        return text if len(text) <= 60 else text[:57] + "..."


def _is_getattr(node: ast.AST) -> bool:
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "getattr"
            and len(node.args) >= 2)


def _dedupe(findings: list[Finding]) -> list[Finding]:
    seen, out = set(), []
    for f in findings:
        if (f.line, f.what) not in seen:
            seen.add((f.line, f.what))
            out.append(f)
    return out
