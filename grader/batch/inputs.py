"""Read a class's submissions, whatever form the course system handed them over in.

Three forms are recognised, in this order: a Gradescope "Export Submissions" (it holds
submission_metadata.yml), a Canvas "Download Submissions" (file names that follow Canvas's
convention), and a plain folder with one entry per student. A zip of any of them is first
extracted under `workdir` by grader.intake.stage, which bounds what a hostile archive can
cost. Nothing here opens a student's own files: grading does that, one submission at a time.
"""
from __future__ import annotations

import hashlib
import os
import re
import tempfile
import unicodedata
from pathlib import Path

from grader import tree
from grader.batch import canvas, gradescope_export
from grader.batch.records import ClassExport, Person, Submission
from grader.errors import InputError
from grader.intake import IntakeLimits, stage
from grader.staging import shown

_GiB = 1024 ** 3
# A whole class in one archive: the per-student limits times a few hundred students.
CLASS_LIMITS = IntakeLimits(max_files=200_000, max_entries=500_000, max_depth=40,
                            max_total_bytes=20 * _GiB, max_file_bytes=_GiB)
METADATA = "submission_metadata.yml"
# Left behind by operating systems and editors; compared casefolded, as grader.intake does.
_JUNK = {"__macosx", "__pycache__", "thumbs.db", "desktop.ini"}
_STUDENT_SUFFIXES = (".zip", ".ipynb", ".py")
_MAX_LISTED = 10  # names listed in one problem line; the rest are counted
_SCRATCH_PREFIX = "class-export-"  # read_export's own folders in workdir


def read_export(source: Path, workdir: Path) -> ClassExport:
    """Every submission in `source` (a folder or a .zip), with what could not be read.

    A zip is extracted, and a Canvas student's files are gathered, into a new folder under
    `workdir`; what an earlier call left there is removed first, so reruns do not pile up
    copies of the class. Raises InputError only when `source` does not exist; anything else
    wrong with the export is in the returned ClassExport's `problems`."""
    source, workdir = Path(source), Path(workdir)
    if not source.exists():
        raise InputError(f"class export not found: {source}")
    name = source.name or str(source)
    scratch = _fresh_scratch(workdir, source)
    if source.is_dir():
        export = _read_folder(source, scratch, extracted=False)
    elif source.is_file() and source.suffix.lower() == ".zip":
        export = _read_zip(source, name, scratch)
    else:
        export = ClassExport("folders", [], [f"cannot read the class export {shown(name)}: "
                                              "expected a folder or a .zip archive"])
    if not export.submissions and not export.problems:
        export.problems.append(f"the class export {shown(name)} holds no submissions")
    assign_keys(export.submissions)
    return export


def _fresh_scratch(workdir: Path, source: Path) -> Path:
    workdir.mkdir(parents=True, exist_ok=True)
    with os.scandir(workdir) as it:
        earlier = [e.path for e in it if e.name.startswith(_SCRATCH_PREFIX) and e.is_dir(follow_symlinks=False)]
    inside = os.path.realpath(source)
    for path in earlier:
        if not Path(inside).is_relative_to(os.path.realpath(path)):  # never the export being read
            tree.remove(path)
    return Path(tempfile.mkdtemp(prefix=_SCRATCH_PREFIX, dir=workdir))


def _read_zip(source: Path, name: str, scratch: Path) -> ClassExport:
    try:
        staged = stage(source, scratch, CLASS_LIMITS)
    except (InputError, OSError) as exc:
        return ClassExport("folders", [], [f"cannot read the class export {shown(name)}: {exc}"])
    problems = []
    for note in staged.notes:
        if "held no code but one zip" in note.text:
            # intake.stage opened the lone inner zip: what is left is one student's files, not the class.
            return ClassExport("folders", [], [
                f"the class export {shown(name)} holds a single zip and no code; extract it and give "
                "the folder instead, so that the zip inside is graded as one student's submission"])
        if note.level != "info":
            problems.append(f"reading {shown(name)}: {note.text}")
    top = staged.root
    entries, _ = list_entries(top)
    if len(entries) == 1 and entries[0].is_dir(follow_symlinks=False):
        top = Path(entries[0].path)  # `zip -r class.zip class/`: the one folder only wraps the export
    export = _read_folder(top, scratch, extracted=True)
    export.problems[:0] = problems
    return export


def _read_folder(top: Path, scratch: Path, extracted: bool) -> ClassExport:
    entries, cut = list_entries(top)
    if (meta := _metadata_in(entries)) is not None:
        return _with(cut, gradescope_export.read_gradescope(entries, meta))
    if canvas.looks_like_canvas(entries):
        return _with(cut, canvas.read_canvas(entries, _canvas_dir(scratch), extracted, CLASS_LIMITS))
    if len(entries) == 1 and entries[0].is_dir(follow_symlinks=False):
        # The export extracted into a folder of its own, and that folder given.
        inner, inner_cut = list_entries(Path(entries[0].path))
        if (meta := _metadata_in(inner)) is not None:
            return _with(inner_cut, gradescope_export.read_gradescope(inner, meta))
        if canvas.looks_like_canvas(inner):
            return _with(inner_cut, canvas.read_canvas(inner, _canvas_dir(scratch), extracted, CLASS_LIMITS))
    return _with(cut, read_folders(entries))


def _metadata_in(entries: list[os.DirEntry]) -> Path | None:
    for entry in entries:
        if entry.name == METADATA and entry.is_file(follow_symlinks=False):
            return Path(entry.path)
    return None


def _canvas_dir(scratch: Path) -> Path:
    folder = scratch / "canvas"  # beside intake's "submission", where an extracted zip lies
    folder.mkdir()
    return folder


