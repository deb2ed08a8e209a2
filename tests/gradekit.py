"""Helpers the tests share: build submissions from the plain one, grade them, find checks.

(Not in conftest.py: tests/ and reference/ each have one, and only one can be imported
under the name `conftest`.)
"""
from __future__ import annotations

import os
import shutil
import zipfile
from pathlib import Path

import pytest

from grader import api
from grader.results import GradeReport, Status

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
PLAIN = HERE / "submissions" / "hw4_plain" / "cnn_trainer.py"
FUNCTIONAL = HERE / "submissions" / "hw4_functional"
TEMPLATE = REPO / "student_template" / "cs1678_hw4"
REFERENCE = REPO / "reference" / "cs1678_hw4"


def plain_source() -> str:
    return PLAIN.read_text()


def mutate(source: str, *replacements: tuple[str, str]) -> str:
    """Apply replacements, failing loudly if one does not apply (a test must test something)."""
    for old, new in replacements:
        assert source.count(old) == 1, f"expected exactly one {old!r} in the submission"
        source = source.replace(old, new)
    return source


def unpack(archive: Path, dest: Path) -> Path:
    """Unzip as Gradescope does, keeping the Unix modes stored in the archive."""
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            target = zf.extract(info, dest)
            mode = (info.external_attr >> 16) & 0o777
            if mode:
                os.chmod(target, mode)
    return dest


def write_submission(folder: Path, source: str, name: str = "cnn_trainer.py") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(source)
    return folder


def grade(path: Path, *only: str, **options) -> GradeReport:
    return api.grade(path, "cs1678-hw4", api.Options(device="cpu", only=tuple(only), **options))


def by_id(report: GradeReport) -> dict:
    return {c.check_id: c for c in report.checks}


def failed_ids(report: GradeReport) -> set[str]:
    return {c.check_id for c in report.checks if c.status is Status.FAILED}


def running(marker: str) -> list[int]:
    """Pids whose command line holds `marker` (an unusual sleep duration marks a test's processes)."""
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                if marker.encode() in Path(f"/proc/{entry.name}/cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


def require_env(flag: str, available: bool, reason: str):
    """Skip when a tool is missing, unless CI says it must be there (then fail)."""
    if available:
        return
    if os.environ.get(flag) == "1":
        pytest.fail(f"{reason}, and {flag}=1 says it must be available")
    pytest.skip(reason)


# Two ways a submission rewrites the worker's replies: the JSON encoder of grader.protocol, and
# os.write on the reply pipe. Each needs the submission to define _forge(message) -> message
# (and import json as _json) before it.
REPLY_ROUTES = {
    "encoder": '''
import grader.protocol as _protocol
_encode = _protocol.encode
_protocol.encode = lambda message: _encode(_forge(message))
''',
    "pipe": '''
import os as _os
_REPLY_FD = int(_os.environ["DLGRADE_FDS"].split(",")[1])
_write = _os.write
def _forged_write(fd, data):
    if fd == _REPLY_FD:
        message = _json.loads(bytes(data).split(b"\\n")[0])
        _write(fd, (_json.dumps(_forge(message)) + "\\n").encode())
        return len(data)
    return _write(fd, data)
_os.write = _forged_write
''',
}
