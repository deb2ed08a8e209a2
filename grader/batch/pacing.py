"""How many grades run at once on this machine: --jobs that compute, and more beside them
while some only wait.

A grade whose processes use next to no CPU (a submission that sleeps or waits at import
until the rubric's limit ends it) holds its job for minutes while the cores idle. The pace
lets one more grade start in its place, up to --jobs more such waiting grades and while
memory allows; a waiting grade that computes again counts as a job again. Nothing of how
any grade runs changes: only when the next one starts.
"""
from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field

from ..limits import process_tree

TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


class Stopped(Exception):
    """A job was waiting to start when the batch stopped."""


@dataclass(frozen=True)
class PaceConfig:
    window_s: float = 5.0  # a grade is waiting once it used under `idle_share` of a core this long
    idle_share: float = 0.05  # of one core: a grade that computes uses most of a core or more
    busy_share: float = 0.5  # ... and computes again once it uses this much over one sample
    sample_s: float = 1.0
    memory_gb: float = 2.5  # free memory each waiting grade's replacement needs (engines.JOB_MEMORY_GB)


@dataclass
class _Running:
    pid: int | None = None  # the grade command, once started
    cpu: dict[int, float] = field(default_factory=dict)  # pid -> CPU seconds at the last sample
    sampled: float | None = None  # when that was
    quiet_since: float | None = None  # when it began using next to no CPU
    waiting: bool = False


class Pace:
    """A gate that each job passes before its grade starts, and leaves when it ends."""

    def __init__(self, jobs: int, config: PaceConfig = PaceConfig(), extra: int | None = None) -> None:
        self.jobs = max(1, jobs)
        self.extra = self.jobs if extra is None else max(0, extra)  # grades beside those that wait
        self.config = config
        self._running: dict[object, _Running] = {}
        self._lock = threading.Condition()
        self._stop = threading.Event()
        self._sampler: threading.Thread | None = None
        self.most_at_once = 0  # the most grades that ran at once (the batch's summary of how it ran)

    # ------------------------------------------------------------------ the jobs' side

    def enter(self, token: object) -> None:
        """Wait until this job may start: fewer than --jobs grades compute, and the waiting
        ones leave room."""
        with self._lock:
            while True:
                if self._stop.is_set():
                    raise Stopped("the batch is stopping: this grade does not start")
                if self._may_start():
                    break
                self._lock.wait(timeout=self.config.sample_s)
            self._running[token] = _Running()
            self.most_at_once = max(self.most_at_once, len(self._running))
        self._ensure_sampler()

    def started(self, token: object, pid: int) -> None:
        """The job's grade command is `pid`: its process tree's CPU is what the pace reads."""
        with self._lock:
            if token in self._running:
                self._running[token].pid = pid

    def leave(self, token: object) -> None:
        with self._lock:
            self._running.pop(token, None)
            self._lock.notify_all()

    def close(self) -> None:
        """No grade starts from now on (the batch ended, or Ctrl-C)."""
        self._stop.set()
        with self._lock:
            self._lock.notify_all()

    # ------------------------------------------------------------------ deciding

    def computing(self) -> int:
        return sum(1 for r in self._running.values() if not r.waiting)

    def _may_start(self) -> bool:
        if self.computing() >= self.jobs:
            return False
        if len(self._running) < self.jobs:
            return True
        return len(self._running) < self.jobs + self.extra and _available_gb() >= self.config.memory_gb

    def _ensure_sampler(self) -> None:
        with self._lock:
            if self._sampler is None:
                self._sampler = threading.Thread(target=self._sample_loop, name="pace", daemon=True)
                self._sampler.start()

    def _sample_loop(self) -> None:
        while not self._stop.wait(self.config.sample_s):
            self.sample()

    def sample(self) -> None:
        """Read each grade's CPU since the last sample, and mark it waiting or computing."""
        with self._lock:
            running = [r for r in self._running.values() if r.pid is not None]
        changed = False
        for r in running:
            now = time.monotonic()
            seconds, r.cpu = _used(r.pid, r.cpu)
            last, r.sampled = r.sampled, now
            if last is None:  # what it used before its first reading is not a rate
                continue
            share = seconds / max(now - last, 1e-3)
            if share >= self.config.busy_share:
                r.quiet_since = None
                changed |= r.waiting
                r.waiting = False
            elif share < self.config.idle_share:
                r.quiet_since = r.quiet_since or now
                if not r.waiting and now - r.quiet_since >= self.config.window_s:
                    r.waiting = changed = True
            else:
                r.quiet_since = None
        if changed:
            with self._lock:
                self._lock.notify_all()


def _used(pid: int, before: dict[int, float]) -> tuple[float, dict[int, float]]:
    """CPU seconds the tree under `pid` used since `before` (pid -> seconds), and the new reading.
    A process that ended took its last slice with it: a little is missed, never counted twice."""
    now: dict[int, float] = {}
    for p in process_tree(pid):
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            now[p] = (int(fields[11]) + int(fields[12])) / TICKS
        except (OSError, ValueError, IndexError):
            continue
    used = sum(max(0.0, seconds - before.get(p, 0.0)) for p, seconds in now.items())
    return used, now


def _available_gb() -> float:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) / 2**20
    except (OSError, ValueError, IndexError):
        pass
    return 0.0
