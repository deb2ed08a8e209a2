"""The scorer's side of the verifier: a second sandbox that measures the worker's artefacts.

The worker writes an artefact into its own run folder; the scorer copies it, as plain
bytes and within caps, into the verifier's folder (never following a link the submission
planted), removes the original, and asks the verifier to measure it. The verifier has
its own uid and folder, so nothing the submission left running can touch what it reads.
"""
from __future__ import annotations

import os
import stat
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from .facts import ProbeOutcome
from .runfolder import RunFolder
from .sandbox import Sandbox, SandboxConfig, WorkerCrashed
from .tree import remove

FILES = ("manifest.json", "weights.bin")
MAX_MANIFEST = 8 << 20
INSIDE = "measured inside the submission's process"
MAX_QUEUED = 8  # measurements waiting at once (a compared class count holds no weights)
FOLDER_MARGIN_MB = 256  # of the verifier's folder, kept for what the verifier itself writes
MIN_WAIT = 5.0  # seconds a measurement gets even when the grade's budget has run out (as a probe does)


@dataclass
class _Measurement:
    """A measurement sent and not yet read: its artefact waits in its own folder here."""
    name: str  # the artefact's folder in the verifier's run folder
    request: dict
    timeout: float
    what: str
    done: object  # done(trace, behaviour)
    size: int  # bytes it holds in the verifier's folder
    request_id: int = 0
    sent: float = 0.0


