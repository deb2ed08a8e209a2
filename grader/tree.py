"""Walk, copy and delete folder trees without recursion.

Submissions, and the code they run, decide how deep a tree is. In Python 3.11
shutil.rmtree, shutil.copytree, os.walk and Path.rglob recurse once per level, and a
RecursionError is not an OSError, so `ignore_errors=True` does not contain it. Everything
here keeps an explicit stack instead, and never follows a symbolic link.
"""
from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
_O_PATH = getattr(os, "O_PATH", 0)  # Linux: a handle on a folder we may not read yet


class TreeLimitError(Exception):
    """walk() met a tree deeper or larger than it was allowed to read."""


# ----- remove ---------------------------------------------------------------------------


def remove(path: str | os.PathLike) -> None:
    """Delete `path` and everything under it. Never raises; whatever cannot go stays.

    One folder is open at a time, so neither recursion nor the open-file limit bounds the
    depth, and names are resolved one level at a time, so no path grows past PATH_MAX.
    A folder whose permissions were taken away gets u+rwx back before it is emptied (this
    runs as its owner, or as root). Links are deleted, never followed."""
    try:
        _remove(os.fspath(path))
    except Exception:  # cleanup must never be why a grade fails; leftovers only cost disk space
        pass


@dataclass
class _Level:
    name: str  # its name in the folder above ("" for the top)
    ident: tuple[int, int]  # (st_dev, st_ino): recognises the folder when climbing back through ".."
    subfolders: list[str]  # folders in it still to empty


def _remove(path: str) -> None:
    try:
        info = os.lstat(path)
    except OSError:
        return
    if not stat.S_ISDIR(info.st_mode):
        _quietly(os.unlink, path)
        return
    fd = _open_dir(path, None)
    if fd is not None:
        _empty(fd)
    _quietly(os.rmdir, path)


def _empty(fd: int) -> None:
    """Empty the folder open as `fd` (and close it), descending and climbing with one fd."""
    try:
        levels = [_Level("", _ident(fd), _clear(fd))]
        while levels:
            level = levels[-1]
            if level.subfolders:
                name = level.subfolders.pop()
                child = _open_dir(name, fd)
                if child is None:  # it became something else, or stays unreadable: try it as it is
                    _quietly(os.rmdir, name, dir_fd=fd)
                    _quietly(os.unlink, name, dir_fd=fd)
                    continue
                os.close(fd)
                fd = child
                levels.append(_Level(name, _ident(fd), _clear(fd)))
                continue
            levels.pop()
            if not levels:
                return
            parent = _open_dir("..", fd)
            if parent is None or _ident(parent) != levels[-1].ident:
                # Moved while we worked: stop, rather than delete in a folder nobody named.
                if parent is not None:
                    os.close(parent)
                return
            os.close(fd)
            fd = parent
            _quietly(os.rmdir, level.name, dir_fd=fd)
    finally:
        os.close(fd)


def _clear(fd: int) -> list[str]:
    """Unlink everything in the open folder except its subfolders, whose names it returns."""
    try:
        with os.scandir(fd) as it:
            entries = [(e.name, _is_folder(e)) for e in it]
    except OSError:
        return []
    for name, folder in entries:
        if not folder:
            _quietly(os.unlink, name, dir_fd=fd)
    return [name for name, folder in entries if folder]


