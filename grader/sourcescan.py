"""Find torch's built-in recurrent modules in a class's source, aliases included.

Parses only (never imports). The worker also watches the kernels while the cell runs;
this scan adds the line to point at, and catches a built-in that is created but unused.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass

# Names that are torch's recurrent building blocks, wherever they are reached from.
FORBIDDEN = {"LSTMCell", "LSTM", "GRUCell", "GRU", "RNN", "RNNCell", "RNNBase", "RNNCellBase",
             "lstm_cell", "gru_cell", "rnn_tanh_cell", "rnn_relu_cell", "lstm", "gru", "rnn_tanh", "rnn_relu",
             "_VF"}
# Modules those names live in: torch, torch.nn, torch.nn.modules.rnn, torch._VF.
TORCH_MODULES = {"torch", "torch.nn", "torch.nn.modules", "torch.nn.modules.rnn", "torch._VF", "torch.nn.functional"}


@dataclass(frozen=True)
class Finding:
    line: int
    what: str  # e.g. "nn.LSTMCell", "L (an alias of torch.nn.LSTMCell)", "getattr(nn, ...)"
    code: str  # the source line, stripped


# torch's own Swish, which students are asked to write themselves.
SILU = frozenset({"SiLU", "silu", "silu_"})


def builtin_uses(source: str, class_name: str, forbidden: frozenset | set = frozenset(FORBIDDEN)) -> list[Finding] | None:
    """Uses of `forbidden` torch names (by default the built-in recurrent modules) inside the
    class or function `class_name`, or None if the source does not parse."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError):
        return None
    lines = source.splitlines()
    modules, aliases = _module_names(tree, forbidden)
    findings: list[Finding] = []
    # The last definition is the one Python keeps; a notebook may define a class twice.
    classes = [n for n in tree.body if isinstance(n, (ast.ClassDef, ast.FunctionDef)) and n.name == class_name]
    if not classes:
        return []
    for node in ast.walk(classes[-1]):
        what = _forbidden(node, modules, aliases, forbidden)
        if what:
            line = getattr(node, "lineno", 0)
            findings.append(Finding(line, what, lines[line - 1].strip() if 0 < line <= len(lines) else ""))
    return _dedupe(findings)


def _module_names(tree: ast.Module, forbidden) -> tuple[dict[str, str], dict[str, str]]:
    """Module-level names bound to torch modules (`nn` -> torch.nn), and to forbidden
    things (`L` -> torch.nn.LSTMCell), from imports and plain assignments."""
    modules: dict[str, str] = {}
    aliases: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name in TORCH_MODULES or a.name.startswith("torch"):
                    modules[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "torch":
            for a in node.names:
                full = f"{node.module}.{a.name}"
                if a.name in forbidden:
                    aliases[a.asname or a.name] = full
                elif full in TORCH_MODULES:
                    modules[a.asname or a.name] = full
        elif isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            what = _forbidden(node.value, modules, aliases, forbidden)
            if what:
                aliases[node.targets[0].id] = what
    return modules, aliases


def _dotted(node: ast.AST) -> list[str] | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return [node.id, *reversed(parts)]
    return None


def _forbidden(node: ast.AST, modules: dict[str, str], aliases: dict[str, str], forbidden=frozenset(FORBIDDEN)) -> str | None:
    if isinstance(node, ast.Name) and node.id in aliases:
        return f"{node.id} (an alias of {aliases[node.id]})"
    if isinstance(node, ast.Attribute):
        parts = _dotted(node)
        if parts and parts[0] in modules and parts[-1] in forbidden:
            return ".".join(parts)
        if parts and parts[0] in aliases and parts[-1] in forbidden:  # _VF.lstm_cell through an alias of _VF
            return ".".join(parts)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "getattr" and len(node.args) >= 2:
        target = _dotted(node.args[0])
        if target and target[0] in modules:
            name = node.args[1]
            if not isinstance(name, ast.Constant):
                return f"getattr({'.'.join(target)}, <a computed name>)"
            if name.value in forbidden:
                return f"getattr({'.'.join(target)}, {name.value!r})"
    return None


def _dedupe(findings: list[Finding]) -> list[Finding]:
    seen, out = set(), []
    for f in findings:
        if (f.line, f.what) not in seen:
            seen.add((f.line, f.what))
            out.append(f)
    return out
