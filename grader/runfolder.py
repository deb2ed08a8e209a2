"""The one folder a submission may write, with a size cap and an inode cap.

As root it is a tmpfs mounted for this run (nosuid, nodev), so the kernel enforces both
caps and a million small files fail at the cap instead of filling the disk. Elsewhere it
is a plain folder that the sandbox's watchdog measures, a bounded walk a second.
"""
from __future__ import annotations

import ctypes
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from .tree import remove

MS_NOSUID, MS_NODEV, MNT_DETACH = 2, 4, 2
MAX_DEPTH = 64


@dataclass(frozen=True)
class Quota:
    megabytes: int = 1536  # a 233 MB AlexNet checkpoint, several times over, plus the submission
    inodes: int = 20_000  # files and folders together; real submissions have under 200


class RunFolder:
    def __init__(self, path: Path, quota: Quota = Quota()):
        self.path = path
        self.quota = quota
        path.mkdir(parents=True, exist_ok=True)
        self.mounted = _mount_tmpfs(path, quota) if os.geteuid() == 0 else False

    @property
    def enforcement(self) -> str:
        return "kernel (tmpfs)" if self.mounted else "watchdog"

    def over_quota(self) -> str | None:
        """Why the folder is over its caps, or None. Stops counting at the first cap passed."""
        if self.mounted:
            return None  # the kernel refuses the write instead
        entries, size, stack = 0, 0, [(str(self.path), 0)]
        while stack:
            folder, depth = stack.pop()
            if depth > MAX_DEPTH:  # deeper than a path can name: what is below could not be counted
                return f"folders more than {MAX_DEPTH} deep"
            try:
                with os.scandir(folder) as it:
                    for entry in it:
                        entries += 1
                        if entries > self.quota.inodes:
                            return f"more than {self.quota.inodes:,} files and folders"
                        try:
                            info = entry.stat(follow_symlinks=False)
                        except FileNotFoundError:
                            continue
                        if stat.S_ISDIR(info.st_mode):
                            stack.append((entry.path, depth + 1))
                        else:
                            size += info.st_blocks * 512
                            if size > self.quota.megabytes << 20:
                                return f"more than {self.quota.megabytes:,} MB"
            except FileNotFoundError:
                continue
            except OSError:  # a folder it locked: hidden from the count, so over it
                return "a folder the grader was not allowed to measure"
        return None

    @staticmethod
    def hand_over(folder: Path, uid: int) -> None:
        """The sandbox's uid owns the folder and what is in it; the folders above let it pass, not list."""
        for path in (folder.parent.parent, folder.parent, folder):  # bubblewrap, without DAC override, must enter it too
            os.chmod(path, 0o711)
        stack = [folder]
        while stack:
            path = stack.pop()
            os.lchown(path, uid, uid)
            if path.is_dir() and not path.is_symlink():
                stack.extend(path.iterdir())


def release(path: Path) -> None:
    """Unmount the run's tmpfs if there is one, and delete the folder (never recursing)."""
    if os.path.ismount(path):
        ctypes.CDLL(None, use_errno=True).umount2(str(path).encode(), MNT_DETACH)
    remove(path)


def _mount_tmpfs(path: Path, quota: Quota) -> bool:
    libc = ctypes.CDLL(None, use_errno=True)
    options = f"size={quota.megabytes}m,nr_inodes={quota.inodes},mode=0700".encode()
    return libc.mount(b"dlgrade-run", str(path).encode(), b"tmpfs", MS_NOSUID | MS_NODEV, options) == 0