class Verifier:
    def __init__(self, run_dir: Path, config: SandboxConfig, deadline: float | None = None):
        self.run_dir = run_dir
        self.folder = RunFolder(run_dir)
        self.sandbox = Sandbox(run_dir, config, self.folder, module="grader.verifier")
        self.max_mb = max(256, config.memory_mb // 2)  # weights beside the training's activations
        self.deadline = deadline  # the grade's: no wait here runs past it (monotonic)
        self._ready = False
        self.failure: str | None = None
        # Measurements sent, oldest first: the verifier answers them in turn while the
        # worker goes on exporting, so neither waits on the other.
        self._queue: deque[_Measurement] = deque()
        self._turn_began = 0.0  # when the oldest measurement's turn began: the last reply read
        self._made = 0

    def launch(self) -> None:
        """Start importing torch now, while the worker imports the submission."""
        if not self.sandbox.running:
            self.sandbox.launch()
            self._ready = False

    def start(self, base: Path, parts: tuple[str, ...], request: dict, timeout: float, what: str, done) -> None:
        """Measure the model artefact at base/parts (the worker's run folder) without waiting:
        `done(trace, behaviour)` gets the two outcomes once `settle` reads the reply. Copied
        here first, the worker may write its next export while this one, and those before
        it, are measured."""
        hint = _size_hint(base, parts)
        while self._queue and (len(self._queue) >= MAX_QUEUED or self._queued_bytes() + hint > self._room()):
            self._settle_oldest()  # what waits here stays within the folder's cap
        self._made += 1
        name = f"artefact-{self._made}"
        target = self.run_dir / name
        remove(target)
        # Alone, an artefact may use the whole cap; behind others, what room they leave (the
        # loop above made room for what the worker reported).
        cap = self.max_mb << 20 if not self._queue else min(self.max_mb << 20, self._room() - self._queued_bytes())
        why = take(base, parts, target, cap)
        if why:
            remove(target)
            done(*_refused(f"the model the grading process handed over was refused: {why}"))
            return
        self._send(_Measurement(name, request, timeout, what, done, _folder_bytes(target)))

    def settle(self) -> None:
        """Wait for every measurement `start` sent, and hand their outcomes on in order."""
        while self._queue:
            self._settle_oldest()

    def _settle_oldest(self) -> None:
        item = self._queue[0]
        began = max(item.sent, self._turn_began)
        limit = began + item.timeout
        if self.deadline is not None:
            limit = min(limit, max(self.deadline, item.sent + MIN_WAIT))
        try:
            reply = self.sandbox.receive(item.request_id, max(limit - time.monotonic(), 0.1), item.what, "verify")
        except WorkerCrashed as crash:  # the graph, run as the student wrote it, hung or used too much
            self._queue.popleft()
            self._ready = False
            remove(self.run_dir / item.name)
            item.done(*_stopped(crash, item.timeout))
            self._resend()  # the measurements behind it are not this one's fault
            return
        self._queue.popleft()
        self._turn_began = time.monotonic()
        remove(self.run_dir / item.name)
        if not reply.ok:
            message = (reply.error or {}).get("message", "it could not be read")
            item.done(*_refused(f"the model the grading process handed over was refused: {message}"))
            return
        item.done(ProbeOutcome(result=reply.result["trace"], seconds=reply.seconds, peak_mb=reply.peak_mb),
                  ProbeOutcome(result=reply.result["behaviour"], seconds=reply.seconds, peak_mb=reply.peak_mb))

    def _send(self, item: _Measurement) -> None:
        """Ask the verifier to measure `item` after those already waiting; when it cannot
        start, `item`'s outcomes say so."""
        if self._queue and not self.sandbox.running:
            self.settle()  # it stopped measuring the oldest one: that one is blamed, the rest sent again
        try:
            self._ensure_ready(item.timeout)
            item.request_id = self.sandbox.send("verify", {**item.request, "artefact": item.name, "max_mb": self.max_mb})
        except WorkerCrashed as crash:
            self._ready = False
            if self._queue:  # it stopped just now, measuring the oldest one, not this one
                self._queue.append(item)
                self.settle()
                return
            remove(self.run_dir / item.name)
            item.done(*_stopped(crash, item.timeout))
            return
        item.sent = time.monotonic()
        self._queue.append(item)

    def _resend(self) -> None:
        """After a crash: the fresh verifier gets the measurements still waiting, from their own start."""
        waiting, self._queue = list(self._queue), deque()
        self._turn_began = 0.0
        for item in waiting:
            self._send(item)

    def _queued_bytes(self) -> int:
        return sum(item.size for item in self._queue)

    def _room(self) -> int:
        """Bytes the waiting artefacts may hold: the folder's cap, less room for what the verifier writes."""
        return (self.folder.quota.megabytes - FOLDER_MARGIN_MB) << 20

    def take(self, base: Path, parts: tuple[str, ...], name: str) -> str | None:
        """Copy the artefact at base/parts into this folder's `name`: None, or why it was refused."""
        self.settle()  # the folder's room is then this artefact's alone
        target = self.run_dir / name
        remove(target)
        return take(base, parts, target, self.max_mb << 20)

    def ask(self, op: str, request: dict, timeout: float, what: str):
        """One request, once the verifier is ready; raises WorkerCrashed."""
        self.settle()
        try:
            self._ensure_ready(timeout)
            return self.sandbox.call(op, {**request, "max_mb": self.max_mb}, timeout, what)
        except WorkerCrashed:
            self._ready = False
            raise

    def _ensure_ready(self, timeout: float) -> None:
        if not self.sandbox.running:
            self.launch()
        if not self._ready:
            self.sandbox.wait_ready(timeout)
            self._ready = True

    def stop(self) -> None:
        """Stop the process; measurements still pending are dropped (their checks have not run)."""
        for item in self._queue:
            remove(self.run_dir / item.name)
        self._queue.clear()
        self.sandbox.stop()
        self._ready = False


def refused_error(text: str) -> dict:
    """The error a check reads when the artefact it rests on was refused."""
    return {"type": "ArtefactRefused", "message": text, "stage": "construct", "file": None, "line": None,
            "code": None, "trace": []}


def _stopped(crash: WorkerCrashed, timeout: float) -> tuple[ProbeOutcome, ProbeOutcome]:
    return (ProbeOutcome(crash=crash.detail, crash_reason=crash.reason, seconds=timeout),
            ProbeOutcome(crash=crash.detail, crash_reason=crash.reason, seconds=timeout))


def _refused(text: str, reason: str = "refused") -> tuple[ProbeOutcome, ProbeOutcome]:
    """A refused artefact costs the model's checks, never more: it is not measured in the
    submission's process instead, since forcing that would be the way around the verifier."""
    error = refused_error(text)
    return (ProbeOutcome(result={"constructed": False, "rows": [], "error": error}, crash_reason=reason),
            ProbeOutcome(result={"error": error}, crash_reason=reason))


def _size_hint(base: Path, parts: tuple[str, ...]) -> int:
    """The artefact's size as the worker left it: a hint for making room, never trusted (take caps the copy)."""
    try:
        return sum(os.stat(base.joinpath(*parts, name), follow_symlinks=False).st_size for name in FILES)
    except OSError:
        return 0


def _folder_bytes(folder: Path) -> int:
    try:
        return sum(os.stat(folder / name).st_size for name in FILES)
    except OSError:
        return 0


def take(base: Path, parts: tuple[str, ...], target: Path, max_bytes: int) -> str | None:
    """Copy the artefact's files as bytes, refusing links (at every step below `base`), odd
    files and excess; None, or why not."""
    try:
        folder = os.open(base, os.O_RDONLY | os.O_DIRECTORY)
        for part in parts:
            inner = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=folder)
            os.close(folder)
            folder = inner
    except OSError as exc:
        return f"its folder cannot be opened ({exc.strerror})"
    target.mkdir(mode=0o755)
    try:
        for name in FILES:
            cap = MAX_MANIFEST if name == "manifest.json" else max_bytes
            try:
                fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=folder)
            except OSError as exc:
                return f"{name} cannot be opened ({exc.strerror})"
            with os.fdopen(fd, "rb") as src:
                info = os.fstat(src.fileno())
                if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:
                    return f"{name} is not a plain file"
                if info.st_size > cap:
                    return f"{name} is larger than the {cap >> 20} MB the grader accepts"
                with open(target / name, "xb") as dst:
                    if _copy(src, dst, cap) > cap:
                        return f"{name} grew past the {cap >> 20} MB the grader accepts while it was read"
            os.chmod(target / name, 0o644)
    finally:
        os.close(folder)
    return None


