"""grade_class: read a class export, grade what changed, and write the class's outputs.

The batch only schedules, records and aggregates: each submission is graded by its own
`grade` command (grader.batch.jobs), whose results.json and report.html land in
OUT/<key>/ unchanged. Everything after reads those files back, checked, never trusting
that a job on another machine wrote what it should.
"""
from __future__ import annotations

import hashlib
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import jsonschema

from .. import heldout
from ..api import assignment_rubric
from ..errors import InputError
from ..rubric import Rubric
from . import jobs, ledger
from .engines import DaskEngine, LocalEngine, cores_per_job, default_jobs, visible_gpus
from .inputs import read_export
from .records import ClassExport, Person, Submission
from .roster import apply_roster

_SCHEMA_PATH = Path(__file__).resolve().parents[1] / "render" / "gradescope-results.schema.json"


@dataclass
class BatchOptions:
    roster: Path | None = None
    jobs: int = 0  # 0: one per core, as memory allows (engines.default_jobs)
    engine: str = "local"  # local | dask
    scheduler: str | None = None  # the Dask scheduler's address; None starts a LocalCluster
    cluster: object = None  # a distributed cluster object to use (the tests' LocalCluster)
    labels: tuple[Path, ...] = ()
    data: Path | None = None
    device: str = "auto"
    isolation: str = "auto"
    checks: tuple[str, ...] = ()  # check-id patterns, as `grade --only`
    force: bool = False  # regrade every submission
    only: tuple[str, ...] = ()  # regrade only these students (id, email or folder key); the rest are kept
    timeout_s: float = 1800.0  # one submission's whole grade
    starter: tuple[Path, ...] = ()  # starter code: boilerplate for the integrity report
    progress: bool | None = None  # None: a bar on a terminal, a line per submission otherwise


@dataclass
class Row:
    """One submission's place in the class: who, what became of it, and its results."""
    submission: Submission
    status: str
    message: str = ""
    seconds: float = 0.0
    results: dict | None = None
    reused: bool = False  # kept from an earlier run: nothing it depends on changed
    host: str = ""


@dataclass
class BatchResult:
    out: Path
    export: ClassExport
    rows: list[Row]
    graded_now: int = 0
    seconds: float = 0.0
    outputs: dict[str, Path] = field(default_factory=dict)

    @property
    def grader_faults(self) -> list[Row]:
        return [r for r in self.rows if r.status == jobs.GRADER_ERROR]

    @property
    def exit_code(self) -> int:
        """0 whatever the students did; 1 when the grader itself failed on any submission."""
        return 1 if self.grader_faults else 0


def grade_class(source: Path | str, assignment: str, out: Path | str, options: BatchOptions | None = None,
                log: Callable[[str], None] | None = None) -> BatchResult:
    """Grade every submission in SOURCE into OUT. Raises InputError for the TA's own input
    (no such source, an unknown assignment, an unreadable roster or labels file)."""
    options = options or BatchOptions()
    log = log or (lambda line: print(line, file=sys.stderr, flush=True))
    started = time.monotonic()
    source, out = Path(source), Path(out)
    if not source.exists():
        raise InputError(f"{source}: no such file or folder")
    rubric = assignment_rubric(assignment)
    labels = _check_labels(rubric, options.labels)
    out.mkdir(parents=True, exist_ok=True)
    export = read_export(source, out / ".batch" / "inputs")
    if options.roster:
        apply_roster(export, Path(options.roster))
    # The rubric as built (with its bases): a changed base file regrades as well.
    context = ledger.Context(rubric=hashlib.sha256(repr(rubric).encode()).hexdigest(),
                             labels=ledger.digest_path(None) if not labels else
                             "".join(ledger.digest_path(p) for p in sorted(labels.values())),
                             data=ledger.digest_listing(options.data), options=_grade_options(options, labels))
    rows: dict[str, Row] = {}
    todo: list[jobs.Job] = []
    prints: dict[str, str] = {}
    for sub in export.submissions:
        if sub.path is None:
            rows[sub.key] = Row(sub, jobs.UNREADABLE, sub.problem or "nothing in it could be graded")
            continue
        prints[sub.key] = context.fingerprint(sub.path)
        kept = None if _regrade(sub, options) else ledger.finished(out / sub.key, prints[sub.key])
        if kept is not None:
            rows[sub.key] = _row(sub, kept, out, reused=True)
        else:
            todo.append(jobs.Job(key=sub.key, path=str(sub.path.resolve()), assignment=rubric.id,
                                 options=context.options, timeout_s=options.timeout_s))
    by_key = {s.key: s for s in export.submissions}
    progress = _Progress(len(todo), options.progress, log)

    def done(job: jobs.Job, outcome: dict) -> None:
        row = _keep(by_key[job.key], outcome, out, prints[job.key], rubric)
        rows[job.key] = row
        progress.step(row)

    try:
        _engine(options).run(todo, done)
    finally:
        progress.close()
    ordered = [rows[s.key] for s in export.submissions if s.key in rows]
    result = BatchResult(out=out, export=export, rows=ordered, graded_now=len(todo),
                         seconds=round(time.monotonic() - started, 2))
    from .outputs import write_class_outputs

    result.outputs = write_class_outputs(result, rubric, labels, options)
    return result


