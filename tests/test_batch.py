"""`grade batch` end to end: a small class graded for real, resumed, interrupted, on Dask.

Only the cheap checks run (construct and architecture), so each submission costs a worker
start; what is under test is the batch layer: scheduling, records, resume, aggregation.
"""
from __future__ import annotations

import csv
import dataclasses
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import pytest

from grader.batch import BatchOptions, grade_class
from grader.batch import jobs as batch_jobs
from grader.batch import ledger
from gradekit import mutate, plain_source, running

CHECKS = ("alexnet.construct*", "alexnet.architecture*")
ASSIGNMENT = "cs1678-hw4"
# Same output shape, other weights: forward still runs (and exports), the CONV3 row is wrong.
BROKEN = ("nn.Conv2d(256, 384, kernel_size=3, padding=1),  # CONV3", "nn.Conv2d(256, 384, kernel_size=5, padding=2),  # CONV3")


def _class(root: Path) -> Path:
    """ada: correct (folder); bob: a wrong CONV3 (zip); cy: ada's file, copied; dee: a corrupt zip."""
    source = root / "class"
    (source / "ada").mkdir(parents=True)
    (source / "ada" / "cnn_trainer.py").write_text(plain_source())
    with zipfile.ZipFile(source / "bob.zip", "w") as zf:
        zf.writestr("hw4/cnn_trainer.py", mutate(plain_source(), BROKEN))
    (source / "cy").mkdir()
    (source / "cy" / "cnn_trainer.py").write_text(plain_source())
    (source / "dee.zip").write_bytes(b"PK\x03\x04 this is not really a zip")
    roster = root / "roster.csv"
    roster.write_text("id,name,email\nada,Ada Lovelace,ada@example.edu\nbob,Bob Babbage,bob@example.edu\n"
                      "cy,Cy Young,cy@example.edu\ndee,Dee Dee,dee@example.edu\neve,Eve Noshow,eve@example.edu\n")
    return source


def _options(**kw) -> BatchOptions:
    return BatchOptions(**{"jobs": 2, "checks": CHECKS, "device": "cpu", "progress": False, **kw})


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = tmp_path_factory.mktemp("batch")
    source = _class(root)
    lines: list[str] = []
    result = grade_class(source, ASSIGNMENT, root / "out", _options(roster=root / "roster.csv"), log=lines.append)
    # The later tests regrade into the same folder; the browser looks at this first summary.
    (root / "first").mkdir()
    shutil.copy(root / "out" / "summary.html", root / "first" / "summary.html")
    return root, source, result, lines


def _gradebook(out: Path) -> dict[str, dict]:
    with open(out / "gradebook.csv", newline="", encoding="utf-8") as f:
        return {row["student_id"]: row for row in csv.DictReader(f)}


def test_each_submission_is_graded_as_grade_would_and_the_class_files_are_written(graded):
    root, _, result, lines = graded
    out = root / "out"
    status = {r.submission.key: r.status for r in result.rows}
    assert status == {"ada": "graded", "bob": "graded", "cy": "graded", "dee": "ungradable"}
    assert result.exit_code == 0 and result.graded_now == 4
    for key in ("ada", "bob", "cy", "dee"):
        results = json.loads((out / key / "results.json").read_text())
        assert results["extra_data"]["assignment"] == ASSIGNMENT
        assert (out / key / "batch.json").is_file()
    assert (out / "ada" / "report.html").read_text().lstrip().startswith("<!DOCTYPE html>")
    ada = json.loads((out / "ada" / "results.json").read_text())
    bob = json.loads((out / "bob" / "results.json").read_text())
    assert ada["score"] == 4.0  # construct 0.5 + architecture 1.5, for both class counts
    failed = {t["extra_data"]["check_id"] for t in bob["tests"] if t.get("status") == "failed"}
    assert failed == {"alexnet.architecture.nc4", "alexnet.architecture.nc7"}
    dee = next(r for r in result.rows if r.submission.key == "dee")
    assert "zip" in dee.message.lower(), dee.message
    for name in ("gradebook.csv", "gradescope-scores.csv", "canvas-scores.csv", "summary.json", "summary.html",
                 "integrity.html", "integrity.csv"):
        assert (out / name).is_file(), name
    # Not a terminal: one line per finished submission.
    assert len(lines) == 4 and any(line.endswith("s") and "ada: graded 4 in" in line for line in lines), lines


