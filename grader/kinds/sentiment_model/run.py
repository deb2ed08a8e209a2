"""The scoring side of the sentiment model: the worker records the calls its checks make
(`export_sentiment`), the scorer copies the artefact into the verifier's folder, and the
verifier measures the facts from it (`verify_sentiment`). Where recording stops on the
student's code, `measure` returns None and the worker measures instead, marked so. The
character model's plan is the same with its own ops (grader.kinds.next_char_model.run).
"""
from __future__ import annotations

from ...facts import ProbeOutcome
from ...replies import NAME, Maybe, Text
from ...sandbox import WorkerCrashed
from ...tree import remove

OP = "sentiment"
RANKS = {OP: 2}
VERIFIED = True  # measured by the verifier from the recorded calls: the runner starts it early
ARTEFACT = "sentiment"  # the folder the worker writes into (made before it owns the run folder)
EXPORT, VERIFY = "export_sentiment", "verify_sentiment"
EXPORTED = {"artefact": Maybe(Text(300)), "constructed": bool, "class_name": Maybe(NAME)}
RESULTS = {EXPORT: EXPORTED}  # read here, outside the checks: its shape is checked as it arrives


def probe_key(check) -> tuple:
    return (OP, check.task.id)


def required_symbols(check) -> list[str]:
    return [check.task.params["symbol"], check.task.params["cell"]]


def inside_key(check) -> tuple:
    """The key of grader.facts.Facts.measured_inside for this task's model."""
    return probe_key(check)


def request(runner, key: tuple, check) -> tuple[str, dict, str]:
    """The worker's own measurement, where recording stopped."""
    p = dict(check.task.params)
    return key[0], {**p, "seed": runner.rubric.training.seed}, f"{p['symbol']}(...)"


def after(runner) -> None:
    pass


def measure(runner, key: tuple, check, timeout: float) -> ProbeOutcome | None:
    return measure_calls(runner, check, timeout, EXPORT, VERIFY, ARTEFACT, inside_key(check))


def measure_calls(runner, check, timeout: float, export: str, verify: str, folder: str,
                  inside: tuple) -> ProbeOutcome | None:
    """The facts, measured by the verifier from the calls the worker recorded; None when
    recording stopped (the worker measures, and the verdicts say so)."""
    from ...verifying import export_stopped

    p = check.task.params
    symbol, seed = p["symbol"], runner.rubric.training.seed
    reply, error = runner.export_call(export, symbol, {
        "symbol": symbol, "cell": p["cell"], "seed": seed,
        "folder": str(runner.sandbox.run_dir / "artefacts" / folder)}, timeout, f"building and recording {symbol}")
    if isinstance(reply, ProbeOutcome):
        return reply
    if error and error.get("stage") == "construct":
        return ProbeOutcome(result={"error": error}, seconds=reply.seconds)
    if error or not reply.ok or not reply.result.get("artefact"):
        runner.facts.measured_inside[inside] = export_stopped(error)
        return None
    why = runner.verifier.take(runner.sandbox.run_dir, ("artefacts", folder), folder)
    if why:
        return _refused(symbol, why)
    try:
        answer = runner.verifier.ask(verify, {"artefact": folder, "seed": seed}, timeout, f"checking the recorded {symbol}")
    except WorkerCrashed as crash:  # the graphs, run as the student wrote them, hung or used too much
        return ProbeOutcome(crash=crash.detail, crash_reason=crash.reason, seconds=timeout)
    finally:
        remove(runner.verifier.run_dir / folder)
    if not answer.ok:
        return _refused(symbol, (answer.error or {}).get("message", "it could not be read"))
    runner.facts.models_exported += 1
    return ProbeOutcome(result=runner.localize(answer.result), seconds=reply.seconds + answer.seconds,
                        peak_mb=answer.peak_mb)


def _refused(symbol: str, why: str) -> ProbeOutcome:
    """A refused artefact costs this model's checks; it is never measured inside instead, since
    forcing that would be the way around the verifier."""
    from ...verifying import refused_error

    return ProbeOutcome(result={"error": refused_error(f"the {symbol} the grading process handed over was refused: "
                                                       f"{why}")}, crash_reason="refused")
