"""Time `naftiko import openapi` on the full Vapi description (the issue's target: under 2 s).

Runs the CLI as a user would (a fresh process, imports included) a few times, next to two
baselines measured in the same run on the same file: a fresh Python that only reads the YAML
(libyaml, no positions), and one that only starts (`python -c pass`). Not a test: timings depend
on the machine; the ratios are what to compare across runs.

    python bench/import_openapi.py [--runs 5] [SPEC]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "tests" / "fixtures" / "vapi-sessions-openapi.yml"


def best(command: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
        times.append(time.perf_counter() - start)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr}")
    return min(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("spec", nargs="?", default=str(SPEC))
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = {
            "python -c pass": best([sys.executable, "-c", "pass"], args.runs),
            "yaml.load (libyaml, no positions)": best([sys.executable, "-c", f"import yaml; yaml.load(open({args.spec!r}), Loader=yaml.CSafeLoader)"], args.runs),
            "naftiko import openapi": best([sys.executable, "-m", "naftiko_runtime", "import", "openapi", args.spec, "-o", f"{tmp}/out.yaml"], args.runs),
        }
    base = rows["yaml.load (libyaml, no positions)"]
    print(f"{Path(args.spec).name} ({Path(args.spec).stat().st_size / 1024:.0f} KB), best of {args.runs} fresh processes:")
    for name, seconds in rows.items():
        print(f"  {name:<36} {seconds:5.2f} s  ({seconds / base:.2f}x the YAML read)")
    print("  target: naftiko import openapi under 2 s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