def test_gradebook_columns_and_totals_match_each_results_json(graded):
    root, _, result, _ = graded
    out = root / "out"
    book = _gradebook(out)
    assert set(book) == {"ada", "bob", "cy", "dee", "eve"}
    with open(out / "gradebook.csv", newline="") as f:
        header = next(csv.reader(f))
    assert header[:9] == ["student_id", "name", "email", "submission", "submitted_at", "late", "status", "message", "group"]
    assert "alexnet.architecture.nc7" in header and "alexnetavgpooling.training.nc4" in header
    assert header[-4:] == ["total", "possible", "percent", "held"]
    for key in ("ada", "bob", "cy", "dee"):
        results = json.loads((out / key / "results.json").read_text())
        row = book[key]
        assert float(row["total"]) == pytest.approx(results["score"])
        for test in results["tests"]:
            if "status" in test:
                assert float(row[test["extra_data"]["check_id"]]) == pytest.approx(test["score"])
        parts = {}
        for test in results["tests"]:
            if "status" in test:
                parts[test["extra_data"]["part"]] = parts.get(test["extra_data"]["part"], 0) + test["score"]
        for part, points in parts.items():
            assert float(row[f"part {part}"]) == pytest.approx(points)
    assert book["ada"]["name"] == "Ada Lovelace" and book["ada"]["email"] == "ada@example.edu"
    assert float(book["ada"]["possible"]) == 22.0
    assert float(book["ada"]["percent"]) == pytest.approx(100 * 4 / 22, abs=0.01)
    assert book["bob"]["total"] == "1.0"
    # Not run in this batch: blank, not zero, so a TA can tell the two apart.
    assert book["ada"]["alexnet.forward.nc4"] == ""
    assert book["eve"]["status"] == "missing" and float(book["eve"]["total"]) == 0
    assert book["dee"]["status"] == "ungradable" and float(book["dee"]["total"]) == 0
    with open(out / "canvas-scores.csv", newline="") as f:
        canvas = list(csv.DictReader(f))
    assert canvas[0]["Student"] == "Points Possible" and float(canvas[0][result_title()]) == 22.0
    with open(out / "gradescope-scores.csv", newline="") as f:
        scores = {r["SID"]: r for r in csv.DictReader(f)}
    assert float(scores["ada"]["Total Score"]) == 4.0 and scores["ada"]["Email"] == "ada@example.edu"


def result_title() -> str:
    from grader.rubric import load_rubric

    return load_rubric(ASSIGNMENT).title


def test_summary_counts_pass_rates_failures_and_missing_students(graded):
    root, _, _, _ = graded
    summary = json.loads((root / "out" / "summary.json").read_text())
    assert summary["statuses"] == {"graded": 3, "missing": 1, "ungradable": 1}
    assert summary["students"] == 5 and summary["submissions"] == 4
    checks = {c["id"]: c for c in summary["checks"]}
    assert (checks["alexnet.architecture.nc4"]["passed"], checks["alexnet.architecture.nc4"]["graded"]) == (2, 3)
    assert checks["alexnet.construct.nc4"]["pass_rate"] == 1.0
    assert checks["alexnet.forward.nc4"]["graded"] == 0 and checks["alexnet.forward.nc4"]["pass_rate"] is None
    top = summary["failures"][0]
    assert top["check"].startswith("alexnet.architecture") and top["count"] == 1
    assert [s["key"] for s in top["students"]] == ["bob"] and "Conv2d-7: expected" in top["message"] and "kernel 5 x 5, expected 3 x 3" in top["message"]
    assert [m["id"] for m in summary["missing"]] == ["eve"]
    assert summary["not_graded"][0]["key"] == "dee"
    hist = summary["scores"]["histogram"]
    assert sum(b["count"] for b in hist) == 3 and hist[1]["count"] == 2  # ada, cy: 4/22 = 18%
    # ada and cy handed in the same file: the integrity report finds the pair.
    pairs = summary["integrity"]["pairs"]
    assert any({p["a"], p["b"]} == {"ada", "cy"} and p["flagged"] for p in pairs), pairs


