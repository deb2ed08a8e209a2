"""The verifier's process: started by the scorer in a sandbox of its own, it imports torch
and grader.verifier only, and answers `verify` requests for artefacts copied into its
run folder by the scorer."""
from __future__ import annotations

import os
import sys
import time

from grader.worker import progress
from grader.worker.serving import channel, prepare, serve


def main() -> None:
    namespaces = prepare()
    started = time.time()
    import torch

    threads = int(os.environ.get("DLGRADE_THREADS", "0"))
    if threads > 0:
        torch.set_num_threads(threads)
    from grader import kinds

    from . import measure

    progress.configure(channel()[1])  # the memory task says how far it got
    measure.warm_up()

    hello = {"python": sys.version.split()[0], "torch": torch.__version__, "threads": torch.get_num_threads(),
             "startup_seconds": round(time.time() - started, 2), "namespaces": namespaces}
    serve({"verify": measure.verify, **kinds.verifier_handlers()}, hello)


if __name__ == "__main__":
    main()
