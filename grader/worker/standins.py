"""Stand-ins for third-party modules the grading environment lacks.

Submissions import cv2, thop or a course's helper package to load images, count or plot,
which the grader never runs; the failing import would lose every class after it. So an
import statement in the student's own code, of a module no real finder found, gets a
stand-in module. While the submission is imported, using a stand-in silently gives another
(`sns.set()` at top level); after `strict()`, it raises NotInstalledError naming the module.
"""
from __future__ import annotations

import ast
import dis
import importlib.abc
import importlib.machinery
import inspect
import os
import sys
import types
from pathlib import Path

import torch.nn as nn

from . import compat, failures

# Never stood in for: what grading itself needs, and the standard library.
PROTECTED = frozenset({"torch", "torchvision", "numpy", "grader"}) | frozenset(sys.stdlib_module_names)
PYPI = {"sklearn": "scikit-learn", "cv2": "opencv-python", "PIL": "pillow", "skimage": "scikit-image",
        "yaml": "pyyaml", "bs4": "beautifulsoup4"}
# Names courses and students give their own helper packages: missing, they were not submitted.
LOCAL = frozenset({"tools", "utils", "util", "helpers", "helper", "common", "data", "dataset", "datasets",
                   "model", "models", "config", "lib", "src"})
# Handlers that make a failed import the student's own fallback, which a stand-in would skip.
CATCHING = frozenset({"ImportError", "ModuleNotFoundError", "Exception", "BaseException"})
_IMPORTLIB = os.path.dirname(importlib.__file__) + os.sep
_IMPORT_NAME = dis.opmap["IMPORT_NAME"]

_state = {"strict": False}
_noted: set[str] = set()  # missing modules already reported
_guarded: dict[str, list[tuple[int, int]]] = {}  # file -> line ranges of try bodies that catch ImportError


class NotInstalledError(ModuleNotFoundError):
    """Student code used something from a module the grading environment lacks."""


def _missing(module: str) -> tuple[str, str]:
    """('scikit-learn (sklearn)', 'not installed where grading runs') for the module no finder found."""
    return (f"{PYPI[module]} ({module})" if module in PYPI else module,
            "not in the submission" if module in LOCAL else "not installed where grading runs")


def _fail(what: str, module: str) -> NotInstalledError:
    package, why = _missing(module)
    return NotInstalledError(f"{what} needs {package}, which is {why}", name=module)


class StandIn(types.ModuleType):
    """A missing module, and any name taken from it: a module object, so that `import x.y`
    and `from x import y` treat both alike."""

    def __init__(self, path: str, missing: str):
        super().__init__(path)
        self._missing = missing  # the module no finder found: sklearn, google.colab.patches

    def __repr__(self):
        return f"<stand-in for {self.__name__}>"

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)  # protocols (copy, pickle, inspect) must see a plain object
        return StandIn(f"{self.__name__}.{name}", self._missing)

    def _use(self, what: str) -> StandIn:
        if _state["strict"]:
            raise _fail(what, self._missing)
        return StandIn(what, self._missing)

    def __call__(self, *args, **kwargs):
        if not _state["strict"] and len(args) == 1 and not kwargs and \
                (inspect.isfunction(args[0]) or inspect.isclass(args[0])):
            return args[0]  # a decorator: keep the student's own function or class
        return self._use(self.__name__)

    def __getitem__(self, key):
        return self._use(f"{self.__name__}[...]")

    def __iter__(self):
        self._use(f"iterating over {self.__name__}")
        return iter(())

    def __instancecheck__(self, obj):  # isinstance(x, PIL.Image.Image): a missing module made nothing
        return False

    def __mro_entries__(self, bases):
        return (_base_class(self.__name__, self._missing, bases),)


def _base_class(path: str, missing: str, bases: tuple) -> type:
    """In place of `path`, often a model base (pl.LightningModule): an nn.Module, so that the grader
    tries the student's class and says why it fails; plain if another base is one (the MRO would conflict)."""
    parent = object if any(isinstance(b, type) and issubclass(b, nn.Module) for b in bases) else nn.Module

    def __new__(cls, *args, **kwargs):
        if _state["strict"]:
            raise _fail(f"{cls.__name__} (a subclass of {path})", missing)
        return parent.__new__(cls)

    def __init__(self, *args, **kwargs):
        parent.__init__(self)  # the arguments were meant for the missing class

    return type(path.rsplit(".", 1)[-1], (parent,), {"__new__": __new__, "__init__": __init__,
                                                      "__module__": path.rpartition(".")[0] or path})


class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, fullname, path=None, target=None):
        if fullname.split(".")[0] in PROTECTED:
            return None
        parent = sys.modules.get(fullname.rpartition(".")[0])
        if isinstance(parent, StandIn):  # x.y of a stand-in x
            return importlib.machinery.ModuleSpec(fullname, self, loader_state=parent._missing, is_package=True)
        where = _student_import()
        if where is None:
            return None
        if fullname not in _noted:
            _noted.add(fullname)
            package, why = _missing(fullname)
            compat.HAZARDS.add(f"{package} is {why} (imported at {where}); a stand-in let the rest of the file "
                               f"load, and anything that uses {fullname} fails with a message naming it.")
        return importlib.machinery.ModuleSpec(fullname, self, loader_state=fullname, is_package=True)

    def create_module(self, spec):
        return StandIn(spec.name, spec.loader_state)

    def exec_module(self, module):
        pass


def _student_import() -> str | None:
    """"file.py:LINE" of the import statement when the student's own code runs it outside a
    try that catches ImportError, else None (a library's optional import, a fallback)."""
    frame = sys._getframe(1)
    while frame is not None and (frame.f_code.co_filename.startswith(("<frozen importlib", _IMPORTLIB))
                                 or frame.f_code.co_filename == __file__):
        frame = frame.f_back
    if frame is None or frame.f_code.co_code[frame.f_lasti] != _IMPORT_NAME:
        return None  # find_spec() or import_module(): the code asks whether it exists
    filename, line = frame.f_code.co_filename, frame.f_lineno
    rel = failures._relative(filename)
    if rel is None or any(first <= line <= last for first, last in _try_bodies(filename)):
        return None
    return f"{rel}:{line}"  # the scoring process rewrites this to a notebook's cell and line


def _try_bodies(filename: str) -> list[tuple[int, int]]:
    if filename not in _guarded:
        try:
            tree = ast.parse(Path(filename).read_bytes())
        except (OSError, SyntaxError, ValueError, RecursionError, MemoryError):
            tree = ast.Module(body=[], type_ignores=[])
        _guarded[filename] = [(node.body[0].lineno, node.body[-1].end_lineno) for node in ast.walk(tree)
                              if isinstance(node, (ast.Try, ast.TryStar)) and any(map(_catches, node.handlers))]
    return _guarded[filename]


def _catches(handler: ast.ExceptHandler) -> bool:
    if handler.name == "_dlgrade_error":  # the notebook converter's own wrapper around a kept line
        return False
    kinds = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    return handler.type is None or any(getattr(k, "id", getattr(k, "attr", None)) in CATCHING for k in kinds)


def install() -> None:
    """Before the student's modules are imported; last, so that a real package always wins."""
    _state["strict"] = False
    if not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.append(_Finder())


def strict() -> None:
    """After the import phase. Stand-in modules leave sys.modules: a library that looks
    for one later finds it missing, as it is."""
    _state["strict"] = True
    for name in [n for n, m in sys.modules.items() if isinstance(m, StandIn)]:
        del sys.modules[name]
