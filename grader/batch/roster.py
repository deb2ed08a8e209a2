"""Match a class's submissions to the course roster (a CSV the TA exports).

Accepted: any CSV with a header naming an id column, and the layouts Canvas's gradebook
export (a "Points Possible" row under the header, a Test Student) and Gradescope's roster
export (a Role column, instructors and TAs included) have. Submissions are matched by id,
else by email, else by name; who is on the roster but submitted nothing ends in
`export.missing`.
"""
from __future__ import annotations

import csv
import io
import unicodedata
from dataclasses import dataclass, replace
from pathlib import Path

from grader.batch.records import ClassExport, Person, Submission
from grader.errors import InputError
from grader.staging import shown

# A roster of tens of thousands of students is a few MB; past this it is not a roster.
_MAX_ROSTER_BYTES = 50 * 1024 * 1024
_HEADER_ROWS = 5  # a title line or two may come before the header
# Header names, compared casefolded with "_" and "-" read as spaces; the first found is the id.
_ID_COLUMNS = ("id", "sid", "student id", "user id", "sis user id", "sis login id", "login id", "login")
_NAME_COLUMNS = ("name", "student", "full name", "student name")
_EMAIL_COLUMNS = ("email", "e mail", "email address")
_NOT_STUDENTS = {"points possible", "student, test", "test student"}  # rows Canvas's gradebook adds


@dataclass
class _Row:
    line: int  # its row in the file (the header row counted), for messages
    ids: tuple[str, ...]  # every id column's value, the preferred one first ("" where empty)
    name: str
    email: str
    names: frozenset[str]  # the name's normalized forms, either order of first and last

    @property
    def person(self) -> Person:
        return Person(next(i for i in self.ids if i), self.name, self.email)


def apply_roster(export: ClassExport, roster_csv: Path) -> None:
    """Fill in names and emails from the roster, note submitters not on it, and list in
    `export.missing` the roster's students with no submission. Raises InputError when the
    roster cannot be read."""
    roster_csv = Path(roster_csv)
    rows, problems = read_roster(roster_csv)
    export.problems.extend(problems)
    by_id, by_email, by_name = _indexes(rows)
    matched: dict[int, Submission] = {}
    for sub in export.submissions:
        people = []
        for p in sub.people:
            row = (by_id.get(p.id.strip().casefold()) or by_email.get(p.email.strip().casefold())
                   or by_email.get(p.id.strip().casefold()) or _by_name(by_name, p.name))
            if row is None:
                sub.notes.append(f"{shown(_who(p))} is not on the roster {shown(roster_csv.name)}")
                people.append(p)
                continue
            if (other := matched.get(row.line)) is not None and other is not sub:
                sub.notes.append(f"{shown(_who(p))} matches the same roster student ({shown(row.name or row.ids[0])}, "
                                 f"row {row.line}) as {shown(other.source or other.key)}")
            matched.setdefault(row.line, sub)
            people.append(_filled(p, row))
        sub.people = tuple(people)
    export.missing.extend(r.person for r in rows if r.line not in matched)


def _who(p: Person) -> str:
    return f"{p.name} ({p.id})" if p.name and p.name != p.id else p.id


def _filled(p: Person, row: _Row) -> Person:
    # Canvas's sortable name ("smithbob") is only a key: the roster's own spelling reads better.
    name = row.name if row.name and (not p.name or _norm(p.name) in row.names) else p.name
    return replace(p, name=name, email=p.email or row.email)


def _indexes(rows: list[_Row]):
    by_id: dict[str, _Row] = {}
    by_email: dict[str, _Row] = {}
    by_name: dict[str, list[_Row]] = {}
    for row in rows:
        for ident in row.ids:
            if ident:
                by_id.setdefault(ident.casefold(), row)
        if row.email:
            by_email.setdefault(row.email.casefold(), row)
        for form in row.names:
            by_name.setdefault(form, []).append(row)
    return by_id, by_email, by_name


def _by_name(by_name: dict[str, list[_Row]], name: str) -> _Row | None:
    rows = by_name.get(_norm(name), []) if name else []
    unique = {r.line: r for r in rows}
    return next(iter(unique.values())) if len(unique) == 1 else None  # two Bob Smiths: no guess


def _norm(name: str) -> str:
    """Lower case letters and digits only, accents dropped: "Smith, Bob" -> "smithbob"."""
    decomposed = unicodedata.normalize("NFKD", name.casefold())
    return "".join(c for c in decomposed if c.isalnum() and not unicodedata.combining(c))


