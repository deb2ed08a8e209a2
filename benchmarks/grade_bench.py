"""Time and memory of grading one submission: the whole grade and each check.

    python benchmarks/grade_bench.py --assignment cs1678-hw4 --submission reference/cs1678_hw4

Prints wall time and peak memory for the whole grade (the sandboxed worker's process tree,
sampled every 0.1 s, plus the scoring process), then per sandbox probe with the checks
that use it. Writes the figures as JSON with --json.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from grader import api  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--assignment", default="cs1678-hw4")
    parser.add_argument("--submission", default="reference/cs1678_hw4")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--repeat", type=int, default=1, help="grade this many times; report each and the best")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument("--labels", type=Path, action="append", default=[], help="held-out labels (as grade --labels)")
    parser.add_argument("--data", type=Path, default=None, help="course data folder (as grade --data)")
    parser.add_argument("--only", action="append", default=[], help="check-id patterns (as grade --only)")
    parser.add_argument("--self-check", action="store_true", help="only the checks students see (as grade --self-check)")
    args = parser.parse_args()

    runs = []
    for _ in range(args.repeat):
        started = time.monotonic()
        report = api.grade(args.submission, args.assignment,
                           api.Options(device=args.device, labels=tuple(args.labels), data=args.data, only=tuple(args.only),
                                       self_check=args.self_check))
        wall = time.monotonic() - started
        runs.append({"wall_s": round(wall, 2), "score": report.score, "max_score": report.max_score,
                     "worker_tree_peak_mb": report.timings.get("peak_tree_mb", 0.0),
                     "verifier_peak_mb": report.timings.get("verifier_peak_mb", 0.0),
                     "scorer_peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                     "timings": report.timings, "environment": report.environment})
    best = min(runs, key=lambda r: r["wall_s"])
    timings = best["timings"]
    print(f"dlgrade benchmark: {args.assignment} on {args.submission}  ({os.cpu_count()} CPUs, "
          f"{best['environment'].get('device', '?')})")
    for i, run in enumerate(runs, 1):
        print(f"  run {i}: {run['wall_s']:.1f} s wall, score {run['score']:g} / {run['max_score']:g}, "
              f"worker peak {run['worker_tree_peak_mb']:,.0f} MB, scorer peak {run['scorer_peak_mb']:,.0f} MB")
    peak = best['worker_tree_peak_mb'] + best['verifier_peak_mb'] + best['scorer_peak_mb']
    print(f"whole grade: {best['wall_s']:.1f} s wall; peak memory at most {peak:,.0f} MB "
          f"(worker tree {best['worker_tree_peak_mb']:,.0f} + verifier {best['verifier_peak_mb']:,.0f} "
          f"+ scorer {best['scorer_peak_mb']:,.0f}, each at its own peak)")
    print(f"models measured by the verifier: {timings.get('models_exported', 0)}; "
          f"inside the submission's process: {timings.get('models_inside', 0)}")
    print(f"{'probe':<38} {'seconds':>8} {'peak MB':>9}  checks")
    by_probe: dict[str, list[str]] = {}
    for check_id, probe in timings.get("checks", {}).items():
        by_probe.setdefault(probe, []).append(check_id)
    load = timings.get("load", {})
    print(f"{'start worker + import submission':<38} {load.get('seconds', 0):>8.2f} {load.get('peak_mb', 0):>9,.0f}")
    for probe, figures in timings.items():
        if probe in ("load", "checks", "peak_tree_mb", "verifier_peak_mb", "models_exported", "models_inside"):
            continue
        ids = by_probe.get(probe, [])
        kinds = sorted({i.split(".")[1] if i.count(".") >= 2 else i.split(".")[-1] for i in ids})
        print(f"{probe:<38} {figures['seconds']:>8.2f} {figures['peak_mb']:>9,.0f}  {len(ids)} checks ({', '.join(kinds)})")
    if args.json:
        args.json.write_text(json.dumps(runs, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
