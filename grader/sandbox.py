"""Run the worker (and so the student's code) in a separate, bounded process.

Isolation, strongest first, chosen by what this machine allows:
- "bwrap": bubblewrap namespaces. The file system is read-only except the run folder,
  paths the grader names (held-out data, outputs, reference code) are hidden, there is
  no network, and every process dies with the sandbox.
- "user": running as root without bwrap (a Gradescope container): the worker runs as
  `nobody`, so root-only files stay unreadable and a fork bomb hits RLIMIT_NPROC.
- "process": a separate process with limits only; the report says isolation is weak.
In every mode: a clean environment, its own session, rlimits, a memory watchdog, per-call
time limits, and replies as JSON lines on private pipes.
"""
from __future__ import annotations

import functools
import os
import pwd
import resource
import select
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import protocol
from .limits import Cgroups, effective_cpus, process_tree, rss_kb

LOG_LIMIT = 64 * 1024


class WorkerCrashed(Exception):
    """The worker stopped answering. `reason`: timeout, memory, died or protocol."""

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


@functools.lru_cache(maxsize=None)
def bwrap_works() -> bool:
    exe = shutil.which("bwrap")
    if not exe:
        return False
    try:
        probe = subprocess.run([exe, *_BWRAP_BASE, *_BWRAP_USER, "--", "/bin/true"], capture_output=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


@functools.lru_cache(maxsize=None)
def nobody_can_run(python: str) -> bool:
    """Whether `nobody` can start this interpreter (it cannot if it lives under /root)."""
    if os.geteuid() != 0:
        return False
    try:
        user = pwd.getpwnam("nobody")
    except KeyError:
        return False
    try:
        probe = subprocess.run([python, "-I", "-c", "import grader.worker"], capture_output=True, timeout=60,
                               preexec_fn=_drop_to(user.pw_uid, user.pw_gid), cwd="/")
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


def choose_isolation(requested: str, python: str) -> str:
    if requested != "auto":
        return requested
    if bwrap_works():
        return "bwrap"
    if nobody_can_run(python):
        return "user"
    return "process"


_BWRAP_BASE = ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--unshare-all",
               "--die-with-parent", "--cap-drop", "ALL"]
_BWRAP_USER = ["--uid", "65534", "--gid", "65534"]


def _drop_to(uid: int, gid: int):
    def drop():
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)

    return drop


