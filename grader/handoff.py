"""What the grader hands a student's function, in the form the submission's own code uses.

Part C's `analyze_model_kernels` and Part D's `shakespeare_writer` read a checkpoint the
grader makes. Students save and read checkpoints their own way (a bare state_dict, a dict
with the weights under 'model' or 'state_dict', a whole pickled model), and name the
constants that set how much text to write as they like. This module reads the source (it
never runs it), in the scoring process, and says:

- which checkpoint layout the function reads, else the one the training code saves;
- how the submission itself calls the function (its own call, in a cell the grader skips);
- which constants, flags, config-dict keys or parameters set the generation length.

The worker then serves that layout and lowers those lengths; the report says why.
"""
from __future__ import annotations

import ast
import builtins
import re
from dataclasses import asdict, dataclass, field

from .owncall import own_call, quote

# Keys a checkpoint dict keeps the weights under, as students write them.
WRAPPER_KEYS = ("model", "state_dict", "model_state_dict", "model_state", "net", "net_state_dict", "network",
                "weights", "params", "model_dict", "state")
DICT_METHODS = {"keys", "items", "values", "get", "copy", "pop", "update", "setdefault", "__getitem__"}
# Names that say "how many characters to generate" (GENERATION_LENGTH, gen_len, num_chars...).
LENGTH_NAME = re.compile(r"gen|(num|n|max)_?(of_)?(chars?|characters|letters|steps)\b|"
                         r"(text|output|sample|predict(ion)?)_?len", re.I)
NOT_LENGTH = re.compile(r"hist|embed|hidden|batch|epoch|vocab|seq_?len|layer|dim", re.I)

Source = tuple[str, ast.Module, list[str]]  # (where prefix, parsed code, lines), as codescan.sources gives


@dataclass(frozen=True)
class Layout:
    kind: str  # state_dict | wrapped | model | either
    key: str | None = None  # for "wrapped": the key the weights are under
    extras: tuple[str, ...] = ()  # other keys the code reads (e.g. 'vocabulary')
    why: str = ""  # in words, with the place in the student's code

    def describe(self) -> str:
        extra = f", with {', '.join(map(repr, self.extras))}" if self.extras else ""
        return {"state_dict": f"a bare state_dict (torch.save(model.state_dict()){extra})",
                "wrapped": f"a dict with the state_dict under {self.key!r}{extra}",
                "model": "a whole saved model (torch.save(model))",
                "either": "a state_dict that can also be read as checkpoint['model'] (or 'state_dict') "
                          "or used as the model itself"}[self.kind]


@dataclass(frozen=True)
class Knob:
    kind: str  # global | flag | dict | param
    name: str
    key: str | None = None  # for "dict": the key in the module-level dict `name`


@dataclass
class Handoff:
    """Plain data for the worker's request and for the report."""

    function: str
    layout: Layout = field(default_factory=lambda: Layout("either"))
    call: dict | None = None  # {"args": [...], "keywords": {...}, "star": name, "where": ...}
    knobs: list[Knob] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"function": self.function, "layout": asdict(self.layout), "call": self.call,
                "knobs": [asdict(k) for k in self.knobs], "notes": list(self.notes)}


def given_text(handoff: dict | None) -> str:
    """'The grader gave it a bare state_dict (...): analyze_model_kernels reads it that way (...).'"""
    handoff = handoff or {}
    layout = Layout(**handoff["layout"]) if handoff.get("layout") else Layout("either")
    return f"The grader gave it {layout.describe()}" + (f": {layout.why}." if layout.why else ".")


