"""Run the worker (and so the student's code) in a separate, bounded process.

Isolation, strongest first, chosen by what this machine allows:
- "bwrap": bubblewrap namespaces over a file system built as an allowlist (grader.bwrap):
  an unprivileged uid that owns nothing, no network, its own process namespace.
- "user": root without a usable bubblewrap (a Gradescope container): the worker runs as
  the sandbox's own uid (grader.identity), which cannot signal the scorer, leave its
  cgroup or write outside the run folder and the world-writable scratch folders.
- "process": not root and no bubblewrap: limits only, and the report says what is lost.
Root with no way to drop privileges is refused: student code never runs as root (grader.isolation
picks the mode).
In every mode: a clean environment, its own session, rlimits, a watchdog, per-call time
limits, replies as JSON lines on private pipes, and this process as the subreaper of
everything the worker starts, so all of it is ended before results are written.
"""
from __future__ import annotations

import os
import resource
import select
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import bwrap, identity, protocol
from .limits import Cgroups, effective_cpus, process_tree, rss_kb
from .capture import Capture
from .runfolder import RunFolder
from .isolation import choose_isolation

LOG_LIMIT = 64 * 1024


class WorkerCrashed(Exception):
    """The worker stopped answering. `reason`: timeout, memory, died, disk or protocol."""

    def __init__(self, reason: str, detail: str):
        self.reason, self.detail = reason, detail
        super().__init__(f"{reason}: {detail}")


@dataclass
class SandboxConfig:
    memory_mb: int = 3000
    threads: int = 0  # 0: torch's default
    isolation: str = "auto"  # auto | bwrap | user | process
    device: str = "cpu"  # "cuda" exposes the GPU to the worker
    hidden_paths: list[str] = field(default_factory=list)
    python: str = sys.executable


@dataclass
class Reply:
    ok: bool
    result: dict
    error: dict | None
    seconds: float
    peak_mb: float
    notes: list[str] = field(default_factory=list)


