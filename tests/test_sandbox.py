"""Hostile submissions: each attack costs the attacker, never the grader or other classes."""
import json
import os
import time
from pathlib import Path

import pytest

from gradekit import REPO, by_id, grade, mutate, plain_source, running, write_submission
from grader import api
from grader.results import Status

AVG_FORWARD = '''    def forward(self, x):  # AVGFORWARD
        x = self.features(x)'''
FAST = {"probe_seconds": 25, "import_seconds": 90}  # a hang, not a busy machine, must trip them


def with_avg_forward(body: str) -> str:
    """The plain submission with AlexNetAvgPooling.forward starting with `body`."""
    return mutate(plain_source(), (AVG_FORWARD, AVG_FORWARD.replace("        x = self.features(x)", body + "\n        x = self.features(x)")))


def test_hang_in_one_class_costs_only_that_class(tmp_path):
    source = with_avg_forward("        while True:\n            pass")
    started = time.monotonic()
    report = grade(write_submission(tmp_path, source), "*.architecture.*", "alexnet.forward.nc4", limits=FAST)
    checks = by_id(report)
    assert time.monotonic() - started < 120
    hung = checks["alexnetavgpooling.architecture.nc4"]
    assert not hung.passed and "did not finish within 25 s" in hung.message
    assert "infinite loop" in hung.hint
    assert checks["alexnetavgpooling.architecture.nc7"].message.startswith("Not graded: an earlier check of AlexNetAvgPooling")
    passed = {c.check_id for c in report.checks if c.passed}
    assert passed == {"alexnet.architecture.nc4", "alexnet.architecture.nc7", "alexnet.forward.nc4",
                      "alexnetlargekernel.architecture.nc4", "alexnetlargekernel.architecture.nc7"}


def test_memory_bomb_is_stopped(tmp_path):
    source = with_avg_forward("        hog = [torch.ones(25_000_000) for _ in range(400)]")
    report = grade(write_submission(tmp_path, source), "alexnetavgpooling.architecture.nc4",
                   "alexnet.architecture.nc4", limits={**FAST, "memory_mb": 2000})
    checks = by_id(report)
    bomb = checks["alexnetavgpooling.architecture.nc4"]
    assert not bomb.passed and "used more than 2000 MB of memory" in bomb.message
    assert checks["alexnet.architecture.nc4"].passed


def test_os_exit_in_forward(tmp_path):
    source = with_avg_forward("        import os\n        os._exit(3)")
    report = grade(write_submission(tmp_path, source), "alexnetavgpooling.forward.nc4", "alexnet.forward.nc4",
                   "alexnetlargekernel.forward.nc4", limits=FAST)
    checks = by_id(report)
    ended = checks["alexnetavgpooling.forward.nc4"]
    assert not ended.passed and "ended the grading process (exit code 3)" in ended.message
    assert checks["alexnet.forward.nc4"].passed and checks["alexnetlargekernel.forward.nc4"].passed


def forger(out: Path) -> str:
    """Writes fake results wherever it can, prints fake results, and leaves a process behind
    that tries again after the grader has finished."""
    target = str(out / "results.json")
    return f'''
import json, os, subprocess, sys
FAKE = {{"score": 100, "tests": [{{"name": "forged", "score": 100, "max_score": 100}}]}}
for path in [{target!r}, "results.json", "../results.json", "/autograder/results/results.json"]:
    try:
        with open(path, "w") as f:
            json.dump(FAKE, f)
        print("FORGE-WROTE", path)
    except OSError as exc:
        print("FORGE-BLOCKED", path, type(exc).__name__)
print(json.dumps(FAKE))
subprocess.Popen([sys.executable, "-c",
                  "import json, time; time.sleep(5); json.dump({{'score': 100}}, open({target!r}, 'w'))"],
                 start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
'''


def test_forged_results_change_nothing(tmp_path, bwrap_required):
    out = tmp_path / "out"
    out.mkdir()
    source = forger(out) + plain_source()
    report = grade(write_submission(tmp_path / "sub", source), "alexnet.architecture.nc4")
    api.write_outputs(report, out)
    time.sleep(7)  # the process the submission left behind would have written by now
    results = json.loads((out / "results.json").read_text())
    assert results["score"] == report.score == 1.5
    assert [t["name"] for t in results["tests"]] == [report.checks[0].name]
    assert f"FORGE-BLOCKED {out / 'results.json'}" in report.student_output
    assert '"score": 100' in report.student_output  # printed JSON stays the student's output, nothing more