def read_handoff(code: list[Source], function: str, checkpoint_argument: bool = False,
                 lengths: bool = False) -> Handoff:
    """How `function` takes its checkpoint, how the submission calls it and (`lengths`) what
    sets how much text it writes.

    `checkpoint_argument`: the checkpoint is passed in (the 2024 writer's `state_dict`) when
    the function has a parameter for it, rather than loaded from a path."""
    handoff = Handoff(function)
    found = _definitions(code)
    if function not in found:
        return handoff
    prefix, node, lines = found[function]
    scope = [(prefix, node, lines)] + [found[name] for name in _called(node) if name in found and name != function]
    params = [a.arg for a in node.args.posonlyargs + node.args.args]
    seeds = {params[0]} if checkpoint_argument and params else set()
    reader = _reading(scope, seeds)
    saver = _saving(code)
    who = f"{function}"
    if reader is not None:
        layout, evidence = reader
        handoff.layout = Layout(layout.kind, layout.key, layout.extras, f"{who} reads it that way ({evidence})")
        if saver is not None and saver[0].kind != layout.kind and layout.kind != "either":
            handoff.notes.append(f"The training code saves {saver[0].describe()} ({saver[1]}), but {who} reads "
                                 f"{layout.describe()}; graded with what {who} reads.")
    elif saver is not None:
        layout, evidence = saver
        extras = tuple(sorted(set(layout.extras)))
        handoff.layout = Layout(layout.kind, layout.key, extras,
                                f"{who} does not show it, and the submission's training code saves it that way ({evidence})")
    else:
        handoff.layout = Layout("either", why=f"neither {who} nor the training code shows how the checkpoint is laid out")
    if lengths:
        handoff.call = own_call(code, function)
        handoff.knobs = _knobs(scope, params, handoff.call)
    return handoff


# ------------------------------------------------------------------ definitions and calls

def _definitions(code: list[Source]) -> dict[str, tuple[str, ast.FunctionDef, list[str]]]:
    """Module-level functions by name; a later definition (a later cell) wins, as in Python."""
    out = {}
    for prefix, tree, lines in code:
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                out[node.name] = (prefix, node, lines)
    return out


def _called(node: ast.AST) -> list[str]:
    return list(dict.fromkeys(n.func.id for n in ast.walk(node) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)))


def _is_torch_load(node: ast.AST) -> bool:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "load" \
        and isinstance(node.func.value, ast.Name) and node.func.value.id in ("torch", "th")


def _is_torch_save(node: ast.AST) -> bool:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "save" \
        and isinstance(node.func.value, ast.Name) and node.func.value.id in ("torch", "th") and bool(node.args)



# ------------------------------------------------------------------ reading

def _key_kind(key: ast.AST) -> tuple[str, str | None]:
    """What indexing a checkpoint with `key` says: ('state_dict', None) for a layer's name or a
    computed key, ('wrapped', k) for a wrapper key, ('extra', k) for another constant."""
    if isinstance(key, ast.Constant) and isinstance(key.value, str):
        value = key.value
        if "." in value or value.endswith(("weight", "bias")):
            return "state_dict", None
        if value in WRAPPER_KEYS or value.endswith(("state_dict", "_state", "_weights")):
            return "wrapped", value
        return "extra", value
    if isinstance(key, ast.Constant):
        return "extra", None
    return "state_dict", None


def _reading(scope: list, seeds: set[str]):
    """(Layout, evidence) from how the code treats what torch.load returns, or None."""
    wrapped, flat, whole, extras = [], [], [], []
    for prefix, func, lines in scope:
        names = set(seeds) if func is scope[0][1] else set()
        for node in ast.walk(func):  # names bound to a loaded checkpoint, and aliases of them
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                value = node.value
                if _is_torch_load(value) or (isinstance(value, ast.Name) and value.id in names):
                    names.add(node.targets[0].id)
        say = lambda n: quote(prefix, lines, n)  # noqa: E731
        for node in ast.walk(func):
            target = None
            if isinstance(node, ast.Subscript):
                target, key = node.value, node.slice
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get" \
                    and node.args:
                target, key = node.func.value, node.args[0]
            if target is not None and (_is_torch_load(target) or (isinstance(target, ast.Name) and target.id in names)):
                kind, value = _key_kind(key)
                {"state_dict": flat, "wrapped": wrapped, "extra": extras}[kind].append((value, say(node)))
                continue
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "load_state_dict" \
                    and node.args:
                arg = node.args[0]
                if _is_torch_load(arg) or (isinstance(arg, ast.Name) and arg.id in names):
                    flat.append((None, say(node)))
                continue
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in names:
                (flat if node.attr in DICT_METHODS else whole).append((node.attr, say(node)))
            elif isinstance(node, ast.For) and isinstance(node.iter, ast.Name) and node.iter.id in names:
                flat.append((None, say(node)))
    extra_keys = tuple(dict.fromkeys(k for k, _ in extras if k))
    if wrapped:
        return Layout("wrapped", wrapped[0][0], extra_keys), wrapped[0][1]
    if flat and whole:
        return Layout("either", extras=extra_keys), f"{flat[0][1]}; {whole[0][1]}"
    if flat:
        return Layout("state_dict", extras=extra_keys), flat[0][1]
    if whole:
        return Layout("model"), whole[0][1]
    return None


