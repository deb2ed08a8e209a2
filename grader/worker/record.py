"""Record one call of a model as a graph of ATen operators, run on real tensors.

torch.export traces with symbolic stand-ins for every tensor, so a forward that reads a
value into Python (`int(lengths.max())`, `for n in lengths`) stops it, and the handout's
own sentiment model does both. The sequence models' checks call them at review lengths
the grader fixes, so such reads may be taken as they come as long as they read nothing
else. This recorder runs the call on real tensors under a dispatch mode and writes down
every operator, with the Python values it read baked in. A read of the tokens, a state or
a weight stops it (the graph would hold this batch's answer, not the model), and so does
an operator that is not an ATen one. The graph has the JSON form of
grader.worker.export.encode_program, and grader.verifier checks and runs it the same way.
"""
from __future__ import annotations

import contextlib
import functools
import sys

import torch
import torch.nn as nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from grader.worker import failures
from grader.worker.export import Unsupported, _target, _value

MAX_NODES = 20_000
MAX_CONSTANT_BYTES = 64 << 20
WEIGHTS = "the model's weights"
# How each way of reading a value into Python looks in the student's code.
_HOW = {"_local_scalar_dense": ".item(), int() or float()", "is_nonzero": "an if on a tensor", "equal": "torch.equal",
        "tolist": ".tolist()", "numpy": ".numpy()", "__array__": "numpy"}


def record(module: nn.Module, args: tuple, names: tuple[str, ...], fixed: frozenset[int], items: list,
           prefix: str) -> dict:
    """module(*args) once, as a graph: {"inputs", "nodes", "outputs", "returns"}.

    `names` say what each argument is, for messages ("the review tokens"); the arguments
    in `fixed` are ones the verifier passes with the same values, so forward may read
    them. Constants the call makes from outside torch are appended to `items` as
    (prefix/name, tensor, False), for the artefact's weights file."""
    known: dict[int, tuple[str, frozenset]] = {}
    inputs = []
    for kind, tensors in (("parameter", module.named_parameters()), ("buffer", module.named_buffers())):
        for target, tensor in tensors:
            name = f"w{len(inputs)}"
            inputs.append({"name": name, "kind": kind, "target": target})
            known[id(tensor)] = (name, frozenset({WEIGHTS}))
    for i, arg in enumerate(args):
        for j, tensor in enumerate(_leaves(arg)):
            name = f"arg{i}_{j}"
            inputs.append({"name": name, "kind": "input", "target": None})
            known[id(tensor)] = (name, frozenset({"fixed"} if i in fixed else {names[i]}))
    stack: list[str] = []
    recorder = _Recorder(known, stack, items, prefix)
    with _module_names(module, stack), _reads_watched(recorder), recorder:
        out = module(*args)
    if recorder.refused is not None:  # raised inside forward, whatever forward did with it
        raise recorder.refused
    returns = _returns(out)
    outputs = [{"name": recorder.ref(t)[0], "kind": "user_output"} for t in tree_flatten(out)[0]]
    return {"inputs": inputs + recorder.constants, "nodes": recorder.nodes, "outputs": outputs, "returns": returns}


def _leaves(arg) -> list[torch.Tensor]:
    if arg is None:
        return []
    if isinstance(arg, torch.Tensor):
        return [arg]
    if isinstance(arg, (tuple, list)) and all(isinstance(a, torch.Tensor) for a in arg):
        return list(arg)
    raise Unsupported(f"an argument is a {type(arg).__name__}, which the grader cannot hand over")


def _returns(out):
    """What forward returned, as the verifier rebuilds it: "tensor", or {"tuple"|"list": [...]}."""
    if isinstance(out, torch.Tensor):
        return "tensor"
    if isinstance(out, (tuple, list)) and 0 < len(out) <= 3:
        inner = []
        for item in out:
            if isinstance(item, torch.Tensor):
                inner.append("tensor")
            elif isinstance(item, (tuple, list)) and 0 < len(item) <= 2 and all(isinstance(t, torch.Tensor) for t in item):
                inner.append({type(item).__name__: ["tensor"] * len(item)})
            else:
                break
        else:
            return {type(out).__name__: inner}
    raise Unsupported(f"forward returned a {type(out).__name__} holding something other than tensors, which the "
                      "grader cannot check outside your process")


@functools.cache
def _runnable(func) -> str:
    """The operator's name, if the verifier runs it (else the worker measures instead)."""
    from grader.verifier.artefact import ArtefactError
    from grader.verifier.graph import _resolve

    target = _target(func)
    try:
        _resolve(target)
    except ArtefactError:
        raise Unsupported(f"forward uses {target.rsplit('.', 1)[0]}, which the grader does not run outside your "
                          "process") from None
    return target


