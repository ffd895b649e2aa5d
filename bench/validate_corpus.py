"""Time `naftiko validate` on the whole corpus in one call (the issue's target: under 2 s).

Runs the installed CLI as a user would (a fresh process, imports included), a few times, and
prints each wall time and the best. Not a test: timings depend on the machine.

    python bench/validate_corpus.py [--runs 5] [--strict] [PATH...]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", default=[str(ROOT / "tests" / "corpus")])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--strict", action="store_true")
    args = parser.parse_args()
    exe = shutil.which("naftiko")
    command = [exe] if exe else [sys.executable, "-m", "naftiko_runtime"]
    command += ["validate", "--quiet", *args.paths] + (["--strict"] if args.strict else [])
    times = []
    summary = ""
    for _ in range(args.runs):
        start = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
        times.append(time.perf_counter() - start)
        summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr.strip()
    print(f"naftiko validate {'--strict ' if args.strict else ''}{' '.join(args.paths)}")
    print(f"  {summary}")
    print("  runs: " + ", ".join(f"{t:.2f} s" for t in times))
    print(f"  best: {min(times):.2f} s (target: under 2 s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
