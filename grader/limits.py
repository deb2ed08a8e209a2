"""Kernel-enforced limits for the worker, and what its process tree uses.

Where this machine lets us (root, writable cgroups), the kernel enforces the memory and
process limits; everywhere, the sandbox's watchdog reads the process tree from /proc.
"""
from __future__ import annotations

import os
import time
from pathlib import Path


class Cgroups:
    """Kernel-enforced limits for one worker, where this machine lets us create cgroups.

    pids.max stops fork bombs (fork fails inside the sandbox) and the memory controller
    makes the kernel enforce the memory limit. Both v1 and v2 layouts; absent, the
    polling watchdog below still applies.
    """

    ROOT = Path("/sys/fs/cgroup")
    MAX_PROCESSES = 256  # torch's threads count too

    def __init__(self, name: str, memory_mb: int):
        self.dirs: list[Path] = []
        self.memory_dir: Path | None = None
        limits = {"pids": {"pids.max": str(self.MAX_PROCESSES)},
                  "memory": {"memory.limit_in_bytes": str(memory_mb << 20), "memory.max": str(memory_mb << 20),
                             "memory.swap.max": "0"}}
        v2 = (self.ROOT / "cgroup.controllers").exists()
        for controller, files in limits.items():
            folder = (self.ROOT / name) if v2 else (self.ROOT / controller / name)
            if v2 and self.dirs:
                folder = self.dirs[0]
            try:
                folder.mkdir(exist_ok=True)
                written = 0
                for file, value in files.items():
                    if (folder / file).exists():
                        (folder / file).write_text(value)
                        written += 1
                if not written:
                    raise OSError("controller not available")
            except OSError:
                continue
            if folder not in self.dirs:
                self.dirs.append(folder)
            if controller == "memory":
                self.memory_dir = folder

    @property
    def kinds(self) -> list[str]:
        return (["pids"] if self.dirs and (self.dirs[0] / "pids.max").exists() else []) + (["memory"] if self.memory_dir else [])

    def join(self) -> None:
        """Called in the child before exec: it and everything it starts stay inside."""
        for folder in self.dirs:
            with open(folder / "cgroup.procs", "w") as f:
                f.write(str(os.getpid()))

    def hit_memory_limit(self) -> bool:
        if self.memory_dir is None:
            return False
        for file in ("memory.failcnt", "memory.events"):
            try:
                text = (self.memory_dir / file).read_text()
            except OSError:
                continue
            if file == "memory.failcnt":
                return int(text.strip() or 0) > 0
            return any(line.split()[0] in ("oom_kill", "max") and int(line.split()[1]) > 0
                       for line in text.splitlines() if len(line.split()) == 2)
        return False

    def remove(self) -> None:
        """The kernel frees a cgroup only after its last process is gone: retry briefly."""
        for folder in self.dirs:
            for _ in range(50):
                try:
                    folder.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.05)

    @classmethod
    def sweep(cls) -> None:
        """Remove empty groups left by graders that were killed before they could clean up."""
        for folder in list(cls.ROOT.glob("dlgrade-*")) + list(cls.ROOT.glob("*/dlgrade-*")):
            pid = folder.name.split("-")[1] if folder.name.count("-") >= 2 else ""
            if pid.isdigit() and not Path(f"/proc/{pid}").exists():
                try:
                    folder.rmdir()
                except OSError:
                    pass


def effective_cpus() -> int:
    """CPUs this process may really use: its affinity, capped by a cgroup CPU quota
    (a Gradescope container is a many-core host with a quota of half a CPU)."""
    count = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    for path, parse in (("/sys/fs/cgroup/cpu.max", lambda t: t.split()),
                        ("/sys/fs/cgroup/cpu/cpu.cfs_quota_us", None)):
        try:
            if parse:
                quota, period = parse(Path(path).read_text())
            else:
                quota = Path(path).read_text().strip()
                period = Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us").read_text().strip()
            if quota not in ("max", "-1"):
                count = min(count, max(1, -(-int(quota) // int(period))))
            break
        except (OSError, ValueError):
            continue
    return max(1, count)


def process_table() -> dict[int, tuple[bytes, int]]:
    """Every process on the machine: pid -> (state, parent pid), from /proc/PID/stat."""
    table = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(b")") + 2:].split()  # the name may hold spaces and brackets
        table[int(entry.name)] = (fields[0], int(fields[1]))
    return table


def process_tree(root: int) -> list[int]:
    """`root` and its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    for pid, (_, ppid) in process_table().items():
        children.setdefault(ppid, []).append(pid)
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def rss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * (os.sysconf("SC_PAGE_SIZE") // 1024)
    except (OSError, ValueError, IndexError):
        return 0
