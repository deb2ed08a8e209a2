"""The `grade` command line: help texts, --list, --version, exit codes, and results.json on failure.

Grading runs only narrow check patterns (or the template, whose models fail at construction)
so the whole file stays within a few tens of seconds.
"""
from __future__ import annotations

import glob
import json
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import click
import jsonschema
import pytest
from click.testing import CliRunner

from grader import __version__
from grader.cli import main
from grader.rubric import load_rubric

from gradekit import REPO, TEMPLATE

from grader.rubric import available as _available

# What `grade` says of an assignment it does not know: it names the ones it does.
UNKNOWN = f"unknown assignment 'cs9999-nope' (known: {', '.join(sorted(_available()))})"

ASSIGNMENT = "cs1678-hw4"
SCHEMA = json.loads((REPO / "grader" / "render" / "gradescope-results.schema.json").read_text())
GRADE = Path(sys.executable).with_name("grade")  # the console script of this environment


def flat(text: str) -> str:
    """Help text with click's line wrapping undone, so phrases can be matched whole."""
    return " ".join(text.split())


def invoke(*args: str):
    return CliRunner().invoke(main, [str(a) for a in args], prog_name="grade", catch_exceptions=False)


def load_results(out: Path) -> dict:
    """results.json from `out`, which must exist and validate against Gradescope's schema."""
    path = out / "results.json"
    assert path.is_file(), f"no results.json in {out}"
    data = json.loads(path.read_text(encoding="utf-8"))
    jsonschema.validate(data, SCHEMA)
    return data


def automatic(results: dict) -> list[dict]:
    """The tests the autograder scores (staff-graded items carry no status)."""
    return [t for t in results["tests"] if "status" in t]


# --------------------------------------------------------------------------- help and --list


def test_top_level_help_names_every_way_to_run_the_grader():
    for flag in ("--help", "-h"):
        result = invoke(flag)
        assert result.exit_code == 0, result.output
        text = flat(result.output)
        assert "Grade PyTorch homework against its rubric." in text
        assert "grade SUBMISSION --assignment ID" in text
        assert "grade --list" in text
        assert "grade build-autograder ID -o autograder.zip" in text
        assert "SUBMISSION is a .zip, a folder, or one .py file." in text
        assert "Exit status: 0 when grading finished, whatever the score; 2 when the input cannot be graded" in text
        assert "--list List the assignments this grader knows" in text
        assert "--version Show the version and exit." in text
        assert "build-autograder Build the autograder zip" in text
    # `grade` alone prints the same help instead of failing
    bare = invoke()
    assert bare.exit_code == 0
    assert "Grade PyTorch homework against its rubric." in bare.output


def test_grading_command_help_explains_its_options():
    result = invoke("submission", "--help")
    assert result.exit_code == 0, result.output
    text = flat(result.output)
    assert "Usage: grade submission [OPTIONS] SUBMISSION" in text
    assert "Grade SUBMISSION against an assignment's rubric." in text
    assert "-a, --assignment TEXT Assignment id, e.g. cs1678-hw4 (see grade --list). [required]" in text
    assert "Folder for results.json and report.html. [default: grade-out]" in text
    assert "--device [auto|cpu|cuda] Where training smoke tests run" in text
    assert "--self-check Run only the checks students may see" in text
    assert "--only PATTERN Run only checks whose id matches" in text
    assert "--isolation [auto|bwrap|user|process]" in text
    assert "--labels FILE Held-out labels (an Id,Label CSV) to score the submission's predictions file against" in text
    assert "--data DIR Course data folder holding the images a rubric names" in text


def test_build_autograder_help_explains_the_zip():
    result = invoke("build-autograder", "--help")
    assert result.exit_code == 0, result.output
    text = flat(result.output)
    assert "Usage: grade build-autograder [OPTIONS] ASSIGNMENT" in text
    assert "Build the autograder zip (setup.sh, run_autograder, grader, rubric) for ASSIGNMENT." in text
    assert "-o, --output PATH Where to write the zip to upload to Gradescope. [default: autograder.zip]" in text
    assert "--labels FILE Held-out labels to put in the zip" in text
    assert "--data DIR Course data folder: the images the rubric names are copied into the zip." in text


