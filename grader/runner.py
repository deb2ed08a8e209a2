"""Plan the sandbox work the selected checks need, run it, and collect the facts.

One worker serves all probes in turn. When student code kills or hangs it, that probe is
recorded as a crash, the symbol's later probes are skipped (they would fail the same
way), and a fresh worker carries on with the next symbol.
"""
from __future__ import annotations

import dataclasses
import os
import stat
import struct
import time
from pathlib import Path

from .facts import Facts, ProbeOutcome
from .rubric import Check, Rubric
from .sandbox import Sandbox, SandboxConfig, WorkerCrashed

MAX_STARTS = 6  # the first worker and five replacements
MIN_PROBE_SECONDS = 5


def probe_key(check: Check) -> tuple | None:
    if check.model is not None:
        op = "trace" if check.kind in ("construct", "architecture") else "behaviour"
        return (op, check.model.symbol, check.variant.suffix)
    if check.task is not None:
        return ("kernels", check.task.id)
    return None


class Runner:
    def __init__(self, rubric: Rubric, submission_root: Path, module: str, run_dir: Path, config: SandboxConfig,
                 device: str, deadline: float):
        self.rubric = rubric
        self.root = submission_root
        self.module = module
        self.device = device
        self.deadline = deadline
        self.sandbox = Sandbox(run_dir, config)
        self.facts = Facts(module=module)
        self._symbol_crash: dict[str, str] = {}

    # ------------------------------------------------------------------ public

    def collect(self, checks: list[Check]) -> Facts:
        plan = {}
        for check in checks:
            key = probe_key(check)
            if key is not None:
                plan.setdefault(key, check)
        # Cheap shape traces first, so a hang in training never costs the architecture checks.
        order = sorted(plan, key=lambda k: {"trace": 0, "behaviour": 1, "kernels": 2}[k[0]])
        try:
            for key in order:
                self.facts.probes[key] = self._run(key, plan[key])
        finally:
            self.sandbox.stop()
        for key, outcome in self.facts.probes.items():
            if key[0] == "kernels" and outcome.result:
                self._collect_images(key[1], outcome.result)
        self.facts.peak_tree_mb = round(self.sandbox.peak_tree_mb, 1)
        self.facts.environment["isolation"] = self.sandbox.isolation
        self.facts.environment["cgroups"] = ",".join(self.sandbox.cgroup_kinds)
        return self.facts

    def student_output(self) -> str:
        return self.sandbox.student_output()

    # ------------------------------------------------------------------ one probe

    def _run(self, key: tuple, check: Check) -> ProbeOutcome:
        symbol = key[1] if key[0] != "kernels" else check.task.params["model"]
        reason = self._blocked(key, symbol)
        if reason:
            return ProbeOutcome(skipped=reason)
        remaining = self.deadline - time.monotonic()
        if remaining < MIN_PROBE_SECONDS:
            return ProbeOutcome(skipped="the time budget for grading this submission ran out before this check")
        if not self._ready(remaining):
            return ProbeOutcome(skipped=self.facts.load_problem)
        remaining = self.deadline - time.monotonic()
        timeout = min(self.rubric.limits.probe_seconds, max(remaining, MIN_PROBE_SECONDS))
        op, args, what = self._request(key, check)
        try:
            reply = self.sandbox.call(op, args, timeout, what)
        except WorkerCrashed as crash:
            detail = crash.detail
            if crash.reason == "timeout" and timeout < self.rubric.limits.probe_seconds:
                detail += " (the time budget for the whole submission was running out)"
            self._symbol_crash[symbol] = detail
            return ProbeOutcome(crash=detail, crash_reason=crash.reason, seconds=timeout)
        self.facts.add_hazards(reply.notes)
        outcome = ProbeOutcome(seconds=reply.seconds, peak_mb=reply.peak_mb)
        if reply.ok:
            outcome.result = reply.result
        else:
            outcome.error = reply.error
        return outcome

    def _collect_images(self, task_id: str, result: dict) -> None:
        """Read the PNGs the student's code saved, now that nothing of theirs is running.

        Only regular files inside the module's folder, reached without symlinks, small
        enough, and really PNG; everything else is listed as not shown."""
        base = (self.root / self.module).parent.resolve()
        calls = [str(c.get("name", "")).lower() for c in result.get("calls", [])]
        names = [n for n in result.get("images", []) if isinstance(n, str)][:12]
        names.sort(key=lambda n: (calls.index(Path(n).stem.lower()) if Path(n).stem.lower() in calls else len(calls), n))
        keys, rejected = [], []
        for name in names:
            data, why = read_png(base, name)
            if data is None:
                rejected.append(f"{name} ({why})")
                continue
            key = f"{task_id}/{name}"
            self.facts.artifacts[key] = data
            keys.append(key)
        self.facts.images[task_id] = keys
        self.facts.rejected_images[task_id] = rejected

    def _blocked(self, key: tuple, symbol: str) -> str | None:
        if self.facts.load_problem:
            return self.facts.load_problem
        if self.facts.load and self.facts.load.get("status") == "failed":
            return "the module could not be imported"
        if self.facts.load and self.facts.symbol(symbol).get("kind") == "missing":
            return f"{symbol} is not defined in {self.module}"
        if symbol in self._symbol_crash:
            return f"an earlier check of {symbol} stopped the grading process: {self._symbol_crash[symbol]}"
        if key[0] == "behaviour":
            traced = self.facts.probes.get(("trace", key[1], key[2]))
            if traced and traced.result and not traced.result.get("constructed"):
                return f"{symbol} could not be built"
        if self.sandbox.starts >= MAX_STARTS and not self.sandbox.running:
            return "the submission stopped the grading process too many times"
        return None

    def _ready(self, remaining: float) -> bool:
        """Start a worker and import the module if none is running."""
        if self.sandbox.running:
            return True
        timeout = min(self.rubric.limits.import_seconds, remaining)
        first = self.facts.load is None
        try:
            hello = self.sandbox.start(timeout)
            self.facts.environment.update({k: str(v) for k, v in hello.items() if v is not None})
            reply = self.sandbox.call("load", {"root": str(self.root), "module": self.module,
                                               "symbols": self.rubric.symbols()}, timeout, f"importing {self.module}")
        except WorkerCrashed as crash:
            if first:
                self.facts.load_problem = f"{self.module} could not be imported: {crash.detail}"
                if crash.reason == "timeout":
                    self.facts.load_problem += (" (does it train a model or read data at import time? "
                                                "Put that under if __name__ == '__main__':)")
            else:
                self.facts.load_problem = f"the grading process could not be restarted: {crash.detail}"
            return False
        self.facts.add_hazards(reply.notes)
        if first:
            self.facts.load = reply.result if reply.ok else {"status": "failed", "error": reply.error, "symbols": {}}
            self.facts.load_seconds = reply.seconds
            self.facts.load_peak_mb = reply.peak_mb
        return True

    def _request(self, key: tuple, check: Check) -> tuple[str, dict, str]:
        if key[0] == "kernels":
            task = check.task
            model = self.rubric.model(task.params["model"])
            variant = next((v for v in model.variants if v.num_classes == task.params["num_classes"]), model.variants[0])
            args, kwargs = model.call_for(dataclasses.replace(variant, values={**variant.values,
                                                                              "num_classes": task.params["num_classes"]}))
            return "kernels", {"function": task.params["function"], "helper": task.params["helper"],
                               "model": model.symbol, "args": args, "kwargs": kwargs,
                               "num_classes": task.params["num_classes"]}, f"{task.params['function']}()"
        op, symbol, _ = key
        model, variant = check.model, check.variant
        args, kwargs = model.call_for(variant)
        who = f"{symbol}" + (f" with {variant.num_classes} classes" if variant.num_classes else "")
        if op == "trace":
            return "trace", {"symbol": symbol, "args": args, "kwargs": kwargs, "input": list(model.input),
                             "seed": self.rubric.training.seed}, f"building and tracing {who}"
        return "behaviour", {"symbol": symbol, "args": args, "kwargs": kwargs, "input": list(model.input),
                             "num_classes": variant.num_classes, "device": self.device,
                             "training": dataclasses.asdict(model.training or self.rubric.training)}, f"running and training {who}"


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_IMAGE_BYTES = 4 * 1024 * 1024


def read_png(base: Path, name: str) -> tuple[bytes | None, str]:
    """A PNG file under `base`, or None and the reason it was refused."""
    if Path(name).is_absolute() or ".." in Path(name).parts:
        return None, "outside the submission folder"
    path = base / name
    if path.resolve() != path or not str(path.resolve()).startswith(str(base) + os.sep):
        return None, "reached through a symbolic link"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        return None, exc.strerror or "unreadable"
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(f.fileno())
        if not stat.S_ISREG(info.st_mode):
            return None, "not a regular file"
        if info.st_size > MAX_IMAGE_BYTES:
            return None, "larger than 4 MB"
        data = f.read(MAX_IMAGE_BYTES + 1)
    if not data.startswith(PNG_SIGNATURE) or data[12:16] != b"IHDR":
        return None, "not a PNG image"
    width, height = struct.unpack(">II", data[16:24])
    if not (0 < width <= 8192 and 0 < height <= 8192):
        return None, "implausible image size"
    return data, ""
