"""Where the jobs run: this machine's cores, or a Dask distributed cluster.

Both engines run grader.batch.jobs.run for each job and hand each outcome to the caller as
soon as it finishes, in whatever order they finish, so that the caller records it before
anything else can go wrong.
"""
from __future__ import annotations

import importlib.util
import os
import queue
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import replace

from ..errors import InputError
from ..limits import effective_cpus
from . import jobs as jobs_mod
from .jobs import Job
from .pacing import Pace, PaceConfig

Done = Callable[[Job, dict], None]
# Memory one grade takes at its peak (the scoring process, the worker and the verifier
# together; README's table has 1.4-2.3 GB for the heaviest homeworks), for the default --jobs.
JOB_MEMORY_GB = 2.5


def default_jobs(gpus: int = 0) -> int:
    """One job per core, as many as memory allows, and one per GPU where there are GPUs."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        memory_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError):
        memory_gb = JOB_MEMORY_GB * cores
    jobs = max(1, min(cores, int(memory_gb // JOB_MEMORY_GB)))
    return min(jobs, gpus) if gpus else jobs


def cores_per_job(jobs: int) -> int:
    """Torch threads for each sandbox of a grade: this machine's cores shared out. Each grade
    runs a worker and a verifier; threads beyond a job's share only wait on each other."""
    return max(1, effective_cpus() // max(1, jobs))


def visible_gpus() -> list[str]:
    """The GPUs this machine shows, by index, without importing torch here."""
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return [d.strip() for d in listed.split(",") if d.strip() and d.strip() != "-1"]
    try:
        return sorted(name.removeprefix("nvidia") for name in os.listdir("/dev")
                      if name.startswith("nvidia") and name.removeprefix("nvidia").isdigit())
    except OSError:
        return []


class LocalEngine:
    name = "local"

    def __init__(self, jobs: int, gpus: list[str] | None = None, pace: PaceConfig = PaceConfig()) -> None:
        self.jobs = max(1, jobs)
        self.gpus = list(gpus or [])
        self.threads = cores_per_job(self.jobs)
        self.pace = pace
        self.most_at_once = 0  # grades that ran at once at the most, waiting ones included

    def run(self, todo: Iterable[Job], done: Done) -> None:
        devices: queue.Queue[str] = queue.Queue()
        for gpu in self.gpus:
            devices.put(gpu)

        # A grade that only waits (a submission asleep at import) lets another start beside it;
        # not with GPUs, since each grade holds one for its whole run.
        pace = Pace(self.jobs, self.pace, extra=0 if self.gpus else None)

        def one(job: Job) -> dict:
            token = object()
            pace.enter(token)
            # Each job holds one device for its whole grade; with fewer devices than jobs, it waits.
            gpu = devices.get() if self.gpus else None
            try:
                return jobs_mod.run(replace(job, gpu=gpu, threads=job.threads or self.threads),
                                    on_start=lambda pid: pace.started(token, pid))
            finally:
                pace.leave(token)
                if gpu is not None:
                    devices.put(gpu)

        pool = ThreadPoolExecutor(max_workers=self.jobs + pace.extra, thread_name_prefix="grade")
        pending = {}
        try:
            for job in todo:
                pending[pool.submit(one, job)] = job
            while pending:
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    job = pending.pop(future)
                    done(job, _result(job, future))
        except BaseException:
            # Ctrl-C (or a failure recording a result): jobs not started never start, and the
            # running ones' commands are ended, so nothing is left grading behind the batch.
            pace.close()  # jobs waiting at the gate never start
            for future in pending:
                future.cancel()
            jobs_mod.stop_all()
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            pace.close()
            self.most_at_once = pace.most_at_once


class DaskEngine:
    """Each submission one task. Tasks ask for one unit of the `grade` resource (and `GPU`
    with --device cuda) where the cluster's workers declare it, so a worker runs only as many
    grades at once as it has said it can hold. A worker lost mid-task is rescheduled by the
    scheduler (its allowed-failures setting); a student's failure is an outcome, not an
    exception, so it is never retried."""

    name = "dask"

    def __init__(self, scheduler: str | None = None, *, cluster=None, gpu: bool = False, owned: bool = False,
                 threads: int = 0) -> None:
        if importlib.util.find_spec("distributed") is None:
            raise InputError("--engine dask needs Dask distributed: pip install 'dlgrade[dask]'")
        self.scheduler = scheduler
        self.cluster = cluster
        self.gpu = gpu
        self.owned = owned  # a LocalCluster made for this batch, closed with it
        self.threads = threads  # torch threads per sandbox, where the cores per grade are known (a LocalCluster)

    def _resources(self, client) -> dict | None:
        declared: set[str] = set()
        for worker in client.scheduler_info().get("workers", {}).values():
            declared |= set((worker.get("resources") or {}).keys())
        wanted = {"grade": 1, **({"GPU": 1} if self.gpu else {})}
        asked = {name: n for name, n in wanted.items() if name in declared}
        return asked or None

    def run(self, todo: Iterable[Job], done: Done) -> None:
        from distributed import Client, as_completed

        address = self.cluster if self.cluster is not None else self.scheduler
        with Client(address, set_as_default=False) as client:
            resources = self._resources(client)
            futures = {}
            for job in todo:
                job = replace(job, threads=job.threads or self.threads)
                future = client.submit(jobs_mod.run, job, key=f"grade-{job.key}", pure=False,
                                       resources=resources, retries=0)
                futures[future] = job
            try:
                for future in as_completed(futures, loop=client.loop):
                    done(futures[future], _result(futures[future], future))
            except BaseException:  # Ctrl-C: the grades running on the workers end too
                try:
                    client.run(jobs_mod.stop_all)
                except Exception:  # noqa: BLE001 - a worker already gone has nothing running
                    pass
                raise
            finally:
                client.cancel(list(futures))
                if self.owned:
                    self.cluster.close()


def _result(job: Job, future) -> dict:
    try:
        return future.result()
    except Exception as exc:  # noqa: BLE001 - the engine's failure is that job's row, not the batch's end
        return jobs_mod.lost(job, exc)
