"""What the worker prints, read from a pipe into memory, so printing cannot fill a disk."""
from __future__ import annotations

import os
import threading


class Capture:
    """The worker's stdout and stderr: the first and the last `limit`/2 bytes, and how much there was."""

    def __init__(self, limit: int):
        self.limit = limit
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0
        self._lock = threading.Lock()
        self._readers: list[threading.Thread] = []

    def start(self, fd: int) -> None:
        reader = threading.Thread(target=self.drain, args=(fd,), daemon=True)
        reader.start()
        self._readers.append(reader)

    def drain(self, fd: int) -> None:
        half = self.limit // 2
        try:
            while True:
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    return
                with self._lock:
                    self.total += len(chunk)
                    room = half - len(self.head)
                    if room > 0:
                        self.head += chunk[:room]
                        chunk = chunk[room:]
                    self.tail = (self.tail + chunk)[-half:]
        except OSError:
            return
        finally:
            os.close(fd)

    def text(self) -> str:
        for reader in self._readers:  # the last bytes of a worker that just ended
            reader.join(timeout=2)
        with self._lock:
            head, tail, total = bytes(self.head), bytes(self.tail), self.total
        if total <= len(head) + len(tail):
            return (head + tail).decode("utf-8", "replace")
        cut = total - len(head) - len(tail)
        return head.decode("utf-8", "replace") + f"\n... ({cut:,} bytes of output cut) ...\n" + \
            tail.decode("utf-8", "replace")
