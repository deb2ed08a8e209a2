"""The sandboxed worker: imports torch and the student's code, answers probe requests.

Started by grader.sandbox with the request and reply pipe descriptors in DLGRADE_FDS and
its own stdout/stderr going to a pipe, so whatever the student prints never mixes with
the replies. What it measures is believed only where the scorer cannot check better:
models leave it as artefacts (grader.worker.export) that grader.verifier measures.
"""
from __future__ import annotations

import os
import sys
import time

from .serving import channel, prepare, serve


def main() -> None:
    namespaces = prepare()
    started = time.time()
    import torch

    threads = int(os.environ.get("DLGRADE_THREADS", "0"))
    if threads > 0:
        torch.set_num_threads(threads)
    from grader import kinds

    from . import compat, export, loader, picking, probes, progress

    compat.release_gpu_libraries()
    progress.configure(channel()[1])

    handlers = {"load": loader.load, "trace": probes.trace, "behaviour": probes.behaviour,
                "export": export.export,
                "candidates": picking.candidates, "alias": picking.alias,
                **kinds.worker_handlers()}
    hello = {"python": sys.version.split()[0], "torch": torch.__version__, "cuda": torch.cuda.is_available(),
             "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
             "threads": torch.get_num_threads(), "startup_seconds": round(time.time() - started, 2),
             "namespaces": namespaces}
    # Again before each request: the student's imports may have touched more GPU libraries.
    serve(handlers, hello, before_each=compat.release_gpu_libraries, notes=lambda: compat.HAZARDS.notes)


if __name__ == "__main__":
    main()
