"""Limits, the names of what is left out, and the helpers the generated module calls."""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from grader.results import Note


_MAX_LISTED_CELLS = 10
_MAX_CELL_WARNINGS = 5
_MAX_DUPLICATE_WARNINGS = 5
_MAX_LISTED_NAMES = 6
_MAX_RECORDED_TEXT = 200
_MAX_STEM_CHARS = 100

# Cell magics whose body is ordinary Python that defines names in the notebook.
_PYTHON_CELL_MAGICS = frozenset({"time", "timeit", "capture", "prun"})
# Colab runs these without a leading % ("automagic"); the shell-like ones read as shell commands.
_SHELL_AUTOMAGICS = frozenset({"pip", "conda", "cd", "ls", "pwd", "mkdir", "rm", "rmdir", "cp", "mv", "cat"})
_OTHER_AUTOMAGICS = frozenset({"load_ext", "reload_ext", "matplotlib", "run", "time", "timeit", "tensorboard",
                               "env", "config", "who", "whos", "history", "autoreload", "sx", "system"})

# Kinds of left-out code, in the order the summary note lists them.
_CALLS = "training and other calls"
_ACTION_ASSIGNMENTS = "assignments that train, load data or do I/O"
_LOOPS = "loops"
_WITH = "with blocks"
_MAIN = "`if __name__ == '__main__':` blocks"
_OTHER = "asserts, raises and other statements"
_SHELL = "shell commands"
_MAGIC = "IPython magics"
_HELP = ""  # `obj?` lines are replaced silently: leaving them out loses nothing
_KIND_ORDER = (_CALLS, _ACTION_ASSIGNMENTS, _LOOPS, _WITH, _MAIN, _OTHER, _SHELL, _MAGIC)

# Final names of calls that do I/O, load data, train, plot or have other side effects.
_ACTION_NAMES = frozenset({
    "open", "load", "read", "read_csv", "read_json", "read_table", "read_excel", "read_parquet", "read_pickle",
    "loadtxt", "genfromtxt", "fromfile", "imread", "imsave", "urlretrieve", "urlopen", "download", "mount",
    "fit", "main", "run", "system", "popen", "Popen", "call", "check_call", "check_output", "sleep", "input",
    "show", "savefig", "imshow", "plot", "figure", "subplots", "subplot", "scatter", "hist", "backward", "step",
    "save", "dump", "init", "login", "SummaryWriter",
})
# Lower-case names starting with one of these words (train, train_model, trainModel) are actions.
# CapWords names are constructors, which are allowed (TrainConfig).
_ACTION_PREFIXES = ("train", "training", "evaluate", "run", "load", "download", "fit", "plot", "save", "show", "read")
_ACTION_SUFFIXES = ("dataset", "loader", "download")  # compared lower-cased: TensorDataset, get_loader
# `get`/`post` are only web requests on a web client or with a URL; dict.get is everywhere in configs.
_WEB_METHODS = frozenset({"get", "post", "put", "patch", "delete", "head", "request"})
_WEB_CLIENTS = frozenset({"requests", "httpx", "urllib3", "session", "http"})
# Generated module names must not shadow what the student's code imports.
_SHADOWED = frozenset({"torch", "torchvision", "torchaudio", "torchtext", "numpy", "matplotlib", "absl", "skimage",
                       "seaborn", "tqdm", "tensorboard", "PIL", "pandas", "sklearn", "scipy", "google", "IPython",
                       "grader", "dlgrade"})

_ASSIGN_FROM_IPYTHON = re.compile(r"[A-Za-z_][\w.]*(\s*,\s*[A-Za-z_][\w.]*)*\s*=\s*[!%]")
_HELP_LINE = re.compile(r"\?.*|[\w.\[\]()'\"%*]+\?\??")
_AUTOMAGIC_LINE = re.compile(r"([A-Za-z_]\w*)[ \t]+[^\s=:(\[{,]")
_CELL_MAGIC = re.compile(r"%%(\w*)")

_HELPERS = '''\
__dlgrade_skipped__ = []


def _dlgrade_skip(error, cell, line, code):
    """Record a notebook statement that failed here, so the rest of the notebook still loads."""
    try:
        message = str(error)
    except BaseException:
        message = "(the error could not be shown)"
    __dlgrade_skipped__.append({"cell": cell, "line": line, "code": code,
                                "type": type(error).__name__, "message": message[:500]})


def _dlgrade_condition(test, cell, line, code):
    """Evaluate an if-condition; one that fails counts as false and is recorded."""
    try:
        return bool(test())
    except BaseException as error:
        _dlgrade_skip(error, cell, line, code)
        return False
'''

_Line = tuple[str, int]  # generated text, line in the cell it came from (0: added by the converter)


class NotebookError(Exception):
    """A notebook that cannot be converted at all; the message is one line for the student."""


@dataclass
class ConvertedNotebook:
    notebook: str  # relative path of the .ipynb within the staged root
    module: str  # relative path of the generated .py (beside the notebook)
    line_map: list[tuple[int, int]]  # generated line i+1 -> (cell number, line in that cell); (0, 0) if added
    notes: list[Note]  # what was left out and why, duplicate definitions, cells that could not be taken
    definitions: dict[str, list[int]]  # top-level class/def name -> cell numbers defining it, in order
    left_out: dict[str, int] = field(default_factory=dict)  # name whose assignment was not run -> its cell