def _copy(src, dst, cap: int) -> int:
    """Bytes copied, stopping one past `cap`: in the kernel where it can (a model's weights
    are hundreds of MB), else through a buffer."""
    copied = 0
    try:
        while n := os.copy_file_range(src.fileno(), dst.fileno(), min(1 << 24, cap + 1 - copied)):
            copied += n
            if copied > cap:
                return copied
        return copied
    except OSError:
        if copied:
            raise
    while chunk := src.read(min(1 << 22, cap + 1 - copied)):
        copied += len(chunk)
        if copied > cap:
            return copied
        dst.write(chunk)
    return copied


def export_stopped(error: dict | None) -> str:
    """Why the model was measured in the submission's process, pointing at the student's line."""
    if not error:
        return f"{INSIDE}: the model could not be exported"
    where = f" at {error['file']} line {error['line']}" if error.get("file") and error.get("line") else ""
    if error.get("cell"):
        where = f" at {error['file']} cell {error['cell']}, line {error['line']}"
    first = str(error.get("message", "")).strip().split("\n")[0][:300]
    kind = str(error.get("type", "error"))
    if "DataDependent" in kind or "data-dependent" in first:
        return (f"{INSIDE}: forward decides something from a tensor's values{where} (an if on a tensor, .item() "
                f"or .tolist()), which torch.export cannot capture")
    if kind == "Unsupported" and where:  # the grader's own reason, in the student's terms
        return f"{INSIDE}: {first}{where}"
    return f"{INSIDE}: torch.export could not capture forward{where} ({kind}: {first})"
