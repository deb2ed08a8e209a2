"""Shared wording for verdicts: one place decides how a student error or a skipped check reads."""
from __future__ import annotations

from .. import kinds
from ..facts import Facts, ProbeOutcome
from ..results import CheckResult, Status
from ..rubric import Check

# The check that reports a missing class or function; the others only say they did not run.
PRIMARY_KINDS = ("construct", *kinds.primary_checks())


def result(check: Check, passed: bool, message: str, hint: str = "", **details) -> CheckResult:
    return CheckResult(
        check_id=check.check_id, name=check.name, part=check.part, number=check.number,
        max_points=check.points, points=check.points if passed else 0.0,
        status=Status.PASSED if passed else Status.FAILED, message=message, hint=hint,
        visibility=check.visibility, tags=[f"part-{check.part}", check.kind.split(".")[0]],
        details={k: v for k, v in details.items() if v is not None},
    )


def explain(error: dict | None, what: str) -> str:
    """'AlexNet.__init__ raised NotImplementedError at cnn_trainer.py line 57 (`raise ...`)'."""
    if not error:
        return f"{what} failed for a reason the grader could not see."
    kind = error.get("type", "Exception")
    place = ""
    if error.get("file"):
        cell = f" cell {error['cell']}," if error.get("cell") else ""
        place = f" at {error['file']}{cell} line {error['line']}"
        if error.get("code"):
            place += f" (`{error['code']}`)"
    if kind == "NotImplementedError" and 'missing the required "forward" function' in (error.get("message") or ""):
        # nn.Module's own forward: the class has none (renamed, misspelled or mis-indented)
        owner = (error["message"].split("[", 1) + ["]"])[1].split("]", 1)[0] or "the module"
        return f"{what} failed: {owner} has no forward method, so nn.Module's default raised NotImplementedError."
    if kind == "NotImplementedError":
        return f"{what} is not implemented yet: it raises NotImplementedError{place}."
    if kind == "SystemExit":
        return f"{what} stopped: {error.get('message')}{place}. Code that exits belongs under if __name__ == '__main__':."
    message = error.get("message") or ""
    text = f"{what} raised {kind}{place}"
    return text + (f": {message}" if message and message != "(no message)" else ".")


def unavailable(check: Check, facts: Facts, symbol: str, outcome: ProbeOutcome | None) -> CheckResult | None:
    """A failed result when the probe this check needs never produced data, else None."""
    if facts.load_problem:
        return result(check, False, facts.load_problem)
    picked = facts.picks.get(symbol)
    if picked is not None and not picked.get("name"):
        what = check.model.title or symbol if check.model is not None else symbol
        return result(check, False, f"Not graded: no class in {facts.file_of(symbol)} could be graded as {what} "
                                    "(see its 'defined and builds' check).")
    if symbol in facts.unresolved:
        return result(check, False, f"Not graded: {facts.unresolved[symbol]}.",
                      "Submit the file the handout names, or a notebook that defines it." if check.kind in PRIMARY_KINDS
                      else "")
    load = facts.module_of(symbol) or facts.load or {}
    module = facts.file_of(symbol)
    if load.get("status") == "failed":
        return result(check, False, explain(load.get("error"), f"Importing {module}"),
                      "Fix this first: no check can run until the module imports.")
    info = facts.symbol(symbol)
    if info.get("kind") == "missing" and load.get("status") == "partial" and load.get("error"):
        stopped = explain(load["error"], f"Importing {module}")
        if check.kind in PRIMARY_KINDS:
            return result(check, False, f"{symbol} was never defined because the import stopped first. {stopped}",
                          "Fix the import: the grader imports your module the way `import` does.")
        return result(check, False, f"Not graded: {symbol} was never defined because the import stopped first.")
    if info.get("kind") == "missing":
        if check.kind in PRIMARY_KINDS:
            return result(check, False, f"{symbol} is not defined in {module}.",
                          f"Define {symbol} with the name the handout uses (names are case-sensitive).")
        return result(check, False, f"Not graded: {symbol} is not defined in {module}.")
    if outcome is None:
        return result(check, False, "This check did not run.")
    if outcome.skipped:
        return result(check, False, f"Not graded: {outcome.skipped}.")
    if outcome.crash:
        hint = {
            "timeout": "Look for an infinite loop or very slow code in this class.",
            "memory": "Look for tensors that grow without bound, or huge layers.",
            "died": "Code that calls os._exit, kills the process or crashes Python ends grading of this class.",
            "protocol": "The grader reads results from your code's process over a private channel: code that "
                        "writes to it, closes it or replaces the grader's functions ends grading of this class.",
        }.get(outcome.crash_reason or "", "")
        return result(check, False, f"Not graded: {outcome.crash}.", hint)
    if outcome.error is not None and outcome.result is None:
        return result(check, False, explain(outcome.error, symbol))
    return None
