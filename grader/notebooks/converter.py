"""Converting one cell's statements: the ones that define things are kept, wrapped."""
from __future__ import annotations

import __future__
import ast

from .actions import _ActionRules, _defines_flag, _is_main_guard, _target_names
from .ipython import _Cell
from .rules import _ACTION_ASSIGNMENTS, _CALLS, _LOOPS, _Line, _MAIN, _MAX_RECORDED_TEXT, _OTHER, _WITH


class _CellConverter:
    """Emits the statements of one cell that define things; records what it leaves out."""

    def __init__(self, cell: _Cell, rules: _ActionRules) -> None:
        self.cell = cell
        self.rules = rules
        self.encoded = [line.encode("utf-8") for line in cell.lines]  # ast offsets count UTF-8 bytes
        self.kinds: list[str] = list(cell.ipython_kinds)
        self.undefined: list[str] = []  # names whose assignment was left out
        self.defined: list[str] = []  # top-level class and def names, in order
        self.futures: list[str] = []  # `from __future__` features, hoisted to the module's top

    def convert(self) -> list[_Line]:
        return self.block(self.cell.tree.body, "", wrap=True)

    def block(self, body: list[ast.stmt], parent_indent: str, wrap: bool) -> list[_Line]:
        """The kept statements of a block. `wrap` is False inside a student's own try body,
        where exceptions must reach the student's handlers as they did in the notebook."""
        if not body:
            return []
        indent = self._block_indent(body, parent_indent)
        return [line for node in body for line in self.statement(node, indent, wrap)]

    def statement(self, node: ast.stmt, indent: str, wrap: bool) -> list[_Line]:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            self.defined.append(node.name)
            return self._verbatim(node)
        if isinstance(node, ast.Pass):
            return [] if node.lineno in self.cell.placeholders else [(indent + "pass", node.lineno)]
        if isinstance(node, ast.ImportFrom) and node.module == "__future__" and not node.level:
            return self._future(node)
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            return self._simple(node, indent, wrap)
        if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            return self._assignment(node, indent, wrap)
        if isinstance(node, ast.Expr):
            return self._expression(node, indent, wrap)
        if isinstance(node, ast.If):
            return self._if(node, indent, wrap)
        if isinstance(node, (ast.Try, ast.TryStar)):
            return self._try(node, indent, wrap)
        self._leave_out(_LOOPS if isinstance(node, (ast.For, ast.AsyncFor, ast.While)) else
                        _WITH if isinstance(node, (ast.With, ast.AsyncWith)) else _OTHER)
        return []

    # ----- simple statements ------------------------------------------------------------

    def _assignment(self, node: ast.stmt, indent: str, wrap: bool) -> list[_Line]:
        if self.rules.performs_action(node):
            self._leave_out(_ACTION_ASSIGNMENTS)
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            self.undefined.extend(n for t in targets for n in _target_names(t))
            return []
        return self._simple(node, indent, wrap)

    def _expression(self, node: ast.Expr, indent: str, wrap: bool) -> list[_Line]:
        if _defines_flag(node.value) and not self.rules.performs_action(node):
            return self._simple(node, indent, wrap)
        if isinstance(node.value, (ast.Yield, ast.YieldFrom)):
            self._leave_out(_OTHER)
        elif any(isinstance(n, (ast.Call, ast.Await)) for n in ast.walk(node.value)):
            self._leave_out(_CALLS)
        return []  # a bare name or string only displays something

    def _simple(self, node: ast.stmt, indent: str, wrap: bool) -> list[_Line]:
        """A simple statement, inside `try:` on its own line so that its text is never re-indented
        (re-indenting would change multi-line strings); continuation lines need no indentation."""
        text = self._segment(node).split("\n")
        first = node.lineno
        head = f"{indent}try: {text[0]}" if wrap else f"{indent}{text[0]}"
        lines = [(head, first)] + [(t, first + k) for k, t in enumerate(text[1:], start=1)]
        if wrap:
            lines.append((f"{indent}except BaseException as _dlgrade_error: "
                          f"{self._record('_dlgrade_skip(_dlgrade_error', node)}", 0))
        return lines

    def _future(self, node: ast.ImportFrom) -> list[_Line]:
        names = [a.name for a in node.names]
        if all(n in __future__.all_feature_names for n in names):
            self.futures.extend(n for n in names if n not in self.futures)
        else:
            self._leave_out(_OTHER)  # an unknown feature would make the whole module fail to compile
        return []

    def _verbatim(self, node: ast.stmt) -> list[_Line]:
        """A def or class, line for line: compound statements always own their whole lines."""
        first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
        return [(self.cell.lines[n - 1], n) for n in range(first, node.end_lineno + 1)]

    # ----- compound statements ----------------------------------------------------------

    def _if(self, node: ast.If, indent: str, wrap: bool) -> list[_Line]:
        if _is_main_guard(node):
            self._leave_out(_MAIN)
            return []
        branches = self._if_chain(node)
        if any(self.rules.performs_action(b.test) for b in branches):
            self._leave_out(_CALLS)
            return []
        bodies = [self.block(b.body, indent, wrap) for b in branches]
        last = branches[-1]
        orelse = self.block(last.orelse, indent, wrap)
        if not any(bodies) and not orelse:
            return []
        lines = []
        for i, (branch, body) in enumerate(zip(branches, bodies)):
            lines += self._condition("if" if i == 0 else "elif", branch, indent, wrap)
            lines += body or self._pass(branch.body, indent)
        if orelse:
            else_line = self._keyword_line("else", last.body[-1].end_lineno, last.orelse[0].lineno)
            lines.append((f"{indent}else:", else_line))
            lines += orelse
        return lines

    def _if_chain(self, node: ast.If) -> list[ast.If]:
        chain = [node]
        while len(chain[-1].orelse) == 1 and isinstance(chain[-1].orelse[0], ast.If) \
                and self._starts_with(chain[-1].orelse[0], b"elif"):
            chain.append(chain[-1].orelse[0])
        return chain

    def _condition(self, word: str, branch: ast.If, indent: str, wrap: bool) -> list[_Line]:
        """`if test:`; in wrapped code the test runs through _dlgrade_condition so that a
        failing one (a name left out) counts as false instead of stopping the import."""
        text = self._segment(branch.test).split("\n")
        named = any(isinstance(n, ast.NamedExpr) for n in ast.walk(branch.test))  # a lambda would hide the binding
        if wrap and not named:
            head, tail = f"{indent}{word} _dlgrade_condition(lambda: ({text[0]}", f"), {self._record('', branch)}):"
        else:
            head, tail = f"{indent}{word} ({text[0]}", "):"
        text[0] = head
        text[-1] += tail
        return [(t, branch.test.lineno + k) for k, t in enumerate(text)]

    def _try(self, node: ast.Try, indent: str, wrap: bool) -> list[_Line]:
        star = "*" if isinstance(node, ast.TryStar) else ""
        body = self.block(node.body, indent, wrap=False)
        defined_before_handlers = len(self.defined)
        handlers = [self.block(h.body, indent, wrap) for h in node.handlers]
        orelse = self.block(node.orelse, indent, wrap)
        final = self.block(node.finalbody, indent, wrap)
        if not body and not orelse and not final:
            del self.defined[defined_before_handlers:]  # with nothing to try, the handlers never run
            return []
        lines = [(f"{indent}try:", node.lineno)] + (body or self._pass(node.body, indent))
        for handler, handler_body in zip(node.handlers, handlers):
            lines += self._handler_header(handler, indent, star)
            lines += handler_body or self._pass(handler.body, indent)
        if wrap and all(h.type is not None for h in node.handlers):
            # What the student's handlers do not catch is recorded, as for any wrapped statement.
            lines.append((f"{indent}except{star} BaseException as _dlgrade_error: "
                          f"{self._record('_dlgrade_skip(_dlgrade_error', node)}", 0))
        previous = (node.handlers[-1].body if node.handlers else node.body)[-1].end_lineno
        if orelse:
            lines.append((f"{indent}else:", self._keyword_line("else", previous, node.orelse[0].lineno)))
            lines += orelse
            previous = node.orelse[-1].end_lineno
        if final:
            lines.append((f"{indent}finally:", self._keyword_line("finally", previous, node.finalbody[0].lineno)))
            lines += final
        return lines

    def _handler_header(self, handler: ast.ExceptHandler, indent: str, star: str) -> list[_Line]:
        if handler.type is None:
            return [(f"{indent}except:", handler.lineno)]
        text = self._segment(handler.type).split("\n")
        text[0] = f"{indent}except{star} ({text[0]}"
        text[-1] += f") as {handler.name}:" if handler.name else "):"
        return [(t, handler.type.lineno + k) for k, t in enumerate(text)]

    # ----- helpers ----------------------------------------------------------------------

    def _leave_out(self, kind: str) -> None:
        if kind not in self.kinds:
            self.kinds.append(kind)

    def _record(self, call_start: str, node: ast.stmt) -> str:
        """The arguments naming this statement to the helpers: cell, line and its first line."""
        code = self.cell.lines[node.lineno - 1].strip()[:_MAX_RECORDED_TEXT]
        args = f"{self.cell.number}, {node.lineno}, {code!r}"
        return f"{call_start}, {args})" if call_start else args

    def _segment(self, node: ast.AST) -> str:
        """The node's source text; ast.get_source_segment re-splits the whole cell on every call."""
        first, last = node.lineno - 1, node.end_lineno - 1
        if first == last:
            return self.encoded[first][node.col_offset:node.end_col_offset].decode("utf-8")
        parts = [self.encoded[first][node.col_offset:], *self.encoded[first + 1:last],
                 self.encoded[last][:node.end_col_offset]]
        return b"\n".join(parts).decode("utf-8")

    def _block_indent(self, body: list[ast.stmt], parent_indent: str) -> str:
        """The block's own indentation, or a deeper one when its statements share the header's
        line (`if x: y = 1`), since they are emitted on lines of their own."""
        line = self.encoded[body[0].lineno - 1]
        lead = line[:len(line) - len(line.lstrip(b" \t\f"))]
        if len(lead) == body[0].col_offset:
            return lead.decode("utf-8")
        return parent_indent + "    "

    def _pass(self, body: list[ast.stmt], parent_indent: str) -> list[_Line]:
        return [(self._block_indent(body, parent_indent) + "pass", 0)]

    def _starts_with(self, node: ast.AST, prefix: bytes) -> bool:
        return self.encoded[node.lineno - 1][node.col_offset:].startswith(prefix)

    def _keyword_line(self, word: str, after: int, before: int) -> int:
        """The cell line holding `else:` or `finally:` between two statements, for the line map."""
        for n in range(after, before + 1):
            code = self.cell.lines[n - 1].lstrip()
            if code.startswith(word) and code[len(word):].lstrip().startswith(":"):
                return n
        return 0
