"""How far a slow probe got, sent beside the reply so a timeout can say it.

A probe that runs student code for long (a writer generating text, the memory task) calls
`report` now and then; the scoring process keeps the last one and, if the probe runs out
of time, says what was running and how far it got, so a TA can tell slow from stuck.
Only numbers and short labels travel; the scoring process writes the sentence.
"""
from __future__ import annotations

import os
import time

_fd: int | None = None
_last = 0.0
EVERY = 0.5  # seconds between reports


def configure(fd: int) -> None:
    global _fd
    _fd = fd


def report(what: str, done: int, total: int | None = None, unit: str = "", note: str = "", force: bool = False) -> None:
    global _last
    now = time.monotonic()
    if _fd is None or (not force and now - _last < EVERY):
        return
    _last = now
    from grader import protocol

    data = protocol.encode({"progress": {"what": what[:80], "done": int(done), "total": total, "unit": unit[:20],
                                         "note": note[:160]}})
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(_fd, view):]
    except OSError:
        pass