class _Recorder(TorchDispatchMode):
    def __init__(self, known: dict, stack: list[str], items: list, prefix: str):
        super().__init__()
        self.known = known  # id(tensor) -> (its name in the graph, what its values depend on)
        self.alive: list = []  # every tensor seen, held so that no id is reused while recording
        self.nodes: list[dict] = []
        self.constants: list[dict] = []
        self.stack = stack
        self.items = items
        self.prefix = prefix
        self.constant_bytes = 0
        self.refused: Unsupported | None = None

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if func is torch.ops.aten.lift_fresh.default and id(args[0]) not in self.known:
            self.constant(out)  # torch.tensor(...) in forward: its values are the call's constant
            return out
        found = [self.ref(t)[1] for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor)]
        depends = frozenset().union(*found)
        if not any(isinstance(o, torch.Tensor) for o in tree_flatten(out)[0]):
            self.read(depends, f"{func.__name__.split('.')[0]}")  # a value handed to Python: baked in
            return out
        if len(self.nodes) >= MAX_NODES:
            self.refuse(f"forward runs more than {MAX_NODES:,} operations, more than the grader checks")
        name, origin = f"n{len(self.nodes)}", self.origin()
        try:
            node = {"name": name, "target": _runnable(func), "args": self.encode(list(args)),
                    "kwargs": {k: self.encode(v) for k, v in kwargs.items()}, **origin}
        except Unsupported as exc:
            self.refuse(str(exc))
        self.nodes.append(node)
        if isinstance(out, torch.Tensor):
            self.bind(out, name, depends)
        else:
            for i, item in enumerate(out):
                if isinstance(item, torch.Tensor):
                    self.nodes.append({"name": f"{name}_{i}", "target": "getitem", "args": [{"ref": name}, i],
                                       "kwargs": {}, **origin})
                    self.bind(item, f"{name}_{i}", depends)
        return out

    def read(self, depends: frozenset, how: str) -> None:
        loose = sorted(d for d in depends if d != "fixed")
        if loose:
            self.refuse(f"forward reads the values of {loose[0]} into Python ({_HOW.get(how, how)}), so a graph of this call "
                        "would hold only this batch's answer")

    def refuse(self, why: str):
        """Stop recording; the first reason stands, with the student's line (`where`)."""
        if self.refused is None:
            self.refused = Unsupported(why)
            self.refused.where = self.line()
        raise self.refused

    def bind(self, tensor: torch.Tensor, name: str, depends: frozenset) -> None:
        self.known[id(tensor)] = (name, depends)
        self.alive.append(tensor)

    def ref(self, tensor: torch.Tensor) -> tuple[str, frozenset]:
        found = self.known.get(id(tensor))
        return found if found is not None else self.constant(tensor)

    def constant(self, tensor: torch.Tensor) -> tuple[str, frozenset]:
        """A tensor made outside the recorded operators (an attribute, numpy): its values travel."""
        self.constant_bytes += tensor.numel() * tensor.element_size()
        if self.constant_bytes > MAX_CONSTANT_BYTES:
            self.refuse("forward uses more constant tensors than the grader hands over")
        name = f"c{len(self.constants)}"
        target = f"{self.prefix}/{name}"
        self.constants.append({"name": name, "kind": "constant", "target": target})
        with torch.utils._python_dispatch._disable_current_modes():
            self.items.append((target, tensor.detach().clone(), False))
        self.bind(tensor, name, frozenset())
        return self.known[id(tensor)]

    def encode(self, value):
        if isinstance(value, torch.Tensor):
            return {"ref": self.ref(value)[0]}
        if isinstance(value, (list, tuple)):
            return [self.encode(v) for v in value]
        return _value(value)

    def origin(self) -> dict:
        return {"module": (self.stack[-1] if self.stack else "")[:200], "module_type": "", "where": self.line()}

    def line(self) -> str:
        """The student's innermost line on the stack, as "file:line"."""
        frame = sys._getframe(1)
        while frame is not None:
            rel = failures._relative(frame.f_code.co_filename)
            if rel:
                return f"{rel}:{frame.f_lineno}"
            frame = frame.f_back
        return ""


@contextlib.contextmanager
def _module_names(root: nn.Module, stack: list[str]):
    """Which of the model's modules each operator runs in, for messages."""
    names = {id(m): n for n, m in root.named_modules()}
    register = nn.modules.module

    def enter(module, args) -> None:
        stack.append(names.get(id(module), ""))

    def leave(module, args, out) -> None:  # a hook's return value would replace the output
        if stack:
            stack.pop()

    pre = register.register_module_forward_pre_hook(enter)
    post = register.register_module_forward_hook(leave)
    try:
        yield
    finally:
        pre.remove()
        post.remove()


@contextlib.contextmanager
def _reads_watched(recorder: _Recorder):
    """tolist() and numpy() hand values to Python without an operator: watch them too."""
    originals = {name: getattr(torch.Tensor, name) for name in ("tolist", "numpy", "__array__")}

    def watched(name):
        original = originals[name]

        def read(self, *args, **kwargs):
            if id(self) in recorder.known:
                recorder.read(recorder.known[id(self)][1], name)
            return original(self, *args, **kwargs)
        return read

    for name in originals:
        setattr(torch.Tensor, name, watched(name))
    try:
        yield
    finally:
        for name, original in originals.items():
            setattr(torch.Tensor, name, original)
