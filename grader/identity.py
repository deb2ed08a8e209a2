"""Who student code runs as, and how everything it started is found and ended.

As root the worker runs as a host uid of its own, made of the scorer's pid and a serial
number, so no two sandboxes alive at once share one (two graders, or two grades in one
process). The uid is in no passwd file, owns no file outside the run, and is never mapped
to root. The range sits above SSSD's default id range (up to 2,000,200,000) and below
2**31, which some tools read as signed. Every process of that uid is the
submission's, so `kill(-1)` as that uid ends all of them at once (Linux takes the task
list lock, so a fork cannot slip past it). Without root the uid cannot change; bubblewrap's
namespaces do that work, and process-only isolation says what it cannot promise.
"""
from __future__ import annotations

import ctypes
import itertools
import os
import signal
import stat
import subprocess
import time
from pathlib import Path

from .limits import process_table

UID_BASE = 2_000_300_000
SLOTS = 32  # sandboxes one process may hold at once
_serial = itertools.count()
PR_SET_CHILD_SUBREAPER = 36
PR_SET_PDEATHSIG = 1
SHARED_SCRATCH = ("/tmp", "/var/tmp", "/dev/shm")  # world-writable folders a uid can leave files in


def sandbox_uid(serial: int = 0) -> int:
    """$DLGRADE_SANDBOX_UID (then one grader at a time), else one derived from this process
    and `serial`, unique among live sandboxes: pids are below 2**22."""
    value = os.environ.get("DLGRADE_SANDBOX_UID", "")
    if value.isdigit() and 0 < int(value) < 2 ** 31:
        return int(value)
    return UID_BASE + (os.getpid() % (1 << 22)) * SLOTS + serial % SLOTS


def next_uid() -> int:
    """A uid for a new sandbox of this process."""
    return sandbox_uid(next(_serial))


def can_switch() -> bool:
    return os.geteuid() == 0


def drop_to(uid: int):
    """A preexec step: no supplementary groups, then gid, then uid (which clears root's capabilities)."""

    def drop():
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
        if os.getuid() != uid or os.geteuid() != uid:
            os._exit(121)

    return drop


def die_with(parent: int) -> bool:
    """Be killed when `parent` (the batch job that started this grade) is gone, even by
    SIGKILL: a Dask worker lost mid-task leaves no grade running behind it (its bubblewrap
    sandboxes already die with this process). False where the kernel does not say."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            return False
    except (OSError, AttributeError):
        return False
    if os.getppid() != parent:  # it was gone before the request took effect
        os._exit(137)
    return True


def become_subreaper() -> bool:
    """Processes the submission double-forks come back to this process, not to init, so they
    can be found and ended before results are written."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def processes_of(uid: int) -> list[int]:
    """Living pids whose real or effective uid is `uid` (from status: a process that makes
    itself undumpable has /proc/PID owned by root, so the folder's owner is not enough).
    Zombies are left out: they are already dead, and only their parent can clear them."""
    found = []
    wanted = str(uid).encode()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/status", "rb") as f:
                lines = f.read(4096).splitlines()
        except OSError:
            continue
        state = next((line.split()[1:2] for line in lines if line.startswith(b"State:")), [b"?"])
        ids = next((line.split()[1:3] for line in lines if line.startswith(b"Uid:")), [])
        if wanted in ids and state != [b"Z"]:
            found.append(int(entry.name))
    return found


def kill_uid(uid: int, rounds: int = 20) -> bool:
    """SIGKILL every process of `uid`, from a child that becomes it; True when none is left."""
    for _ in range(rounds):
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child
            try:
                drop_to(uid)()
                os.kill(-1, signal.SIGKILL)
            finally:
                os._exit(0)
        os.waitpid(pid, 0)
        reap_orphans()
        deadline = time.monotonic() + 2
        while processes_of(uid) and time.monotonic() < deadline:
            time.sleep(0.02)
            reap_orphans()
        if not processes_of(uid):
            return True
    return False


def reap_orphans(pids: set[int] | None = None) -> None:
    """Collect exit statuses of adopted processes (this process is their subreaper), only
    zombies, and only those in `pids` when given, so no Popen of ours loses its status."""
    me = os.getpid()
    for pid, (state, ppid) in process_table().items():
        if state == b"Z" and ppid == me and (pids is None or pid in pids):
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass


def runs_python(uid: int, python: str, timeout: float = 60) -> tuple[bool, str]:
    """Whether `uid` can start the grading interpreter and import the worker, and if not why."""
    try:
        probe = subprocess.run([python, "-I", "-c", "import grader.worker"], capture_output=True, timeout=timeout,
                               preexec_fn=drop_to(uid), cwd="/", env={"PATH": "/usr/bin:/bin"})
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, str(exc)
    tail = probe.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
    return probe.returncode == 0, tail[0][:300]


def remove_files_of(uid: int, folders=SHARED_SCRATCH) -> list[str]:
    """Delete what `uid` left in world-writable folders (only top-level entries it owns;
    what is inside them is its own). Returns what was removed."""
    from .tree import remove

    removed = []
    for folder in folders:
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries[:100_000]:
            try:
                info = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if info.st_uid != uid:
                continue
            if stat.S_ISDIR(info.st_mode):
                remove(Path(entry.path))
            else:
                try:
                    os.unlink(entry.path)
                except OSError:
                    continue
            removed.append(entry.path)
    return removed


def children_of(parent: int) -> list[int]:
    return [pid for pid, (_, ppid) in process_table().items() if ppid == parent]
