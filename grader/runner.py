"""Plan the sandbox work the selected checks need, run it, and collect the facts.

One worker serves all probes in turn. When student code kills or hangs it, that probe is
recorded as a crash, the symbol's later probes are skipped (they would fail the same
way), and a fresh worker carries on with the next symbol.
"""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path

from . import kinds
from .facts import Facts, ProbeOutcome
from .kinds.wire import FactError
from .localize import LineMap, Localizer
from .model_exports import PENDING, ModelExports
from .rubric import Check, Rubric
from .sandbox import Sandbox, SandboxConfig, WorkerCrashed
from .sourcescan import FORBIDDEN, builtin_uses
from .verifying import Verifier

MAX_STARTS = 6  # the first worker and five replacements


MIN_PROBE_SECONDS = 5


def _variant_index(check: Check) -> int:
    model = check.model
    return model.variants.index(check.variant) if model is not None and check.variant in model.variants else 0


def probe_key(check: Check) -> tuple | None:
    if check.model is not None:
        op = "trace" if check.kind in ("construct", "architecture", "structure") else "behaviour"
        return (op, check.model.symbol, check.variant.suffix)
    moved = kinds.runner_for(check.kind)
    if moved is not None:
        return moved.probe_key(check)
    return None


def required_symbols(check: Check) -> list[str]:
    """What must be defined for the check's probe to run: the first is the one it is about."""
    if check.model is not None:
        return [check.model.symbol]
    moved = kinds.runner_for(check.kind)
    if moved is not None:
        return moved.required_symbols(check)
    if check.task is not None:
        p = check.task.params
        return [p[k] for k in ("function", "symbol", "model", "helper", "cell") if k in p]
    return []


