"""The sandboxed worker: imports torch and the student's code, answers probe requests.

Started by grader.sandbox with the request and reply pipe descriptors in DLGRADE_FDS and
its own stdout/stderr already pointing at a log file, so whatever the student prints
never mixes with the replies.
"""
from __future__ import annotations

import os
import resource
import sys
import time


def _read_lines(fd: int):
    buffer = b""
    while True:
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            return
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            yield line


def _write(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


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


def main() -> None:
    request_fd, reply_fd = (int(x) for x in os.environ["DLGRADE_FDS"].split(","))
    os.set_inheritable(request_fd, False)  # programs the student starts do not get the channel
    os.set_inheritable(reply_fd, False)
    from grader import protocol

    started = time.time()
    import torch

    threads = int(os.environ.get("DLGRADE_THREADS", "0"))
    if threads > 0:
        torch.set_num_threads(threads)
    from . import activations, compat, functions, loader, picking, probes, progress, recurrent, writer

    compat.release_gpu_libraries()
    progress.configure(reply_fd)

    handlers = {"load": loader.load, "trace": probes.trace, "behaviour": probes.behaviour, "kernels": probes.kernels,
                "cell": recurrent.cell, "memory": recurrent.memory, "sentiment": recurrent.sentiment,
                "generation": recurrent.generation, "writer": writer.writer, "candidates": picking.candidates,
                "alias": picking.alias, "activation": functions.activation, "penalty": functions.penalty,
                "activations": activations.activations}
    hello = {"id": 0, "ok": True, "result": {
        "python": sys.version.split()[0], "torch": torch.__version__,
        "cuda": torch.cuda.is_available(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "threads": torch.get_num_threads(), "startup_seconds": round(time.time() - started, 2)}}
    _write(reply_fd, protocol.encode(hello))
    for line in _read_lines(request_fd):
        request = protocol.decode(line)
        compat.release_gpu_libraries()  # again: the student's imports may have touched more
        _reset_peak()
        t0 = time.time()
        try:
            result = handlers[request["op"]](**request.get("args", {}))
            reply = {"id": request["id"], "ok": True, "result": result}
        except BaseException as exc:  # the worker itself must keep answering
            from .failures import describe

            reply = {"id": request["id"], "ok": False, "error": describe(exc, request.get("op", "?"))}
        reply["notes"] = list(compat.HAZARDS.notes)  # workarounds so far, e.g. CUDA sent to the CPU
        reply["seconds"] = round(time.time() - t0, 3)
        reply["peak_mb"] = round(_peak_mb(), 1)
        sys.stdout.flush()
        sys.stderr.flush()
        _write(reply_fd, protocol.encode(reply))


if __name__ == "__main__":
    main()
