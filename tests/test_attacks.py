"""Attacks by a student who has read our source: each ends with at most the honest score, a
valid results.json, and nothing of theirs left running or lying around.

Under bubblewrap (as root here and in CI) every attack runs for real. Process-only mode
exists only for users who are not root, so as root its tests assert the refusal instead.
"""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gradekit import REPO, grade, plain_source, running, write_submission
from grader import api, identity, isolation
from grader.isolation import IsolationRefused

FAST = {"probe_seconds": 25, "import_seconds": 90}
HONEST = 0.5  # alexnet.construct.nc4's points, which the plain submission earns


@pytest.fixture
def private_runs(tmp_path, monkeypatch):
    """This test's own runs folder, so other graders on the machine cannot confuse the count."""
    runs = tmp_path / "runs"
    runs.mkdir(mode=0o700)
    monkeypatch.setattr(api, "_runs_root", lambda: runs)
    return runs


@pytest.fixture
def secrets(tmp_path):
    """Copies of what a student must never read: a root-only labels file in a TA's folder,
    another student's graded results (world-readable), and the repository's solutions."""
    ta = tmp_path / "ta-folder"
    ta.mkdir()
    labels = ta / "test_labels.csv"
    labels.write_text("Id,Label\n" + "".join(f"{i},SECRET{i}\n" for i in range(50)))
    labels.chmod(0o600)
    other = tmp_path / "other-student" / "results.json"
    other.parent.mkdir()
    other.write_text('{"score": 30, "SECRET": "other"}')
    other.chmod(0o644)
    return [str(labels), str(other), str(REPO / ".git" / "HEAD"), str(REPO / "reference" / "cs1678_hw4" / "alexnet.py"),
            str(REPO / "tests" / "test_attacks.py"), "/etc/shadow", "/root/.bashrc"]


HOSTILE = '''
import os, signal, subprocess, sys
for path in {paths!r}:
    try:
        with open(path, "rb") as f:
            print("READ", path, f.read(12))
    except OSError as exc:
        print("BLOCKED", path, type(exc).__name__)
for folder in ("/sys/fs/cgroup/pids", "/sys/fs/cgroup/memory", "/sys/fs/cgroup"):
    try:
        with open(folder + "/cgroup.procs", "w") as f:
            f.write(str(os.getpid()))
        print("ESCAPED", folder)
    except OSError as exc:
        print("STAYED", folder, type(exc).__name__)
for target in ("/dev/shm/dlgrade-attack-fill", "/tmp/dlgrade-attack-fill", {reference!r}):
    try:
        with open(target, "wb") as f:
            for _ in range(40):
                f.write(b"x" * (1 << 20))
        print("WROTE", target)
    except OSError as exc:
        print("NOWRITE", target, type(exc).__name__)
made = 0
try:
    for i in range(30_000):
        open(f"junk-{{i}}", "w").close()
        made += 1
except OSError as exc:
    print("FILES-STOPPED", made, type(exc).__name__)
deep = "deep"
try:
    for _ in range(1500):
        os.mkdir(deep)
        deep += "/d"
except OSError as exc:
    print("DEEP-STOPPED", type(exc).__name__)
if os.fork() == 0:  # a daemon, double-forked, that tries to rewrite the results later
    os.setsid()
    if os.fork() == 0:
        os.execv("/bin/sleep", ["sleep", "{marker}"])
    os._exit(0)
for sig in (signal.SIGSTOP, signal.SIGKILL):
    for target in (os.getppid(), 1):
        try:
            os.kill(target, sig)
        except OSError as exc:
            print("NOSIGNAL", target, sig, type(exc).__name__)
print("ATTACKS-DONE")
'''


def hostile(paths: list[str], marker: str) -> str:
    return HOSTILE.format(paths=paths, reference=str(REPO / "reference" / "dlgrade-attack-fill"), marker=marker)


