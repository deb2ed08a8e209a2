"""The worker's side of the text generator: run the student's writer on a model whose output
layer the scorer's draw decides.

The scorer draws, for each grade, two characters and their probabilities (run.draw); the
crafted model gives them all the probability whatever the input. The texts go back raw and
the scorer reads them (run.judge): to forge them, a submission must sample from the
weights it was given, which is the homework.
"""
from __future__ import annotations

import contextlib
import inspect
import os
import sys
import time
from pathlib import Path

import torch
import torch.nn as nn

from grader.worker import compat, failures, progress, served
from grader.worker.probes import _symbol

from .spec import MAX_TEXT, VOCABULARY


class GraderWeights(dict):
    """Stands in for the checkpoint's 'model' entry: the grader fills the weights in when
    the student's code loads it into the model it built, whatever sizes that model has."""


def _craft(model: nn.Module, favoured: dict[str, float]) -> bool:
    """Zero the output layer's weights and give its bias to the favoured characters (their
    log-probabilities), so the next-character distribution is the scorer's, whatever the input."""
    heads = [m for m in model.modules() if isinstance(m, nn.Linear) and m.out_features == len(VOCABULARY)]
    if not heads or heads[-1].bias is None:
        return False
    with torch.no_grad():
        heads[-1].weight.zero_()
        heads[-1].bias.fill_(-30.0)
        for ch, logit in favoured.items():
            heads[-1].bias[VOCABULARY.index(ch)] = float(logit)
    return True


SHORT = 120  # characters asked for wherever the submission lets the grader choose the length


class GraderAny(GraderWeights):
    """For a writer whose code does not show the checkpoint's layout: the weights, which also
    answer checkpoint['model'] (or another wrapper key) with themselves and give the
    vocabulary under whatever key the code reads it."""

    def __missing__(self, key):
        value = served.extra_value(str(key), {}, VOCABULARY)
        return value if value is not None else self

    def __contains__(self, key):
        return True


def _checkpoint(layout: dict, namespace: dict):
    extras = {k: v for k in layout.get("extras", []) if (v := served.extra_value(k, namespace, VOCABULARY)) is not None}
    kind = layout.get("kind")
    if kind == "wrapped":
        return {"vocabulary": VOCABULARY, **extras, layout.get("key") or "model": GraderWeights()}
    if kind == "state_dict":
        return GraderWeights(extras)
    return GraderAny(extras)


def writer(function: str, model: str, length: int, start: list[str], seed: int, favoured: dict[str, float],
           handoff: dict | None = None, budget_seconds: float = 150.0) -> dict:
    """Run the writer as the submission calls it, asking for fewer characters where its own
    constants, flags or arguments allow, and send back each text it returns."""
    fn = _symbol(function)
    _symbol(model)
    favoured = {ch: float(logit) for ch, logit in favoured.items() if ch in VOCABULARY}
    handoff = handoff or {}
    layout = handoff.get("layout") or {"kind": "either"}
    namespace = getattr(fn, "__globals__", {})
    result: dict = {"error": None, "runs": [], "crafted": None, "skipped_runs": [], "served": {"layout": layout}}
    folder = Path(os.getcwd()) / "grader_inputs"
    folder.mkdir(exist_ok=True)
    path = folder / "writer_checkpoint.pt"
    torch.save({"model": {}, "vocabulary": VOCABULARY}, path)
    checkpoint = _checkpoint(layout, namespace)
    counter = _Counter(namespace)

    def on_load(module, state_dict) -> bool:
        if not isinstance(state_dict, GraderWeights) and not (
                isinstance(state_dict, dict) and any(isinstance(v, GraderWeights) for v in state_dict.values())):
            return False
        result["crafted"] = _craft(module, favoured)
        counter.watch(module)
        return True

    serving = served.Serving(lambda: checkpoint, on_load)
    restore: list = []
    stage = "call"
    started = time.monotonic()
    try:
        call, expected, lowered = _plan(fn, handoff, checkpoint, str(path), length, restore)
        result["expected_length"], result["lowered"] = expected, lowered
        plan = [("first", start[0], seed)] + [("start", s, seed) for s in start[1:]] + \
            [("repeat", start[0], seed), ("seed", start[0], seed + 1)]
        with compat.cuda_redirect() or contextlib.nullcontext(), serving.active(), counter:
            for number, (purpose, text_start, run_seed) in enumerate(plan, start=1):
                elapsed = time.monotonic() - started
                per_run = elapsed / max(1, len(result["runs"]))
                if purpose == "seed" and result["crafted"]:
                    continue  # the crafted distribution already shows sampling
                if purpose in ("start", "seed") and result["runs"] and elapsed + 1.5 * per_run > 0.8 * budget_seconds:
                    result["skipped_runs"].append({"purpose": purpose, "start": text_start,
                                                   "seconds_per_text": round(per_run, 1)})
                    continue
                counter.begin(f"{function}({text_start!r})", expected, number, len(plan))
                torch.manual_seed(run_seed)
                text = call(text_start)
                result["runs"].append({"purpose": purpose, "start": text_start, "seed": run_seed,
                                       "type": type(text).__name__,
                                       "text": text[:MAX_TEXT] if isinstance(text, str) else None,
                                       "seconds": round(time.monotonic() - started - elapsed, 2)})
    except BaseException as exc:
        result["error"] = failures.describe(exc, stage)
    finally:
        for undo in reversed(restore):
            undo()
        result["served"].update(loads=serving.loads)
    return result


