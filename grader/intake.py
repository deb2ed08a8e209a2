"""Turn what a student handed in into a plain folder of regular files.

Submissions are hostile until proven otherwise. Nothing here executes or imports student
code: archives are read entry by entry and every byte written is counted against the
limits (header sizes are not trusted). grader.discovery then picks the module to grade.

Staging happens in a scratch folder inside `dest`, which is renamed to its final name only
when everything succeeded, so a refused submission never leaves a half-staged folder that
could be mistaken for a complete one.
"""
from __future__ import annotations

import os
import re
import stat
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from grader import tree, zipindex
from grader.errors import InputError
from grader.results import Note
from grader.staging import Budget, SkipLog, copy_regular_file, copy_stream, shown

_ROOT_NAME = "submission"
# Junk that operating systems, editors and Python itself leave behind; compared casefolded.
# Any path component starting with '.' is junk too (.DS_Store, .ipynb_checkpoints, .git).
_JUNK_COMPONENTS = {"__macosx", "__pycache__", "thumbs.db", "desktop.ini"}
# Well under PATH_MAX once the staging folder's own path is added in front.
_MAX_PATH_BYTES = 1024
_DRIVE = re.compile(r"^[A-Za-z]:")
_CODE_SUFFIXES = (".py", ".ipynb")


@dataclass(frozen=True)
class IntakeLimits:
    max_files: int = 2000  # regular files staged: what a student counts
    # Everything the grader reads: every archive entry and every name in a folder, whether
    # a file, folder, link, junk or refused. Room for max_files files, a __MACOSX twin of
    # each and their folders; what bounds the memory and time an archive can cost.
    max_entries: int = 5000
    max_depth: int = 32  # path components of a staged file ("hw4/cnn_trainer.py" is 2)
    max_total_bytes: int = 200 * 1024 * 1024
    max_file_bytes: int = 100 * 1024 * 1024


@dataclass
class StagedSubmission:
    root: Path  # folder holding the submission's files (inside the dest given)
    files: list[str]  # relative POSIX paths of every staged file, sorted
    notes: list[Note]  # what was skipped or refused and why, in words a student understands
    source: str  # display name, e.g. "hw4.zip" or "cnn_trainer.py"


# --------------------------------------------------------------------------------------
# Staging
# --------------------------------------------------------------------------------------


def stage(submission: Path, dest: Path, limits: IntakeLimits = IntakeLimits()) -> StagedSubmission:
    """Copy or extract `submission` into `dest/submission` and report what was left out."""
    submission, dest = Path(submission), Path(dest)
    source = submission.name or str(submission)
    kind = _submission_kind(submission, source)
    root = dest / _ROOT_NAME
    dest.mkdir(parents=True, exist_ok=True)
    if root.exists() or root.is_symlink():
        # The caller's mistake, not the student's: never mix two submissions in one folder.
        raise FileExistsError(f"{root} already exists; stage each submission into a fresh folder")
    log = SkipLog()
    work = Path(tempfile.mkdtemp(prefix=".staging-", dir=dest))
    try:
        _stage_into(kind, submission, source, work, limits, log)
        work = _open_lone_inner_zip(work, dest, source, limits, log)
        os.rename(work, root)
    except BaseException:
        tree.remove(work)
        raise
    return StagedSubmission(root=root, files=_list_files(root, limits), notes=log.finish(), source=source)


def _submission_kind(submission: Path, source: str) -> str:
    if not submission.exists():
        raise InputError(f"submission not found: {submission}")
    if submission.is_dir():
        return "folder"
    suffix = submission.suffix.lower()
    if submission.is_file() and suffix == ".zip":
        return "zip"
    if submission.is_file() and suffix in _CODE_SUFFIXES:
        return "file"
    raise InputError(f"cannot grade {source}: hand in a .zip archive, a folder, or a single .py or .ipynb file")


def _stage_into(kind: str, submission: Path, source: str, work: Path, limits: IntakeLimits, log: SkipLog) -> None:
    if kind == "zip":
        _extract_zip(submission, source, work, limits, log)
    elif kind == "folder":
        _copy_folder(submission, source, work, limits, log)
    else:
        budget = Budget(limits, source, "holds")
        budget.count_file()
        # The path the caller names is trusted, so a link there may be followed (links inside may not).
        copy_regular_file(submission.resolve(), work / submission.name, submission.name, budget)


