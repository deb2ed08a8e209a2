"""What every sandboxed process shares: the channel, the dropped privileges, the namespaces
and the request loop. The worker serves probes of student code through it; the verifier
serves checks of the worker's artefacts, and never imports student code.

Started by grader.sandbox with the request and reply pipe descriptors in DLGRADE_FDS.
"""
from __future__ import annotations

import os
import resource
import sys
import time


def _read_lines(fd: int):
    buffer = b""
    while True:
        try:
            chunk = os.read(fd, 1 << 16)
        except OSError:
            _channel_broken()
        if not chunk:
            return
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            yield line


def _write(fd: int, data: bytes) -> None:
    view = memoryview(data)
    try:
        while view:
            view = view[os.write(fd, view):]
    except OSError:
        _channel_broken()


def _channel_broken():
    """The student's code closed or replaced the worker's pipes: say so by the exit status."""
    from grader.protocol import CHANNEL_BROKEN

    os._exit(CHANNEL_BROKEN)


def _reset_peak() -> None:
    try:  # Linux: "5" resets VmHWM, so each probe reports its own peak
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def _peak_mb() -> float:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _drop_privileges() -> None:
    """Under bubblewrap without a user namespace the worker starts as root: it becomes the
    sandbox's uid before it reads anything, and never runs student code otherwise."""
    uid = os.environ.pop("DLGRADE_DROP_UID", "")
    if not uid:
        return
    if not uid.isdigit():
        os._exit(121)
    if os.getuid() == 0:
        os.setgroups([])
        os.setgid(int(uid))
        os.setuid(int(uid))
    if os.getuid() != int(uid) or os.geteuid() != int(uid):
        os._exit(121)


CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x20000, 0x10000000, 0x20000000, 0x40000000
MS_NOSUID, MS_NODEV, MS_REC, MS_PRIVATE = 2, 4, 0x4000, 0x40000


def _own_namespaces() -> str:
    """Process-only isolation, where the kernel lets an ordinary user: new user, PID and
    network namespaces, entered by a fork, so the worker is PID 1 of its own. Nothing it
    starts can address the scorer by PID, and all of it dies with the worker. The uid maps
    to itself. Returns what was made, or "" (then nothing changed)."""
    import ctypes

    uid, gid = os.getuid(), os.getgid()
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWNS) != 0:
        return ""
    try:
        for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"), ("gid_map", f"{gid} {gid} 1")):
            with open(f"/proc/self/{name}", "w") as f:
                f.write(text)
    except OSError:
        os._exit(123)
    # Its own /dev/shm, gone with it: what it writes there cannot outlive the grade.
    made = "user,pid,net"
    if libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None) == 0 and \
            libc.mount(b"tmpfs", b"/dev/shm", b"tmpfs", MS_NOSUID | MS_NODEV, b"size=256m") == 0:
        made += ",shm"
    child = os.fork()
    if child == 0:
        os.setsid()  # not even a group signal reaches the first process
        return made
    # The first process stays outside only to pass the exit status on; it lets go of the
    # channel and the output, so the scorer sees the worker's end when the worker ends.
    for fd in range(3, 1024):
        try:
            os.close(fd)
        except OSError:
            pass
    os.closerange(0, 3)
    _, status = os.waitpid(child, 0)
    if os.WIFSIGNALED(status):
        os.kill(os.getpid(), os.WTERMSIG(status))
    os._exit(os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 1)


def serve(handlers: dict, hello: dict, before_each=lambda: None, notes=lambda: []) -> None:
    """Answer requests until the scorer closes the channel. `handlers` maps an op to a
    function of the request's arguments; one that raises becomes an error reply."""
    request_fd, reply_fd = channel()
    _write(reply_fd, _encode({"id": 0, "ok": True, "result": hello}))
    for line in _read_lines(request_fd):
        from grader import protocol

        try:
            request = protocol.decode(line)
        except ValueError:  # something other than the scorer wrote to the request pipe
            _channel_broken()
        before_each()
        _reset_peak()
        t0 = time.time()
        try:
            result = handlers[request["op"]](**request.get("args", {}))
            reply = {"id": request["id"], "ok": True, "result": result}
        except BaseException as exc:  # the process itself must keep answering
            from .failures import describe

            reply = {"id": request["id"], "ok": False, "error": describe(exc, request.get("op", "?"))}
        reply["notes"] = list(notes())
        reply["seconds"] = round(time.time() - t0, 3)
        reply["peak_mb"] = round(_peak_mb(), 1)
        sys.stdout.flush()
        sys.stderr.flush()
        _write(reply_fd, _encode(reply))


def _encode(message: dict) -> bytes:
    from grader import protocol

    return protocol.encode(message)


def prepare() -> str:
    """The first steps of every sandboxed process, before it reads anything: drop root,
    make namespaces where asked, never go on as root. Returns the namespaces made."""
    _drop_privileges()
    namespaces = _own_namespaces() if os.environ.pop("DLGRADE_NAMESPACES", "") == "1" else ""
    if sys.argv[1:] == ["--drop-check"]:  # the sandbox's probe: who the process would be
        print(os.getuid())
        sys.exit(0)
    if os.geteuid() == 0:
        os._exit(122)  # never student code as root, whatever started us
    # -I ignores PYTHONUNBUFFERED: without this, what the code printed before the watchdog
    # or a crash stopped it would die in the buffer, exactly when the student needs it.
    for stream in (sys.stdout, sys.stderr):
        stream.reconfigure(line_buffering=True, write_through=True)
    return namespaces


def channel() -> tuple[int, int]:
    request_fd, reply_fd = (int(x) for x in os.environ["DLGRADE_FDS"].split(","))
    os.set_inheritable(request_fd, False)  # programs the student starts do not get the channel
    os.set_inheritable(reply_fd, False)
    return request_fd, reply_fd