class _Counter:
    """Counts the characters a run has produced (calls of sample_next_char_id, else of the
    model), for the progress report a timeout quotes."""

    def __init__(self, namespace: dict):
        self.namespace = namespace
        self.samples = self.forwards = self.history = 0
        self.label, self.total, self.number, self.runs = "", 0, 1, 1
        self._original = namespace.get("sample_next_char_id")
        self._hooked: set[int] = set()

    def begin(self, label: str, total: int, number: int, runs: int):
        self.label, self.total, self.number, self.runs = label, total, number, runs
        self.samples = self.forwards = self.history = 0
        self._report(force=True)

    def watch(self, module: nn.Module):
        if id(module) not in self._hooked:
            self._hooked.add(id(module))
            module.register_forward_pre_hook(self._forward)

    def _forward(self, module, args):
        self.forwards += 1
        first = args[0] if args else None
        if isinstance(first, torch.Tensor) and first.dim() >= 1:
            self.history = int(first.shape[-1])
        self._report()

    def _report(self, force: bool = False):
        done = self.samples or max(0, self.forwards - 1)
        note = f"text {self.number} of at most {self.runs}"
        if self.history > 1 and self.forwards > 2:
            note += (f"; each step feeds the model the text so far, {self.history:,} characters in the last call, "
                     "so the time grows with the square of the length")
        progress.report(self.label, done, self.total or None, "characters", note, force=force)

    def __enter__(self):
        original = self._original
        if callable(original):
            def counted(*args, **kwargs):
                self.samples += 1
                self._report()
                return original(*args, **kwargs)
            self.namespace["sample_next_char_id"] = counted
        return self

    def __exit__(self, *exc):
        if callable(self._original):
            self.namespace["sample_next_char_id"] = self._original
        return False


