"""A model's trace and behaviour, measured outside the submission's process.

The worker exports the model (grader.worker.export); the verifier measures the artefact
(grader.verifier.measure). The two overlap: once an artefact is copied to the verifier,
it waits there in a queue (grader.verifying) and the worker goes on to the next export,
or the next probe, while the verifier measures those before it, so both cores are at work. A class count after the first is exported as layers only and, when
its graph differs from the first's only by that count, reported with the first's
behaviour (grader.verifier.alike); otherwise it is measured in full.
"""
from __future__ import annotations

import dataclasses

from .facts import ProbeOutcome
from .rubric import Check
from .verifying import export_stopped

PENDING = object()  # the outcome arrives when the verifier's reply is read


class ModelExports:
    def __init__(self, runner):
        self.runner = runner
        self.pending: set[tuple] = set()  # probe keys a measurement in flight will answer
        self.redo: list[tuple[tuple, Check]] = []  # compared variants that turned out not alike
        self.remembered: dict[tuple[str, str], bool] = {}  # variants the verifier keeps -> trained too

    def probe(self, key: tuple, check: Check, timeout: float):
        """PENDING, an outcome (the export failed: the student's error), or None when export
        stopped, so that the worker measures the model and the verdicts say so."""
        model, variant = check.model, check.variant
        behaviour_too = ("behaviour", model.symbol, variant.suffix) in self.runner.plan  # else only the layers
        base = self._measured_base(check) if behaviour_too else None
        return self._export(key, check, timeout, behaviour_too, like=base)

    def finish(self) -> None:
        """Read every measurement in flight, measuring in full any variant that was not alike."""
        verifier = self.runner.verifier
        while True:
            if verifier is not None:
                verifier.settle()
            if not self.redo:
                return
            self.run_redo()  # which may send one more measurement

    def run_redo(self) -> None:
        """Export in full the variants found unlike the one measured (only between exports:
        the worker's artefact folder is then free)."""
        runner = self.runner
        while self.redo:
            key, check = self.redo.pop(0)
            outcome = self._export(key, check, runner.probe_timeout(), True)
            if outcome is None:  # export stopped this time: the worker measures it in the next round
                self.pending -= {("trace", *key[1:]), ("behaviour", *key[1:])}
            elif outcome is not PENDING:
                runner.facts.probes.setdefault(key, outcome)

    # ------------------------------------------------------------------ internals

    def _measured_base(self, check: Check) -> str | None:
        """The verifier's name for a fully measured variant of this model that differs from
        `check`'s only by class count, with at least the measurements `check` needs."""
        variant = check.variant
        if variant.num_classes is None:
            return None
        others = {k: v for k, v in variant.values.items() if k != "num_classes"}
        trains = ("behaviour", check.model.symbol, variant.suffix) in self.runner.trains
        for (symbol, suffix), trained in self.remembered.items():
            other = next((v for v in check.model.variants if v.suffix == suffix), None)
            if symbol == check.model.symbol and other is not None and other.num_classes is not None and \
                    {k: v for k, v in other.values.items() if k != "num_classes"} == others and (trained or not trains):
                return f"{symbol}/{suffix}"
        return None

    def _export(self, key: tuple, check: Check, timeout: float, behaviour_too: bool, like: str | None = None):
        runner = self.runner
        _, symbol, suffix = key
        model, variant = check.model, check.variant
        training = dataclasses.asdict(model.training or runner.rubric.training)
        who = f"{symbol}" + (f" with {variant.num_classes} classes" if variant.num_classes else "")
        weights = behaviour_too and like is None  # a compared variant needs its layers only
        reply, error = runner.export_model(model, variant, training["batch"], training["seed"], "model", weights,
                                           timeout, f"building and exporting {who}")
        if isinstance(reply, ProbeOutcome):
            return reply
        probes = runner.facts.probes
        if error and error.get("stage") == "construct":
            outcome = ProbeOutcome(result={"constructed": False, "rows": [], "error": error}, seconds=reply.seconds)
            probes[("behaviour", symbol, suffix)] = ProbeOutcome(result={"error": error})
            probes[("trace", symbol, suffix)] = outcome
            return outcome if key[0] == "trace" else probes[key]
        if error or not reply.ok or not reply.result.get("artefact"):
            runner.facts.measured_inside[(symbol, suffix)] = export_stopped(error)
            return None
        trains = ("behaviour", symbol, suffix) in runner.trains
        request = {"num_classes": variant.num_classes, "device": runner.device if runner.device != "auto" else "cpu",
                   "training": training, "behaviour_too": behaviour_too, "training_too": trains}
        request.update({"like": like} if like else {"remember": f"{symbol}/{suffix}"} if behaviour_too else {})
        if behaviour_too and like is None:  # the verifier keeps it; if it cannot, a comparison says so
            self.remembered[(symbol, suffix)] = trains
        answers = {("trace", symbol, suffix)} | ({("behaviour", symbol, suffix)} if behaviour_too else set())
        self.pending |= answers

        def done(trace: ProbeOutcome, behaviour: ProbeOutcome) -> None:
            if like and isinstance(behaviour.result, dict) and behaviour.result.get("not_alike"):
                self.redo.append((key, check))  # measured in full at the next safe point
                return
            self.pending -= answers
            trace.seconds += reply.seconds
            probes[("trace", symbol, suffix)] = dataclasses.replace(trace, result=runner.localize(trace.result))
            if behaviour_too:
                probes[("behaviour", symbol, suffix)] = dataclasses.replace(
                    behaviour, result=runner.localize(behaviour.result))
            runner.facts.models_exported += 1

        runner.verifier.start(runner.sandbox.run_dir, ("artefacts", "model"), request, timeout,
                              f"checking the exported {who}", done)
        return PENDING
