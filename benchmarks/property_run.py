"""The long run of the property-based suite (tests/test_properties.py): 100,000 examples a target.

    python benchmarks/property_run.py                 # profile "long" (tests/conftest.py)
    python benchmarks/property_run.py --examples 5000 # a shorter run

Runs pytest on one core with Hypothesis' statistics on and prints, per target, the examples
it ran and whether anything escaped (a parser raising other than DreamAgentError, a validator
raising at all). CI runs the same tests with the "ci" profile's bounded example count.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=None, help="examples a target (default: the long profile's 100,000)")
    parser.add_argument("-k", default=None, help="only targets matching this pytest -k expression")
    args = parser.parse_args()

    env = {**os.environ, "HYPOTHESIS_PROFILE": "long", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    if args.examples:
        env["HYPOTHESIS_MAX_EXAMPLES"] = str(args.examples)
    base = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    collect = subprocess.run(base + ["--collect-only", str(ROOT / "tests" / "test_properties.py")]
                             + (["-k", args.k] if args.k else []), cwd=ROOT, env=env, capture_output=True, text=True)
    targets = [line for line in collect.stdout.splitlines() if "::" in line]
    failed = 0
    start = time.perf_counter()
    for target in targets:  # one pytest a target: each result prints as soon as it is known
        t0 = time.perf_counter()
        run = subprocess.run(base + ["--hypothesis-show-statistics", target], cwd=ROOT, env=env, capture_output=True, text=True)
        out = run.stdout + run.stderr
        passing = sum(int(n) for n in re.findall(r"(\d+) passing examples?", out))
        failing = sum(int(n) for n in re.findall(r"(\d+) failing examples?", out))
        verdict = "ok" if run.returncode == 0 else "ESCAPE"
        print(f"{target.split('::')[-1]:40s} {passing:>8,} passing {failing:>3} failing  {verdict}  "
              f"{(time.perf_counter() - t0) / 60:5.1f} min", flush=True)
        if run.returncode:
            failed += 1
            print(out[-3000:], file=sys.stderr, flush=True)
    print(f"{len(targets)} targets, {failed} with an escape, {(time.perf_counter() - start) / 60:.1f} min wall", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