def test_a_rerun_grades_only_what_changed(graded, tmp_path):
    root, source, first, _ = graded
    out = root / "out"
    again = grade_class(source, ASSIGNMENT, out, _options(roster=root / "roster.csv"), log=lambda _: None)
    assert again.graded_now == 0 and all(r.reused for r in again.rows)
    assert {r.submission.key: r.status for r in again.rows} == {r.submission.key: r.status for r in first.rows}
    # bob fixes his CONV3: only bob is graded again, and his row says so.
    with zipfile.ZipFile(source / "bob.zip", "w") as zf:
        zf.writestr("hw4/cnn_trainer.py", plain_source())
    fixed = grade_class(source, ASSIGNMENT, out, _options(), log=lambda _: None)
    assert fixed.graded_now == 1 and [r.submission.key for r in fixed.rows if not r.reused] == ["bob"]
    assert float(_gradebook(out)["bob"]["total"]) == 4.0
    # --only regrades that student alone; --force the whole class.
    only = grade_class(source, ASSIGNMENT, out, _options(only=("ada@example.edu", "cy")), log=lambda _: None)
    assert only.graded_now == 1 and [r.submission.key for r in only.rows if not r.reused] == ["cy"]
    # (ada@example.edu matches no one here: this run had no roster to give ada an email.)


def test_the_fingerprint_holds_everything_a_grade_depends_on(tmp_path):
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "cnn_trainer.py").write_text("x = 1\n")
    base = ledger.Context(rubric="r1", labels="l1", data="d1", options=("--device", "cpu"))
    first = base.fingerprint(sub)
    assert base.fingerprint(sub) == first
    os.utime(sub / "cnn_trainer.py", (1, 1))  # touched, not changed: still finished
    assert base.fingerprint(sub) == first
    for changed in (dataclasses.replace(base, rubric="r2"), dataclasses.replace(base, labels="l2"),
                    dataclasses.replace(base, data="d2"), dataclasses.replace(base, options=("--device", "cuda"))):
        assert changed.fingerprint(sub) != first, changed
    (sub / "cnn_trainer.py").write_text("x = 2\n")
    assert base.fingerprint(sub) != first
    (sub / "cnn_trainer.py").write_text("x = 1\n")
    (sub / "notes.txt").write_text("")  # a new file, even empty, is a new submission
    assert base.fingerprint(sub) != first
    # A finished entry counts only beside a readable results.json and with the same fingerprint.
    folder = tmp_path / "out" / "ada"
    ledger.record(folder, {"fingerprint": first, "status": "graded"})
    assert ledger.finished(folder, first) is None  # no results.json yet
    (folder / "results.json").write_text("{}")
    assert ledger.finished(folder, first) == {"fingerprint": first, "status": "graded"}
    assert ledger.finished(folder, "other") is None


def _hang(marker: str) -> str:
    """An import that never ends, with a child whose command line carries `marker`."""
    return (f"import os, time\nif os.fork() == 0:\n    os.execv('/bin/sleep', ['sleep', '{marker}'])\n"
            "time.sleep(86400)\n")