def _check_labels(rubric: Rubric, files: tuple[Path, ...]) -> dict[str, Path]:
    """Labels are checked once for the class: a bad file is the TA's error, not 100 students'."""
    matched = heldout.match_labels(rubric, tuple(files))
    for spec in rubric.predictions:
        if spec.id in matched:
            heldout.load_truth(spec, matched[spec.id])
    return matched


def _grade_options(options: BatchOptions, labels: dict[str, Path]) -> tuple[str, ...]:
    args = ["--device", options.device, "--isolation", options.isolation]
    for path in labels.values():
        args += ["--labels", str(Path(path).resolve())]
    if options.data:
        args += ["--data", str(Path(options.data).resolve())]
    for pattern in options.checks:
        args += ["--only", pattern]
    return tuple(args)


def _regrade(sub: Submission, options: BatchOptions) -> bool:
    if options.force:
        return True
    if not options.only:
        return False
    names = {sub.key.lower(), *(p.id.lower() for p in sub.people), *(p.email.lower() for p in sub.people if p.email)}
    return bool(names & {o.lower() for o in options.only})


def _engine(options: BatchOptions):
    gpus = visible_gpus() if options.device in ("auto", "cuda") else []
    if options.engine == "dask":
        cluster, owned, threads = options.cluster, False, 0
        if cluster is None and not options.scheduler:
            from distributed import LocalCluster

            workers = options.jobs or default_jobs(len(gpus))
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1,
                                   processes=True, resources={"grade": 1}, dashboard_address=None)
            owned, threads = True, cores_per_job(workers)
        return DaskEngine(options.scheduler, cluster=cluster, gpu=bool(gpus) and options.device == "cuda", owned=owned,
                          threads=threads)
    if options.engine != "local":
        raise InputError(f"--engine {options.engine}: use local or dask")
    return LocalEngine(options.jobs or default_jobs(len(gpus)), gpus)


def _keep(sub: Submission, outcome: dict, out: Path, fingerprint: str, rubric: Rubric) -> Row:
    """Check what a job sent back, write it under OUT/<key>/, and record it as finished."""
    folder = out / sub.key
    folder.mkdir(parents=True, exist_ok=True)
    status, message = outcome.get("status", jobs.GRADER_ERROR), outcome.get("message", "")
    results = _valid_results(outcome.get("results", ""), rubric)
    if results is None and status != jobs.TIMEOUT and status != jobs.KILLED:
        status, message = jobs.GRADER_ERROR, message or "the grader wrote no readable results.json"
    if results is None:
        # A timeout or kill leaves no results.json: write one that says what happened, so the
        # student's folder always explains itself.
        results = _stand_in_results(rubric, sub, message or status)
    ledger.write_atomic(folder / "results.json", json.dumps(results, indent=2, ensure_ascii=False))
    if outcome.get("report"):
        ledger.write_atomic(folder / "report.html", outcome["report"])
    entry = {"fingerprint": fingerprint, "status": status, "message": message, "exit_code": outcome.get("exit_code"),
             "seconds": outcome.get("seconds", 0.0), "host": outcome.get("host", ""),
             "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "stderr_tail": outcome.get("stderr_tail", "")}
    ledger.record(folder, entry)  # last: only now does a rerun count it finished
    return _row(sub, entry, out)


def _row(sub: Submission, entry: dict, out: Path, reused: bool = False) -> Row:
    try:
        results = json.loads((out / sub.key / "results.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        results = None
    return Row(sub, entry.get("status", jobs.GRADER_ERROR), entry.get("message", ""), float(entry.get("seconds") or 0),
               results if isinstance(results, dict) else None, reused=reused, host=entry.get("host", ""))


def _valid_results(text: str, rubric: Rubric) -> dict | None:
    if not text:
        return None
    try:
        results = json.loads(text)
        jsonschema.validate(results, _schema())
    except (ValueError, jsonschema.ValidationError):
        return None
    if (results.get("extra_data") or {}).get("assignment") != rubric.id:
        return None
    return results


_SCHEMA: dict | None = None


def _schema() -> dict:
    global _SCHEMA
    if _SCHEMA is None:
        _SCHEMA = json.loads(_SCHEMA_PATH.read_text(encoding="utf-8"))
    return _SCHEMA


def _stand_in_results(rubric: Rubric, sub: Submission, why: str) -> dict:
    from ..api import failure_report
    from ..render.gradescope import to_results

    return to_results(failure_report(rubric.id, sub.source or sub.key, f"Not graded: {why}."))


class _Progress:
    def __init__(self, total: int, bar: bool | None, log: Callable[[str], None]) -> None:
        from tqdm import tqdm

        self.total, self.count, self.log = total, 0, log
        self.bar = tqdm(total=total, unit="submission", disable=None if bar is None else not bar, file=sys.stderr)

    def step(self, row: Row) -> None:
        self.count += 1
        if not self.bar.disable:
            self.bar.update(1)
            return
        score = f" {row.results.get('score', 0):g}" if row.results and row.status == jobs.GRADED else ""
        why = f": {row.message}" if row.message and row.status != jobs.GRADED else ""
        who = ", ".join(p.id for p in row.submission.people) or row.submission.key
        self.log(f"[{self.count}/{self.total}] {who}: {row.status}{score} in {row.seconds:.1f} s{why}")

    def close(self) -> None:
        self.bar.close()


def people_label(people: tuple[Person, ...]) -> str:
    return "; ".join(f"{p.name} ({p.id})" if p.name and p.name != p.id else p.id for p in people)
