"""One hostile submission, graded in every isolation mode this machine can run.

Whatever the mode: at most the honest score, a valid results.json that says what the mode
lost, no process of the submission left, and its folders cleaned up. What each mode hides
differs, and is asserted as the README's table says.

The modes without bubblewrap, and an ordinary user's bubblewrap, need an interpreter that
other uids can start; CI makes it so (.ci/run) and sets DLGRADE_REQUIRE_ALL_MODES=1, so
there these tests cannot skip.
"""
import html
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from gradekit import REPO, plain_source, require_env, running, write_submission
from grader import identity, tree
from grader.isolation import bwrap_works

HONEST = 0.5  # alexnet.construct.nc4 with the plain submission
MARKER = "61.5432"
ATTACK = '''
import os, signal
for path in ("/etc/shadow", {reference!r}, {ta!r}):
    try:
        open(path, "rb").read(1)
        print("READ", path)
    except OSError as exc:
        print("BLOCKED", path, type(exc).__name__)
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.execv("/bin/sleep", ["sleep", "{marker}"])
    os._exit(0)
os.makedirs("deep/" + "/".join(["d"] * 400), exist_ok=True)
for folder in ("/sys/fs/cgroup/pids", "/sys/fs/cgroup/memory", "/sys/fs/cgroup"):
    try:
        with open(folder + "/cgroup.procs", "w") as f:
            f.write(str(os.getpid()))
        print("ESCAPED", folder)
    except OSError:
        pass
try:
    with open("/dev/shm/dlgrade-fill-{marker}", "wb") as f:
        f.write(b"x" * (8 << 20))
except OSError as exc:
    print("NOSHM", type(exc).__name__)
for sig in (signal.SIGSTOP, signal.SIGKILL):
    try:
        os.kill(os.getppid(), sig)
    except OSError as exc:
        print("NOSIGNAL", sig, type(exc).__name__)
'''
OTHER_UID_BASE = 2_140_000_000  # an ordinary user for the modes that run without root, above the sandboxes' range


def _reachable() -> bool:
    return os.geteuid() == 0 and identity.runs_python(identity.sandbox_uid(), sys.executable)[0]


MODES = {  # mode -> (grader runs as root?, --isolation, DLGRADE_BWRAP_WAY, needs other uids to reach python)
    "bwrap-as-root": (True, "bwrap", "", False),
    "bwrap-userns-as-root": (True, "bwrap", "userns", True),
    "bwrap-as-a-user": (False, "bwrap", "", True),
    "uid-of-its-own": (True, "user", "", True),
    "process-as-a-user": (False, "process", "", True),
}


@pytest.fixture
def workspace(tmp_path):
    """A folder every uid may enter (pytest's own is root's alone), removed after."""
    folder = Path(tempfile.mkdtemp(prefix="dlgrade-modes-"))
    folder.chmod(0o755)
    yield folder
    tree.remove(folder)


