"""The library entry point: grade one submission, get a GradeReport; write its outputs.

submission -> intake (stage, choose module) -> isolated run (facts) -> checks -> report.
The CLI and the Gradescope entrypoint are thin layers over `grade` and `write_outputs`.
"""
from __future__ import annotations

import dataclasses
import fnmatch
import glob
import json
import os
import re
import sys
import tempfile
import time
import traceback
from pathlib import Path

from . import __version__, courseinputs, heldout, intake, sourcefacts, tree
from .checks import evaluate
from .errors import InputError, RubricError
from .render.gradescope import to_results
from .render.html import render_html
from .facts import Facts
from .results import Artifact, CheckResult, GradeReport, Note, Status
from .rubric import Check, Rubric, load_rubric
from .localize import LineMap
from .modplan import ModulePlan, plan_modules
from .runner import Runner
from .runfolder import RunFolder, release
from .isolation import choose_isolation, lost_protections
from .sandbox import SandboxConfig

REPO = Path(__file__).resolve().parent.parent


@dataclasses.dataclass
class Options:
    device: str = "auto"  # auto | cpu | cuda
    self_check: bool = False  # only the checks students may see
    only: tuple[str, ...] = ()  # check-id patterns, e.g. "alexnet.architecture.*"
    isolation: str = "auto"  # auto | bwrap | user | process
    threads: int = 0  # torch threads in the worker; 0 = its default
    limits: dict = dataclasses.field(default_factory=dict)  # overrides of the rubric's [limits]
    hidden_paths: tuple[str, ...] = ()  # more paths the student's code must not see
    labels: tuple[Path, ...] = ()  # held-out labels files for the rubric's [[predictions]]
    data: Path | None = None  # course data the grader may show the submission (images for activation maps)
    require_labels: bool = True  # False: missing labels cost only the accuracy checks (Gradescope)


def grade(submission: Path | str, assignment: str, options: Options | None = None) -> GradeReport:
    """Grade a submission. Raises InputError for unusable input; any other failure of the
    grader comes back as a report with `grader_error` set and every check failed."""
    options = options or Options()
    started = time.monotonic()
    rubric = assignment_rubric(assignment)
    checks = _select(rubric.checks(), options)
    hidden = len(_select(rubric.checks(), dataclasses.replace(options, self_check=False))) - len(checks)
    report = GradeReport(assignment=rubric.id, title=rubric.title, submission=Path(submission).name,
                         self_check=options.self_check, hidden_checks=hidden if options.self_check else 0)
    device = _device(options.device)
    truths, labels_problems = _held_out_labels(rubric, checks, options)
    options = dataclasses.replace(options, isolation=choose_isolation(options.isolation, sys.executable),
                                  hidden_paths=options.hidden_paths + tuple(str(Path(p).resolve()) for p in options.labels))
    runs = _runs_root()
    run_root = Path(tempfile.mkdtemp(prefix="run-", dir=runs))
    try:
        staged = intake.stage(Path(submission), run_root / "intake")
        # Read before any student code runs, from the staged copy that code cannot write.
        scored = {spec.id: heldout.evaluate(spec, staged.root, staged.files, truths.get(spec.id),
                                            [n.text for n in staged.notes])
                  for spec in rubric.predictions}
        findings, handoffs = sourcefacts.read(rubric, staged)
        try:
            plan = plan_modules(rubric, staged)
        except InputError as exc:
            if not rubric.predictions:
                raise
            plan = None  # no code at all: the predictions are still scored
            no_code = str(exc)
        report.submission = staged.source
        report.notes += staged.notes + _label_exposure(options)
        if plan is not None:
            report.graded_files = [plan.displays.get(m["module"], m["module"]) for m in plan.modules]
            report.notes += plan.notes
        report.graded_files += [f["file"] for f in scored.values() if f.get("file")]
        try:
            if plan is None:
                facts = Facts(module="the submission", load_problem=no_code)
                _add_scorer_facts(facts, scored, labels_problems, options, findings, staged.files)
                report.checks = [evaluate(c, facts, rubric) for c in checks]
            else:
                _run(report, rubric, checks, staged.root, plan, run_root, device, options, started, handoffs,
                     lambda facts: _add_scorer_facts(facts, scored, labels_problems, options, findings, staged.files))
        except Exception:
            _fail_report(report, checks, "".join(traceback.format_exc(limit=6)))
    finally:
        if not os.environ.get("DLGRADE_KEEP_RUNS"):  # kept: the run's tmpfs stays mounted for a look
            release(run_root / "sandbox")  # the capped tmpfs, if one was mounted
            release(run_root / "verifier")
            tree.remove(run_root)  # student code decides how deep it is; shutil.rmtree recurses
    report.seconds = round(time.monotonic() - started, 2)
    return report