def _cli(*args) -> subprocess.Popen:
    # SIGINT as on a terminal: a test runner's worker may ignore it, and children inherit that.
    return subprocess.Popen([sys.executable, "-m", "grader.cli", "batch", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def test_ctrl_c_keeps_every_finished_submission_and_leaves_nothing_running(tmp_path):
    source = tmp_path / "class"
    (source / "s1").mkdir(parents=True)
    (source / "s1" / "cnn_trainer.py").write_text(plain_source())
    # s4 never finishes its import: the batch is stopped while it runs.
    (source / "s4").mkdir()
    (source / "s4" / "cnn_trainer.py").write_text(_hang("86400.123") + plain_source())
    out = tmp_path / "out"
    proc = _cli(str(source), "--assignment", ASSIGNMENT, "--out", str(out), "--jobs", "1", "--device", "cpu",
                *sum((["--checks", c] for c in CHECKS), []))
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not running("86400.123"):
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.5)
    assert running("86400.123"), "s4 never started"
    finished_before = {p.parent.name for p in out.glob("*/batch.json")}
    assert finished_before == {"s1"}
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "every finished submission is kept" in err
    time.sleep(1)
    assert running("86400.123") == []  # the stopped grade's sandbox went with it
    (source / "s4" / "cnn_trainer.py").write_text(plain_source())
    again = grade_class(source, ASSIGNMENT, out, _options(), log=lambda _: None)
    assert again.graded_now == 1 and [r.submission.key for r in again.rows if not r.reused] == ["s4"]


def test_a_hang_is_a_timeout_row_that_explains_itself(tmp_path):
    source = tmp_path / "class"
    (source / "slow").mkdir(parents=True)
    (source / "slow" / "cnn_trainer.py").write_text(_hang("86400.456") + plain_source())
    # Alone in its batch: a slow machine can make nothing else run past the limit.
    result = grade_class(source, ASSIGNMENT, tmp_path / "out", _options(timeout_s=8, checks=("alexnet.construct*",)),
                         log=lambda _: None)
    (row,) = result.rows
    assert row.status == "timeout" and "8 s" in row.message
    assert result.exit_code == 0  # the student's hang is not the grader's fault
    stand_in = json.loads((tmp_path / "out" / "slow" / "results.json").read_text())
    assert stand_in["score"] == 0 and "longer than the batch's limit of 8 s" in stand_in["output"]
    assert running("86400.456") == []
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["statuses"] == {"timeout": 1}
    assert summary["not_graded"][0]["status"] == "timeout"


def test_the_grader_failing_is_a_row_and_the_batch_exits_non_zero(tmp_path, monkeypatch):
    source = tmp_path / "class"
    (source / "ok").mkdir(parents=True)
    (source / "ok" / "cnn_trainer.py").write_text(plain_source())
    # A grade command that dies on its own (not the student's doing): the batch's fault line.
    monkeypatch.setattr(batch_jobs, "command", lambda job, out: [sys.executable, "-c", "import sys; sys.exit(1)"])
    result = grade_class(source, ASSIGNMENT, tmp_path / "out", _options(engine="local"), log=lambda _: None)
    assert [r.status for r in result.rows] == ["grader-error"] and result.exit_code == 1
    assert "the grader failed (exit status 1)" in result.rows[0].message
    assert json.loads((tmp_path / "out" / "ok" / "results.json").read_text())["score"] == 0


def test_the_dask_engine_on_a_local_cluster_grades_the_same(graded, tmp_path):
    distributed = pytest.importorskip("distributed")
    root, source, _, _ = graded
    subset = tmp_path / "class"
    subset.mkdir()
    for name in ("ada", "cy"):
        (subset / name).mkdir()
        (subset / name / "cnn_trainer.py").write_text((source / name / "cnn_trainer.py").read_text())
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, resources={"grade": 1},
                                  dashboard_address=None) as cluster:
        result = grade_class(subset, ASSIGNMENT, tmp_path / "out",
                             _options(engine="dask", cluster=cluster, checks=("alexnet.construct*",)), log=lambda _: None)
    assert {r.submission.key: r.status for r in result.rows} == {"ada": "graded", "cy": "graded"}
    assert {r.host for r in result.rows} == {os.uname().nodename}
    book = _gradebook(tmp_path / "out")
    assert float(book["ada"]["total"]) == float(book["cy"]["total"]) == 1.0
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["engine"] == "dask"


