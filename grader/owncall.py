"""How a submission calls one of its own functions (usually in a cell that prints the result),
read from the source and never run: the arguments after the two the interface fixes, as
values, globals or FLAGS the grader can supply again, and a `**config` it passes."""
from __future__ import annotations

import ast

from .codescan import _line, _where


def quote(prefix: str, lines: list[str], node: ast.AST) -> str:
    """The node's line of code, and where it is: "`x = f(1)`, model.py line 3"."""
    return f"`{_line(lines, node)}`, {_where(prefix, node)}"


def _argument(node: ast.AST) -> dict | None:
    if isinstance(node, ast.Constant) and (node.value is None or isinstance(node.value, (int, float, str, bool))):
        return {"kind": "value", "value": node.value}
    if isinstance(node, ast.Name):
        return {"kind": "global", "name": node.id}
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "FLAGS":
        return {"kind": "flag", "name": node.attr}
    return None


def own_call(code: list[tuple[str, ast.Module, list[str]]], function: str) -> dict | None:
    """How the submission calls `function` (usually in a cell that prints the text): its
    arguments after the checkpoint and the start string, and a `**config` it passes. Of
    several calls, the one that passes the most."""
    found = []
    for prefix, tree, lines in code:
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == function):
                continue
            # The interface fixes the first two: the checkpoint, then the start string.
            args = [{"kind": "checkpoint"}, {"kind": "start"}][:len(node.args)]
            for arg in node.args[2:]:
                described = _argument(arg)
                if described is None:
                    break
                args.append(described)
            else:
                keywords, star = {}, None
                for kw in node.keywords:
                    if kw.arg is None:
                        star = kw.value.id if isinstance(kw.value, ast.Name) else None
                        continue
                    described = _argument(kw.value)
                    if described is not None:
                        keywords[kw.arg] = described
                found.append({"args": args, "keywords": keywords, "star": star, "where": quote(prefix, lines, node)})
    return max(found, key=lambda c: (c["star"] is not None, len(c["args"]) + len(c["keywords"])), default=None)
