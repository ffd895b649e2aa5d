"""Time `naftiko validate` on the whole corpus in one call (issue 12's target: under 1.0 s).

Runs the CLI as a user would (a fresh process, imports included), a few times, interleaved with a
baseline revision when one is given (`--baseline REV`: a git worktree under bench/results/, as
bench.py makes), and prints each wall time, the CPU time of the best run, and the ratio. The
machine is shared: the ratio to the baseline measured in the same run is what counts. Not a test.

    python bench/validate_corpus.py [--runs 5] [--strict] [--baseline REV] [PATH...]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from bench import baseline_tree  # noqa: E402 - bench/ is not a package

TARGET_S = 1.0


def _run(source: Path, args: list[str]) -> tuple[float, float, str]:
    """(wall seconds, CPU seconds, summary line) of one `naftiko validate` from `source`."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "naftiko_runtime", "validate", *args], capture_output=True, text=True,
                          cwd=source, env={**os.environ, "PYTHONPATH": str(source)})
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    lines = done.stdout.strip().splitlines()
    return wall, cpu, lines[-1] if lines else done.stderr.strip()[-200:]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", default=[str(ROOT / "tests" / "corpus")])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--strict", action="store_true")
    parser.add_argument("--baseline", default="", metavar="REV", help="also time this git revision, interleaved")
    args = parser.parse_args()
    argv = ["--quiet", *(str(Path(p).resolve()) for p in args.paths)] + (["--strict"] if args.strict else [])
    variants = {"this tree": ROOT}
    if args.baseline:
        variants[f"naftiko@{args.baseline}"] = baseline_tree(args.baseline)
    runs: dict[str, list[tuple[float, float, str]]] = {name: [] for name in variants}
    for _ in range(args.runs):
        for name, source in variants.items():
            runs[name].append(_run(source, argv))
    print(f"naftiko validate {' '.join(argv)}")
    best = {}
    for name, results in runs.items():
        wall, cpu, summary = min(results)
        best[name] = wall
        print(f"  {name:<24} best {wall:.2f} s wall, {cpu:.2f} s CPU   runs: {', '.join(f'{r[0]:.2f}' for r in results)}   [{summary}]")
    if args.baseline:
        base = best[f"naftiko@{args.baseline}"]
        print(f"  ratio: {best['this tree'] / base:.2f}x the baseline's time")
    print(f"  target: under {TARGET_S:.1f} s -> {'met' if best['this tree'] < TARGET_S else 'NOT met'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