def _name_forms(name: str, first: str, last: str) -> frozenset[str]:
    forms = {_norm(name)}
    if "," in name:  # "Smith, Bob", as Canvas writes it: also "Bob Smith"
        surname, given = name.split(",", 1)
        forms.add(_norm(given + surname))
    if first or last:
        forms |= {_norm(first + last), _norm(last + first)}
    # Canvas's sortable names drop non-ASCII letters altogether ("Müller" -> "mller").
    forms |= {"".join(c for c in f if c.isascii()) for f in list(forms)}
    forms |= {"".join(c for c in n.casefold() if c.isascii() and c.isalnum())
              for n in (name, first + last, last + first) if n}
    return frozenset(f for f in forms if f)


# ----- reading the CSV --------------------------------------------------------------------


def read_roster(path: Path) -> tuple[list[_Row], list[str]]:
    """The roster's student rows and the problems found (duplicate ids). Raises InputError."""
    text = _read_text(path)
    try:
        dialect = csv.Sniffer().sniff(text[:8192], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    try:
        table = list(csv.reader(io.StringIO(text), dialect))
    except csv.Error as exc:
        raise InputError(f"cannot read the roster {shown(path.name)} as CSV: {exc}") from None
    header_at, columns = _header(path, table)
    rows, problems, seen, skipped = [], [], {}, 0
    for n, cells in enumerate(table[header_at + 1:], start=header_at + 2):
        if _not_student(cells, columns):
            continue
        row = _row(n, cells, columns)
        if row is None:
            skipped += any(c.strip() for c in cells)
            continue
        if row.ids[0] and (first := seen.get(row.ids[0].casefold())) is not None:
            problems.append(f"roster {shown(path.name)}: the id {shown(row.ids[0])} is on row {first} and "
                            f"row {n}; row {first} is used")
            continue
        seen.setdefault(row.ids[0].casefold(), n)
        rows.append(row)
    if skipped:
        problems.append(f"roster {shown(path.name)}: {skipped} row(s) with no student id were skipped")
    if not rows:
        raise InputError(f"the roster {shown(path.name)} lists no students (no row with an id under its header)")
    return rows, problems


def _read_text(path: Path) -> str:
    try:
        size = path.stat().st_size
        if size > _MAX_ROSTER_BYTES:
            raise InputError(f"the roster {shown(path.name)} is {size:,} bytes; a class roster is far smaller")
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read the roster {path}: {exc.strerror or exc}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")  # Excel on Windows saves CSV this way


def _key(cell: str) -> str:
    return " ".join(cell.strip().casefold().replace("_", " ").replace("-", " ").split())


@dataclass
class _Columns:
    ids: list[int]
    name: int | None
    first: int | None
    last: int | None
    email: int | None
    role: int | None


def _header(path: Path, table: list[list[str]]) -> tuple[int, _Columns]:
    for at, cells in enumerate(table[:_HEADER_ROWS]):
        keys = [_key(c) for c in cells]
        ids = [keys.index(k) for k in _ID_COLUMNS if k in keys]
        if ids:
            find = lambda *names: next((keys.index(k) for k in names if k in keys), None)  # noqa: E731
            return at, _Columns(ids, find(*_NAME_COLUMNS), find("first name", "first"), find("last name", "last"),
                                find(*_EMAIL_COLUMNS), find("role"))
    found = ", ".join(shown(c) for c in table[0]) if table else "nothing (the file is empty)"
    raise InputError(f"the roster {shown(path.name)} has no student id column: expected a header with one of "
                     f"{', '.join(_ID_COLUMNS)}; found {found}")


def _cell(cells: list[str], i: int | None) -> str:
    return cells[i].strip() if i is not None and i < len(cells) else ""


def _not_student(cells: list[str], columns: _Columns) -> bool:
    """Rows Canvas's gradebook adds, and Gradescope's instructors, TAs and readers."""
    first = cells[0].strip().casefold() if cells else ""
    name = _cell(cells, columns.name).casefold()
    role = _cell(cells, columns.role).casefold()
    return (first in _NOT_STUDENTS or name in _NOT_STUDENTS or "posting" in first
            or bool(role and "student" not in role))


def _row(n: int, cells: list[str], columns: _Columns) -> _Row | None:
    ids = tuple(_cell(cells, i) for i in columns.ids)
    if not any(ids):
        return None
    first, last = _cell(cells, columns.first), _cell(cells, columns.last)
    name = _cell(cells, columns.name) or " ".join(p for p in (first, last) if p)
    if not ids[0]:
        ids = (next(i for i in ids if i),) + ids  # the preferred column is empty here: use another
    return _Row(n, ids, name, _cell(cells, columns.email), _name_forms(name, first, last))