# ------------------------------------------------------------------ saving

def _assignments(tree: ast.AST) -> dict[str, list[ast.AST]]:
    """name -> the values assigned to it (plain assignments; unpacking gives no value)."""
    out: dict[str, list[ast.AST]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    out.setdefault(target.id, []).append(node.value)
                else:
                    for name in _bound(target):
                        out.setdefault(name, [])
        elif isinstance(node, (ast.For, ast.comprehension, ast.AugAssign, ast.AnnAssign, ast.NamedExpr)):
            for name in _bound(node.target):
                out.setdefault(name, [])
        elif isinstance(node, ast.withitem) and node.optional_vars is not None:
            for name in _bound(node.optional_vars):
                out.setdefault(name, [])
    return out


def _bound(target: ast.AST) -> list[str]:
    return [n.id for n in ast.walk(target) if isinstance(n, ast.Name)]


def _is_weights(expr: ast.AST, env: dict, depth: int = 0) -> bool:
    """model.state_dict(), a copy of it, a dict built from it, or a name bound to one."""
    if depth > 4:
        return False
    if isinstance(expr, ast.Call):
        if isinstance(expr.func, ast.Attribute) and expr.func.attr == "state_dict":
            return True
        if _name_of(expr.func) in ("deepcopy", "copy", "OrderedDict", "dict") and expr.args:
            return _is_weights(expr.args[0], env, depth + 1)
    if isinstance(expr, ast.DictComp):
        return any(_is_weights(g.iter, env, depth + 1) or _mentions_state_dict(g.iter) for g in expr.generators)
    if isinstance(expr, ast.Name):
        return any(_is_weights(v, env, depth + 1) for v in env.get(expr.id, []))
    return False


def _mentions_state_dict(expr: ast.AST) -> bool:
    return any(isinstance(n, ast.Attribute) and n.attr == "state_dict" for n in ast.walk(expr))


def _name_of(func: ast.AST) -> str:
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""


def _saved_layout(obj: ast.AST, env: dict, classes: set[str], depth: int = 0) -> Layout | None:
    if depth > 4:
        return None
    if isinstance(obj, ast.Dict):
        keys = [k.value for k in obj.keys if isinstance(k, ast.Constant) and isinstance(k.value, str)]
        for k, v in zip(obj.keys, obj.values):
            if isinstance(k, ast.Constant) and isinstance(k.value, str) and _is_weights(v, env):
                return Layout("wrapped", k.value, tuple(x for x in keys if x != k.value))
        return None
    if _is_weights(obj, env):
        return Layout("state_dict")
    if isinstance(obj, ast.Call) and (_name_of(obj.func) in classes or
                                      (_name_of(obj.func) == "deepcopy" and obj.args and
                                       _saved_layout(obj.args[0], env, classes, depth + 1) == Layout("model"))):
        return Layout("model")
    if isinstance(obj, ast.Name):
        for value in reversed(env.get(obj.id, [])):
            layout = _saved_layout(value, env, classes, depth + 1)
            if layout is not None:
                return layout
        if not env.get(obj.id) and obj.id.lower() in ("model", "net", "network"):
            return Layout("model")
    return None


def _saving(code: list[Source]):
    """(Layout, evidence) of the checkpoint the submission's training code saves, or None.
    A save whose path says 'best' wins; else the last one."""
    classes = {n.name for _, tree, _ in code for n in tree.body if isinstance(n, ast.ClassDef)}
    found = []
    for prefix, tree, lines in code:
        scopes = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))] + [tree]
        seen: set[int] = set()
        for scope in scopes:
            env = _assignments(scope)
            for node in ast.walk(scope):
                if _is_torch_save(node) and id(node) not in seen:
                    seen.add(id(node))
                    layout = _saved_layout(node.args[0], env, classes)
                    if layout is not None:
                        best = any(isinstance(n, ast.Constant) and "best" in str(n.value).lower()
                                   for a in node.args[1:2] for n in ast.walk(a))
                        found.append((best, layout, quote(prefix, lines, node)))
    if not found:
        return None
    best = [f for f in found if f[0]] or found
    return best[-1][1], best[-1][2]


