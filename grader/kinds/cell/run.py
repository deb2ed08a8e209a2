"""The scoring side's plan for a cell: which probes, in which order, and how they are measured.

A cell's checks need two probes: "cell" (contract, counts, built-ins, behaviour) and
"memory" (the memory task, run late since it trains). The worker exports the cell once
(`export_cell`); the scorer copies the artefact into the verifier's folder, and the
verifier measures both probes from that copy. Where export stops on the student's code,
`measure` returns None and the runner asks the worker itself (`request`), marked so.
"""
from __future__ import annotations

from ...facts import ProbeOutcome
from ...replies import ERROR, NAME, Maybe, Text
from ...sandbox import WorkerCrashed

RANKS = {"cell": 1, "memory": 4}  # the runner's probe order: cheap ones first, training last
VERIFIED = True  # measured by the verifier: the runner starts it early
ARTEFACT = "cell"  # the folder the worker writes into (made before it owns the run folder)
# The export reply is read here, outside the checks: its shape is checked as it arrives.
RESULTS = {"export_cell": {"artefact": Maybe(Text(300)), "constructed": bool, "class_name": Maybe(NAME),
                           "builtin_modules": [NAME], "stopped": Maybe(ERROR)}}
WORKER_SAYS = ("builtin_modules", "count_parameters")  # what only the class itself can tell


def probe_key(check) -> tuple:
    return ("memory" if check.kind == "cell.memory" else "cell", check.cell.symbol)


def required_symbols(check) -> list[str]:
    return [check.cell.symbol]


def inside_key(check) -> tuple:
    """The key of grader.facts.Facts.measured_inside for this check's cell."""
    return (check.cell.symbol, None)


def request(runner, key: tuple, check) -> tuple[str, dict, str]:
    """The worker's own measurement, where export stopped."""
    cell = check.cell
    args = {"symbol": cell.symbol, "family": cell.family, "seed": runner.rubric.training.seed}
    return key[0], args, (f"training {cell.symbol} on the memory task" if key[0] == "memory"
                          else f"running {cell.symbol}")


def after(runner) -> None:
    """The source scan for torch's built-in recurrent code, after the probes."""
    for cell in runner.rubric.cells:
        runner.facts.source_findings[cell.symbol] = runner.scan(cell.symbol)


def measure(runner, key: tuple, check, timeout: float) -> ProbeOutcome | None:
    """A cell's facts (key "cell") or its memory task ("memory"), measured by the verifier
    from the steps the worker exported; None when export stopped (the worker measures)."""
    op, symbol = key
    state = runner.kind_state.setdefault("cell", {"exported": {}, "seconds": {}})
    folder = f"cell-{runner.rubric.cells.index(check.cell)}"
    if symbol not in state["exported"]:
        state["exported"][symbol] = _export(runner, check, folder, timeout, state)
    exported = state["exported"][symbol]
    if exported is None:
        return None
    if isinstance(exported, ProbeOutcome):  # built, or handed over, it was not
        if op == "cell" or not exported.result:
            return exported
        return ProbeOutcome(result={"error": exported.result["error"]})
    what = f"training {symbol} on the memory task" if op == "memory" else f"checking the exported {symbol}"
    try:
        reply = runner.verifier.ask("verify_cell", {"artefact": folder, "family": check.cell.family,
                                                    "seed": runner.rubric.training.seed, "part": op}, timeout, what)
    except WorkerCrashed as crash:  # the student's step, run as written, hung or used too much
        return ProbeOutcome(crash=crash.detail, crash_reason=crash.reason, seconds=timeout)
    if not reply.ok:
        return _refused((reply.error or {}).get("message", "it could not be read"))
    result = runner.localize(reply.result)
    if op == "cell":
        own = dict(exported)
        stopped = runner.localize(own.pop("stopped", None))
        if stopped:  # the contract stopped before a step ran: as the worker's probe reports it
            result = {k: result[k] for k in ("params", "params_without_bias", "params_default_bias",
                                              "builtin_calls") if k in result}
            result["error"] = stopped
        result.update(own)
    seconds = reply.seconds + (state["seconds"].pop(symbol, 0.0) if op == "cell" else 0.0)
    return ProbeOutcome(result=result, seconds=seconds, peak_mb=reply.peak_mb)


def _export(runner, check, folder: str, timeout: float, state: dict):
    """The worker's export, copied for the verifier: what the class itself said (a dict), a
    failed outcome, or None (export stopped: measured inside, and marked so)."""
    symbol = check.cell.symbol
    reply, error = runner.export_call("export_cell", symbol, {
        "symbol": symbol, "family": check.cell.family, "seed": runner.rubric.training.seed,
        "memory": ("memory", symbol) in runner.plan, "folder": str(runner.sandbox.run_dir / "artefacts" / ARTEFACT)},
        timeout, f"building and exporting {symbol}")
    if isinstance(reply, ProbeOutcome):
        return reply
    own = {k: reply.result[k] for k in (*WORKER_SAYS, "stopped") if reply.ok and k in reply.result}
    if error and error.get("stage") == "construct":
        return ProbeOutcome(result={"error": error, "builtin_calls": [], **own}, seconds=reply.seconds)
    if error or not reply.ok or not reply.result.get("artefact"):
        from ...verifying import export_stopped

        runner.facts.measured_inside[inside_key(check)] = export_stopped(error)
        return None
    why = runner.verifier.take(runner.sandbox.run_dir, ("artefacts", ARTEFACT), folder)
    if why:
        return _refused(why)
    runner.facts.models_exported += 1
    state["seconds"][symbol] = reply.seconds
    return own


def _refused(why: str) -> ProbeOutcome:
    """A refused artefact costs the cell's checks; it is never measured inside instead, since
    forcing that would be the way around the verifier."""
    from ...verifying import refused_error

    error = refused_error(f"the cell the grading process handed over was refused: {why}")
    return ProbeOutcome(result={"error": error, "builtin_calls": []}, crash_reason="refused")