def _grade_in(mode: str, tmp_path: Path, source: str, only: str, assignment: str = "cs1678-hw4",
              name: str = "cnn_trainer.py", beside: Path | None = None):
    """Grade `source` (the file `name`, with the files in `beside`) by the CLI in `mode`;
    (process, results.json, the grader's scratch folder)."""
    as_root, isolation, way, needs_reach = MODES[mode]
    if os.geteuid() != 0:
        pytest.skip("switching between root and an ordinary user needs root")
    if isolation == "bwrap":
        require_env("DLGRADE_REQUIRE_BWRAP", bwrap_works(), "bubblewrap is not usable on this machine")
    if needs_reach:
        require_env("DLGRADE_REQUIRE_ALL_MODES", _reachable(),
                    f"other uids cannot start {sys.executable} (it lives in a folder only root may enter)")
    sub = write_submission(tmp_path / "sub", source, name)
    for other in (beside.iterdir() if beside else ()):
        (sub / other.name).write_text(other.read_text())
        os.chmod(sub / other.name, 0o644)
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DLGRADE_")}
    env["DLGRADE_BWRAP_WAY"] = way
    user = OTHER_UID_BASE + os.getpid()
    scratch = tmp_path / "scratch"  # this grade's TMPDIR, so other graders' runs are not counted
    scratch.mkdir(mode=0o755)
    env["TMPDIR"] = str(scratch)
    if not as_root:
        os.chmod(sub, 0o755)
        home = tmp_path / "home"
        home.mkdir()
        os.chown(home, user, user)
        os.chown(scratch, user, user)
        env["HOME"] = str(home)
    command = [sys.executable, "-m", "grader.cli", str(sub), "--assignment", assignment, "--out", str(out),
               "--only", only, "--device", "cpu", "--isolation", isolation]
    if not as_root:
        out.mkdir()
        os.chown(out, user, user)
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env, cwd=str(tmp_path),
                          start_new_session=True, preexec_fn=None if as_root else identity.drop_to(user))
    return done, json.loads((out / "results.json").read_text()), scratch


@pytest.mark.parametrize("mode", list(MODES))
def test_a_forgery_earns_at_most_the_honest_score_in_every_mode(mode, workspace):
    """The handler-table forgery (tests/test_forgery.py) forces the fall-back to the worker's
    word and answers for a correct AlexNet; a held check earns nothing, in any mode."""
    from test_forgery import FORGE, ROUTES, _wrong_source

    facts = json.dumps({"trace": {"constructed": True, "rows": [], "error": None, "params_total": 1},
                        "behaviour": {"device": "cpu", "error": None}})
    done, results, _ = _grade_in(mode, workspace, FORGE.format(facts=facts) + ROUTES["handlers"] + _wrong_source(),
                                 "alexnet.construct.nc4")
    assert done.returncode == 0, done.stderr[-3000:]
    assert results["score"] == 0, results["tests"]
    (test,) = results["tests"]
    assert "Held for the course staff" in test["output"] and "measured inside" in test["extra_data"]["measured_inside"]


@pytest.mark.parametrize("mode", list(MODES))
def test_a_cell_forgery_is_held_in_every_mode(mode, workspace):
    """The same for a recurrent cell: the handler table answers for a correct LSTMCell."""
    from test_forgery_cells import FORGE, PLAIN, ROUTES, WRONG

    facts = json.dumps({"cell": {"error": None, "state_kind": "pair", "second_state_kind": "pair",
                                 "state_shapes": [[3, 5], [3, 5]], "params_default_bias": 1, "params_without_bias": 1},
                        "memory": {}})
    wrong = (PLAIN / "rnn_modules.py").read_text().replace(*WRONG)
    done, results, _ = _grade_in(mode, workspace, FORGE.format(facts=facts) + ROUTES["handlers"] + wrong,
                                 "lstmcell.contract", "cs1699-hw5", "rnn_modules.py")
    assert done.returncode == 0, done.stderr[-3000:]
    assert results["score"] == 0, results["tests"]
    (test,) = results["tests"]
    assert "Held for the course staff" in test["output"] and "measured inside" in test["extra_data"]["measured_inside"]


SENTIMENT_FORGERY = '''
import gc as _gc
_STOPPED = {"error": {"type": "Unsupported", "message": "a hook", "stage": "export", "file": None, "line": None,
                      "code": None, "trace": []}, "constructed": True, "artefact": None}
_FORGED = {"error": None, "shape": [4, 2], "finite": True, "padding_invariant": True, "reads_last_token": True,
           "unreachable": []}
for _table in _gc.get_objects():
    if isinstance(_table, dict) and "export_sentiment" in _table and callable(_table.get("sentiment")):
        _table["export_sentiment"] = lambda **kw: dict(_STOPPED)
        _table["sentiment"] = lambda **kw: dict(_FORGED)
'''


