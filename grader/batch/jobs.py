"""One submission graded exactly as `grade SUBMISSION` grades it, in a process of its own.

The batch never grades in its own process: each submission is a fresh `grade` command with
its own sandbox, so nothing one student's code does can reach another's grade, and a
grader crash, a hang or an out-of-memory kill costs that submission only. The job returns
what the command wrote as text; the scheduling side checks it before it keeps it, because
on a cluster the job runs on another machine.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

# Outcome.status values, each a row's status in the gradebook.
GRADED = "graded"  # the grader finished (whatever the score)
UNGRADABLE = "ungradable"  # `grade` refused the input (exit 2): an unreadable archive, no code
GRADER_ERROR = "grader-error"  # the grader itself failed (exit 1): the staff's fault, not the student's
TIMEOUT = "timeout"  # the whole grade ran past the batch's limit
KILLED = "killed"  # ended by a signal: most often the kernel's out-of-memory killer
MISSING = "missing"  # on the roster, nothing submitted
UNREADABLE = "unreadable"  # in the export, but nothing in it could be handed to the grader

MAX_REPORT_BYTES = 64 * 1024 * 1024  # report.html embeds the kernel images; far below this in practice
MAX_RESULTS_BYTES = 8 * 1024 * 1024  # results.json is bounded by its renderer to well under this
_TAIL = 4_000  # characters of the command's stderr kept for the staff
# The commands running in this process, so that stopping the batch (Ctrl-C reaches only the
# main thread; the jobs wait in others) ends them too: see stop_all.
_LIVE: set[subprocess.Popen] = set()
_LIVE_LOCK = threading.Lock()


@dataclass(frozen=True)
class Job:
    key: str  # the submission's folder under OUT
    path: str  # what `grade` is given
    assignment: str
    options: tuple[str, ...] = ()  # further `grade` options: --device, --labels, --data, --only, --isolation
    timeout_s: float = 1800.0
    gpu: str | None = None  # CUDA_VISIBLE_DEVICES for this job, where the engine hands out devices
    threads: int = 0  # torch threads for each of its sandboxes; 0: the grade's own default (every core)


@dataclass
class Outcome:
    key: str
    status: str
    exit_code: int | None = None
    seconds: float = 0.0
    message: str = ""  # why it is not GRADED, in words for the summary
    results: str = ""  # results.json as written, when there is one
    report: str = ""  # report.html as written
    stderr_tail: str = ""  # the end of the command's own output, for the staff
    host: str = field(default_factory=lambda: os.uname().nodename)

    def as_dict(self) -> dict:
        return asdict(self)


def lost(job: Job, exc: BaseException) -> dict:
    """The outcome of a job the engine could not finish (a worker lost past its retries)."""
    return Outcome(key=job.key, status=GRADER_ERROR, message=f"the batch could not grade it: {type(exc).__name__}: {exc}"[:500],
                   host="").as_dict()


def command(job: Job, out: Path) -> list[str]:
    threads = ["--threads", str(job.threads)] if job.threads else []  # how it runs, not what: not in the fingerprint
    return [sys.executable, "-m", "grader.cli", "submission", job.path, "--assignment", job.assignment,
            "--out", str(out), "--no-color", *job.options, *threads]


def run(job: Job, on_start: Callable[[int], None] | None = None) -> dict:
    """Grade one submission; return its Outcome as plain data (engines send it between machines).
    `on_start(pid)`: told the grade command's pid, for an engine that watches how busy it is."""
    started = time.monotonic()
    scratch = Path(tempfile.mkdtemp(prefix="dlgrade-batch-"))
    out = scratch / "out"
    env = dict(os.environ, DLGRADE_BATCH_PARENT=str(os.getpid()))  # the grade ends if this process is lost
    if job.gpu is not None:
        env["CUDA_VISIBLE_DEVICES"] = job.gpu
    try:
        # A session of its own, so a timeout can end the command's whole process tree.
        with _LIVE_LOCK:
            proc = subprocess.Popen(command(job, out), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                    stdin=subprocess.DEVNULL, env=env, start_new_session=True)
            _LIVE.add(proc)
        if on_start is not None:
            on_start(proc.pid)
        try:
            _, err = proc.communicate(timeout=job.timeout_s)
        except subprocess.TimeoutExpired:
            _kill_tree(proc)
            _, err = proc.communicate()
            return _outcome(job, TIMEOUT, proc.returncode, started, out, err,
                            f"grading took longer than the batch's limit of {job.timeout_s:g} s and was stopped")
        except BaseException:  # Ctrl-C in the batch: leave nothing running behind it
            _kill_tree(proc)
            proc.wait()
            raise
        finally:
            with _LIVE_LOCK:
                _LIVE.discard(proc)
        status, code, message = _status(proc.returncode)
        return _outcome(job, status, code, started, out, err, message)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _status(code: int) -> tuple[str, int, str]:
    if code == 0:
        return GRADED, code, ""
    if code == 2:
        return UNGRADABLE, code, ""
    if code < 0:
        name = signal.Signals(-code).name if -code in signal.valid_signals() else str(-code)
        why = "; most often the machine ran out of memory" if -code == signal.SIGKILL else ""
        return KILLED, code, f"the grader was ended by signal {name}{why}"
    return GRADER_ERROR, code, f"the grader failed (exit status {code})"


def _outcome(job: Job, status: str, code: int | None, started: float, out: Path, err: bytes,
             message: str = "") -> dict:
    results = _read(out / "results.json", MAX_RESULTS_BYTES)
    report = _read(out / "report.html", MAX_REPORT_BYTES)
    tail = err.decode("utf-8", "replace")[-_TAIL:]
    if status in (UNGRADABLE, GRADER_ERROR) and not message:
        message = _explanation(results) or _last_line(tail) or status
    return Outcome(key=job.key, status=status, exit_code=code, seconds=round(time.monotonic() - started, 2),
                   message=message, results=results, report=report, stderr_tail=tail).as_dict()


def _read(path: Path, limit: int) -> str:
    try:
        if path.stat().st_size > limit:
            return ""
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def _explanation(results: str) -> str:
    """The overview's error line of a failure results.json: what `grade` told the student."""
    try:
        overview = json.loads(results).get("output", "")
    except (ValueError, AttributeError):
        return ""
    lines = [line.removeprefix("- error: ") for line in overview.splitlines() if line.startswith("- error:")]
    return lines[0] if lines else ""


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1].removeprefix("grade: ")[:500] if lines else ""


def stop_all() -> None:
    """End every command this process started and has not yet seen finish."""
    with _LIVE_LOCK:
        live = list(_LIVE)
    for proc in live:
        _kill_tree(proc)


def _kill_tree(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