class Runner:
    def __init__(self, rubric: Rubric, submission_root: Path, modules: list[dict], run_dir: Path, config: SandboxConfig,
                 device: str, deadline: float, displays: dict[str, str] | None = None,
                 line_maps: dict[str, "LineMap"] | None = None, unresolved: dict[str, str] | None = None,
                 inputs: dict[str, str] | None = None, handoffs: dict[str, dict] | None = None, folder=None,
                 source_root: Path | None = None, input_sources: dict[str, Path] | None = None):
        """`modules`: [{"module": path, "symbols": [...]}] in import order; `displays`: the
        names students know those paths by (a notebook for its generated module);
        `line_maps`: generated module -> its notebook's cells; `unresolved`: symbols no file provides."""
        self.rubric = rubric
        self.root = submission_root
        # The staged copy, which no student code could write: sources are read from there,
        # never from the sandbox's copy (a link planted there would be read as the scorer).
        self.source_root = source_root or submission_root
        self.modules = modules
        self.device = device
        self.deadline = deadline
        # Made before the worker's uid is given the folder: writing the artefact then needs
        # no new files, so a submission that used up its folder's file count still exports.
        for kind in ("model", *kinds.artefact_folders()):
            (run_dir / "artefacts" / kind).mkdir(parents=True, exist_ok=True)
            for name in ("manifest.json", "weights.bin"):
                (run_dir / "artefacts" / kind / name).touch()
        self.sandbox = Sandbox(run_dir, config, folder)
        self.displays = displays or {}
        self.line_maps = line_maps or {}
        self.inputs = inputs or {}  # image name -> its copy inside the sandbox, for activation maps
        self.input_sources = input_sources or {}  # ... and the course's own file, which the verifier reads
        first = modules[0]["module"] if modules else "the submission"
        self.module = self.displays.get(first, first)
        self.facts = Facts(module=self.module, displays=dict(self.displays), unresolved=dict(unresolved or {}),
                           handoffs=dict(handoffs or {}))
        self.symbol_crash: dict[str, str] = {}
        self._aliases: dict[str, tuple[str, str]] = {}  # rubric symbol -> (module, the student's name) picked
        self._no_args: set[str] = set()  # picked symbols that build only with their own defaults
        self._config = config
        self.verifier: Verifier | None = None  # measures models from artefacts; made when a check needs it
        self.kind_state: dict[str, dict] = {}  # a kind's own bookkeeping for this grade (grader.kinds.<kind>.run)
        self.plan: dict = {}
        self.trains: set = set()  # behaviour keys whose checks include a training step
        self.models = ModelExports(self)

    # ------------------------------------------------------------------ public

    def collect(self, checks: list[Check]) -> Facts:
        plan = {}
        for check in checks:
            key = probe_key(check)
            if key is not None:
                plan.setdefault(key, check)
        # Cheap probes first, so a hang in training never costs the shape and contract checks.
        rank = {"trace": 0, "behaviour": 3, **kinds.probe_ranks()}
        # Then each model's first variant before any model's second: the full exports come
        # first, so that the worker exports the next one while the verifier measures the last.
        order = sorted(plan, key=lambda k: (rank[k[0]], _variant_index(plan[k])))
        self.plan = plan
        # Models whose checks include a training step: for the others the verifier stops at forward.
        self.trains = {probe_key(c) for c in checks if c.model is not None and c.kind in ("gradients", "training")}
        if any(k[0] in ("trace", "behaviour") or kinds.verified(plan[k].kind) for k in plan):
            self.verifier = Verifier(self.sandbox.run_dir.parent / "verifier", self._config, self.deadline)
            self.verifier.launch()  # its imports overlap the worker's
        try:
            used = {c.task.params.get("model") for c in checks if c.task is not None}
            for model in self.rubric.models:
                first = next((c for c in checks if c.model is model), None)
                if first is None and model.symbol in used:  # a task runs this model
                    first = next(c for c in self.rubric.checks() if c.model is model)
                if model.pick and first is not None:
                    self._pick(first)
            for key in order:
                self.models.run_redo()
                # A model's export answers its trace and behaviour at once, maybe later (pending).
                if key not in self.facts.probes and key not in self.models.pending:
                    outcome = self._run(key, plan[key])
                    if outcome is not PENDING:
                        self.facts.probes[key] = outcome
            self.models.finish()
            for key in order:  # a variant whose full export stopped after all: measured in the worker
                if key not in self.facts.probes:
                    self.facts.probes[key] = self._run(key, plan[key])
        finally:
            self.sandbox.stop()
            if self.verifier is not None:
                self.verifier.stop()
                self.facts.verifier_peak_mb = round(self.verifier.sandbox.peak_tree_mb, 1)
        for moved in kinds.runners():
            moved.after(self)
        self.facts.peak_tree_mb = round(self.sandbox.peak_tree_mb, 1)
        self.facts.environment["isolation"] = self.sandbox.isolation
        self.facts.environment["cgroups"] = ",".join(self.sandbox.cgroup_kinds)
        self.facts.environment["own uid"] = "yes" if self.sandbox.uid is not None else "no"
        return self.facts

    def student_output(self) -> str:
        return self.sandbox.student_output()

    # ------------------------------------------------------------------ one probe

    def _run(self, key: tuple, check: Check) -> ProbeOutcome:
        needed = required_symbols(check)
        symbol = needed[0]
        reason = next(filter(None, (self._blocked(key, s) for s in needed)), None)
        if reason:
            return ProbeOutcome(skipped=reason)
        remaining = self.deadline - time.monotonic()
        if remaining < MIN_PROBE_SECONDS:
            return ProbeOutcome(skipped="the time budget for grading this submission ran out before this check")
        if not self._ready(remaining):
            return ProbeOutcome(skipped=self.facts.load_problem)
        timeout = self.probe_timeout()
        if key[0] in ("trace", "behaviour") and (key[1], key[2]) not in self.facts.measured_inside:
            verified = self.models.probe(key, check, timeout)
            if verified is not None:
                return verified
        moved = kinds.runner_for(check.kind)
        if moved is not None and getattr(moved, "measure", None) and \
                moved.inside_key(check) not in self.facts.measured_inside:
            verified = moved.measure(self, key, check, timeout)
            if verified is not None:
                return verified
        op, args, what = self._request(key, check)
        if "budget_seconds" in args:
            args["budget_seconds"] = timeout  # a probe that skips its optional runs when slow (the writer)
        try:
            reply = self.sandbox.call(op, args, timeout, what)
        except WorkerCrashed as crash:
            detail = crash.detail
            if crash.reason == "timeout" and timeout < self.rubric.limits.probe_seconds:
                detail += " (the time budget for the whole submission was running out)"
            self.symbol_crash[symbol] = detail
            return ProbeOutcome(crash=detail, crash_reason=crash.reason, seconds=timeout)
        self.facts.add_hazards(reply.notes)
        outcome = ProbeOutcome(seconds=reply.seconds, peak_mb=reply.peak_mb)
        if reply.ok:
            outcome.result = self.localize(reply.result)
            moved = kinds.runner_for(check.kind)
            if getattr(moved, "judge", None) and isinstance(outcome.result, dict):  # raw outputs: judged here
                try:
                    outcome.result = moved.judge(self, key, outcome.result)
                except FactError as exc:  # the reply is not what the worker sends
                    outcome.result = None
                    outcome.crash, outcome.crash_reason = f"the grading process sent a reply the grader could not " \
                                                          f"read ({str(exc)[:200]})", "protocol"
        else:
            outcome.error = self.localize(reply.error)
        return outcome

    def probe_timeout(self) -> float:
        """What one probe may take: the rubric's limit, or what is left of the grade's budget."""
        remaining = self.deadline - time.monotonic()
        return min(self.rubric.limits.probe_seconds, max(remaining, MIN_PROBE_SECONDS))

    def export_call(self, op: str, symbol: str, args: dict, timeout: float, what: str):
        """Ask the worker for an export: (reply, the student's error localized), or (the crash's
        outcome, None), the crash recorded against `symbol` so its other checks do not run."""
        try:
            reply = self.sandbox.call(op, args, timeout, what)
        except WorkerCrashed as crash:
            self.symbol_crash[symbol] = crash.detail
            return ProbeOutcome(crash=crash.detail, crash_reason=crash.reason, seconds=timeout), None
        self.facts.add_hazards(reply.notes)
        return reply, self.localize(reply.error if not reply.ok else reply.result.get("error"))

    def export_model(self, model, variant, batch: int, seed: int, folder: str, weights: bool, timeout: float,
                     what: str):
        """Ask the worker to export a model into artefacts/<folder>: export_call's answer."""
        args, kwargs = self._call_args(model, variant)
        return self.export_call("export", model.symbol, {
            "symbol": model.symbol, "args": args, "kwargs": kwargs, "input": list(model.input), "batch": int(batch),
            "seed": int(seed), "folder": str(self.sandbox.run_dir / "artefacts" / folder), "weights": weights},
            timeout, what)

    def localize(self, data):
        """Point at notebook cells, not at the module generated from them (grader.localize)."""
        return Localizer(self.line_maps, self.displays).localize(data)

    def scan(self, symbol: str, forbidden=FORBIDDEN) -> list[dict] | None:
        """Built-in torch names (recurrent modules by default) in the class's own source (parsed, not run)."""
        info = self.facts.symbol(symbol)
        path = info.get("path")
        if not path:
            return []
        try:
            source = (self.source_root / path).read_text(encoding="utf-8", errors="replace")
        except OSError:
            return []
        found = builtin_uses(source, info.get("picked") or info.get("defined_as") or symbol, frozenset(forbidden))
        if found is None:
            return None
        out = []
        for f in found:
            where = Localizer(self.line_maps, self.displays).place(path, f.line) if path in self.line_maps \
                else f"{self.displays.get(path, path)} line {f.line}"
            out.append({"where": where, "what": f.what, "code": f.code, "line": f.line})
        return out

    def _pick(self, check: Check) -> None:
        """When the rubric's name is not defined, grade the student's class that fits best."""
        from .pick import choose

        model, variant = check.model, check.variant
        remaining = self.deadline - time.monotonic()
        if remaining < MIN_PROBE_SECONDS or not self._ready(remaining) or not self.facts.load:
            return
        info = self.facts.symbol(model.symbol)
        module = info.get("module")
        if info.get("kind") != "missing" or not module or model.symbol in self.facts.unresolved:
            return
        args, kwargs = model.call_for(variant)
        shown = self.displays.get(module, module)
        try:
            reply = self.sandbox.call("candidates", {"module": module, "args": args, "kwargs": kwargs,
                                                     "input": list(model.input), "seed": self.rubric.training.seed,
                                                     "functions": list(model.pick_functions)},
                                      min(self.rubric.limits.probe_seconds, remaining),
                                      f"looking for {model.title or model.symbol} among the classes of {shown}")
        except WorkerCrashed as crash:
            self.facts.picks[model.symbol] = {"name": None, "reason": f"looking for it stopped the grading process: {crash.detail}"}
            return
        if not reply.ok:
            return
        found = self.localize(reply.result.get("candidates") or [])
        pick = choose(model, variant, found)
        self.facts.picks[model.symbol] = {"name": pick.name, "reason": pick.reason, "considered": pick.considered}
        if pick.name is None:
            return
        try:
            self.sandbox.call("alias", {"symbol": model.symbol, "module": module, "name": pick.name}, 30, "choosing a class")
        except WorkerCrashed:
            return
        self._aliases[model.symbol] = (module, pick.name)
        if pick.default_args:
            self._no_args.add(model.symbol)
        where = self.localize({"file": module, "line": pick.line}) if pick.line else {"file": shown}
        self.facts.load["symbols"][model.symbol] = {"kind": "class", "module_subclass": True, "module": module,
                                                    "path": module, "picked": pick.name, **where}

    def _blocked(self, key: tuple, symbol: str) -> str | None:
        if self.facts.load_problem:
            return self.facts.load_problem
        if symbol in self.facts.unresolved:
            return self.facts.unresolved[symbol]
        if self.facts.load and self.facts.module_of(symbol).get("status") == "failed":
            return f"{self.facts.file_of(symbol)} could not be imported"
        if self.facts.load and self.facts.symbol(symbol).get("kind") == "missing":
            return f"{symbol} is not defined in {self.facts.file_of(symbol)}"
        if symbol in self.symbol_crash:
            return f"an earlier check of {symbol} stopped the grading process: {self.symbol_crash[symbol]}"
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
            reply = self.sandbox.call("load", {"root": str(self.root), "modules": self.modules}, timeout,
                                      f"importing {self.module}")
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
        for symbol, (module, name) in self._aliases.items():
            try:
                self.sandbox.call("alias", {"symbol": symbol, "module": module, "name": name}, 30, "choosing a class")
            except WorkerCrashed:
                return False
        if first:
            self.facts.load = self.localize(reply.result) if reply.ok else \
                {"status": "failed", "error": self.localize(reply.error), "symbols": {}, "modules": {}}
            self.facts.load_seconds = reply.seconds
            self.facts.load_peak_mb = reply.peak_mb
        return True

    def _call_args(self, model, variant) -> tuple[list, dict]:
        """The constructor arguments: the rubric's, or none for a picked class that builds
        only with its own defaults."""
        return ([], {}) if model.symbol in self._no_args else model.call_for(variant)

    def _request(self, key: tuple, check: Check) -> tuple[str, dict, str]:
        moved = kinds.runner_for(check.kind)
        if moved is not None:
            return moved.request(self, key, check)
        op, symbol, _ = key
        model, variant = check.model, check.variant
        args, kwargs = self._call_args(model, variant)
        who = f"{symbol}" + (f" with {variant.num_classes} classes" if variant.num_classes else "")
        if op == "trace":
            return "trace", {"symbol": symbol, "args": args, "kwargs": kwargs, "input": list(model.input),
                             "seed": self.rubric.training.seed}, f"building and tracing {who}"
        return "behaviour", {"symbol": symbol, "args": args, "kwargs": kwargs, "input": list(model.input),
                             "num_classes": variant.num_classes, "device": self.device,
                             "training": dataclasses.asdict(model.training or self.rubric.training)}, f"running and training {who}"