class Sandbox:
    """One worker process at a time; `start()` again replaces a worker that broke."""

    def __init__(self, run_dir: Path, config: SandboxConfig):
        self.run_dir = run_dir
        self.config = config
        self.isolation = choose_isolation(config.isolation, config.python)
        self.peak_tree_mb = 0.0
        self.starts = 0
        self._proc: subprocess.Popen | None = None
        self._cgroups: Cgroups | None = None
        self.cgroup_kinds: list[str] = []
        self._next_id = 1
        self._killed_for_memory = False
        self._killed_for_processes = False
        self._watch_stop = threading.Event()
        self._buffer = b""
        self.progress: dict | None = None  # the last progress report of the call under way
        self.log_path = run_dir / "worker.log"
        for sub in ("home", "tmp"):
            (run_dir / sub).mkdir(parents=True, exist_ok=True)
        if self.isolation == "user":
            _hand_to_nobody(run_dir)

    # ------------------------------------------------------------------ lifecycle

    def start(self, timeout: float) -> dict:
        self.stop()
        self.starts += 1
        req_read, req_write = os.pipe()
        rep_read, rep_write = os.pipe()
        env = self._environment(req_read, rep_write)
        command = [self.config.python, "-I", "-m", "grader.worker"]
        if os.geteuid() == 0 and self.starts == 1:
            Cgroups.sweep()
        self._cgroups = Cgroups(f"dlgrade-{os.getpid()}-{id(self):x}-{self.starts}", self.config.memory_mb) \
            if os.geteuid() == 0 else None
        self.cgroup_kinds = self._cgroups.kinds if self._cgroups else []
        preexec = self._preexec(self._cgroups)
        if self.isolation == "bwrap":
            command = self._bwrap_prefix() + command
        log = open(self.log_path, "ab")
        try:
            self._proc = subprocess.Popen(command, env=env, cwd=self.run_dir, stdin=subprocess.DEVNULL, stdout=log,
                                          stderr=log, pass_fds=(req_read, rep_write), preexec_fn=preexec,
                                          close_fds=True)
        finally:
            log.close()
            os.close(req_read)
            os.close(rep_write)
        self._requests, self._replies = req_write, rep_read
        self._buffer = b""
        self._killed_for_memory = False
        self._killed_for_processes = False
        self._watch_stop = threading.Event()
        threading.Thread(target=self._watch_memory, args=(self._proc, self._watch_stop), daemon=True).start()
        hello = self._read_reply(0, timeout, "starting the grading process")
        return hello.result

    def stop(self) -> None:
        if self._proc is None:
            return
        self._watch_stop.set()
        self._kill(self._proc)
        if self._cgroups is not None:
            self._cgroups.remove()
        for fd in (self._requests, self._replies):
            try:
                os.close(fd)
            except OSError:
                pass
        self._proc = None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    # ------------------------------------------------------------------ calls

    def call(self, op: str, args: dict, timeout: float, what: str) -> Reply:
        """Send one request and wait for its reply; raises WorkerCrashed and kills the worker."""
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
        return self._read_reply(request_id, timeout, what)

    def _read_reply(self, request_id: int, timeout: float, what: str) -> Reply:
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
                    self._fail("protocol", "the grading process sent an oversized reply")
            line, self._buffer = self._buffer.split(b"\n", 1)
            try:
                message = protocol.decode(line)
            except ValueError:
                self._fail("protocol", "the grading process sent something that is not a reply (did the code write to its channel?)")
            if "progress" in message and "id" not in message:
                self.progress = message["progress"] if isinstance(message["progress"], dict) else None
                continue
            break
        if message.get("id") != request_id:
            self._fail("protocol", "the grading process answered out of turn")
        result, error = message.get("result"), message.get("error")
        if not isinstance(result, dict):
            result = {}
        notes = [str(n)[:500] for n in message.get("notes", []) if isinstance(n, str)][:20]
        return Reply(bool(message.get("ok")), result, error if isinstance(error, dict) else None,
                     float(message.get("seconds", 0) or 0), float(message.get("peak_mb", 0) or 0), notes)

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
        self._proc.wait(timeout=5)
        code = self._proc.returncode
        if self._killed_for_processes:
            self._fail("died", f"{what} started more than {Cgroups.MAX_PROCESSES} processes")
        if self._killed_for_memory or (self._cgroups is not None and self._cgroups.hit_memory_limit()):
            self._fail("memory", f"{what} used more than {self.config.memory_mb} MB of memory")
        if code is not None and code < 0:
            detail = f"{what} stopped the grading process with signal {signal.Signals(-code).name}"
        else:
            detail = f"{what} ended the grading process (exit code {code})"
        self._fail("died", detail)

    def _fail(self, reason: str, detail: str):
        self.stop()
        raise WorkerCrashed(reason, detail)

    # ------------------------------------------------------------------ output

    def student_output(self) -> str:
        """What the student's code printed, head and tail if long."""
        try:
            with open(self.log_path, "rb") as f:
                data = f.read(LOG_LIMIT * 4)
        except OSError:
            return ""
        text = data.decode("utf-8", "replace")
        if len(text) > LOG_LIMIT:
            half = LOG_LIMIT // 2
            text = text[:half] + "\n... (output cut) ...\n" + text[-half:]
        return text

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
            "DLGRADE_THREADS": threads,
            # Large tensors go back to the OS when freed, so one model's memory is not
            # still held while the next is built.
            "MALLOC_MMAP_THRESHOLD_": "65536",
            "DLGRADE_FDS": f"{req_read},{rep_write}",
        }
        if self.config.device != "cuda":
            env["CUDA_VISIBLE_DEVICES"] = ""
        return env

    def _preexec(self, cgroups: "Cgroups | None"):
        isolation = self.isolation
        nobody = pwd.getpwnam("nobody") if isolation == "user" else None

        def setup():
            os.setsid()  # one process group to kill, and no controlling terminal
            if cgroups is not None:
                cgroups.join()
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
            resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 30, 1 << 30))  # a 233 MB checkpoint fits
            resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024))
            if nobody is not None:
                resource.setrlimit(resource.RLIMIT_NPROC, (512, 512))
                _drop_to(nobody.pw_uid, nobody.pw_gid)()

        return setup

    def _bwrap_prefix(self) -> list[str]:
        run = str(self.run_dir)
        args = [shutil.which("bwrap"), *_BWRAP_BASE, *_BWRAP_USER]
        for path in self.config.hidden_paths:
            if os.path.isdir(path):
                args += ["--tmpfs", path]
            elif os.path.exists(path):
                args += ["--ro-bind", "/dev/null", path]
        if self.config.device == "cuda":
            for dev in sorted(Path("/dev").glob("nvidia*")):
                args += ["--dev-bind", str(dev), str(dev)]
        args += ["--bind", run, run, "--chdir", run, "--"]
        return args

    # ------------------------------------------------------------------ memory and killing

    def _watch_memory(self, proc: subprocess.Popen, stop: threading.Event) -> None:
        limit_kb = self.config.memory_mb * 1024
        while not stop.wait(0.1):
            if proc.poll() is not None:
                return
            pids = process_tree(proc.pid)
            total = sum(rss_kb(pid) for pid in pids)
            self.peak_tree_mb = max(self.peak_tree_mb, total / 1024)
            if len(pids) > Cgroups.MAX_PROCESSES:
                self._killed_for_processes = True
                self._kill(proc)
                return
            if total > limit_kb:
                self._killed_for_memory = True
                self._kill(proc)
                return

    def _kill(self, proc: subprocess.Popen) -> None:
        """Descendants first, so bwrap sees its child die and exits, reaping everything;
        then whatever is left of the process group, and (as nobody) anything that escaped."""
        for pid in reversed(process_tree(proc.pid)[1:]):
            _signal(pid)
        try:
            proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        for pid in process_tree(proc.pid):
            _signal(pid)
        if self.isolation == "user":
            _kill_all_of_nobody()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass


def _signal(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _hand_to_nobody(run_dir: Path) -> None:
    """The worker runs as nobody: it owns the run folder, and may pass through (not list)
    the folders above it, up to the private runs folder."""
    user = pwd.getpwnam("nobody")
    for folder in (run_dir.parent, run_dir.parent.parent):
        os.chmod(folder, 0o711)
    for path in [run_dir, *run_dir.rglob("*")]:
        os.lchown(path, user.pw_uid, user.pw_gid)


def _kill_all_of_nobody() -> None:
    """kill(-1) as `nobody` ends every process of that user, including ones that escaped."""
    try:
        user = pwd.getpwnam("nobody")
    except KeyError:
        return
    pid = os.fork()
    if pid == 0:
        try:
            _drop_to(user.pw_uid, user.pw_gid)()
            os.kill(-1, signal.SIGKILL)
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