def _held_out_labels(rubric: Rubric, checks: list[Check], options: Options) -> tuple[dict, dict]:
    """The labels each selected accuracy check needs: {item id: {id: label}}, and for the
    items that cannot be scored, why. Missing or bad labels are the staff's input error,
    unless `require_labels` is off (Gradescope), where they cost only those checks."""
    paths = heldout.match_labels(rubric, tuple(Path(p) for p in options.labels))
    truths, problems = {}, {}
    for check in checks:
        spec = check.predictions
        if check.kind != "predictions.accuracy" or spec.id in truths:
            continue
        try:
            if spec.id not in paths:
                raise InputError(f"{spec.file} is scored against held-out labels: pass --labels {spec.labels} "
                                 "(an Id,Label file), or use --self-check to check only its format")
            truths[spec.id] = heldout.load_truth(spec, paths[spec.id])
        except InputError as exc:
            if options.require_labels:
                raise
            problems[spec.id] = str(exc)
    return truths, problems


def _label_exposure(options: Options) -> list[Note]:
    """bubblewrap hides the labels files; a uid of its own hides only what others cannot read."""
    if options.isolation == "bwrap" or not options.labels:
        return []
    if options.isolation == "process":
        return [Note("warning", "The held-out labels were readable by the submission's code (process isolation "
                                "only); install bubblewrap before grading with --labels.")]
    exposed = [Path(p).name for p in options.labels if _readable_by_others(Path(p))]
    if exposed:
        return [Note("warning", f"{', '.join(exposed)} can be read by other users, so the submission's code "
                                "(running as a uid of its own) could have read it: remove the read permission for others.")]
    return []


def _readable_by_others(path: Path) -> bool:
    path = path.resolve()
    try:
        if not os.stat(path).st_mode & 0o004:
            return False
        return all(os.stat(folder).st_mode & 0o001 for folder in path.parents)
    except OSError:
        return False


def _add_scorer_facts(facts, scored: dict, labels_problems: dict, options: Options, findings: dict,
                     files: list[str]) -> None:
    """What the scoring process established itself, beside the sandbox's facts."""
    facts.submitted_files = list(files)
    facts.code_findings = findings
    facts.predictions = scored
    facts.labels_problems = labels_problems
    facts.self_check = options.self_check


