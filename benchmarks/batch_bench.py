"""Time and memory of `grade batch` on a generated cs1678-hw4 class.

    python benchmarks/batch_bench.py --count 100 --jobs 1 --jobs 2 --dask

Generates COUNT submissions from tests/submissions/hw4_plain (correct ones, broken ones and
hostile ones, in fixed shares), grades them with each --jobs value on the local engine and,
with --dask, on a LocalCluster of the largest --jobs workers. Prints wall time, submissions
per minute, peak memory (the batch and everything it started, sampled every 0.2 s), the
scaling from the first --jobs value to the others, and the status counts. --checks narrows
the grade as `grade --only` does, for a quick look; the figures in the README grade everything.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import threading
import time
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from grader.batch import BatchOptions, grade_class  # noqa: E402

PLAIN = (REPO / "tests" / "submissions" / "hw4_plain" / "cnn_trainer.py").read_text()

# (share of the class, what it is, how to make it from the plain submission)
BROKEN = [
    ("wrong CONV2 width", [("nn.Conv2d(96, 256, kernel_size=5, padding=2),  # CONV2",
                            "nn.Conv2d(96, 192, kernel_size=5, padding=2),  # CONV2")]),
    ("no POOL1", [("nn.MaxPool2d(kernel_size=3, stride=2),  # POOL1", "")]),
    ("no dropout", [("nn.Dropout(p=0.5),  # DROP1", "")]),
    ("syntax error", [("class AlexNet(nn.Module):", "class AlexNet(nn.Module)")]),
    ("wrong FC1 input", [("nn.Linear(256 * 6 * 6, 4096),  # FC1", "nn.Linear(256 * 5 * 5, 4096),  # FC1")]),
]
HOSTILE = [
    ("sleeps at import", "import time\ntime.sleep(100000)\n"),
    ("allocates 6 GB at import", "import numpy\n_hog = numpy.ones((6 * 1024, 1024, 1024), dtype=numpy.uint8)\n"),
    ("forks at import", "import os, time\nfor _ in range(64):\n    if os.fork() == 0:\n        time.sleep(600)\n        os._exit(0)\n"),
    ("writes outside its folder", "open('/tmp/dlgrade-bench-escape', 'w').write('x')\n"),
]


def make_class(root: Path, count: int) -> dict[str, str]:
    """count submissions: 70% correct (as folders and zips), 20% broken, 10% hostile."""
    kinds: dict[str, str] = {}
    for i in range(count):
        key = f"student{i:03d}"
        share = i % 10
        if share < 7:
            source, kind = PLAIN.replace("# A correct submission", f"# Student {i}: a correct submission"), "correct"
        elif share < 9:
            kind, replacements = BROKEN[(i // 10 + share) % len(BROKEN)]
            source = PLAIN
            for old, new in replacements:
                source = source.replace(old, new)
        else:
            kind, prefix = HOSTILE[(i // 10) % len(HOSTILE)]
            source = prefix + PLAIN
        kinds[key] = kind
        if i % 3 == 0:
            with zipfile.ZipFile(root / f"{key}.zip", "w") as zf:
                zf.writestr("hw4/cnn_trainer.py", source)
        else:
            (root / key).mkdir()
            (root / key / "cnn_trainer.py").write_text(source)
    return kinds


class PeakMemory:
    """Resident memory of this process and every process under it, at its peak."""

    def __init__(self) -> None:
        self.peak_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        import psutil

        me = psutil.Process()
        while not self._stop.wait(0.2):
            total = 0
            for proc in [me, *me.children(recursive=True)]:
                try:
                    total += proc.memory_info().rss
                except psutil.Error:
                    pass
            self.peak_mb = max(self.peak_mb, total / 2**20)


def run(source: Path, out: Path, options: BatchOptions, label: str, log=None) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    started = time.monotonic()
    with PeakMemory() as memory:
        result = grade_class(source, "cs1678-hw4", out, options, log=log or (lambda _: None))
    wall = time.monotonic() - started
    statuses: dict[str, int] = {}
    for row in result.rows:
        statuses[row.status] = statuses.get(row.status, 0) + 1
    figures = {"run": label, "wall_s": round(wall, 1), "per_minute": round(60 * len(result.rows) / wall, 1),
               "peak_mb": round(memory.peak_mb), "statuses": statuses,
               "mean_grade_s": round(sum(r.seconds for r in result.rows) / max(1, len(result.rows)), 1)}
    print(f"  {label:<22} {figures['wall_s']:>8.1f} s  {figures['per_minute']:>6.1f}/min  "
          f"peak {figures['peak_mb']:>6,} MB  mean grade {figures['mean_grade_s']:.1f} s  {statuses}", flush=True)
    return figures


def _logger(path: Path):
    def log(line: str) -> None:
        with open(path, "a") as f:
            f.write(f"{time.strftime('%H:%M:%S')} {line}\n")
    return log


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--jobs", type=int, action="append", default=[], help="local engine runs (repeatable)")
    parser.add_argument("--dask", action="store_true", help="also run on a LocalCluster of max(--jobs) workers")
    parser.add_argument("--checks", action="append", default=[], help="check-id patterns, as grade --only")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--log", type=Path, default=None, help="append the batch's line per submission here")
    args = parser.parse_args()
    log = _logger(args.log) if args.log else None
    jobs = args.jobs or [2]
    work = Path(tempfile.mkdtemp(prefix="dlgrade-batch-bench-"))
    try:
        source = work / "class"
        source.mkdir()
        kinds = make_class(source, args.count)
        mix = {k: list(kinds.values()).count(k) for k in dict.fromkeys(kinds.values())}
        print(f"dlgrade batch benchmark: {args.count} generated cs1678-hw4 submissions ({os.cpu_count()} CPUs)")
        print(f"  mix: {mix}")
        runs = []
        for n in jobs:
            runs.append(run(source, work / f"out-local-{n}", BatchOptions(jobs=n, checks=tuple(args.checks),
                                                                           device="cpu", progress=False),
                            f"local, {n} job(s)", log))
        if args.dask:
            runs.append(run(source, work / "out-dask", BatchOptions(engine="dask", jobs=max(jobs), checks=tuple(args.checks),
                                                                     device="cpu", progress=False),
                            f"dask LocalCluster, {max(jobs)}", log))
        first = runs[0]
        for other in runs[1:]:
            print(f"  speed-up of {other['run']} over {first['run']}: {first['wall_s'] / other['wall_s']:.2f}x")
        if args.json:
            args.json.write_text(json.dumps({"count": args.count, "mix": mix, "runs": runs}, indent=1))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
