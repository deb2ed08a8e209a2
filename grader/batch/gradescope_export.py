"""Read a Gradescope "Export Submissions": submission_metadata.yml beside one folder per submission.

The metadata is YAML written by Ruby: keys keep their leading colon (":submitters:") and
values may carry Ruby tags (!ruby/object:BigDecimal, !ruby/hash:...). It is read with a
SafeLoader that builds every tagged node as the plain scalar, list or dict it holds, so no
tag can construct an object. Only folders really in the export are ever used as paths: the
metadata's keys are matched against the folder names, never joined onto a path.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path

import yaml

from grader.batch.records import ClassExport, Person, Submission
from grader.staging import shown

# Metadata for a class of thousands with full histories is a few MB; far more is not an export.
_MAX_METADATA_BYTES = 64 * 1024 * 1024
_BIGDECIMAL = re.compile(r"^\d+:(?P<value>[-+]?[0-9.]+(?:[eE][-+]?\d+)?)$")


class _RubyLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    """SafeLoader that reads any tag it does not know as the untagged node it carries."""


def _plain(loader: yaml.SafeLoader, node: yaml.Node):
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node, deep=True)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    value = loader.construct_scalar(node)
    # BigDecimal is dumped as "precision:value" (18:0.85E2 is 85.0).
    if node.tag.endswith("BigDecimal") and (m := _BIGDECIMAL.match(value)):
        return float(m["value"])
    return value


_RubyLoader.add_constructor(None, _plain)


class MetadataError(Exception):
    """submission_metadata.yml cannot be used; the message says why."""


def load_metadata(path: Path) -> dict:
    """The metadata as a dict of folder name -> entry dict. Raises MetadataError."""
    try:
        size = path.stat().st_size
        if size > _MAX_METADATA_BYTES:
            raise MetadataError(f"it is {size:,} bytes, more than an export's metadata could be")
        with open(path, "rb") as f:
            data = yaml.load(f, Loader=_RubyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" (line {where.line + 1})" if where is not None else ""
        raise MetadataError(f"it is not valid YAML{at}: {getattr(exc, 'problem', None) or exc}") from None
    except (OSError, RecursionError, UnicodeDecodeError) as exc:
        raise MetadataError(f"it cannot be read: {exc}") from None
    if not isinstance(data, dict):
        raise MetadataError(f"expected a mapping of submission folders to entries, found {type(data).__name__}")
    return {str(k): v for k, v in data.items()}


def read_gradescope(entries: list[os.DirEntry], metadata: Path) -> ClassExport:
    """The export whose top folder holds `entries` (junk left out), `metadata` among them."""
    problems = []
    folders = {}
    links, strays = [], []
    for entry in entries:
        if entry.is_symlink():
            links.append(entry.name)
        elif entry.is_dir(follow_symlinks=False):
            folders[entry.name] = Path(entry.path)
        elif entry.path != str(metadata):
            strays.append(entry.name)
    if links:
        problems.append(f"not graded, symbolic links are not followed: {_names(links)}")
    if strays:
        problems.append(f"not graded, files beside the submission folders: {_names(strays)}")
    try:
        meta = load_metadata(metadata)
    except MetadataError as why:
        problems.append(f"{metadata.name} cannot be used: {why}; each submission folder is graded "
                        "under its folder name instead")
        subs = [_unlisted(name, path, "the metadata could not be read") for name, path in sorted(folders.items())]
        return ClassExport("gradescope", subs, problems)
    found = []
    for name, entry in meta.items():
        found.append(_from_entry(name, entry, folders.get(name)))
    for name in sorted(set(folders) - set(meta)):
        found.append(_Found(_unlisted(name, folders[name], f"{metadata.name} has no entry for it"), None, name))
    return ClassExport("gradescope", _latest_only(found), problems)


def _names(names: list[str]) -> str:
    more = f" and {len(names) - 10} more" if len(names) > 10 else ""
    return ", ".join(shown(n) for n in names[:10]) + more


def _unlisted(name: str, path: Path, why: str) -> Submission:
    return Submission(key="", people=(Person(name),), path=path, source=name,
                      notes=[f"{why}: the student is known only by the folder name {shown(name)}"])


@dataclass
class _Found:
    sub: Submission
    when: datetime | None  # to pick the latest of a student's submissions
    name: str  # the submission's folder name, the tie-break (Gradescope's ids grow)


def _from_entry(name: str, entry, folder: Path | None) -> _Found:
    sub = Submission(key="", people=(), path=folder, source=name)
    if not isinstance(entry, dict):
        entry = {}
        sub.notes.append("its metadata entry is not a mapping; read as empty")
    fields = {str(k).strip(":"): v for k, v in entry.items()}  # ":created_at:" and "created_at" alike
    sub.people = _people(name, fields.get("submitters"), sub.notes)
    when = _timestamp(fields.get("created_at"))
    if when is not None:
        sub.submitted_at = when.isoformat()
    elif "created_at" in fields:
        sub.notes.append(f"its submission time {shown(str(fields['created_at']))} could not be read")
    if folder is None:
        sub.problem = f"{shown(name)} is in the metadata but the export has no folder of that name: nothing to grade"
    return _Found(sub, when, name)


def _people(name: str, submitters, notes: list[str]) -> tuple[Person, ...]:
    if not isinstance(submitters, list) or not submitters:
        notes.append("the metadata names no submitters: the student is known only by the folder name")
        return (Person(name),)
    people = []
    for i, who in enumerate(submitters):
        who = {str(k).strip(":"): v for k, v in who.items()} if isinstance(who, dict) else {}
        sid, email, full = (_text(who.get(k)) for k in ("sid", "email", "name"))
        ident = sid or email or (name if i == 0 else f"{name}-{i + 1}")
        if not (sid or email):
            notes.append(f"submitter {shown(full or str(i + 1))} has no SID or email: known as {shown(ident)}")
        if all(p.id != ident for p in people):  # listed twice in one group: one member
            people.append(Person(ident, full, email))
    return tuple(people)


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # an SID YAML read as a number
    return str(value).strip()


def _timestamp(value) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    if not isinstance(value, str):
        return None
    text = value.strip()
    # Ruby's "2023-03-01 12:34:56.789012345 -0800": Python takes at most 6 digits of a second.
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)
    text = re.sub(r"\s+([-+]\d{2}):?(\d{2})$", r"\1:\2", text)
    try:
        return datetime.fromisoformat(text.replace(" UTC", "+00:00"))
    except ValueError:
        return None


def _order(found: _Found) -> tuple:
    when = found.when
    if when is not None and when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    stamp = when.timestamp() if when is not None else float("-inf")
    digits = re.sub(r"\D", "", found.name)
    return stamp, int(digits) if digits else -1, found.name


def _latest_only(found: list[_Found]) -> list[Submission]:
    """At most one submission per student: the latest. A student's earlier one loses only that
    student, so a group partner whose only submission it is keeps it."""
    ranked = sorted(found, key=_order, reverse=True)
    kept_at: dict[str, _Found] = {}
    counts: dict[str, int] = {}
    for f in ranked:
        for p in f.sub.people:
            counts[p.id] = counts.get(p.id, 0) + 1
    result = []
    for f in ranked:
        stay, gone = [], []
        for p in f.sub.people:
            (gone if p.id in kept_at else stay).append(p)
        for p in gone:
            later = kept_at[p.id]
            _note_once(later.sub, f"{counts[p.id]} submissions; the latest ({later.sub.source}"
                                  f"{', ' + later.sub.submitted_at if later.sub.submitted_at else ''}) is graded"
                       + ("" if len(later.sub.people) == 1 else f" for {shown(p.name or p.id)}"))
        if not stay:
            continue  # every member has a later submission
        if gone:
            f.sub.notes.append("graded for " + ", ".join(shown(p.name or p.id) for p in stay) + " only; "
                               + ", ".join(shown(p.name or p.id) for p in gone) + " submitted again later")
            f.sub.people = tuple(stay)
        for p in stay:
            kept_at[p.id] = f
        result.append(f.sub)
    result.sort(key=lambda s: s.source)
    return result


def _note_once(sub: Submission, note: str) -> None:
    if note not in sub.notes:
        sub.notes.append(note)