class Sandbox:
    """One worker process at a time; `start()` again replaces a worker that broke."""

    def __init__(self, run_dir: Path, config: SandboxConfig, folder: RunFolder | None = None,
                 module: str = "grader.worker"):
        self.run_dir = run_dir
        self.module = module  # the program it runs: the worker, or grader.verifier
        self.config = config
        self.folder = folder  # the run folder's caps; None: none beyond RLIMIT_FSIZE
        self.isolation = choose_isolation(config.isolation, config.python)
        self.way = bwrap.usable_way(config.python) if self.isolation == "bwrap" else None
        # The uid student code runs as, where this process may choose one (root).
        self.uid = identity.next_uid() if identity.can_switch() and self.isolation in ("bwrap", "user") else None
        self.peak_tree_mb = 0.0
        self.starts = 0
        self._proc: subprocess.Popen | None = None
        self._cgroups: Cgroups | None = None
        self.cgroup_kinds: list[str] = []
        self._next_id = 1
        self._killed_for: str | None = None  # memory | processes | disk, when the watchdog ended it
        self._watch_stop = threading.Event()
        self._buffer = b""
        self._children_before: set[int] = set()
        self._kill_lock = threading.Lock()  # one kill at a time: the watchdog's must end before a new worker starts
        self.over_quota: str | None = None
        self.progress: dict | None = None  # the last progress report of the call under way
        self.output = Capture(LOG_LIMIT)  # what the student's code prints, kept in memory, head and tail
        for sub in ("home", "tmp", "shm"):
            (run_dir / sub).mkdir(parents=True, exist_ok=True)
        if self.uid is not None:
            identity.kill_uid(self.uid)  # a uid that owns nothing: not even a process
            RunFolder.hand_over(run_dir, self.uid)
        identity.become_subreaper()

    # ------------------------------------------------------------------ lifecycle

    def start(self, timeout: float) -> dict:
        self.launch()
        return self.wait_ready(timeout)

    def wait_ready(self, timeout: float) -> dict:
        """The started process's first message, once it has imported what it needs."""
        hello = self._read_reply(0, timeout, "starting the grading process", "hello")
        return hello.result

    def launch(self) -> None:
        """Start the process and return at once: its imports overlap the caller's work."""
        self.stop()
        self.starts += 1
        req_read, req_write = os.pipe()
        rep_read, rep_write = os.pipe()
        env = self._environment(req_read, rep_write)
        command = [self.config.python, "-I", "-m", self.module]
        if os.geteuid() == 0 and self.starts == 1:
            Cgroups.sweep()
        self._cgroups = Cgroups(f"dlgrade-{os.getpid()}-{id(self):x}-{self.starts}", self.config.memory_mb) \
            if os.geteuid() == 0 else None
        self.cgroup_kinds = self._cgroups.kinds if self._cgroups else []
        if self.isolation == "bwrap":
            command = bwrap.command(self.run_dir, self.config.python, self.way, self.uid or os.getuid(),
                                    self.config.device, tuple(self.config.hidden_paths)) + command
        self._children_before = set(identity.children_of(os.getpid()))
        out_read, out_write = os.pipe()
        try:
            self._proc = subprocess.Popen(command, env=env, cwd=self.run_dir, stdin=subprocess.DEVNULL,
                                          stdout=out_write, stderr=out_write, pass_fds=(req_read, rep_write),
                                          preexec_fn=self._preexec(), close_fds=True)
        finally:
            os.close(out_write)
            os.close(req_read)
            os.close(rep_write)
        self.output.start(out_read)
        self._requests, self._replies = req_write, rep_read
        self._buffer = b""
        self._killed_for = None
        self._watch_stop = threading.Event()
        threading.Thread(target=self._watch, args=(self._proc, self._watch_stop), daemon=True).start()

    def stop(self) -> None:
        if self._proc is None:
            return
        self._watch_stop.set()
        with self._kill_lock:
            self._kill(self._proc)
        if self._cgroups is not None:
            self._cgroups.remove()
        for fd in (self._requests, self._replies):
            try:
                os.close(fd)
            except OSError:
                pass
        self._proc = None
        if self.uid is not None and self.isolation == "user":
            identity.remove_files_of(self.uid)  # under bubblewrap /tmp was the run folder's own

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    # ------------------------------------------------------------------ calls

    def call(self, op: str, args: dict, timeout: float, what: str) -> Reply:
        """Send one request and wait for its reply; raises WorkerCrashed and kills the worker."""
        return self.receive(self.send(op, args), timeout, what, op)

    def send(self, op: str, args: dict) -> int:
        """Send one request without waiting (its reply is `receive`d later): its id."""
        if not self.running:
            raise WorkerCrashed("died", "the grading process is not running")
        request_id = self._next_id
        self._next_id += 1
        try:
            data = protocol.encode({"id": request_id, "op": op, "args": args})
            view = memoryview(data)
            while view:
                view = view[os.write(self._requests, view):]
        except OSError as exc:
            self._fail("died", f"could not send the request ({exc.strerror})")
        return request_id

    def receive(self, request_id: int, timeout: float, what: str, op: str) -> Reply:
        """The reply to a request `send` made; raises WorkerCrashed and kills the worker."""
        return self._read_reply(request_id, timeout, what, op)

    def _read_reply(self, request_id: int, timeout: float, what: str, op: str | None = None) -> Reply:
        if self._proc is None:  # stopped since the request was sent: its channel is closed
            raise WorkerCrashed("died", f"{what} stopped the grading process before it answered")
        deadline = time.monotonic() + timeout
        self.progress = None
        while True:
            while b"\n" not in self._buffer:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    self._fail("timeout", f"{what} did not finish within {timeout:.0f} s{self._progress_text()}")
                ready, _, _ = select.select([self._replies], [], [], min(remaining, 0.5))
                if not ready:
                    if self._proc.poll() is not None:
                        self._fail_exited(what)
                    continue
                chunk = os.read(self._replies, 1 << 16)
                if not chunk:
                    self._fail_exited(what)
                self._buffer += chunk
                if len(self._buffer) > protocol.MAX_MESSAGE_BYTES:
                    self._fail("protocol", f"{what} broke the grader's channel: the grading process sent a reply "
                                           f"over {protocol.MAX_MESSAGE_BYTES >> 20} MB")
            line, self._buffer = self._buffer.split(b"\n", 1)
            try:
                message = protocol.envelope(protocol.decode(line), op)
            except protocol.ProtocolError as exc:
                self._fail("protocol", f"{what} broke the grader's channel: the grading process sent {exc} "
                                       "(did the code write to the grader's channel or replace its functions?)")
            if message.id is None:  # a progress report
                self.progress = message.progress
                continue
            break
        if message.id != request_id:
            self._fail("protocol", f"{what} broke the grader's channel: the grading process answered out of turn")
        return Reply(message.ok, message.result, message.error, message.seconds, message.peak_mb, message.notes)

    def _progress_text(self) -> str:
        """'; by then it had generated 412 of 1,000 characters (...)', from the last report."""
        p = self.progress or {}
        try:
            done = int(p.get("done"))
            total = int(p["total"]) if p.get("total") is not None else None
        except (TypeError, ValueError):
            return ""
        what, unit, note = (str(p.get(k) or "")[:limit] for k, limit in (("what", 80), ("unit", 20), ("note", 160)))
        text = f"; by then {what or 'it'} had reached {done:,}" + (f" of {total:,}" if total else "") + \
            (f" {unit}" if unit else "")
        return text + (f" ({note})" if note else "")

    def _fail_exited(self, what: str):
        try:
            self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:  # alive, but its end of the channel is gone
            self._fail("protocol", f"{what} closed the grading process's reply channel")
        code = self._proc.returncode
        if self._killed_for == "processes":
            self._fail("died", f"{what} started more than {Cgroups.MAX_PROCESSES} processes")
        if self._killed_for == "disk":
            self._fail("disk", f"{what} wrote {self.over_quota} into its folder (the limit for a run)")
        if self._killed_for == "memory" or (self._cgroups is not None and self._cgroups.hit_memory_limit()):
            self._fail("memory", f"{what} used more than {self.config.memory_mb} MB of memory")
        if code == protocol.CHANNEL_BROKEN:
            self._fail("protocol", f"{what} broke the grader's channel: the grading process could no longer "
                                   "read requests or send replies (did the code close or replace its pipes?)")
        if code is not None and code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = str(-code)
            detail = f"{what} stopped the grading process with signal {name}"
        else:
            detail = f"{what} ended the grading process (exit code {code})"
        self._fail("died", detail)

    def _fail(self, reason: str, detail: str):
        self.stop()
        raise WorkerCrashed(reason, detail)

    # ------------------------------------------------------------------ output

    def student_output(self) -> str:
        """What the student's code printed, head and tail if long."""
        return self.output.text()

    # ------------------------------------------------------------------ process set-up

    def _environment(self, req_read: int, rep_write: int) -> dict[str, str]:
        tmp = str(self.run_dir / "tmp")
        threads = str(self.config.threads or effective_cpus())
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "HOME": str(self.run_dir / "home"),
            "TMPDIR": tmp,
            "LANG": "C.UTF-8",
            "MPLBACKEND": "Agg",
            "MPLCONFIGDIR": tmp,
            "TORCH_HOME": tmp,
            "XDG_CACHE_HOME": tmp,
            "HF_HUB_OFFLINE": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONHASHSEED": "0",
            "PYTHONUNBUFFERED": "1",
            "OMP_NUM_THREADS": threads,
            "MKL_NUM_THREADS": threads,
            # The worker and the verifier compute at once on the same cores: OpenMP threads that
            # spin while they wait for work took the CPU the other process needed (hw4: 15 s -> 11 s).
            "OMP_WAIT_POLICY": "PASSIVE",
            "DLGRADE_THREADS": threads,
            "DLGRADE_FDS": f"{req_read},{rep_write}",
        }
        if self.module == "grader.worker":
            # Large tensors go back to the OS when freed, so one model's memory is not
            # still held while the next is built.
            env["MALLOC_MMAP_THRESHOLD_"] = "65536"
        else:
            # The verifier runs one model at a time and is gone after the grade: it keeps
            # what it frees, for the next training step to reuse. Mapping each step's
            # gradients afresh cost it a third of its time in page faults (80 MB more at its peak).
            env.update(MALLOC_MMAP_MAX_="0", MALLOC_TRIM_THRESHOLD_=str(1 << 30))
        if self.config.device != "cuda":
            env["CUDA_VISIBLE_DEVICES"] = ""
        if self.isolation == "process":
            env["DLGRADE_NAMESPACES"] = "1"  # the worker makes its own, where the kernel lets it
        if self.isolation == "bwrap" and self.way == "rootns":
            env["DLGRADE_DROP_UID"] = str(self.uid)  # the worker's first act
        env["USER"] = env["LOGNAME"] = "student"  # the uid has no passwd entry
        return env

    def _preexec(self):
        cgroups = self._cgroups
        drop = self.uid if self.isolation == "user" or (self.isolation == "bwrap" and self.way == "userns") else None

        def setup():
            os.setsid()  # its own session: no signal to the scorer's group reaches it, nor its to ours
            if cgroups is not None:
                cgroups.join()  # as root, before the uid changes: the uid cannot write cgroup files
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
            resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 30, 1 << 30))  # a 233 MB checkpoint fits
            resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024))
            if drop is not None:
                resource.setrlimit(resource.RLIMIT_NPROC, (512, 512))  # counts per uid, and the uid is ours alone
                identity.drop_to(drop)()

        return setup

    # ------------------------------------------------------------------ watchdog and killing

    def _pids(self, proc: subprocess.Popen) -> list[int]:
        """Every process of the submission: by uid where it has its own, else the worker's
        tree and whatever this process adopted as their subreaper."""
        pids = process_tree(proc.pid)
        if self.uid is not None:  # the uid is this sandbox's alone: nothing of another grade is counted
            return pids + [p for p in identity.processes_of(self.uid) if p not in pids]
        for orphan in set(identity.children_of(os.getpid())) - self._children_before - {proc.pid}:
            pids += process_tree(orphan)
        return pids

    def _watch(self, proc: subprocess.Popen, stop: threading.Event) -> None:
        limit_kb = self.config.memory_mb * 1024
        ticks = 0
        while not stop.wait(0.1):
            if proc.poll() is not None:
                return
            ticks += 1
            pids = self._pids(proc)
            total = sum(rss_kb(pid) for pid in pids)
            self.peak_tree_mb = max(self.peak_tree_mb, total / 1024)
            why = "processes" if len(pids) > Cgroups.MAX_PROCESSES else "memory" if total > limit_kb else None
            if why is None and self.folder is not None and ticks % 10 == 0:
                self.over_quota = self.folder.over_quota()
                why = "disk" if self.over_quota else None
            if why:
                with self._kill_lock:
                    if not stop.is_set():  # the worker it watched may already be gone, and a new one started
                        self._killed_for = why
                        self._kill(proc)
                return

    def _kill(self, proc: subprocess.Popen) -> None:
        """Everything the submission started, then the worker (bubblewrap's namespace dies
        with it); by uid where it has one, since kill(-1) as that uid misses nothing."""
        for _ in range(10):
            pids = [p for p in self._pids(proc) if p != os.getpid()]
            if not pids:
                break
            for pid in reversed(pids):
                _signal(pid)
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            if self.uid is not None:
                identity.kill_uid(self.uid, rounds=2)
            try:
                proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                pass
            identity.reap_orphans(set(pids) - {proc.pid})
            if proc.poll() is not None and not [p for p in self._pids(proc) if p != proc.pid]:
                break
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass


def _signal(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