def test_hostile_submission_under_bubblewrap(tmp_path, secrets, bwrap_required, private_runs):
    marker = "61.4321"
    out = tmp_path / "out"
    report = grade(write_submission(tmp_path / "sub", hostile(secrets, marker) + plain_source()),
                   "alexnet.construct.nc4", limits=FAST)
    paths = api.write_outputs(report, out)
    output = report.student_output
    assert "ATTACKS-DONE" in output
    for path in secrets:
        assert f"BLOCKED {path} FileNotFoundError" in output, output
    assert "READ" not in output and "SECRET" not in paths["json"].read_text()
    assert "ESCAPED" not in output
    assert "WROTE /dev/shm" in output  # its own /dev/shm, a folder of the capped run folder
    assert f"NOWRITE {REPO / 'reference' / 'dlgrade-attack-fill'}" in output
    assert "FILES-STOPPED" in output  # the inode cap of the run folder
    results = json.loads(paths["json"].read_text())
    assert report.checks[0].passed  # the attacks cost nothing but their own effects
    assert results["score"] == report.score == report.checks[0].points
    assert report.grader_error is None
    assert report.environment["run folder limits"].endswith("(kernel (tmpfs))")
    assert not Path("/dev/shm/dlgrade-attack-fill").exists() and not (REPO / "reference" / "dlgrade-attack-fill").exists()
    assert running(marker) == []
    assert os.listdir(private_runs) == []  # the 1,500-deep tree and the run folder are gone


def test_bubblewrap_identity_is_never_root(tmp_path, bwrap_required):
    """The uid student code has, seen from the host: not root, and unique to this grade."""
    probe = '''
import os
print("IDS", os.getuid(), os.geteuid(), os.getgid(), os.getgroups())
print("STATUS", open("/proc/self/status").read().split("CapEff:")[1].split()[0])
'''
    report = grade(write_submission(tmp_path, probe + plain_source()), "alexnet.construct.nc4", limits=FAST)
    ids = next(line for line in report.student_output.splitlines() if line.startswith("IDS")).split(maxsplit=4)
    uid = int(ids[1])
    assert identity.UID_BASE <= uid < 2 ** 31 and ids[1:] == [str(uid)] * 3 + ["[]"]
    assert (uid - identity.UID_BASE) // identity.SLOTS == os.getpid() % (1 << 22)  # this grader's own range
    assert "STATUS 0000000000000000" in report.student_output  # no capabilities at all
    assert report.checks[0].passed


def test_a_grade_survives_kill_and_stop_of_everything_it_can_see(tmp_path, bwrap_required):
    """The CLI, run as TAs run it: the submission SIGSTOPs and SIGKILLs every process it can
    see and its parent's group; the grade still ends, in time, with an honest results.json."""
    attack = '''
import os, signal
for sig in (signal.SIGSTOP, signal.SIGKILL):
    for pid in [int(p) for p in os.listdir("/proc") if p.isdigit()] + [os.getppid()]:
        if pid != os.getpid():
            try:
                os.kill(pid, sig)
            except OSError:
                pass
    for group in (os.getpgid(os.getppid()), 0):
        try:
            os.killpg(group, sig) if group else None
        except OSError:
            pass
    try:
        os.kill(-1, sig)
    except OSError:
        pass
'''
    sub = write_submission(tmp_path / "sub", attack + plain_source())
    out = tmp_path / "out"
    grade_cli = [sys.executable, "-m", "grader.cli", str(sub), "--assignment", "cs1678-hw4", "--out", str(out),
                 "--only", "alexnet.construct.nc4", "--device", "cpu"]
    done = subprocess.run(grade_cli, capture_output=True, text=True, timeout=300, start_new_session=True)
    results = json.loads((out / "results.json").read_text())
    assert done.returncode in (0, 1), done.stderr[-2000:]
    assert results["score"] <= HONEST
    assert "construct" in json.dumps(results["tests"]).lower() or results["tests"]