def test_forged_results_in_process_isolation(tmp_path):
    """Without bubblewrap and root the student can write where the grader's user can; we
    still write last. As root, process isolation is refused: student code never runs as root."""
    out = tmp_path / "out"
    out.mkdir()
    sub = write_submission(tmp_path / "sub", forger(out) + plain_source())
    if os.geteuid() == 0:
        from grader.isolation import IsolationRefused

        with pytest.raises(IsolationRefused, match="would run the submission's code as root"):
            grade(sub, "alexnet.architecture.nc4", isolation="process")
        return
    report = grade(sub, "alexnet.architecture.nc4", isolation="process")
    api.write_outputs(report, out)
    assert json.loads((out / "results.json").read_text())["score"] == 1.5
    assert any("ran as your own user" in n.text for n in report.notes)


def test_hidden_files_and_network_are_out_of_reach(tmp_path, bwrap_required):
    secret = REPO / "reference" / "cs1678_hw4" / "alexnet.py"
    assert secret.exists()
    probe = f'''
import socket
try:
    print("SECRET-READ", open({str(secret)!r}).read()[:40])
except OSError as exc:
    print("SECRET-BLOCKED", type(exc).__name__)
try:
    socket.create_connection(("1.1.1.1", 53), timeout=3)
    print("NETWORK-OPEN")
except OSError as exc:
    print("NETWORK-BLOCKED", type(exc).__name__)
'''
    report = grade(write_submission(tmp_path, probe + plain_source()), "alexnet.construct.nc4")
    assert report.checks[0].passed
    assert "SECRET-BLOCKED FileNotFoundError" in report.student_output
    assert "SECRET-READ" not in report.student_output
    assert "NETWORK-BLOCKED" in report.student_output


def test_process_flood_is_contained_and_cleaned_up(tmp_path):
    marker = "61.2345"  # an unusual sleep duration marks the flood's processes
    flood = f'''
import subprocess, sys
children = []
try:
    for _ in range(400):
        children.append(subprocess.Popen(["sleep", "{marker}"]))
    print("FLOOD-COMPLETE", len(children))
except OSError as exc:
    print("FLOOD-STOPPED", len(children), type(exc).__name__)
'''
    report = grade(write_submission(tmp_path, flood + plain_source()), "alexnet.construct.nc4", limits=FAST)
    assert report.grader_error is None
    assert "FLOOD-COMPLETE" not in report.student_output
    construct = report.checks[0]
    # Either the kernel refused the forks (the module then imports, and the model's build,
    # which needs threads, may find the uid's process count used up: the flood's own cost),
    # or the watchdog stopped the worker; in every case nothing is left running.
    stopped = "FLOOD-STOPPED" in report.student_output and \
        (construct.passed or "ended the grading process" in construct.message)
    assert stopped or "more than 256 processes" in construct.message
    time.sleep(1)
    assert running(marker) == []


def test_results_json_is_written_even_when_everything_fails(tmp_path):
    source = "import os\nos._exit(0)\n" + plain_source()
    report = grade(write_submission(tmp_path, source), limits=FAST)
    assert report.score == 0 and report.checks and all(c.status is not Status.PASSED for c in report.checks)
    assert "could not be imported" in report.checks[0].message
    assert "ended the grading process (exit code 0)" in report.checks[0].message
    paths = api.write_outputs(report, tmp_path / "out")
    assert json.loads(paths["json"].read_text())["score"] == 0


def test_a_progress_report_is_bounded_and_needs_a_number():
    """Progress comes from the student's process: only short labels and integers are used."""
    from grader.sandbox import Sandbox

    box = Sandbox.__new__(Sandbox)  # only the formatting is under test
    box.progress = {"what": "w" * 5000, "done": 412, "total": 1000, "unit": "characters" + "u" * 500, "note": "n" * 5000}
    text = box._progress_text()
    assert text.startswith("; by then " + "w" * 80 + " had reached 412 of 1,000 characters" + "u" * 10 + " (")
    assert len(text) < 300
    for broken in ({"done": "many"}, {"done": None}, {"what": "x"}, None, {"done": 3, "total": "all"}):
        box.progress = broken
        assert box._progress_text() == ""