def _plan(fn, handoff: dict, checkpoint, path: str, length: int, restore: list):
    """(call(start) -> text, the length expected, what was lowered). The call is the
    submission's own (handoff["call"]) where it has one, else the handout's forms: 2024
    (state_dict, start_string), 2020 no arguments and absl flags."""
    namespace = getattr(fn, "__globals__", {})
    flags = _flags()
    lowered = [_lower(knob, namespace, flags, restore) for knob in handoff.get("knobs", []) if knob["kind"] != "param"]
    lowered = [x for x in lowered if x]
    if flags is not None and "generation_length" in flags and "FLAGS.generation_length" not in lowered:
        lowered += [x for x in [_lower({"kind": "flag", "name": "generation_length"}, namespace, flags, restore)] if x]
    signature = inspect.signature(fn)
    params = [p for p in signature.parameters.values() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    length_params = [k["name"] for k in handoff.get("knobs", []) if k["kind"] == "param"]
    own = handoff.get("call") or {}
    if not params and not own.get("args"):
        if flags is not None:
            if "model_checkpoint" in flags:
                _set_flag(flags, "model_checkpoint", path, restore)

        def call(s):
            if flags is not None and "start_string" in flags:
                flags["start_string"].value = s
            return fn()

        return call, (SHORT if lowered else length), lowered

    template = own.get("args") or ([{"kind": "checkpoint"}, {"kind": "start"}][:len(params)])
    if not own.get("args") and len(params) >= 3 and params[2].default is inspect.Parameter.empty:
        template = template + [{"kind": "value", "value": SHORT}]  # (state_dict, start_string, length)
        length_params.append(params[2].name)

    def arguments(s):
        args = [_value(d, checkpoint, s, namespace, flags) for d in template]
        kwargs = dict(namespace.get(own["star"], {})) if isinstance(namespace.get(own.get("star")), dict) else {}
        kwargs.update({k: _value(d, checkpoint, s, namespace, flags) for k, d in own.get("keywords", {}).items()})
        for p in params[len(args):]:  # required parameters the call leaves out: the submission's constants
            if p.default is inspect.Parameter.empty and p.name not in kwargs:
                value = served.extra_value(p.name, namespace, None)
                if value is not None:
                    kwargs[p.name] = value
        try:
            bound = signature.bind_partial(*args, **kwargs)
        except TypeError:
            return args, kwargs
        for name in length_params:
            value = bound.arguments.get(name, signature.parameters[name].default if name in signature.parameters else None)
            if isinstance(value, int) and not isinstance(value, bool) and value > SHORT:
                bound.arguments[name] = SHORT
                if name not in lowered:
                    lowered.append(name)
            elif name in bound.arguments and bound.arguments[name] == SHORT and name not in lowered:
                lowered.append(name)
        return bound.args, bound.kwargs

    arguments("")  # settles which lengths are lowered, and so the length expected, before the first run

    def call(s):
        args, kwargs = arguments(s)
        return fn(*args, **kwargs)

    return call, (SHORT if lowered else length), lowered


def _value(descriptor: dict, checkpoint, start: str, namespace: dict, flags):
    kind = descriptor.get("kind")
    if kind == "checkpoint":
        return checkpoint
    if kind == "start":
        return start
    if kind == "value":
        return descriptor.get("value")
    if kind == "global":
        return namespace.get(descriptor.get("name"))
    if kind == "flag" and flags is not None and descriptor.get("name") in flags:
        return flags[descriptor["name"]].value
    return None


def _lower(knob: dict, namespace: dict, flags, restore: list) -> str | None:
    """Set a length the submission reads to SHORT; returns its name as the student wrote it."""
    kind, name, key = knob.get("kind"), knob.get("name"), knob.get("key")
    if kind == "global" and _long(namespace.get(name)):
        old = namespace[name]
        namespace[name] = SHORT
        restore.append(lambda: namespace.__setitem__(name, old))
        return name
    if kind == "flag" and flags is not None and name in flags and _long(flags[name].value):
        _set_flag(flags, name, SHORT, restore)
        return f"FLAGS.{name}"
    if kind == "dict" and isinstance(namespace.get(name), dict) and _long(namespace[name].get(key)):
        old = namespace[name]
        namespace[name] = {**old, key: SHORT}
        restore.append(lambda: namespace.__setitem__(name, old))
        return f"{name}[{key!r}]"
    return None


def _long(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > SHORT


def _set_flag(flags, name: str, value, restore: list) -> None:
    old = flags[name].value
    try:
        flags[name].value = value
    except Exception:
        return
    restore.append(lambda: setattr(flags[name], "value", old))


def _flags():
    module = sys.modules.get("absl.flags")
    return module.FLAGS if module is not None else None