@pytest.mark.parametrize("mode", list(MODES))
def test_a_sentiment_model_forgery_is_held_in_every_mode(mode, workspace):
    """The same for the review classifier: a model that ignores the lengths (honestly 0 for
    this check) answers through the handler table for a correct one."""
    source = (REPO / "tests" / "submissions" / "hw5_plain" / "sentiment_analysis.py").read_text()
    wrong = source.replace("outputs[torch.arange(data.shape[0]), batch_lengths - 1, :]", "outputs[:, -1, :]")
    assert wrong != source
    sub = workspace / "files"
    sub.mkdir(mode=0o755)
    for name in ("rnn_modules.py", "sentence_generation.py"):
        (sub / name).write_text((REPO / "tests" / "submissions" / "hw5_plain" / name).read_text())
    done, results, _ = _grade_in(mode, workspace, SENTIMENT_FORGERY + wrong, "sentiment.last_token", "cs1699-hw5",
                                 "sentiment_analysis.py", beside=sub)
    assert done.returncode == 0, done.stderr[-3000:]
    assert results["score"] == 0, results["tests"]
    (test,) = results["tests"]
    assert "Held for the course staff" in test["output"] and "measured inside" in test["extra_data"]["measured_inside"]


@pytest.mark.parametrize("mode", list(MODES))
def test_hostile_submission_in_every_mode(mode, workspace):
    tmp_path = workspace
    as_root, isolation, _, _ = MODES[mode]
    ta = tmp_path / "ta"
    ta.mkdir()
    (ta / "labels.csv").write_text("Id,Label\n1,SECRET\n")
    (ta / "labels.csv").chmod(0o600)
    done, results, scratch = _grade_in(mode, tmp_path, ATTACK.format(
        reference=str(REPO / "reference" / "cs1678_hw4" / "alexnet.py"), ta=str(ta / "labels.csv"), marker=MARKER)
        + plain_source(), "alexnet.construct.nc4")
    out = tmp_path / "out"
    output = results.get("output", "") + json.dumps(results.get("extra_data", {})) + \
        "".join(t.get("output", "") for t in results.get("tests", []))
    assert done.returncode == 0, done.stderr[-3000:]
    assert results["score"] <= HONEST
    assert running(MARKER) == [], f"{mode}: the daemon outlived the grade"
    printed = html.unescape((out / "report.html").read_text())  # the student's output is in the report
    assert "SECRET" not in done.stdout + output + printed
    assert "ESCAPED" not in printed
    assert not Path(f"/dev/shm/dlgrade-fill-{MARKER}").exists(), f"{mode}: /dev/shm kept what the submission wrote"
    reference = REPO / "reference" / "cs1678_hw4" / "alexnet.py"
    if as_root:  # a tmpfs run folder: the deep tree is the submission's business, and costs nothing
        assert results["score"] == HONEST and "(kernel (tmpfs))" in output
    else:  # no tmpfs: the watchdog measures the run folder and stops what goes past its caps
        assert "folders more than 64 deep into its folder" in output, output
    if isolation == "bwrap":
        for path in ("/etc/shadow", reference, ta / "labels.csv"):
            assert f"BLOCKED {path} FileNotFoundError" in printed  # not there at all
        assert ("Isolation was weaker" in output) == (not as_root)  # without root, no cgroups: a watchdog
    else:
        assert "BLOCKED /etc/shadow PermissionError" in printed
        assert f"BLOCKED {ta / 'labels.csv'} PermissionError" in printed
        assert f"READ {reference}" in printed  # what all users may read: the report says so
    if isolation == "user":
        assert "read every file on this machine that all users may read" in output
    if isolation == "process":
        assert "ran as your own user" in output and "PID and network namespaces" in output
        assert "/dev/shm was its own" in output
    leftover = list(scratch.glob("dlgrade-runs-*/*"))
    assert leftover == [], f"{mode}: run folders left behind: {leftover}"
    assert list(scratch.glob("dlgrade-runs-*")), "the grade did not use this TMPDIR"
