"""Make real submissions importable and runnable in the sandbox without changing what they compute.

Students write for Colab: a GPU, a display, google.colab, absl flags parsed by app.run.
None of that exists here, and none of it is what the homework grades.
"""
from __future__ import annotations

import ctypes
import re
import sys
from pathlib import Path

import torch
from torch.overrides import TorchFunctionMode

SHIMS = Path(__file__).resolve().parent / "shims"


class Hazards:
    """What the worker had to work around, reported to the student as notes."""

    def __init__(self):
        self.notes: list[str] = []

    def add(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)


HAZARDS = Hazards()


def prepare_imports() -> None:
    """Before the student's module is imported."""
    import matplotlib

    matplotlib.use("Agg")
    original_use = matplotlib.use

    def use(backend, *args, **kwargs):
        if str(backend).lower() != "agg":
            HAZARDS.add(f"matplotlib.use({backend!r}) was ignored: grading has no display, plots use Agg.")
            return None
        return original_use(backend, *args, **kwargs)

    matplotlib.use = use
    if str(SHIMS) not in sys.path:
        sys.path.append(str(SHIMS))  # last, so a real package always wins


def tolerate_duplicate_flags() -> None:
    """The 2020 RNN scripts each define the same absl flags (learning_rate, hidden_size...),
    which absl refuses once two of them are imported into one process. Let a later
    definition replace the earlier one, as if that script were run on its own."""
    try:
        from absl.flags import _exceptions, _flagvalues
    except ImportError:
        return
    cls = _flagvalues.FlagValues
    if getattr(cls, "_dlgrade_tolerant", False):
        return
    original = cls.__setitem__

    def setitem(self, name, flag):
        try:
            original(self, name, flag)
        except _exceptions.DuplicateFlagError:
            delattr(self, name)
            original(self, name, flag)

    cls.__setitem__ = setitem
    cls._dlgrade_tolerant = True


def parse_absl_flags(program: str) -> None:
    """Modules read FLAGS after app.run parsed them; parse the defaults so that still works."""
    absl_flags = sys.modules.get("absl.flags")
    if absl_flags is None:
        return
    flags = absl_flags.FLAGS
    if not flags.is_parsed():
        try:
            flags([program])
        except Exception as exc:  # e.g. a required flag: report, grade the rest
            HAZARDS.add(f"absl flags could not be parsed with their defaults: {exc}")


def _device_type(value) -> str | None:
    if isinstance(value, torch.device):
        return value.type
    if isinstance(value, str):
        return value.split(":")[0]
    if isinstance(value, int) and not isinstance(value, bool):
        return "cuda"
    return None


class DeviceRedirect(TorchFunctionMode):
    """Send tensors the student places on `sources` to `target` instead.

    Used twice: with target "meta" while a model is built and traced without allocating
    its weights, and with target "cpu" when a submission hard-codes CUDA on a machine
    without a GPU.
    """

    def __init__(self, target: str, sources: set[str], note: str | None = None):
        super().__init__()
        self.target = torch.device(target)
        self.sources = sources
        self.note = note

    def _redirect(self, value):
        if _device_type(value) in self.sources:
            if self.note:
                HAZARDS.add(self.note)
            return self.target
        return value

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = dict(kwargs or {})
        name = getattr(func, "__name__", "")
        if name == "cuda" and args and isinstance(args[0], torch.Tensor):
            if "cuda" in self.sources:
                if self.note:
                    HAZARDS.add(self.note)
                return args[0].to(self.target)
        if name == "to" and len(args) > 1:  # tensor.to(device, ...); a dtype or tensor passes through
            args = (args[0], self._redirect(args[1]), *args[2:])
        if "device" in kwargs:
            kwargs["device"] = self._redirect(kwargs["device"])
        return func(*args, **kwargs)


def cuda_redirect() -> DeviceRedirect | None:
    """A redirect to the CPU when there is no GPU, or None when CUDA is real."""
    if torch.cuda.is_available():
        return None
    return DeviceRedirect("cpu", {"cuda"}, note="Your code asks for a CUDA device; it was graded on the CPU instead.")


_GPU_LIBRARY = re.compile(r"/(libcu|libnv|libnccl|libtriton|libtorch_cuda|libcudnn|libcusparse|libcufft|libcurand|"
                          r"libcusolver|libc10_cuda)[^/]*$")
_MADV_PAGEOUT = 21  # Linux 5.4+


def release_gpu_libraries() -> int:
    """Drop the resident pages of CUDA libraries when grading on a CPU.

    The CUDA build of torch maps ~1.5 GB of GPU libraries and touches ~320 MB of them while
    loading; a CPU-only grade never runs that code. MADV_PAGEOUT on their read-only mappings
    takes those clean pages out of this process's memory (they would be read back from disk
    if ever needed). Returns how many mappings were released; 0 where unsupported.
    """
    if torch.cuda.is_available():
        return 0
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        released = 0
        with open("/proc/self/maps") as maps:
            for line in maps:
                parts = line.split()
                if len(parts) < 6 or "w" in parts[1] or not _GPU_LIBRARY.search(parts[5]):
                    continue
                start, end = (int(x, 16) for x in parts[0].split("-"))
                if libc.madvise(start, end - start, _MADV_PAGEOUT) != 0:
                    return released  # an older kernel: nothing more to gain
                released += 1
        return released
    except (OSError, AttributeError):
        return 0