def _run(report: GradeReport, rubric: Rubric, checks: list[Check], staged_root: Path, plan: ModulePlan,
         run_root: Path, device: str, options: Options, started: float, handoffs: dict, add_facts=None) -> None:
    sandbox_dir = run_root / "sandbox"
    folder = RunFolder(sandbox_dir)  # capped; released with the run in grade()
    tree.copy(staged_root, sandbox_dir / "submission")
    sources = courseinputs.find_inputs(rubric, options.data)
    inputs = courseinputs.copy_inputs(sources, sandbox_dir / "inputs")
    limits = dataclasses.replace(rubric.limits, **options.limits)
    rubric = dataclasses.replace(rubric, limits=limits)
    config = SandboxConfig(memory_mb=limits.memory_mb, threads=options.threads, isolation=options.isolation,
                           device="cuda" if device in ("cuda", "auto") else "cpu",
                           hidden_paths=_hidden_paths(options))
    runner = Runner(rubric, sandbox_dir / "submission", plan.modules, sandbox_dir, config, device,
                    deadline=started + limits.total_seconds, displays=plan.displays, line_maps=plan.line_maps,
                    unresolved=plan.unresolved, inputs=inputs, input_sources=sources, handoffs=handoffs,
                    folder=folder, source_root=staged_root)
    facts = runner.collect(checks)
    if add_facts is not None:
        add_facts(facts)
    left_out = _left_out_names(plan, facts)
    report.checks = [_explain_left_out(evaluate(c, facts, rubric), left_out) for c in checks]
    marked = [c.check_id for c in report.checks if "measured-inside-submission" in c.tags and c.status is not Status.MANUAL
              and not any(c.check_id.startswith(f"{symbol.lower()}.") for symbol, _ in facts.measured_inside)]
    if marked:
        report.note("info", f"{len(marked)} verdict{'s' if len(marked) > 1 else ''} ({', '.join(marked[:6])}"
                            f"{', ...' if len(marked) > 6 else ''}) rest on what the submission's own process "
                            "measured; results.json marks them (extra_data measured_inside) for the course staff.")
    for key, data in facts.artifacts.items():
        report.artifacts[key] = Artifact("image/png", data, caption=facts.captions.get(key, Path(key).name))
    for rel, loaded in (facts.load or {}).get("modules", {}).items():
        name = plan.displays.get(rel, rel)
        err = loaded.get("error")
        if loaded.get("status") == "partial" and err:
            report.note("warning", f"Importing {name} stopped{_place(err)} with {err['type']}: {err['message']}. "
                                   "Only what was defined before that line was graded.")
        for skipped in loaded.get("skipped", []):
            report.note("info", f"{name}: {_skipped_text(skipped, plan.line_maps.get(rel))}")
    for (symbol, suffix), why in facts.measured_inside.items():
        report.note("warning", f"{symbol}{f' ({suffix})' if suffix else ''} was {why}. Its verdicts rest on what "
                               "that process reported, so they are marked for the course staff.")
    for text in facts.hazards:
        report.note("warning", runner.localize(text))  # "module.py:LINE" of a notebook -> its cell
    for symbol, info in (facts.load or {}).get("symbols", {}).items():
        if info.get("defined_as"):
            report.note("info", f"{symbol} is defined as {info['defined_as']} in {facts.file_of(symbol)}; graded under "
                                "that name (the handout's spelling is " + symbol + ").")
    report.student_output = runner.student_output()
    env = facts.environment
    report.environment = {
        "dlgrade": __version__, "python": env.get("python", "?"), "torch": env.get("torch", "?"),
        "device": _device_label(device, env),
        "isolation": _isolation_label(env.get("isolation", "?"), env.get("own uid") == "yes"),
        "kernel limits": env.get("cgroups") or "none (watchdog only)",
        "peak memory (MB)": f"{facts.peak_tree_mb:,.0f}",
    }
    report.environment["run folder limits"] = f"{folder.quota.megabytes:,} MB, {folder.quota.inodes:,} files " \
                                              f"({folder.enforcement})"
    lost = lost_protections(env.get("isolation", "?"), (env.get("cgroups") or "").split(","), env.get("namespaces", ""))
    if lost:
        report.note("warning", "Isolation was weaker than bubblewrap as root:\n" + "\n".join(f"- {t}." for t in lost))
    report.timings = _timings(facts, checks)


def _left_out_names(plan: ModulePlan, facts) -> dict[str, str]:
    """Names the graded code may need that a notebook sets in code the grader did not run."""
    names = dict(plan.left_out)
    for rel, loaded in (facts.load or {}).get("modules", {}).items():
        for item in loaded.get("skipped", []):
            where = f"{plan.displays.get(rel, rel)} cell {item.get('cell')}" if item.get("cell") else rel
            for name in re.findall(r"^\s*([A-Za-z_]\w*)\s*(?::[^=]*)?=(?!=)", str(item.get("code", ""))):
                names.setdefault(name, where)
    return names


def _explain_left_out(result, left_out: dict[str, str]):
    """A NameError on a name a left-out notebook cell sets: say so, since the student ran
    that cell and has no reason to suspect it."""
    match = re.search(r"name '(\w+)' is not defined", result.message) if not result.passed else None
    if match and match.group(1) in left_out:
        name = match.group(1)
        why = (f"{name} is set in {left_out[name]}, which the grader does not run (it trains, loads data or needs "
               f"something that does). Code that is graded should get what it needs from its arguments, or "
               f"build it itself.")
        result.hint = f"{why} {result.hint}".strip()
    return result


def _place(err: dict) -> str:
    if not err.get("file"):
        return ""
    if err.get("cell"):
        return f" at {err['file']} cell {err['cell']}, line {err['line']}"
    return f" at {err['file']} line {err['line']}"


def _skipped_text(item: dict, line_map: LineMap | None) -> str:
    cell, line = item.get("cell"), item.get("line")
    where = f"cell {cell}, line {line}" if cell else f"line {line}"
    code = str(item.get("code", "")).strip()
    why = f"{item.get('type', 'error')}: {item.get('message', '')}".strip()
    return f"{where} (`{code[:80]}`) was not run while grading: {why}"


def _timings(facts, checks: list[Check]) -> dict:
    """Seconds and peak memory per probe, for `make bench` and the closing figures."""
    from .runner import probe_key

    out = {"load": {"seconds": facts.load_seconds, "peak_mb": facts.load_peak_mb}}
    for key, outcome in facts.probes.items():
        out["/".join(map(str, key))] = {"seconds": outcome.seconds, "peak_mb": outcome.peak_mb}
    out["checks"] = {c.check_id: "/".join(map(str, probe_key(c))) for c in checks if probe_key(c)}
    out["peak_tree_mb"] = facts.peak_tree_mb
    out["verifier_peak_mb"] = facts.verifier_peak_mb
    out["models_exported"] = facts.models_exported
    out["models_inside"] = len(facts.measured_inside)
    return out


