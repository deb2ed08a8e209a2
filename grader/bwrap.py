"""The bubblewrap command line: a file system built as an allowlist, and an identity that owns nothing.

The sandbox's root is an empty, read-only tmpfs. Into it go, read-only: the system's
/usr (libc and its friends), a few named files of /etc, the interpreter's prefix, the
venv and the grader's own package. The run folder is the only writable place besides
a 256 MB /tmp; /var/tmp, /dev/shm and $HOME are folders of the run folder, under its caps.
Nothing else of the machine exists inside: not the repository around the venv, not the
TA's folders, not other runs.

Two ways to get an unprivileged identity:
- "rootns" (as root): bubblewrap runs as root without a user namespace, so it can bind a
  venv under /root, keeps only CAP_SETUID/CAP_SETGID for the worker, which becomes the
  sandbox uid before anything else (and that clears them);
- "userns": bubblewrap starts as an unprivileged uid (root drops to the sandbox uid
  first) and maps that uid to itself in a user namespace. A user namespace created by
  root would map the sandbox's user to host root, so root never does that.
"""
from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from . import identity, tree

SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
ETC_FILES = ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/localtime", "/etc/alternatives",
             "/etc/fonts", "/etc/nsswitch.conf")
TMP_BYTES = 256 << 20
EMPTY = ("/run", "/home", "/root", "/mnt", "/media", "/opt", "/srv", "/var")  # exist, empty and read-only
NAMESPACES_WITHOUT_USER = ["--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try"]


@functools.lru_cache(maxsize=None)
def interpreter_paths(python: str) -> tuple[str, ...]:
    """Folders the worker's interpreter needs: its prefix, the venv, the grader package."""
    # Asked of the interpreter itself, as the worker starts it (-I): the scorer may have
    # imported another copy of the grader (an autograder zip on PYTHONPATH).
    out = subprocess.run([python, "-I", "-c", "import sys, grader, os; print(sys.base_prefix); print(sys.prefix);"
                          "print(os.path.dirname(os.path.realpath(grader.__file__)))"],
                         capture_output=True, text=True, timeout=60, cwd="/")
    found = out.stdout.split("\n")[:3] if out.returncode == 0 else [sys.base_prefix, sys.prefix]
    paths: list[str] = []
    for path in found + [os.path.dirname(python)]:
        for p in (path, os.path.realpath(path)):
            if p and os.path.isdir(p) and not p.startswith("/usr/") and p not in paths:
                paths.append(p)
    # A venv's bin/python is a link into the base prefix: the real file's folder too.
    real = os.path.dirname(os.path.realpath(python))
    if not any(real == p or real.startswith(p + os.sep) for p in paths) and not real.startswith("/usr/"):
        paths.append(real)
    return tuple(paths)