def test_root_without_a_way_to_drop_privileges_is_refused(monkeypatch, tmp_path):
    if os.geteuid() != 0:
        pytest.skip("what root may do is what this tests")
    monkeypatch.setattr(isolation, "bwrap_works", lambda python=sys.executable: False)
    monkeypatch.setattr(identity, "runs_python", lambda uid, python: (False, "Permission denied: '/root/venv'"))
    with pytest.raises(IsolationRefused) as refused:
        isolation.choose_isolation("auto", sys.executable)
    assert "would run as root" in str(refused.value) and "Install bubblewrap" in str(refused.value)
    assert "Permission denied" in str(refused.value)
    with pytest.raises(IsolationRefused, match="as root would run the submission's code as root"):
        isolation.choose_isolation("process", sys.executable)
    # Through the CLI: exit status 2 and a results.json that says why nothing was graded.
    from click.testing import CliRunner

    from grader.cli import main

    sub = write_submission(tmp_path / "sub", plain_source())
    result = CliRunner().invoke(main, [str(sub), "--assignment", "cs1678-hw4", "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert results["score"] == 0 and "would run as root" in results["output"]


def test_a_uid_of_its_own_loses_nothing_it_started(tmp_path):
    """User mode's clean-up, with plain programs as the sandbox uid: double-forked daemons
    in new sessions and files in the shared scratch folders are all gone after."""
    if os.geteuid() != 0:
        pytest.skip("only root can run programs as another uid")
    uid = identity.sandbox_uid()
    marker = "61.9876"
    script = (f"(setsid sleep {marker} >/dev/null 2>&1 &) ; (sleep {marker} >/dev/null 2>&1 &) ; "
              f"mkdir -p /dev/shm/dlgrade-left-{uid}/a/b ; echo x > /tmp/dlgrade-left-{uid} ; echo started")
    child = subprocess.run(["/bin/sh", "-c", script], preexec_fn=identity.drop_to(uid), capture_output=True, timeout=30)
    assert child.stdout.strip() == b"started"
    time.sleep(0.3)
    sleepers = set(running(marker)) & set(identity.processes_of(uid))
    assert len(sleepers) == 2
    assert identity.kill_uid(uid)
    assert not sleepers & set(running(marker)) and identity.processes_of(uid) == []
    removed = identity.remove_files_of(uid)
    assert f"/dev/shm/dlgrade-left-{uid}" in removed and f"/tmp/dlgrade-left-{uid}" in removed
    assert not Path(f"/dev/shm/dlgrade-left-{uid}").exists() and not Path(f"/tmp/dlgrade-left-{uid}").exists()


def test_what_each_weaker_mode_loses_is_said():
    assert isolation.lost_protections("bwrap", ["pids", "memory"]) == []
    user = " ".join(isolation.lost_protections("user", ["pids", "memory"]))
    assert "read every file on this machine that all users may read" in user and "/dev/shm" in user
    process = " ".join(isolation.lost_protections("process", [""]))
    assert "ran as your own user" in process and "signal, stop or outlive this grader" in process
    assert "watchdog" in process


def test_the_worker_refuses_to_run_as_root():
    """Whatever starts it, the worker never runs student code as root."""
    if os.geteuid() != 0:
        pytest.skip("needs root")
    done = subprocess.run([sys.executable, "-I", "-m", "grader.worker"], env={"DLGRADE_FDS": "0,1"},
                          capture_output=True, timeout=60)
    assert done.returncode == 122


def test_tmp_is_mounted_before_what_lies_under_it():
    """A venv or run folder under /tmp (a CI clone, the runs folder itself) stays visible:
    the sandbox's own /tmp is mounted first, then the binds go on top of it."""
    from grader import bwrap

    args = bwrap.command(Path("/tmp/dlgrade-runs-0/run-x/sandbox"), sys.executable, "rootns", 12345)
    tmp = next(i for i in range(len(args) - 1) if args[i] == "--tmpfs" and args[i + 1] == "/tmp")
    binds = [i for i in range(len(args) - 2) if args[i] in ("--bind", "--ro-bind")
             and (args[i + 2] in bwrap.interpreter_paths(sys.executable) or args[i + 2].startswith("/tmp/"))]
    assert binds and all(tmp < i for i in binds)
    assert args[args.index("--remount-ro") + 1] == "/" and args[-1] == "--"
    assert "--unshare-user" not in args and "--uid" not in args  # root never maps the sandbox to root
    assert args[args.index("--cap-add") + 1] == "CAP_SETUID"