def test_a_worker_lost_mid_grade_is_retried_and_leaves_nothing_running(tmp_path):
    """A Dask worker killed while it grades: the scheduler runs the task again elsewhere, and
    the lost attempt's grade (with its sandbox) dies with the worker."""
    distributed = pytest.importorskip("distributed")
    marker = f"12.{os.getpid():07d}"  # this run's own: another run's leftovers are not counted
    source = tmp_path / "class"
    (source / "kim").mkdir(parents=True)
    # The import waits 12 s on a child that marks it: long enough to be caught mid-grade.
    (source / "kim" / "cnn_trainer.py").write_text(
        f"import os\npid = os.fork()\nif pid == 0:\n    os.execv('/bin/sleep', ['sleep', '{marker}'])\n"
        "os.waitpid(pid, 0)\n" + plain_source())
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, resources={"grade": 1},
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster, set_as_default=False) as client:
        found: dict = {}
        thread = threading.Thread(target=lambda: found.update(result=grade_class(
            source, ASSIGNMENT, tmp_path / "out", _options(engine="dask", cluster=cluster, checks=("alexnet.construct*",)),
            log=lambda _: None)))
        thread.start()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not running(marker):
            time.sleep(0.2)
        first = running(marker)
        assert first, "the grade never reached the student's import"
        (worker,) = [w for w, keys in client.processing().items() if "grade-kim" in keys]
        pid = client.run(os.getpid, workers=[worker])[worker]
        os.kill(pid, signal.SIGKILL)
        # Gone at once, long before the child would have ended by itself.
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and set(first) & set(running(marker)):
            time.sleep(0.2)
        assert not set(first) & set(running(marker)), "the lost attempt's grade outlived its worker"
        thread.join(timeout=300)
    (row,) = found["result"].rows
    assert row.status == "graded", row.message
    assert json.loads((tmp_path / "out" / "kim" / "results.json").read_text())["score"] == 1.0


# The browser checks live with the report's; load them by path, as they load theirs.
_spec = importlib.util.spec_from_file_location("_dlgrade_browser", Path(__file__).with_name("test_report_browser.py"))
browser_tests = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(browser_tests)
chromium = browser_tests.chromium


def test_the_summary_renders_in_chromium_offline(graded, chromium):
    root, _, _, _ = graded
    page = root / "first" / "summary.html"
    url = page.as_uri()
    with browser_tests.DevTools(chromium) as browser:
        load = browser.load(url)
        assert load.errors == []
        assert load.requests and all(u == url or u.startswith("data:") for u in load.requests), load.requests
        text = browser.evaluate("document.body.innerText")
        assert "class summary" in text and "Eve Noshow" in text
        assert browser.evaluate("document.querySelectorAll('a[href=\"bob/report.html\"]').length") >= 1
        browser.set_viewport(420, 900)
        assert browser.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1") is True


def _results(scores: dict[str, tuple[float, str]], held: dict[str, float] = {}) -> dict:
    """A results.json as grade writes it: graded tests carry a status; held ones do not."""
    tests = [{"name": cid, "score": pts, "max_score": 1, "output": f"{cid} said why\n\nhint", "status": status,
              "extra_data": {"check_id": cid, "part": "A"}} for cid, (pts, status) in scores.items()]
    tests += [{"name": cid, "score": 0.0, "max_score": pts, "output": "Held for the course staff",
               "extra_data": {"check_id": cid, "part": "A", "manual_points": pts, "measured_inside": "export stopped"}}
              for cid, pts in held.items()]
    return {"score": sum(p for p, _ in scores.values()), "tests": tests,
            "extra_data": {"assignment": ASSIGNMENT}}


