"""The scoring side of the activation maps: the model exported as the model checks export it,
the course's images copied beside it for the verifier, and the grids drawn from the maps once
nothing of the submission runs. Where export stops, the worker draws the maps itself (`request`),
and the verdict is marked so."""
from __future__ import annotations

import os
import shutil

from ...facts import ProbeOutcome
from ...protocol import ProtocolError
from ...render.png import draw_activation_maps
from ...replies import IMAGE_LAYER, NAME, Need, Text, check_result
from ...sandbox import WorkerCrashed
from ...tree import remove

OP = "activations"
RANKS = {OP: 5}
VERIFIED = True  # measured by the verifier from the exported graph: the runner starts it early
ARTEFACT = "maps"  # the folder the worker writes into (made before it owns the run folder)
IMAGES = "maps-images"  # the course's images, in the verifier's folder
EXPORT_BATCH = 2  # the train graph is not run; a batch of 2 keeps batch norm exportable
RESULTS = {OP: {"images": [{"name": Need(NAME), "synthetic": bool, "layers": [IMAGE_LAYER]}],
                "unreadable": [Text(300)]}}


def probe_key(check) -> tuple:
    return (OP, check.task.id)


def required_symbols(check) -> list[str]:
    return [check.task.params["model"]]


def inside_key(check) -> tuple:
    """The key of grader.facts.Facts.measured_inside for this task's maps."""
    return (OP, check.task.id)


def _model(runner, check):
    model = runner.rubric.model(check.task.params["model"])
    return model, model.variants[0]


def request(runner, key: tuple, check) -> tuple[str, dict, str]:
    """The worker's own maps, where export stopped."""
    p = check.task.params
    model, variant = _model(runner, check)
    args, kwargs = runner._call_args(model, variant)
    images = [[name, runner.inputs.get(name)] for name in p["images"]]
    return OP, {"symbol": model.symbol, "args": args, "kwargs": kwargs, "images": images,
                "input": list(model.input), "seed": runner.rubric.training.seed}, \
        f"running {model.symbol} on {len(images)} images"


def measure(runner, key: tuple, check, timeout: float) -> ProbeOutcome | None:
    """The maps, drawn by the verifier from the exported model; None when export stopped."""
    from ...verifying import export_stopped

    model, variant = _model(runner, check)
    stopped = runner.facts.measured_inside.get((model.symbol, variant.suffix))
    if stopped:  # the model checks found it does not export: no second try
        runner.facts.measured_inside[inside_key(check)] = stopped
        return None
    reply, error = runner.export_model(model, variant, EXPORT_BATCH, runner.rubric.training.seed, ARTEFACT, True,
                                       timeout, f"building and exporting {model.symbol}")
    if isinstance(reply, ProbeOutcome):
        return reply
    if error and error.get("stage") == "construct":
        return ProbeOutcome(result={"error": error, "images": []}, seconds=reply.seconds)
    if error or not reply.ok or not reply.result.get("artefact"):
        runner.facts.measured_inside[inside_key(check)] = export_stopped(error)
        return None
    why = runner.verifier.take(runner.sandbox.run_dir, ("artefacts", ARTEFACT), ARTEFACT)
    if why:
        return _refused(why)
    images = _copy_images(runner, check.task.params["images"])
    try:
        answer = runner.verifier.ask("verify_maps", {"artefact": ARTEFACT, "images": images}, timeout,
                                     f"drawing the maps of the exported {model.symbol}")
    except WorkerCrashed as crash:  # the graph, run as the student wrote it, hung or used too much
        return ProbeOutcome(crash=crash.detail, crash_reason=crash.reason, seconds=timeout)
    finally:
        remove(runner.verifier.run_dir / ARTEFACT)
        remove(runner.verifier.run_dir / IMAGES)
    if not answer.ok:
        return _refused((answer.error or {}).get("message", "it could not be read"))
    try:
        result = check_result(OP, answer.result)  # the shape the drawing reads, whoever measured it
    except ProtocolError as exc:
        return _refused(f"its maps could not be read ({str(exc)[:200]})")
    runner.facts.models_exported += 1
    return ProbeOutcome(result=runner.localize(result), seconds=reply.seconds + answer.seconds,
                        peak_mb=answer.peak_mb)


def _copy_images(runner, names: list[str]) -> list[list]:
    """The course's own files (never the worker's copies, which its process could rewrite),
    beside the artefact: [name, path in the verifier's folder, or None for a stand-in]."""
    folder = runner.verifier.run_dir / IMAGES
    remove(folder)
    folder.mkdir(mode=0o755)
    out = []
    for i, name in enumerate(names):
        src = runner.input_sources.get(name)
        if src is None:
            out.append([name, None])
            continue
        dest = folder / f"{i}{src.suffix}"
        shutil.copyfile(src, dest)
        os.chmod(dest, 0o644)
        out.append([name, f"{IMAGES}/{dest.name}"])
    return out


def _refused(why: str) -> ProbeOutcome:
    """A refused artefact costs the maps, never more; it is not measured inside instead."""
    from ...verifying import refused_error

    error = refused_error(f"the model the grading process handed over was refused: {why}")
    return ProbeOutcome(result={"error": error, "images": []}, crash_reason="refused")


def after(runner) -> None:
    for key, outcome in runner.facts.probes.items():
        if key[0] == OP and outcome.result:
            draw_activation_maps(runner.facts, key[1], outcome.result)