# ------------------------------------------------------------------ how much work it does

BUILTINS = frozenset(dir(builtins))


def _operands(expr: ast.AST):
    """The names, FLAGS attributes and subscripts in `expr` that are values, not the
    functions called or what len() measures (len(start_string) is not a knob)."""
    stack = [expr]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Call):
            if _name_of(node.func) != "len":
                stack += list(node.args) + [k.value for k in node.keywords]
            continue
        yield node
        if not isinstance(node, (ast.Attribute, ast.Subscript)):
            stack += list(ast.iter_child_nodes(node))


def _knobs(scope: list, params: list[str], call: dict | None) -> list[Knob]:
    """The names that bound the generation loop, or whose names say they set its length."""
    knobs: list[Knob] = []

    def add(knob: Knob):
        if knob not in knobs:
            knobs.append(knob)

    def consider(expr: ast.AST, in_loop: bool, local: set[str], own_params: set[str]):
        for node in _operands(expr):
            if isinstance(node, ast.Name) and (in_loop or LENGTH_NAME.search(node.id)) and not NOT_LENGTH.search(node.id):
                if node.id in own_params:
                    add(Knob("param", node.id))
                elif node.id not in local and node.id not in BUILTINS:
                    add(Knob("global", node.id))
            elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "FLAGS" \
                    and (in_loop or LENGTH_NAME.search(node.attr)) and not NOT_LENGTH.search(node.attr):
                add(Knob("flag", node.attr))
            elif isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) \
                    and isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, str) \
                    and (in_loop or LENGTH_NAME.search(node.slice.value)) and not NOT_LENGTH.search(node.slice.value):
                add(Knob("dict", node.value.id, node.slice.value))

    for index, (_, func, _) in enumerate(scope):
        own = {a.arg for a in func.args.posonlyargs + func.args.args + func.args.kwonlyargs}
        # A helper's parameters are set by its caller, whose arguments are considered there.
        local = (set(_assignments(func)) - own) if index == 0 else set(_assignments(func)) | own
        for node in ast.walk(func):
            if isinstance(node, ast.For) and isinstance(node.iter, ast.Call) and _name_of(node.iter.func) == "range":
                bound = node.iter.args[-1] if len(node.iter.args) <= 2 else node.iter.args[1]
                consider(bound, True, local, own if index == 0 else set())
            elif isinstance(node, ast.While):
                consider(node.test, True, local, own if index == 0 else set())
            elif isinstance(node, ast.Call) and index == 0:
                for arg in list(node.args) + [k.value for k in node.keywords]:
                    consider(arg, False, local, own)
    # A length parameter of the function counts too, even when the loop is in a helper.
    for name in params + [a.arg for a in scope[0][1].args.kwonlyargs]:
        if LENGTH_NAME.search(name) and not NOT_LENGTH.search(name):
            add(Knob("param", name))
    if call and call.get("star"):
        for knob in list(knobs):
            if knob.kind == "param":
                add(Knob("dict", call["star"], knob.name))
    return knobs