def _open_lone_inner_zip(work: Path, dest: Path, source: str, limits: IntakeLimits, log: SkipLog) -> Path:
    """Students often zip a zip. With no code beside it, grade what the inner zip holds (one level only)."""
    files = _list_files(work, limits)
    if any(f.lower().endswith(_CODE_SUFFIXES) for f in files):
        return work
    inner = [f for f in files if f.lower().endswith(".zip")]
    if len(inner) != 1:
        return work
    inner_work = Path(tempfile.mkdtemp(prefix=".staging-", dir=dest))
    try:
        _extract_zip(work / inner[0], f"{inner[0]} (inside {source})", inner_work, limits, log)
    except BaseException:
        tree.remove(inner_work)
        raise
    tree.remove(work)
    others = len(files) - 1
    beside = f"; the {others} other file(s) beside it were not graded" if others else ""
    log.notes.append(Note("info", f"{source} held no code but one zip, {inner[0]}: graded the files inside it{beside}"))
    return inner_work


def _list_files(root: Path, limits: IntakeLimits) -> list[str]:
    # Staging never builds deeper than max_depth, so the bound only guards against our own mistakes.
    return sorted(rel for rel, entry in tree.walk(root, max_depth=limits.max_depth)
                  if entry.is_file(follow_symlinks=False))


def _is_junk(parts: list[str]) -> bool:
    if any(p.startswith(".") or p.casefold() in _JUNK_COMPONENTS for p in parts):
        return True
    return parts[-1].lower().endswith(".pyc")


def _unsafe_component(part: str) -> str | None:
    """Why one path component cannot be used as a file name here, or None."""
    if not part.isprintable():
        return "its name contains control characters"
    try:
        encoded = part.encode("utf-8")
    except UnicodeEncodeError:
        return "its name is not valid text"
    if len(encoded) > 255:
        return "its name is too long"
    return None


# ----- zip archives ---------------------------------------------------------------------


class _Refused(Exception):
    """An entry that is skipped with a warning; the message says why."""


def _extract_zip(archive: Path, source: str, work: Path, limits: IntakeLimits, log: SkipLog) -> None:
    zipindex.refuse_oversized(archive, source, limits.max_entries)  # before zipfile reads it all into memory
    try:
        zf = zipfile.ZipFile(archive)
    except Exception as exc:  # zipfile raises many types on malformed input; all mean "unreadable"
        raise InputError(f"cannot read {source} as a zip archive: {exc}") from None
    budget = Budget(limits, source, "expands to")
    with zf:
        for info in zf.infolist():
            budget.count_entry()  # bounded already by refuse_oversized; this guards a zipfile that reads more
            name = _entry_name(info)
            try:
                _extract_entry(zf, info, name, source, work, budget, log)
            except _Refused as why:
                log.skip(name, str(why))


def _entry_name(info: zipfile.ZipInfo) -> str:
    name = info.filename
    if not info.flag_bits & 0x800:
        # Without the UTF-8 flag zipfile decodes as cp437, but many tools write UTF-8 anyway.
        try:
            name = name.encode("cp437").decode("utf-8")
        except UnicodeError:
            pass
    return name


def _extract_entry(zf: zipfile.ZipFile, info: zipfile.ZipInfo, name: str, source: str,
                   work: Path, budget: Budget, log: SkipLog) -> None:
    kind = _zip_entry_kind(info)
    if kind == "dir":
        return  # folders are created as files need them
    parts = _entry_parts(name)
    if not parts:
        return
    if _is_junk(parts):
        log.junk += 1
        return
    if len(parts) > budget.limits.max_depth:
        raise _Refused(f"it is nested more than {budget.limits.max_depth} folders deep")
    if kind == "symlink":
        raise _Refused("it is a symbolic link, which could point outside the submission")
    if kind != "file":
        raise _Refused("it is not a regular file")
    if info.flag_bits & 0x1:
        raise InputError(f"{source} is password-protected ({shown(name)}); upload it without a password")
    target = _make_parents(work, parts)
    budget.count_file()
    budget.check_filesize_text(name, info.file_size)  # early refusal; the real count comes while streaming
    _write_entry(zf, info, name, source, target, budget)