# ---------------------------------------------------------------- outputs

def write_outputs(report: GradeReport, out_dir: Path | str) -> dict[str, Path]:
    """report.html, then results.json last, each written whole (temp file + rename)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    html_path = _atomic_write(out / "report.html", render_html(report))
    json_path = _atomic_write(out / "results.json", json.dumps(to_results(report), indent=2, ensure_ascii=False))
    return {"html": html_path, "json": json_path}


def failure_report(assignment: str, submission: str, message: str, *, grader_error: bool = False) -> GradeReport:
    """A report for input that could not be graded at all (or a grader that broke early)."""
    title = assignment
    checks: list[Check] = []
    try:
        rubric = load_rubric(assignment)
        title, checks = rubric.title, rubric.checks()
    except (KeyError, RubricError):
        pass
    report = GradeReport(assignment=assignment, title=title, submission=submission)
    report.note("error", message)
    _fail_report(report, checks, message if grader_error else None, reason=message)
    return report


def _fail_report(report: GradeReport, checks: list[Check], grader_error: str | None, reason: str | None = None) -> None:
    """Every check failed with the same explanation, so the total stays honest."""
    report.grader_error = grader_error
    why = reason or "the grader failed before this check could run; the course staff has the details"
    report.checks = [evaluate_blank(c, why) for c in checks]


def evaluate_blank(check: Check, why: str) -> CheckResult:
    if check.kind == "manual":
        from .checks import manual

        return manual(check)
    return CheckResult(check.check_id, check.name, check.part, check.number, check.points, 0.0, Status.FAILED,
                       message=f"Not graded: {why}", visibility=check.visibility, tags=[f"part-{check.part}"])


def _atomic_write(path: Path, text: str) -> Path:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path


# ---------------------------------------------------------------- helpers

def assignment_rubric(assignment: str) -> Rubric:
    """The rubric of an assignment id; an unknown id is the caller's input error."""
    try:
        return load_rubric(assignment)
    except KeyError as exc:
        raise InputError(exc.args[0]) from None


def _select(checks: list[Check], options: Options) -> list[Check]:
    if options.self_check:
        # Accuracy needs the held-out labels, which only grading has.
        checks = [c for c in checks if c.visibility == "visible" and c.kind != "predictions.accuracy"]
    if options.only:
        matching = [c for c in checks if any(fnmatch.fnmatchcase(c.check_id, p) for p in options.only)]
        if not matching and not (options.self_check and checks):
            raise InputError(f"no check matches {', '.join(options.only)}")
        checks = matching
    return checks


def _device(requested: str) -> str:
    if requested not in ("auto", "cpu", "cuda"):
        raise InputError(f"--device must be auto, cpu or cuda, not {requested!r}")
    if requested == "cuda" and not glob.glob("/dev/nvidia[0-9]*"):
        raise InputError("--device cuda: no NVIDIA GPU is visible on this machine")
    if requested == "auto":
        return "cuda" if glob.glob("/dev/nvidia[0-9]*") else "cpu"
    return requested


def _device_label(device: str, env: dict) -> str:
    if device == "cuda" and env.get("cuda") == "True":
        return f"cuda ({env.get('gpu', 'GPU')})"
    return f"cpu ({env.get('threads', '?')} threads)"


def _isolation_label(level: str, own_uid: bool = True) -> str:
    who = "a uid of its own" if own_uid else "your uid, in a user namespace"
    return {"bwrap": f"bubblewrap sandbox (allowlisted read-only files, no network, {who})",
            "user": "a uid of its own, without bubblewrap", "process": "separate process only"}.get(level, level)


def _runs_root() -> Path:
    """All runs live under one private folder, which the sandbox hides from student code."""
    root = Path(tempfile.gettempdir()) / f"dlgrade-runs-{os.getuid()}"
    root.mkdir(mode=0o700, exist_ok=True)
    return root


def _hidden_paths(options: Options) -> list[str]:
    hidden = [str(_runs_root())]  # other submissions being graded, and this one's original copy
    for name in ("reference", "tests", "examples"):  # solutions and test fixtures of a source checkout
        if (REPO / name).is_dir():
            hidden.append(str(REPO / name))
    return hidden + list(options.hidden_paths)
