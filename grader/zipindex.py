"""Size up a zip archive's central directory before zipfile reads it.

zipfile.ZipFile reads the whole central directory and builds an object per entry before
anyone can ask how many entries there are: a million empty folders cost half a gigabyte.
The End of Central Directory record sits in the last 64 KiB + 22 bytes, so what it claims
can be checked first, and the directory then walked header by header, building nothing.
The record is found the way zipfile (CPython 3.11) finds it, so both read the same bytes.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from grader.errors import InputError

# signature, disk, disk of the directory, entries on this disk, entries, directory size, offset, comment length
_END = struct.Struct("<4s4H2LH")
_END_SIG = b"PK\x05\x06"
# zip64 locator (just before the end record): signature, disk of the zip64 record, its offset, disks
_LOCATOR = struct.Struct("<4sLQL")
_LOCATOR_SIG = b"PK\x06\x07"
# zip64 end record: signature, its size, versions (2), disks (2), entries on this disk, entries, size, offset
_END64 = struct.Struct("<4sQ2H2L4Q")
_END64_SIG = b"PK\x06\x06"
_RECORD_SIZE = 46  # fixed part of a central directory header; names, extra and comment follow
_RECORD_SIG = b"PK\x01\x02"
_MAX_COMMENT = 0xFFFF
# A central directory averages ~100 bytes an entry; names over 1 KB are refused at intake anyway.
_INDEX_BYTES_PER_ENTRY = 1024
_MB = 1024 * 1024
ENTRIES_TEXT = " (files and folders, system files such as __MACOSX and .DS_Store included)"


def refuse_oversized(archive: Path, source: str, max_entries: int) -> None:
    """InputError, in words for the student, when `archive` has more than `max_entries`
    entries or a directory larger than that many could need. Reads at most the end of the
    file and a directory that passed the size check."""
    try:
        with open(archive, "rb") as f:
            directory = read_end(f)
            if directory is None:
                return  # no end record: zipfile refuses the file, having read nothing large
            if directory.entries > max_entries:
                raise InputError(f"{source} holds {directory.entries:,} entries{ENTRIES_TEXT}, more than the "
                                 f"{max_entries:,} a submission may have; submit only your code and results")
            if directory.size > max_entries * _INDEX_BYTES_PER_ENTRY:
                raise InputError(f"{source} has a {_about(directory.size)} list of contents, more than "
                                 f"{max_entries:,} entries could need; it is damaged or not a plain zip of "
                                 "homework: submit only your code and results, zipped with a standard tool")
            # The end record's count is only a claim; zipfile reads every header there is.
            if count(f, directory, max_entries) > max_entries:
                raise InputError(f"{source} holds more than {max_entries:,} entries{ENTRIES_TEXT}, the most "
                                 "a submission may have; submit only your code and results")
    except OSError as exc:
        raise InputError(f"cannot read {source}: {exc.strerror or exc}") from None


def _about(n: int) -> str:
    return f"{n / _MB:.1f} MB" if n >= _MB else f"{n / 1024:.0f} KB"


@dataclass(frozen=True)
class Directory:
    entries: int  # how many entries the end record claims (a claim: count() says how many are there)
    size: int  # bytes of the central directory, which zipfile reads into memory at once
    start: int  # where in the file zipfile will read it


def read_end(f: BinaryIO) -> Directory | None:
    """The central directory the end record describes, or None when there is no usable
    record (zipfile then refuses the file itself, reading nothing large)."""
    f.seek(0, 2)
    file_size = f.tell()
    if file_size < _END.size:
        return None
    tail_start = max(file_size - _MAX_COMMENT - _END.size, 0)
    f.seek(tail_start)
    tail = f.read()
    # No archive comment: the record ends the file. Otherwise the last signature in the tail.
    if tail[-_END.size:][:4] == _END_SIG and tail[-2:] == b"\0\0":
        at = len(tail) - _END.size
    else:
        at = tail.rfind(_END_SIG)
        if at < 0 or len(tail) - at < _END.size:
            return None
    _sig, _disk, _cd_disk, _here, entries, size, _offset, _comment = _END.unpack_from(tail, at)
    end = tail_start + at
    zip64 = _zip64(f, end)
    if zip64 is not None:
        entries, size = zip64
        end -= _LOCATOR.size + _END64.size
    # zipfile assumes the directory sits right before the end records (data may be prepended).
    start = end - size
    return Directory(entries, size, start) if start >= 0 else None


def _zip64(f: BinaryIO, end: int) -> tuple[int, int] | None:
    """(entries, directory size) from the zip64 end record, when a locator precedes `end`."""
    locator_at = end - _LOCATOR.size
    record_at = locator_at - _END64.size
    if record_at < 0:
        return None
    f.seek(locator_at)
    locator = f.read(_LOCATOR.size)
    if len(locator) != _LOCATOR.size or locator[:4] != _LOCATOR_SIG:
        return None
    f.seek(record_at)
    record = f.read(_END64.size)
    if len(record) != _END64.size or record[:4] != _END64_SIG:
        return None
    fields = _END64.unpack(record)
    return fields[7], fields[8]


def count(f: BinaryIO, directory: Directory, limit: int) -> int:
    """Headers really in the directory, counted as zipfile will step through them; stops
    at limit + 1. The caller bounds directory.size first: it is read in one piece."""
    f.seek(directory.start)
    data = f.read(directory.size)
    found = pos = 0
    while pos + _RECORD_SIZE <= len(data) and data[pos:pos + 4] == _RECORD_SIG:
        found += 1
        if found > limit:
            break
        name, extra, comment = struct.unpack_from("<3H", data, pos + 28)
        pos += _RECORD_SIZE + name + extra + comment
    return found