def _zip_entry_kind(info: zipfile.ZipInfo) -> str:
    # The Unix mode sits in the high 16 bits of external_attr; zero means a DOS-style plain entry.
    fmt = stat.S_IFMT(info.external_attr >> 16)
    if fmt == stat.S_IFLNK:
        return "symlink"
    if info.is_dir() or fmt == stat.S_IFDIR:
        return "dir"
    if fmt in (0, stat.S_IFREG):
        return "file"
    return "other"


def _entry_parts(name: str) -> list[str]:
    """Split a stored entry name into safe path components, or refuse it."""
    unified = name.replace("\\", "/")  # Windows tools write backslashes; treat them as separators
    if unified.startswith("/"):
        raise _Refused("it has an absolute path")
    if _DRIVE.match(unified):
        raise _Refused("it names a Windows drive")
    parts = [p for p in unified.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise _Refused("its path leads outside the submission folder (..)")
    if len(unified.encode("utf-8", "replace")) > _MAX_PATH_BYTES:
        raise _Refused("its path is too long")
    for part in parts:
        if reason := _unsafe_component(part):
            raise _Refused(reason)
    return parts


def _make_parents(work: Path, parts: list[str]) -> Path:
    folder = work
    for part in parts[:-1]:
        folder = folder / part
        try:
            folder.mkdir(exist_ok=True)
        except OSError:
            raise _Refused("its folder clashes with a file of the same name") from None
        if folder.is_symlink() or not folder.is_dir():
            raise _Refused("its folder clashes with a file of the same name")
    target = folder / parts[-1]
    if target.exists() or target.is_symlink():
        raise _Refused("another entry has the same name")
    return target


def _write_entry(zf: zipfile.ZipFile, info: zipfile.ZipInfo, name: str, source: str,
                 target: Path, budget: Budget) -> None:
    try:
        with zf.open(info) as src:
            copy_stream(src, target, name, budget)
    except InputError:
        raise
    except NotImplementedError as exc:
        raise InputError(f"cannot read {shown(name)} in {source}: {exc}; zip it again with a standard tool") from None
    except OSError:
        raise  # a problem of this machine (disk full), not of the archive
    except Exception as exc:  # CRC mismatch, truncated or corrupt deflate data, bad local header
        raise InputError(f"cannot read {shown(name)} in {source}, the archive is damaged: {exc}") from None


# ----- folders --------------------------------------------------------------------------


def _copy_folder(folder: Path, source: str, work: Path, limits: IntakeLimits, log: SkipLog) -> None:
    budget = Budget(limits, f"the folder {source}", "holds")
    # The staging folder may lie inside the submission folder; never copy it into itself.
    avoid = {os.path.realpath(work.parent)}
    pending = [(folder, [])]  # an explicit stack: a deep tree must not exhaust recursion
    while pending:
        here, rel = pending.pop()
        entries = []
        with os.scandir(here) as it:
            for entry in it:  # counted while listing: a folder of a million names is never held
                budget.count_entry()
                entries.append(entry)
        for entry in sorted(entries, key=lambda e: e.name):
            parts = rel + [entry.name]
            _copy_folder_entry(entry, parts, work, budget, log, avoid, pending)


def _copy_folder_entry(entry: os.DirEntry, parts: list[str], work: Path, budget: Budget,
                       log: SkipLog, avoid: set[str], pending: list) -> None:
    name = "/".join(parts)
    if reason := _unsafe_component(entry.name):
        log.skip(name, reason)
    elif _is_junk(parts):
        log.junk += 1
    elif entry.is_symlink():
        log.skip(name, "it is a symbolic link; links are not followed")
    elif entry.is_dir(follow_symlinks=False):
        if len(parts) >= budget.limits.max_depth:  # skipped, not refused: deep folders are rarely homework
            log.skip(name, f"what it holds is nested more than {budget.limits.max_depth} folders deep")
        elif os.path.realpath(entry.path) not in avoid:
            (work / Path(*parts)).mkdir()
            pending.append((Path(entry.path), parts))
    elif entry.is_file(follow_symlinks=False):
        budget.count_file()
        copy_regular_file(Path(entry.path), work / Path(*parts), name, budget)
    else:
        log.skip(name, "it is not a regular file")
