"""What isolation costs, per mode this machine can run, and what refusing a hostile archive costs.

For each mode: seconds of a whole grade of one cheap check (alexnet.construct.nc4 of the
plain submission, so mostly the worker's start and torch's import), median of --repeat
runs. Then the peak memory of staging a zip of a million folder entries, which is refused
before zipfile reads its directory, in a fresh process.

    python benchmarks/isolation_bench.py [--repeat 3]
"""
from __future__ import annotations

import argparse
import os
import resource
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PLAIN = REPO / "tests" / "submissions" / "hw4_plain"


def grade_seconds(isolation: str, way: str, repeat: int) -> tuple[float, str] | None:
    env = {**os.environ, "DLGRADE_BWRAP_WAY": way}
    times, label = [], ""
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as out:
            started = time.monotonic()
            done = subprocess.run([sys.executable, "-m", "grader.cli", str(PLAIN), "--assignment", "cs1678-hw4",
                                   "--out", out, "--only", "alexnet.construct.nc4", "--device", "cpu",
                                   "--isolation", isolation], capture_output=True, text=True, env=env)
            if done.returncode != 0:
                return None
            times.append(time.monotonic() - started)
            import json

            label = json.loads(Path(out, "results.json").read_text())["extra_data"]["environment"]["isolation"]
    return statistics.median(times), label


def million_entry_zip(path: Path, entries: int = 1_000_000) -> None:
    """Folder entries only, zip64 end records, written by hand (zipfile would hold them all)."""
    central = bytearray()
    with open(path, "wb") as f:
        for i in range(entries):
            name = f"d{i}/".encode()
            offset = f.tell()
            f.write(struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 0, 0, 0, zlib.crc32(b""), 0, 0, len(name), 0) + name)
            central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 0, 0, 0, 0, 0, 0, len(name), 0, 0, 0,
                                   0, 0o40755 << 16, offset) + name
        start = f.tell()
        f.write(central)
        end = f.tell()
        f.write(struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, entries, entries, end - start, start))
        f.write(struct.pack("<IIQI", 0x07064B50, 0, end, 1))
        f.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0))


def refusal_peak_mb(archive: Path) -> tuple[float, float, str]:
    code = ("import resource, sys, time, tempfile; from pathlib import Path; from grader import intake\n"
            "from grader.errors import InputError\n"
            "t = time.monotonic()\n"
            "try:\n    intake.stage(Path(sys.argv[1]), Path(tempfile.mkdtemp()) / 's'); print('STAGED')\n"
            "except InputError as e:\n    print('REFUSED', str(e)[:90])\n"
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, time.monotonic() - t)\n")
    done = subprocess.run([sys.executable, "-c", code, str(archive)], capture_output=True, text=True)
    verdict, figures = done.stdout.strip().splitlines()[-2:]
    peak, seconds = map(float, figures.split())
    return peak, seconds, verdict


def baseline_mb() -> float:
    """Peak RSS of a fresh process that only imports the intake, for comparison."""
    done = subprocess.run([sys.executable, "-c", "import resource; from grader import intake; "
                           "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)"],
                          capture_output=True, text=True)
    return float(done.stdout.strip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    modes = [("bwrap", ""), ("bwrap", "userns"), ("user", ""), ("process", "")]
    print(f"{'mode':<26}{'grade (s)':>10}  label")
    for isolation, way in modes:
        found = grade_seconds(isolation, way, args.repeat)
        name = isolation + (f" ({way})" if way else "")
        print(f"{name:<26}{found[0]:>10.2f}  {found[1]}" if found else f"{name:<26}{'refused':>10}  (not on this machine)")
    with tempfile.TemporaryDirectory() as folder:
        archive = Path(folder) / "million.zip"
        million_entry_zip(archive)
        peak, seconds, verdict = refusal_peak_mb(archive)
        size = archive.stat().st_size / 1e6
    print(f"\n1,000,000-entry zip ({size:.0f} MB): {verdict}")
    print(f"  peak RSS of the staging process {peak:.1f} MB, {seconds * 1000:.1f} ms "
          f"(the same process importing the intake only: {baseline_mb():.1f} MB)")


if __name__ == "__main__":
    main()
