"""The local engine's pace: a grade that only waits lets another start beside it; one that
computes never does, and neither does one holding a GPU."""
import subprocess
import sys
import time

from grader.batch import engines, jobs
from grader.batch.engines import LocalEngine
from grader.batch.jobs import Job
from grader.batch.pacing import Pace, PaceConfig

QUICK = PaceConfig(window_s=2.0, sample_s=0.2)
SPIN = [sys.executable, "-c", "import time\nend = time.monotonic() + {s}\nwhile time.monotonic() < end: pass"]


def _fake_run(commands: dict[str, list[str]]):
    """Stands in for jobs.run: the job's command is a plain process, reported as jobs.run reports its grade."""
    def run(job: Job, on_start=None) -> dict:
        proc = subprocess.Popen(commands[job.key])
        if on_start is not None:
            on_start(proc.pid)
        proc.wait()
        return jobs.Outcome(key=job.key, status=jobs.GRADED, exit_code=proc.returncode).as_dict()
    return run


def _finished_in_order(monkeypatch, commands: dict[str, list[str]], engine: LocalEngine) -> list[str]:
    monkeypatch.setattr(engines.jobs_mod, "run", _fake_run(commands))
    order: list[str] = []
    engine.run([Job(key=k, path=k, assignment="cs1678-hw4") for k in commands], lambda job, outcome: order.append(job.key))
    return order


def test_a_grade_that_only_waits_lets_the_next_start(monkeypatch):
    engine = LocalEngine(1, pace=QUICK)
    order = _finished_in_order(monkeypatch, {"asleep": ["sleep", "8"], "quick": ["true"]}, engine)
    assert order == ["quick", "asleep"] and engine.most_at_once == 2


def test_a_grade_that_computes_keeps_its_job(monkeypatch):
    engine = LocalEngine(1, pace=QUICK)
    order = _finished_in_order(monkeypatch, {"busy": [*SPIN[:2], SPIN[2].format(s=6)], "quick": ["true"]}, engine)
    assert order == ["busy", "quick"] and engine.most_at_once == 1


def test_a_waiting_grade_holding_a_gpu_lets_nothing_start(monkeypatch):
    engine = LocalEngine(1, gpus=["0"], pace=QUICK)
    order = _finished_in_order(monkeypatch, {"asleep": ["sleep", "4"], "quick": ["true"]}, engine)
    assert order == ["asleep", "quick"] and engine.most_at_once == 1


def test_a_waiting_grade_counts_again_once_it_computes():
    pace = Pace(1, QUICK)
    proc = subprocess.Popen([*SPIN[:2], "import time\ntime.sleep(6)\n" + SPIN[2].format(s=30)])
    try:
        pace.enter("a")
        pace.started("a", proc.pid)
        deadline = time.monotonic() + 60
        while pace.computing() and time.monotonic() < deadline:  # asleep: waiting after the window
            time.sleep(0.1)
        assert pace.computing() == 0 and pace._may_start()
        while not pace.computing() and time.monotonic() < deadline:  # then it spins
            time.sleep(0.1)
        assert pace.computing() == 1 and not pace._may_start()
    finally:
        proc.kill()
        pace.close()


def test_waiting_grades_beside_the_jobs_are_capped():
    pace = Pace(1, QUICK)
    pace.enter("a")
    pace._running["a"].waiting = True
    pace.enter("b")  # beside the waiting one
    pace._running["b"].waiting = True
    assert not pace._may_start()  # --jobs more waiting grades at the most
    pace.close()


def test_a_job_waiting_at_the_gate_never_starts_once_the_batch_stops():
    import threading

    import pytest

    from grader.batch.pacing import Stopped

    pace = Pace(1, QUICK)
    pace.enter("a")
    outcome: list[BaseException] = []

    def second():
        try:
            pace.enter("b")
        except Stopped as exc:
            outcome.append(exc)

    waiting = threading.Thread(target=second)
    waiting.start()
    time.sleep(0.5)
    assert waiting.is_alive() and "b" not in pace._running  # held: "a" computes
    pace.close()  # Ctrl-C
    waiting.join(timeout=10)
    assert not waiting.is_alive() and len(outcome) == 1 and "b" not in pace._running
    with pytest.raises(Stopped):
        pace.enter("c")