def _is_folder(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir(follow_symlinks=False)
    except OSError:
        return False


def _open_dir(name: str, dir_fd: int | None) -> int | None:
    """The folder `name` opened without following links and made u+rwx, or None."""
    try:
        fd = os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
    except PermissionError:
        if not _grant_owner(name, dir_fd):
            return None
        try:
            fd = os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
        except OSError:
            return None
    except OSError:
        return None
    try:
        mode = os.fstat(fd).st_mode
        if mode & stat.S_IRWXU != stat.S_IRWXU:  # write and search are needed to empty it
            os.fchmod(fd, stat.S_IMODE(mode) | stat.S_IRWXU)
    except OSError:
        pass
    return fd


def _grant_owner(name: str, dir_fd: int | None) -> bool:
    """u+rwx on a folder that cannot be opened (chmod 000), without following a link there."""
    if _O_PATH:
        try:
            handle = os.open(name, _O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=dir_fd)
        except OSError:
            return False
        try:
            # fchmod refuses O_PATH handles; the /proc link reaches the same folder, never a swapped-in link.
            os.chmod(f"/proc/self/fd/{handle}", stat.S_IMODE(os.fstat(handle).st_mode) | stat.S_IRWXU)
            return True
        except OSError:
            pass
        finally:
            os.close(handle)
    try:  # no O_PATH or no /proc: check, then chmod by name
        if not stat.S_ISDIR(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode):
            return False
        os.chmod(name, stat.S_IRWXU, dir_fd=dir_fd)
        return True
    except OSError:
        return False


def _ident(fd: int) -> tuple[int, int]:
    info = os.fstat(fd)
    return info.st_dev, info.st_ino


def _quietly(func, *args, **kwargs) -> None:
    try:
        func(*args, **kwargs)
    except OSError:
        pass


# ----- copy -----------------------------------------------------------------------------


def copy(src: str | os.PathLike, dst: str | os.PathLike) -> None:
    """Copy the folder `src` to a new folder `dst`, like shutil.copytree(symlinks=True):
    links are copied as links, files and folders with their modes and times. FIFOs, sockets
    and devices are left out (opening a FIFO would hang). Raises OSError."""
    src, dst = Path(src), Path(dst)
    if Path(os.path.realpath(dst)).is_relative_to(os.path.realpath(src)):
        raise ValueError(f"cannot copy {src} into itself ({dst})")
    os.makedirs(dst)  # as copytree: the folders above may be missing, `dst` itself must be
    folders = [(src, dst)]
    pending = [(src, dst)]
    while pending:
        here, there = pending.pop()
        with os.scandir(here) as it:
            entries = list(it)
        for entry in entries:
            target = there / entry.name
            if entry.is_symlink():
                os.symlink(os.readlink(entry.path), target)
            elif entry.is_dir(follow_symlinks=False):
                os.mkdir(target)
                folders.append((Path(entry.path), target))
                pending.append((Path(entry.path), target))
            elif entry.is_file(follow_symlinks=False):
                shutil.copy2(entry.path, target, follow_symlinks=False)
    # Folder modes last, deepest first, so a read-only folder does not block its own filling.
    for here, there in reversed(folders):
        shutil.copystat(here, there, follow_symlinks=False)


# ----- walk -----------------------------------------------------------------------------


def walk(root: str | os.PathLike, max_depth: int | None = None,
         max_entries: int | None = None) -> Iterator[tuple[str, os.DirEntry]]:
    """(relative POSIX path, entry) of everything under `root`, each folder before what it
    holds, links not followed. An entry's depth is its number of path components ("a/b.py"
    is 2). Raises TreeLimitError past `max_depth` or `max_entries`, OSError when a folder
    cannot be read."""
    seen = 0
    pending = [(os.fspath(root), "", 0)]
    while pending:
        here, prefix, depth = pending.pop()
        with os.scandir(here) as it:
            entries = []
            for entry in it:  # counted while listing: a folder of a million names must not be held at once
                seen += 1
                if max_entries is not None and seen > max_entries:
                    raise TreeLimitError(f"{root} holds more than {max_entries} entries")
                entries.append(entry)
        if entries and max_depth is not None and depth + 1 > max_depth:
            raise TreeLimitError(f"{root} is nested more than {max_depth} levels deep")
        for entry in entries:
            rel = prefix + entry.name
            yield rel, entry
            if _is_folder(entry):
                pending.append((entry.path, rel + "/", depth + 1))