def test_a_group_gets_one_row_per_member_and_held_points_stay_out_of_the_total():
    from grader.batch import gradebook, summary as summary_mod
    from grader.batch.grading import BatchResult, Row
    from grader.batch.records import ClassExport, Person, Submission
    from grader.rubric import load_rubric

    rubric = load_rubric(ASSIGNMENT)
    group = Submission("1001", (Person("1001", "Ada", "ada@x.edu"), Person("1002", "Bob", "bob@x.edu")), Path("g"),
                       submitted_at="2026-10-01T12:00:00-04:00", late=True)
    solo = Submission("1003", (Person("1003", "Cy"),), Path("c"))
    rows = [Row(group, "graded", results=_results({"alexnet.construct.nc4": (0.5, "passed"),
                                                    "alexnet.architecture.nc4": (0.0, "failed")},
                                                   held={"alexnet.construct.nc7": 0.5})),
            Row(solo, "killed", "the grader was ended by signal SIGKILL; most often the machine ran out of memory",
                results=_results({}))]
    table = gradebook.frame(rows, [Person("1004", "Dee")], rubric)
    book = {r["student_id"]: r for r in table.to_dict("records")}
    assert list(book) == ["1001", "1002", "1003", "1004"]
    for member, other in (("1001", "1002"), ("1002", "1001")):
        row = book[member]
        assert (row["total"], row["held"], row["group"], row["late"]) == (0.5, 0.5, other, True)
        assert row["alexnet.construct.nc4"] == 0.5 and row["alexnet.architecture.nc4"] == 0.0
        assert row["alexnet.construct.nc7"] is None  # held: blank, its points in "held"
        assert row["part A"] == 0.5 and row["submission"] == "1001"
    assert (book["1003"]["status"], book["1003"]["total"]) == ("killed", 0.0)
    assert (book["1004"]["status"], book["1004"]["message"]) == ("missing", "no submission")
    result = BatchResult(out=Path("."), export=ClassExport("gradescope", [group, solo], missing=[Person("1004", "Dee")]),
                         rows=rows)
    data = summary_mod.build(result, rubric, "local", 2, None)
    assert data["students"] == 4 and data["statuses"] == {"graded": 1, "killed": 1, "missing": 1}
    checks = {c["id"]: c for c in data["checks"]}
    assert checks["alexnet.construct.nc7"]["held"] == 1 and checks["alexnet.construct.nc7"]["graded"] == 0
    assert data["failures"] == [{"check": "alexnet.architecture.nc4", "name": "alexnet.architecture.nc4",
                                 "message": "alexnet.architecture.nc4 said why", "count": 1,
                                 "students": [{"key": "1001", "who": "Ada (1001); Bob (1002)",
                                               "report": "1001/report.html"}]}]
    assert data["not_graded"][0]["message"].startswith("the grader was ended by signal SIGKILL")


def test_each_local_job_gets_its_share_of_the_cores_outside_the_fingerprint(tmp_path):
    from grader.batch import engines
    from grader.limits import effective_cpus

    engine = engines.LocalEngine(jobs=2)
    assert engine.threads == max(1, effective_cpus() // 2)
    assert engines.LocalEngine(jobs=10 * effective_cpus()).threads == 1
    job = batch_jobs.Job(key="k", path="p", assignment=ASSIGNMENT, options=("--device", "cpu"), threads=3)
    line = batch_jobs.command(job, tmp_path)
    assert line[-2:] == ["--threads", "3"] and "--threads" not in job.options  # how it runs, not what it grades
    assert "--threads" not in batch_jobs.command(dataclasses.replace(job, threads=0), tmp_path)


def test_stopping_a_dask_batch_ends_the_grades_running_on_its_workers(tmp_path):
    distributed = pytest.importorskip("distributed")
    from grader.batch.engines import DaskEngine

    marker = f"86400.{os.getpid():07d}"
    (tmp_path / "slow").mkdir()
    (tmp_path / "slow" / "cnn_trainer.py").write_text(_hang(marker) + plain_source())
    (tmp_path / "quick.zip").write_bytes(b"PK\x03\x04 not a zip")  # refused at once
    options = ("--device", "cpu", "--only", "alexnet.construct*")
    todo = [batch_jobs.Job(key=k, path=str(tmp_path / p), assignment=ASSIGNMENT, options=options)
            for k, p in (("slow", "slow"), ("quick", "quick.zip"))]

    def done(job, outcome):  # the first result arrives while slow hangs: then the TA presses Ctrl-C
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not running(marker):
            time.sleep(0.2)
        assert running(marker), "slow never reached the student's import"
        raise KeyboardInterrupt

    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, resources={"grade": 1},
                                  dashboard_address=None) as cluster:
        with pytest.raises(KeyboardInterrupt):
            DaskEngine(cluster=cluster).run(todo, done)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and running(marker):
            time.sleep(0.2)
        assert running(marker) == []  # ended on its worker, which is still up


def test_a_local_cluster_the_batch_starts_shares_the_cores_out():
    pytest.importorskip("distributed")
    from grader.batch.grading import _engine
    from grader.limits import effective_cpus

    engine = _engine(BatchOptions(engine="dask", jobs=2, device="cpu"))
    try:
        assert engine.owned and engine.threads == max(1, effective_cpus() // 2)
    finally:
        engine.cluster.close()
