"""Gradescope: the autograder zip, the real run_autograder script in a folder laid out like
/autograder, the Python entrypoint, and the Dockerfile that builds the same container.

Only the template is graded in full here: its models fail at construction, so the whole
rubric runs in a few seconds.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner

from grader import gradescope
from grader.cli import main
from grader.rubric import available, load_rubric

from gradekit import REPO, TEMPLATE, unpack

# What `grade` says of an assignment it does not know: it names the ones it does.
UNKNOWN = f"unknown assignment 'cs9999-nope' (known: {', '.join(sorted(available()))})"

ASSIGNMENT = "cs1678-hw4"
FILES = REPO / "grader" / "gradescope_files"
SCHEMA = json.loads((REPO / "grader" / "render" / "gradescope-results.schema.json").read_text())
MARKER = gradescope.ASSIGNMENT_FILE
EXECUTABLES = {"setup.sh", "run_autograder"}
NEVER_SHIPPED = ("reference", "tests", "examples", "student_template", "benchmarks", ".venv", ".git")
AUTOMATIC_POINTS = 22


def validated(path: Path) -> dict:
    assert path.is_file(), f"{path} was not written"
    data = json.loads(path.read_text(encoding="utf-8"))
    jsonschema.validate(data, SCHEMA)
    return data


def automatic(results: dict) -> list[dict]:
    return [t for t in results["tests"] if "status" in t]


# --------------------------------------------------------------------------- the zip


@pytest.fixture(scope="module")
def autograder_zip(tmp_path_factory) -> Path:
    """Built through the command line, as an instructor would."""
    out = tmp_path_factory.mktemp("zip") / "autograder.zip"
    result = CliRunner().invoke(main, ["build-autograder", ASSIGNMENT, "-o", str(out)], prog_name="grade",
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"wrote {out} (")
    return out



def test_zip_holds_the_grader_and_rubric_but_no_solutions(autograder_zip):
    with zipfile.ZipFile(autograder_zip) as zf:
        infos = {i.filename: i for i in zf.infolist()}
        data = {name: zf.read(name) for name in infos}
    names = set(infos)

    # the two scripts Gradescope looks for sit at the root and are executable; nothing else is
    for name, info in infos.items():
        mode = (info.external_attr >> 16) & 0o777
        assert mode == (0o755 if name in EXECUTABLES else 0o644), f"{name}: mode {oct(mode)}"
        assert stat.S_ISREG(info.external_attr >> 16) and info.create_system == 3, f"{name}: not a Unix file entry"
        assert not name.startswith("/") and ".." not in name.split("/")
    for script in EXECUTABLES:
        assert data[script] == (FILES / script).read_bytes(), f"{script} differs from grader/gradescope_files"
        assert data[script].startswith(b"#!/usr/bin/env bash\n") and b"\r\n" not in data[script]

    assert data[MARKER] == f"{ASSIGNMENT}\n".encode()
    assert data[f"rubrics/{ASSIGNMENT}.toml"] == (REPO / "rubrics" / f"{ASSIGNMENT}.toml").read_bytes()
    for name in ("pyproject.toml", "constraints.txt", "README.md"):
        assert data[name] == (REPO / name).read_bytes()

    # the whole grader package, and nothing compiled
    package = {p.relative_to(REPO).as_posix() for p in (REPO / "grader").rglob("*")
               if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"}
    assert package <= names, f"missing from the zip: {sorted(package - names)}"
    for needed in ("grader/gradescope.py", "grader/worker/__main__.py", "grader/render/templates/report.html.j2",
                   "grader/render/gradescope-results.schema.json", "grader/worker/shims/google/colab/drive.py"):
        assert needed in names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]

    # no solutions, tests, examples or starter code, by path or by content
    assert not [n for n in names if n.split("/")[0] in NEVER_SHIPPED]
    assert names == package | {"setup.sh", "run_autograder", MARKER, "pyproject.toml", "constraints.txt",
                               "README.md", f"rubrics/{ASSIGNMENT}.toml"}
    secret = {hashlib.sha256(p.read_bytes()).hexdigest()
              for top in ("reference", "tests", "examples") for p in (REPO / top).rglob("*") if p.is_file()}
    leaked = [n for n, blob in data.items() if blob and hashlib.sha256(blob).hexdigest() in secret]
    assert not leaked, f"the zip holds copies of private files: {leaked}"


# --------------------------------------------------------------------------- run_autograder


@pytest.fixture(scope="module")
def unpacked(autograder_zip, tmp_path_factory) -> Path:
    return unpack(autograder_zip, tmp_path_factory.mktemp("unpacked"))


def autograder_root(tmp_path: Path, unpacked: Path, files: dict[str, str]) -> Path:
    """A folder laid out like /autograder, after setup.sh ran and a student submitted `files`."""
    root = tmp_path / "autograder"
    shutil.copytree(unpacked, root / "source")
    # what setup.sh does: cp "$SOURCE/run_autograder" /autograder/run_autograder; chmod +x
    shutil.copy2(root / "source" / "run_autograder", root / "run_autograder")
    (root / "run_autograder").chmod(0o755)
    submission = root / "submission"
    submission.mkdir()
    for name, text in files.items():
        (submission / name).write_text(text)
    (root / "submission_metadata.json").write_text(json.dumps({"id": 1, "users": [{"name": "A Student"}]}))
    return root


def run_autograder(root: Path, **env: str) -> subprocess.CompletedProcess:
    """Run root/run_autograder as Gradescope does, with the zip's own grader package and rubrics."""
    base = {k: v for k, v in os.environ.items()
            if k not in ("DLGRADE_ASSIGNMENT", "DLGRADE_RUBRICS", "DLGRADE_KEEP_RUNS", "PYTHONPATH")}
    base.update(AUTOGRADER_ROOT=str(root), DLGRADE_PYTHON=sys.executable,
                DLGRADE_RUBRICS=str(root / "source" / "rubrics"),
                PYTHONPATH=str(root / "source"),  # the scoring process imports the grader from the zip
                DLGRADE_TIME_BUDGET="240")
    base.update(env)
    proc = subprocess.run([str(root / "run_autograder")], cwd="/", env=base, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def test_the_zips_grader_package_is_the_one_that_scores(unpacked, tmp_path):
    """PYTHONPATH=source puts the unpacked zip's package ahead of this checkout's."""
    env = {**os.environ, "PYTHONPATH": str(unpacked)}
    where = subprocess.run([sys.executable, "-c", "import grader.gradescope as g; print(g.__file__)"], env=env,
                           cwd=tmp_path, capture_output=True, text=True, check=True).stdout.strip()
    assert Path(where) == unpacked / "grader" / "gradescope.py"


def test_run_autograder_grades_the_template_to_zero(unpacked, tmp_path):
    root = autograder_root(tmp_path, unpacked, {"cnn_trainer.py": (TEMPLATE / "cnn_trainer.py").read_text()})
    proc = run_autograder(root)
    assert proc.stdout.strip() == f"dlgrade: 0 points; results written to {root / 'results' / 'results.json'}"

    results = validated(root / "results" / "results.json")
    rubric = load_rubric(ASSIGNMENT)
    assert results["score"] == 0
    assert results["extra_data"]["assignment"] == ASSIGNMENT
    assert results["extra_data"]["graded_files"] == ["cnn_trainer.py"]
    assert results["extra_data"]["grader_error"] is None
    assert results["extra_data"]["self_check"] is False
    assert [t["extra_data"]["check_id"] for t in results["tests"]] == [c.check_id for c in rubric.checks()]
    tests = automatic(results)
    assert sum(t["max_score"] for t in tests) == AUTOMATIC_POINTS
    for test in tests:
        assert test["status"] == "failed" and test["score"] == 0, test
        assert "not implemented yet" in test["output"] or "could not be built" in test["output"], test["output"]
    constructs = [t for t in tests if ".construct." in t["extra_data"]["check_id"]]
    assert len(constructs) == 6
    assert all("is not implemented yet: it raises NotImplementedError" in t["output"] for t in constructs)
    staff = [t for t in results["tests"] if "status" not in t]
    assert sum(t["extra_data"]["manual_points"] for t in staff) == 8
    assert all(t["max_score"] == 0 for t in staff), "staff points must not inflate the autograder's total"
    assert all(t["name"].startswith("[Graded by course staff]") for t in staff)
    assert (root / "results" / "report.html").is_file()


def test_run_autograder_without_python_files_explains(unpacked, tmp_path):
    root = autograder_root(tmp_path, unpacked, {"README.txt": "see my PDF\n"})
    run_autograder(root)
    results = validated(root / "results" / "results.json")
    assert results["score"] == 0
    assert "no Python file found in submission" in results["output"]
    tests = automatic(results)
    assert len(tests) == len([c for c in load_rubric(ASSIGNMENT).checks() if c.kind != "manual"])
    assert all(t["status"] == "failed" and t["score"] == 0 for t in tests)
    assert all(t["output"] == "Not graded: no Python file found in submission" for t in tests)


def test_run_autograder_falls_back_when_python_cannot_start(unpacked, tmp_path):
    root = autograder_root(tmp_path, unpacked, {"cnn_trainer.py": "x = 1\n"})
    proc = run_autograder(root, DLGRADE_PYTHON=str(tmp_path / "no-such-python"))
    results = validated(root / "results" / "results.json")
    assert results == {"score": 0, "tests": [], "output": "The autograder could not start its grading program, "
                                                          "so nothing was graded. Please tell the course staff."}
    assert "no-such-python" in proc.stderr  # the shell said why, in the log the staff can see


def test_run_autograder_never_keeps_a_stale_results_json(unpacked, tmp_path):
    """A results.json already there (planted, or from an earlier run) must not survive a grader that breaks."""
    root = autograder_root(tmp_path, unpacked, {"cnn_trainer.py": "x = 1\n"})
    (root / "results").mkdir()
    (root / "results" / "results.json").write_text(json.dumps({"score": 100, "output": "stale", "tests": []}))
    broken = tmp_path / "broken"
    (broken / "grader").mkdir(parents=True)
    (broken / "grader" / "__init__.py").write_text("raise ImportError('grader package damaged')\n")
    run_autograder(root, PYTHONPATH=str(broken))
    results = validated(root / "results" / "results.json")
    assert results["score"] == 0 and results["tests"] == []
    assert "could not start its grading program" in results["output"]


ATTACK = '''\
import json as _json, os as _os, subprocess as _sp, sys as _sys
_FAKE = {{"score": 100, "output": "FAKE-RESULTS-TOKEN", "tests": [
    {{"name": "everything", "score": 100, "max_score": 100, "status": "passed"}}]}}


def _plant(path):
    try:
        _os.makedirs(_os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            _json.dump(_FAKE, f)
    except Exception as exc:
        print("could not plant", path, type(exc).__name__)


_mine = _os.path.dirname(_os.path.abspath(__file__))
_plant(_os.path.join(_mine, "..", "results", "results.json"))
_plant({results!r})
_plant({planted!r})
print(_json.dumps(_FAKE))
# and again after the grader has written its own file, from a process that tries to outlive the worker
_sp.Popen([_sys.executable, "-c", "import json, time; time.sleep(1); "
           "open(%r, 'w').write(json.dumps(%r))" % ({results!r}, _FAKE)],
          start_new_session=True, stdout=_sp.DEVNULL, stderr=_sp.DEVNULL)
import atexit

atexit.register(_plant, {results!r})
'''


def test_a_submission_cannot_write_or_print_its_own_results(unpacked, tmp_path):
    root = tmp_path / "autograder"
    results_path = root / "results" / "results.json"
    attack = ATTACK.format(results=str(results_path), planted=str(root / "results" / "planted.json"))
    source = attack + (TEMPLATE / "cnn_trainer.py").read_text()
    root = autograder_root(tmp_path, unpacked, {"cnn_trainer.py": source})
    proc = run_autograder(root)
    time.sleep(2)  # give the detached writer its chance
    assert "FAKE-RESULTS-TOKEN" not in proc.stdout

    text = results_path.read_text()
    assert "FAKE-RESULTS-TOKEN" not in text
    results = validated(results_path)
    assert results["score"] == 0
    assert results["extra_data"]["graded_files"] == ["cnn_trainer.py"]
    assert len(results["tests"]) == len(load_rubric(ASSIGNMENT).checks())
    assert all(t["score"] == 0 for t in results["tests"] if "status" in t)
    assert not re.search(r'"score":\s*100', text)
    # the attack really ran: what it printed is in the staff's HTML report, not in the results
    assert "FAKE-RESULTS-TOKEN" in (root / "results" / "report.html").read_text()
    isolation = results["extra_data"]["environment"]["isolation"]
    if not isolation.startswith("separate process"):  # a real sandbox hides the results folder
        assert sorted(p.name for p in (root / "results").iterdir()) == ["report.html", "results.json"]


# --------------------------------------------------------------------------- the Python entrypoint


def test_entrypoint_with_an_unknown_assignment_marker_explains(tmp_path):
    root = tmp_path / "autograder"
    (root / "source").mkdir(parents=True)
    (root / "source" / MARKER).write_text("cs9999-nope\n")
    (root / "submission").mkdir()
    (root / "submission" / "cnn_trainer.py").write_text((TEMPLATE / "cnn_trainer.py").read_text())
    env = {k: v for k, v in os.environ.items() if k not in ("DLGRADE_ASSIGNMENT", "DLGRADE_RUBRICS", "PYTHONPATH")}
    proc = subprocess.run([sys.executable, "-m", "grader.gradescope", "--root", str(root)], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    results = validated(root / "results" / "results.json")
    assert results["score"] == 0 and results["tests"] == []
    assert UNKNOWN in results["output"]
    assert results["extra_data"]["assignment"] == "cs9999-nope"


def test_entrypoint_without_a_marker_says_the_autograder_is_incomplete(tmp_path, monkeypatch):
    monkeypatch.delenv("DLGRADE_ASSIGNMENT", raising=False)
    root = tmp_path / "autograder"
    (root / "submission").mkdir(parents=True)
    (root / "submission" / "cnn_trainer.py").write_text("x = 1\n")
    results = gradescope.run(root)
    assert results == validated(root / "results" / "results.json")
    assert results["score"] == 0 and results["tests"] == []
    assert f"{MARKER} is missing" in results["output"] and "grade build-autograder" in results["output"]


def test_entrypoint_survives_a_malformed_time_budget(tmp_path, monkeypatch):
    monkeypatch.setenv("DLGRADE_TIME_BUDGET", "ten minutes")
    root = tmp_path / "autograder"
    (root / "submission").mkdir(parents=True)
    (root / "submission" / "notes.txt").write_text("nothing here\n")
    results = gradescope.run(root, ASSIGNMENT)
    assert "no Python file found in submission" in validated(root / "results" / "results.json")["output"]
    assert results["score"] == 0


# --------------------------------------------------------------------------- the Dockerfile


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with line continuations joined and comments dropped."""
    out, pending = [], ""
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("#") or (not line and not pending):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        pending += line
        word, _, rest = pending.partition(" ")
        out.append((word.upper(), rest.strip()))
        pending = ""
    assert not pending, "the Dockerfile ends inside a continued line"
    return out


def dockerignore_rules(text: str) -> list[tuple[bool, re.Pattern]]:
    """(is an exception, regex) per line, with Docker's meaning of *, ? and **."""
    rules = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = os.path.normpath(line.lstrip("!").strip()).lstrip("/")
        regex, i = "", 0
        while i < len(pattern):
            if pattern.startswith("**/", i):
                regex, i = regex + "(?:.*/)?", i + 3
            elif pattern.startswith("**", i):
                regex, i = regex + ".*", i + 2
            else:
                regex += {"*": "[^/]*", "?": "[^/]"}.get(pattern[i], re.escape(pattern[i]))
                i += 1
        rules.append((negate, re.compile(regex + r"\Z")))
    return rules


def ignored(path: str, rules) -> bool:
    """Docker: the last rule matching the path or one of its parent folders decides."""
    parts = path.split("/")
    prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    verdict = False
    for negate, regex in rules:
        if any(regex.match(p) for p in prefixes):
            verdict = not negate
    return verdict


def shell_vars(script: str) -> dict[str, str]:
    return dict(re.findall(r'^([A-Z_]+)="?([^"\n]*)"?$', script, re.M))


def test_dockerfile_builds_what_the_zip_holds_where_setup_sh_expects_it(autograder_zip):
    steps = dockerfile_instructions((REPO / "Dockerfile").read_text())
    rules = dockerignore_rules((REPO / ".dockerignore").read_text())
    kinds = [k for k, _ in steps]
    first_from = kinds.index("FROM")

    # FROM Gradescope's base image, after resolving the ARGs declared before it
    args_before = dict(a.split("=", 1) for k, a in steps[:first_from] if k == "ARG")
    base = re.sub(r"\$\{(\w+)\}", lambda m: args_before[m.group(1)], steps[first_from][1])
    assert base.split(":")[0] == "gradescope/autograder-base", base
    assert kinds.count("FROM") == 1
    assert "CMD" not in kinds and "ENTRYPOINT" not in kinds, "the base image's harness must stay in charge"
    args_after = dict(a.split("=", 1) for k, a in steps[first_from:] if k == "ARG")
    assert args_after.get("ASSIGNMENT") in available(), "ARG ASSIGNMENT must default to a known rubric"

    # the context holds what the zip needs and none of the private folders
    for top in NEVER_SHIPPED:
        for path in (top, f"{top}/cnn_trainer.py", f"{top}/deep/er/__init__.py"):
            assert ignored(path, rules), f".dockerignore lets {path} into the build context"
    for top in ("reference", "tests", "examples", "student_template"):  # the real files too
        for path in (REPO / top).rglob("*"):
            assert ignored(path.relative_to(REPO).as_posix(), rules), f".dockerignore lets {path} in"
    for path in (REPO / "grader").rglob("*"):
        rel = path.relative_to(REPO).as_posix()
        if "__pycache__" in path.parts or path.suffix == ".pyc":
            assert ignored(rel, rules), f".dockerignore lets {rel} into the build context"

    # simulate the COPY steps into /autograder/source
    source = "/autograder/source/"
    image: set[str] = set()
    for kind, arg in steps:
        if kind == "ADD":
            pytest.fail("use COPY: ADD also fetches URLs and unpacks archives")
        if kind != "COPY":
            continue
        *srcs, dest = shlex.split(arg)
        assert dest.startswith(source) and dest.endswith("/"), f"COPY into {dest}"
        for src in srcs:
            path = REPO / src
            assert path.exists(), f"the Dockerfile copies {src}, which does not exist"
            assert not ignored(src.rstrip("/"), rules), f"{src} is excluded by .dockerignore, so COPY would fail"
            files = [p for p in path.rglob("*") if p.is_file()] if path.is_dir() else [path]
            for f in files:
                rel = f.relative_to(path).as_posix() if path.is_dir() else f.name
                if not ignored(f.relative_to(REPO).as_posix(), rules):
                    image.add((dest + rel)[len(source):])

    # the marker file, and the steps Gradescope would run on the zip
    runs = " && ".join(a for k, a in steps if k == "RUN")
    assert re.search(rf'printf .*"\$\{{ASSIGNMENT\}}" > {re.escape(source + MARKER)}', runs), \
        f"the Dockerfile must write the marker {source}{MARKER}"
    image.add(MARKER)
    assert f"bash {source}setup.sh" in runs
    assert "test -x /autograder/run_autograder" in runs

    with zipfile.ZipFile(autograder_zip) as zf:
        zipped = set(zf.namelist())
    assert zipped <= image, f"the image lacks what the zip holds: {sorted(zipped - image)}"
    extra = image - zipped
    assert all(re.fullmatch(r"rubrics/[^/]+\.toml", p) for p in extra), f"the image holds more: {sorted(extra)}"

    # setup.sh and run_autograder agree with the Dockerfile and with each other on the paths
    setup = (FILES / "setup.sh").read_text()
    run = (FILES / "run_autograder").read_text()
    setup_vars = shell_vars(setup)
    assert setup_vars["SOURCE"] == source.rstrip("/")
    assert setup_vars["VENV"] == "/opt/dlgrade/venv"
    assert 'cp "$SOURCE/run_autograder" /autograder/run_autograder' in setup
    assert '"$VENV/bin/pip" install -c "$SOURCE/constraints.txt" "$SOURCE"' in setup
    assert '${DLGRADE_PYTHON:-/opt/dlgrade/venv/bin/python}' in run
    assert '${AUTOGRADER_ROOT:-/autograder}' in run
    assert "/opt/dlgrade/venv/bin/python" in runs
    for script in ("setup.sh", "run_autograder"):
        assert (FILES / script).stat().st_mode & stat.S_IXUSR, f"{script} is not executable in the checkout"
