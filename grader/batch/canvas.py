"""Read a Canvas "Download Submissions": one flat folder (or zip) of every student's files.

Canvas names each file {sortablename}[_LATE]_{user_id|anon_<id>}_{attachment_id}_{original
name}, and a text or URL entry {sortablename}[_LATE]_{user_id}_text.html / _link.html. Each
student's files are put into one folder of their own under their original names, since the
grader looks for modules by name (hw4.py, not smithbob_1001_2001_hw4.py).
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from grader.batch.records import ClassExport, Person, Submission
from grader.errors import InputError
from grader.intake import IntakeLimits
from grader.staging import Budget, copy_regular_file, shown

# The sortable name is \w characters (Canvas drops the rest); non-greedy, so that an
# underscore in the original file name never ends up in it. Anonymous grading may leave it out.
_WHO = r"^(?:(?P<name>\w*?)(?P<late>_LATE)?_)??(?P<uid>\d+|anon_[A-Za-z0-9]+)"
_FILE = re.compile(_WHO + r"_(?P<att>\d+)_(?P<orig>.+)$", re.DOTALL)
_ENTRY = re.compile(_WHO + r"_(?P<kind>text|link)\.html$")
# Canvas's "-1", "-2" before the extension when a file of the same name was uploaded before
# (never "-01": that is more likely the day of a date in the student's own name).
_RESUBMITTED = re.compile(r"^(?P<stem>.+?)-[1-9]\d{0,2}(?P<ext>\.[^.]*)?$", re.DOTALL)
_ENTRY_WORDS = {"text": "a text entry", "link": "a website URL (link entry)"}


@dataclass
class _File:
    entry: os.DirEntry
    uid: str
    name: str  # the sortable name, possibly empty
    late: bool
    attachment: int  # -1 for a text or link entry
    original: str  # the student's file name, or "text"/"link"


def _parse(entry: os.DirEntry) -> _File | None:
    if m := _ENTRY.match(entry.name):
        return _File(entry, m["uid"], m["name"] or "", bool(m["late"]), -1, m["kind"])
    if m := _FILE.match(entry.name):
        return _File(entry, m["uid"], m["name"] or "", bool(m["late"]), int(m["att"]), m["orig"])
    return None


def looks_like_canvas(entries: list[os.DirEntry]) -> bool:
    """Most of the top-level entries are files named as Canvas names them."""
    matching = sum(1 for e in entries if e.is_file(follow_symlinks=False) and _parse(e) is not None)
    return matching > 0 and 2 * matching > len(entries)


def read_canvas(entries: list[os.DirEntry], workdir: Path, moved: bool,
                limits: IntakeLimits) -> ClassExport:
    """The submissions in a Canvas download listed as `entries`. Each student's files are
    staged into a folder under `workdir`: moved there when `moved` (they were extracted for
    this run), copied otherwise, counting bytes against `limits`."""
    problems, odd, links = [], [], []
    by_student: dict[str, list[_File]] = {}
    for entry in entries:
        parsed = None
        if entry.is_symlink():
            links.append(entry.name)
            continue
        if entry.is_file(follow_symlinks=False):
            parsed = _parse(entry)
        if parsed is None:
            odd.append(entry.name)
        else:
            by_student.setdefault(parsed.uid, []).append(parsed)
    if links:
        problems.append(f"not graded, symbolic links are not followed: {_names(links)}")
    if odd:
        problems.append(f"not graded, not named as Canvas names submissions "
                        f"(name_userid_attachmentid_file): {_names(odd)}")
    budget = Budget(limits, "the Canvas download", "holds")
    submissions = [_student(uid, files, workdir, moved, budget) for uid, files in sorted(by_student.items())]
    return ClassExport("canvas", submissions, problems)


def _names(names: list[str]) -> str:
    more = f" and {len(names) - 10} more" if len(names) > 10 else ""
    return ", ".join(shown(n) for n in names[:10]) + more


def _student(uid: str, files: list[_File], workdir: Path, moved: bool, budget: Budget) -> Submission:
    files.sort(key=lambda f: (f.attachment, f.entry.name))
    name = next((f.name for f in files if f.name), "")
    sub = Submission(key="", people=(Person(uid, name),), path=None, late=any(f.late for f in files),
                     source=files[-1].entry.name)
    entries = [f for f in files if f.attachment < 0]
    attached = [f for f in files if f.attachment >= 0]
    for f in entries:
        sub.notes.append(f"also submitted {_ENTRY_WORDS[f.original]} ({shown(f.entry.name)}), which is not graded")
    if not attached:
        sub.notes.clear()
        words = " and ".join(_ENTRY_WORDS[f.original] for f in entries)
        sub.problem = f"submitted {words}, not files ({_names([f.entry.name for f in entries])}): nothing to grade"
        return sub
    chosen: dict[str, _File] = {}
    for f in attached:  # ascending attachment id: a later upload of the same name replaces an earlier one
        target = _original_name(f)
        if (earlier := chosen.get(target.casefold())) is not None:
            sub.notes.append(f"{shown(earlier.entry.name)} is superseded by the later upload "
                             f"{shown(f.entry.name)} (both {shown(target)}); only the later one is graded")
        chosen[target.casefold()] = f
    sub.source = _names([f.entry.name for f in chosen.values()])
    folder = workdir / uid  # uid is digits or anon_ and letters: safe as a name
    folder.mkdir()
    placed = 0
    for f in chosen.values():
        try:
            _place(f, folder / _original_name(f), moved, budget)
            placed += 1
        except (InputError, OSError) as exc:
            sub.notes.append(f"could not copy {shown(f.entry.name)}: {exc}")
    if placed:
        sub.path = folder
    else:
        sub.problem = f"none of the files of {shown(name or uid)} could be copied for grading"
    return sub


def _original_name(f: _File) -> str:
    name = f.original
    if m := _RESUBMITTED.match(name):
        name = m["stem"] + (m["ext"] or "")
    # A name the grader would skip as hidden, or that is no name at all: keep Canvas's own.
    if name.startswith(".") or len(name.encode("utf-8", "surrogateescape")) > 255:
        return f.entry.name
    return name


def _place(f: _File, target: Path, moved: bool, budget: Budget) -> None:
    if moved:
        os.rename(f.entry.path, target)  # extracted (and bounded) for this run: no second copy
    else:
        budget.count_file()
        copy_regular_file(Path(f.entry.path), target, f.entry.name, budget)