def command(run_dir: Path, python: str, way: str, uid: int, device: str = "cpu",
            hidden: tuple[str, ...] = ()) -> list[str]:
    run = str(run_dir)
    args = [shutil.which("bwrap") or "bwrap", "--die-with-parent", "--new-session"]
    if way == "userns":
        args += ["--unshare-all", "--uid", str(uid), "--gid", str(uid), "--cap-drop", "ALL"]
    else:  # root: it may keep only what the worker needs to become `uid`, which then clears it
        args += NAMESPACES_WITHOUT_USER + ["--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    for folder in SYSTEM_DIRS:
        if os.path.islink(folder):
            args += ["--symlink", os.readlink(folder), folder]
        elif os.path.isdir(folder):
            args += ["--ro-bind", folder, folder]
    args += ["--perms", "0755", "--dir", "/etc"]
    for path in ETC_FILES:
        args += ["--ro-bind-try", path, path]
    args += ["--proc", "/proc", "--dev", "/dev"]
    for folder in EMPTY:
        args += ["--tmpfs", folder]
    # /tmp gets a small tmpfs of its own, since the run folder (or the venv) may live under
    # the host's /tmp; it is mounted before them, so it does not cover their binds.
    # TMPDIR points into the run folder, so real code writes there.
    args += ["--perms", "1777", "--size", str(TMP_BYTES), "--tmpfs", "/tmp"]
    made: set[str] = set()
    for path in interpreter_paths(python):
        args += _parents(path, made) + ["--ro-bind", path, path]
    args += _parents("/sys/devices/system/cpu", made) + ["--ro-bind-try", "/sys/devices/system/cpu",
                                                           "/sys/devices/system/cpu"]
    if device == "cuda":
        args += ["--ro-bind", "/sys", "/sys"]
        for dev in sorted(Path("/dev").glob("nvidia*")):
            args += ["--dev-bind", str(dev), str(dev)]
    for name, target in (("tmp", "/var/tmp"), ("shm", "/dev/shm")):
        args += ["--bind", f"{run}/{name}", target]
    args += _parents(run, made) + ["--bind", run, run]
    for path in hidden:  # defence in depth: a named path that lies inside something bound
        if any(path == p or path.startswith(p.rstrip("/") + "/") for p in (*interpreter_paths(python), run)):
            args += ["--tmpfs", path] if os.path.isdir(path) else ["--ro-bind", "/dev/null", path]
    args += ["--remount-ro", "/", "--chdir", run, "--"]
    return args


def _parents(path: str, made: set[str]) -> list[str]:
    """Folders above a bind target, made traversable (bubblewrap would make them 0700)."""
    out = []
    parts = Path(path).parts[1:-1]
    for i in range(1, len(parts) + 1):
        folder = "/" + "/".join(parts[:i])
        if folder not in made and not any(folder == d or folder.startswith(d + "/") for d in SYSTEM_DIRS):
            made.add(folder)
            out += ["--perms", "0755", "--dir", folder]
    return out


def preexec_uid(way: str) -> int | None:
    """The uid to drop to before bubblewrap starts (root, userns way), else None."""
    return identity.sandbox_uid() if way == "userns" and identity.can_switch() else None


@functools.lru_cache(maxsize=None)
def usable_way(python: str) -> str | None:
    """The first way bubblewrap starts the worker's interpreter on this machine, or None."""
    if not shutil.which("bwrap"):
        return None
    # As root, bubblewrap itself stays root to bind what the uid could not reach (a venv
    # under /root), and never maps anything to root; an unprivileged user needs a user namespace.
    ways = ("rootns", "userns") if identity.can_switch() else ("userns",)
    forced = os.environ.get("DLGRADE_BWRAP_WAY")
    if forced in ways:
        ways = (forced,)
    for way in ways:
        if _probe(python, way):
            return way
    return None


def _probe(python: str, way: str) -> bool:
    uid = identity.sandbox_uid() if identity.can_switch() else os.getuid()
    folder = Path(tempfile.mkdtemp(prefix="dlgrade-probe-"))
    try:
        for name in ("tmp", "shm"):
            (folder / name).mkdir()
        os.chmod(folder, 0o711)
        if identity.can_switch():
            for path in (folder, folder / "tmp", folder / "shm"):
                os.chown(path, uid, uid)
        env = {"PATH": "/usr/bin:/bin", "HOME": str(folder)}
        inner = [python, "-I", "-c", "import grader.worker, os; print(os.getuid())"]
        if way == "rootns":
            inner = [python, "-I", "-m", "grader.worker", "--drop-check"]
            env["DLGRADE_DROP_UID"] = str(uid)
        drop = preexec_uid(way)
        try:
            probe = subprocess.run(command(folder, python, way, uid) + inner, capture_output=True, timeout=60, env=env,
                                   preexec_fn=identity.drop_to(drop) if drop is not None else None)
        except (OSError, subprocess.TimeoutExpired):
            return False
        return probe.returncode == 0 and probe.stdout.strip() == str(uid).encode()
    finally:
        tree.remove(folder)