def _with(cut: str, export: ClassExport) -> ClassExport:
    if cut:
        export.problems.insert(0, cut)
    return export


def list_entries(folder: Path) -> tuple[list[os.DirEntry], str]:
    """The folder's entries, sorted, junk left out, and a problem line when it holds more than
    a class could (then only the first CLASS_LIMITS.max_entries are read)."""
    entries = []
    try:
        with os.scandir(folder) as it:
            for entry in it:
                if len(entries) >= CLASS_LIMITS.max_entries:
                    return sorted(entries, key=lambda e: e.name), (
                        f"{shown(folder.name)} holds more than {CLASS_LIMITS.max_entries:,} entries; "
                        "only the first were read")
                if not is_junk(entry.name):
                    entries.append(entry)
    except OSError as exc:
        return [], f"cannot list the folder {shown(folder.name)}: {exc.strerror or exc}"
    return sorted(entries, key=lambda e: e.name), ""


def is_junk(name: str) -> bool:
    return name.startswith(".") or name.casefold() in _JUNK


def listed(names: list[str]) -> str:
    """Names for one problem line: the first few, then how many more."""
    shown_names = ", ".join(shown(n) for n in names[:_MAX_LISTED])
    more = len(names) - _MAX_LISTED
    return shown_names + (f" and {more} more" if more > 0 else "")


# ----- a plain folder: one entry per student --------------------------------------------

# When one student has several entries, the one most likely to be complete is graded.
_PREFERENCE = {"": 0, ".zip": 1, ".ipynb": 2, ".py": 3}


def read_folders(entries: list[os.DirEntry]) -> ClassExport:
    """One Submission per folder, .zip, .ipynb or .py; the student id is the name without extension."""
    problems, others, links = [], [], []
    by_id: dict[str, list[tuple[str, os.DirEntry]]] = {}
    for entry in entries:
        if entry.is_symlink():
            links.append(entry.name)  # the export is hostile: a link could reach anywhere
        elif entry.is_dir(follow_symlinks=False):
            by_id.setdefault(entry.name, []).append(("", entry))
        elif entry.is_file(follow_symlinks=False) and entry.name.lower().endswith(_STUDENT_SUFFIXES):
            stem, suffix = os.path.splitext(entry.name)
            if stem:
                by_id.setdefault(stem, []).append((suffix.lower(), entry))
            else:
                others.append(entry.name)
        else:
            others.append(entry.name)
    if links:
        problems.append(f"not graded, symbolic links are not followed: {listed(links)}")
    if others:
        problems.append(f"not graded, expected a folder, .zip, .ipynb or .py per student: {listed(others)}")
    submissions = []
    for student_id, found in sorted(by_id.items()):
        found.sort(key=lambda f: _PREFERENCE[f[0]])
        entry = found[0][1]
        sub = Submission(key="", people=(Person(student_id),), path=Path(entry.path), source=entry.name)
        if len(found) > 1:
            sub.notes.append(f"{len(found)} entries for {shown(student_id)}; graded {shown(entry.name)}, "
                             f"not {listed([f[1].name for f in found[1:]])}")
        submissions.append(sub)
    return ClassExport("folders", submissions, problems)


# ----- Submission.key --------------------------------------------------------------------

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_MAX_KEY = 64
# Letters NFKD does not take apart into ASCII; common in names.
_LETTERS = str.maketrans({"ß": "ss", "ø": "o", "Ø": "O", "æ": "ae", "Æ": "AE", "œ": "oe", "Œ": "OE",
                          "ł": "l", "Ł": "L", "đ": "d", "Đ": "D", "þ": "th", "Þ": "Th", "ı": "i"})
_OUTPUT_SUFFIXES = (".csv", ".html", ".json", ".md", ".txt", ".log")
_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)), *(f"lpt{i}" for i in range(10))}


def slug(student_id: str) -> str:
    """A file-name-safe form of `student_id`: ASCII letters, digits and -_. only, never
    starting with '.', never empty. When characters had to be dropped or the name shortened,
    a short hash of the whole id keeps two different ids apart."""
    decomposed = unicodedata.normalize("NFKD", student_id.translate(_LETTERS))
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    ascii_only = plain.encode("ascii", "ignore").decode()
    lost = len(ascii_only) != len(plain)  # letters with no ASCII form (CJK, Cyrillic...) were dropped
    text = _UNSAFE.sub("-", ascii_only).lstrip(".-").rstrip("-")
    if len(text) > _MAX_KEY:
        text, lost = text[:_MAX_KEY].rstrip("-."), True
    digest = hashlib.sha256(student_id.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    if not text.strip("._-"):
        return f"id-{digest}"
    if text.split(".")[0].lower() in _RESERVED:
        text += "_"  # Windows refuses these names, with any extension
    if text.lower().endswith(_OUTPUT_SUFFIXES):
        text += "_"  # a key is a folder beside the class's gradebook.csv, summary.html ...
    # A repeat after mere punctuation changes gets a -2 suffix; dropped letters get a hash, so
    # that two names written in another script do not depend on each other's order.
    return f"{text}-{digest}" if lost else text


def assign_keys(submissions: list[Submission]) -> None:
    """Give each submission a unique, stable key: the slug of its (first) student's id, with
    -2, -3 ... for a repeat. Keys are unique ignoring case, for case-insensitive disks."""
    def student(sub: Submission) -> str:
        return min(p.id for p in sub.people) if sub.people else sub.source

    taken: set[str] = set()
    for sub in sorted(submissions, key=lambda s: (student(s), s.source)):
        base = slug(student(sub))
        key, n = base, 1
        while key.casefold() in taken:
            n += 1
            key = f"{base}-{n}"
        taken.add(key.casefold())
        sub.key = key
