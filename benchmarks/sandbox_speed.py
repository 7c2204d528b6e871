"""Sandbox throughput on HumanEval-sized programs, and what a `pass` fill that passes really is.

    python benchmarks/sandbox_speed.py --data ../shared/data/code/HumanEval-SingleLineInfilling.jsonl.gz --rows 300
    python benchmarks/sandbox_speed.py --data ... --null-crosscheck   # rows whose `pass` fill passes, re-run outside

Speed: each row's reference program with its `check(candidate)` test, run through the fork
server with 1 and with 2 sandboxes in parallel threads; candidate checks a second.
Null cross-check: for every row whose `pass` fill passes in the sandbox, the same program
runs in a plain `python` subprocess; if it passes there too, the line is redundant for the
row's tests (a property of the data), not a false pass of the sandbox.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dream_agent.sandbox import Sandbox  # noqa: E402
from planners.code import CodePlanner  # noqa: E402


def speed(jobs, workers: int) -> tuple[float, int]:
    boxes = [Sandbox().start() for _ in range(workers)]
    try:
        start = time.perf_counter()
        with ThreadPoolExecutor(workers) as pool:
            passed = sum(pool.map(lambda ij: boxes[ij[0] % workers].run(*ij[1]).passed, enumerate(jobs)))
        return len(jobs) / (time.perf_counter() - start), passed
    finally:
        for b in boxes:
            b.close()


def plain_python_passes(program: str, test: str) -> bool:
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "prog.py")
        Path(path).write_text(program + "\n\n" + test + "\n")
        try:
            return subprocess.run([sys.executable, "-I", path], cwd=d, capture_output=True, timeout=10).returncode == 0
        except subprocess.TimeoutExpired:
            return False


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--rows", type=int, default=300)
    ap.add_argument("--null-crosscheck", action="store_true")
    args = ap.parse_args()
    planner = CodePlanner()
    examples = planner.load_dataset(args.data)
    out: dict = {"data": args.data, "isolation": Sandbox().isolation.to_dict()}
    if args.null_crosscheck:
        from dream_agent.references import check_references

        report = check_references(planner, examples, workers=2)
        redundant, false_pass = [], []
        for i in report.null_passes:
            ex = examples[i]
            null = planner.null_solution(ex.problem, ex.solution)
            (redundant if plain_python_passes(null, ex.problem.tests[0].source) else false_pass).append(ex.problem.name)
        out.update(rows=len(examples), references_passed=report.passed, null_passes=len(report.null_passes),
                   null_passes_also_outside=len(redundant), sandbox_false_passes=false_pass, examples=redundant[:8])
    else:
        jobs = [(ex.solution, [(t.name, t.source) for t in ex.problem.tests]) for ex in examples[: args.rows]]
        Sandbox().start().run(*jobs[0])  # warm the probe
        for workers in (1, 2):
            rate, passed = speed(jobs, workers)
            out[f"checks_per_second_{workers}"] = round(rate, 1)
            out[f"passed_{workers}"] = f"{passed}/{len(jobs)}"
    print(json.dumps(out))


if __name__ == "__main__":
    main()