@pytest.mark.parametrize("name", sorted(main.commands))
def test_every_command_and_option_has_help_text(name):
    """A new command or option without help fails here, not in front of a student."""
    command = main.commands[name]
    assert (command.help or "").strip(), f"`grade {name}` has no help text"
    for param in command.params:
        if isinstance(param, click.Option):
            assert (param.help or "").strip(), f"`grade {name}` option {param.opts} has no help text"
    result = invoke(name, "--help")
    assert result.exit_code == 0, result.output
    assert flat(command.help).split(".")[0] in flat(result.output)


def test_list_shows_the_assignment_title_and_points():
    result = invoke("--list")
    assert result.exit_code == 0, result.output
    rubric = load_rubric(ASSIGNMENT)
    line = next(line for line in result.output.splitlines() if line.startswith(ASSIGNMENT + " "))
    assert rubric.title == "CS 1678 HW4: AlexNet on PACS"
    assert rubric.title in line
    assert "[22 automatic + 8 by staff = 30 points]" in line
    assert "rubric error" not in result.output


def test_version_matches_the_package():
    result = invoke("--version")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"dlgrade, version {__version__}"
    assert __version__ == metadata.version("dlgrade")


# --------------------------------------------------------------------------- exit status 0


def test_a_zero_score_still_exits_0_from_the_installed_command(tmp_path):
    """The real console script, in a real process: grading finished, so exit 0 whatever the score."""
    assert GRADE.is_file(), f"the grade console script is not installed at {GRADE}"
    out = tmp_path / "out"
    proc = subprocess.run([str(GRADE), str(TEMPLATE), "--assignment", ASSIGNMENT, "--only", "alexnet.construct.*",
                           "--out", str(out), "--device", "cpu", "--no-color"],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Score:        0 / 1 points" in proc.stdout
    assert "[FAIL]" in proc.stdout and "is not implemented yet" in proc.stdout
    assert "Traceback" not in proc.stderr
    results = load_results(out)
    assert results["score"] == 0
    tests = automatic(results)
    assert [t["extra_data"]["check_id"] for t in tests] == ["alexnet.construct.nc4", "alexnet.construct.nc7"]
    for test in tests:
        assert test["status"] == "failed" and test["score"] == 0 and test["max_score"] == 0.5
        assert "is not implemented yet: it raises NotImplementedError at cnn_trainer.py line" in test["output"]
    assert (out / "report.html").is_file()


# --------------------------------------------------------------------------- exit status 2


def _not_a_zip(tmp_path: Path) -> Path:
    fake = tmp_path / "hw4.zip"
    fake.write_text("import torch  # a .py file renamed to .zip\n")
    return fake


def _no_python(tmp_path: Path) -> Path:
    folder = tmp_path / "hw4"
    folder.mkdir()
    (folder / "README.txt").write_text("my answers are in the PDF\n")
    (folder / "notes.md").write_text("# notes\n")
    return folder


UNUSABLE = {
    # name: (make the submission, extra options, what the one line on stderr and the results say)
    "unknown-assignment": (lambda tmp: TEMPLATE, ["--assignment", "cs9999-nope"],
                           UNKNOWN),
    "not-a-zip": (_not_a_zip, [], "cannot read hw4.zip as a zip archive"),
    "no-python-file": (_no_python, [], "no Python file found in hw4"),
    "missing-path": (lambda tmp: tmp / "does-not-exist", [], "submission not found: "),
    "cuda-without-gpu": (lambda tmp: TEMPLATE, ["--device", "cuda"], "--device cuda: no NVIDIA GPU is visible"),
}


@pytest.mark.parametrize("case", sorted(UNUSABLE))
def test_unusable_input_exits_2_with_one_line_and_a_valid_results_json(case, tmp_path):
    make, extra, message = UNUSABLE[case]
    if case == "cuda-without-gpu" and glob.glob("/dev/nvidia[0-9]*"):
        pytest.skip("this machine has an NVIDIA GPU, so --device cuda is usable")
    submission = make(tmp_path)
    out = tmp_path / "out"
    args = [submission, "--out", out, *extra]
    if "--assignment" not in extra:
        args += ["--assignment", ASSIGNMENT]
    result = invoke(*args)

    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got: {result.stderr!r}"
    assert lines[0].startswith("grade: ") and message in lines[0], lines[0]
    assert "Traceback" not in result.output
    assert result.stdout == ""

    results = load_results(out)
    assert results["score"] == 0
    assert message in results["output"]
    assert "- error: " in results["output"]
    assert (out / "report.html").is_file()
    if case == "unknown-assignment":
        assert results["tests"] == []
    else:  # every check of the rubric is listed, failed, with the same reason: the total stays honest
        rubric = load_rubric(ASSIGNMENT)
        assert len(results["tests"]) == len(rubric.checks())
        tests = automatic(results)
        assert sum(t["max_score"] for t in tests) == 22
        for test in tests:
            assert test["status"] == "failed" and test["score"] == 0
            assert test["output"].startswith("Not graded: ") and message in test["output"]


def test_unknown_assignment_from_a_real_process(tmp_path):
    """The exit status and the single stderr line as a shell sees them."""
    out = tmp_path / "out"
    proc = subprocess.run([str(GRADE), str(TEMPLATE), "-a", "cs9999-nope", "-o", str(out)],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr == f"grade: {UNKNOWN}\n"
    assert proc.stdout == ""
    assert "unknown assignment 'cs9999-nope'" in load_results(out)["output"]


def test_build_autograder_for_an_unknown_assignment_exits_2(tmp_path):
    result = invoke("build-autograder", "cs9999-nope", "-o", tmp_path / "ag.zip")
    assert result.exit_code == 2
    assert result.stderr.strip() == f"grade: {UNKNOWN}"
    assert not (tmp_path / "ag.zip").exists()


# --------------------------------------------------------------------------- --self-check


def test_self_check_runs_only_visible_checks_and_says_more_run_later(tmp_path):
    rubric = load_rubric(ASSIGNMENT)
    all_checks = rubric.checks()
    visible = [c.check_id for c in all_checks if c.visibility == "visible"]
    assert 0 < len(visible) < len(all_checks), "the rubric must hide some checks for this test to mean anything"
    out = tmp_path / "out"
    result = invoke(TEMPLATE, "--assignment", ASSIGNMENT, "--self-check", "--device", "cpu", "--no-color",
                    "--out", out)
    assert result.exit_code == 0, result.output

    results = load_results(out)
    assert {t["visibility"] for t in results["tests"]} == {"visible"}
    assert [t["extra_data"]["check_id"] for t in results["tests"]] == visible
    assert results["extra_data"]["self_check"] is True
    assert results["score"] == 0
    hidden = len(all_checks) - len(visible)
    assert f"Self-check: public checks only; {hidden} more checks run at grading time." in result.stdout


def test_batch_help_explains_the_class_outputs_and_exit_status():
    result = invoke("batch", "--help")
    assert result.exit_code == 0, result.output
    text = flat(result.output)
    assert "Usage: grade batch [OPTIONS] SOURCE" in text
    assert "a Gradescope or Canvas export (zip or folder), or a folder with one folder, zip, notebook or .py per student" in text
    assert "A rerun grades only what changed." in text
    assert "--roster CSV Every student in the class" in text
    assert "--engine [local|dask]" in text and "--scheduler ADDRESS The Dask scheduler" in text
    assert "--only STUDENT Regrade only this student" in text and "--force Regrade every submission" in text
    assert "--jobs INTEGER RANGE Submissions graded at once" in text
    assert "1 when the grader itself failed on a submission; 2 when SOURCE, the roster or the labels cannot be used" in text
    top = flat(invoke("--help").output)
    assert "grade batch SOURCE --assignment ID --out DIR" in top and "batch Grade every submission in SOURCE" in top


def test_batch_refuses_what_the_ta_gave_with_exit_status_2(tmp_path):
    missing = invoke("batch", str(tmp_path / "nowhere"), "--assignment", ASSIGNMENT, "--out", str(tmp_path / "out"))
    assert missing.exit_code == 2 and "no such file or folder" in missing.output
    (tmp_path / "class").mkdir()
    (tmp_path / "roster.csv").write_text("who,when\nada,monday\n")
    bad_roster = invoke("batch", str(tmp_path / "class"), "--assignment", ASSIGNMENT, "--out", str(tmp_path / "out"),
                        "--roster", str(tmp_path / "roster.csv"))
    assert bad_roster.exit_code == 2 and "roster.csv" in bad_roster.output and "id" in bad_roster.output
    unknown = invoke("batch", str(tmp_path / "class"), "--assignment", "no-such-hw", "--out", str(tmp_path / "out"))
    assert unknown.exit_code == 2 and "unknown assignment" in unknown.output
