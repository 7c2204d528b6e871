"""Check a dataset's reference solutions with a planner's own validators (`eval --check-references`).

    report = check_references(planner, examples, workers=2)
    report.passed == report.rows and not report.null_passes

Every reference must pass. Where the planner can make a do-nothing answer from a reference
(`null_solution`, e.g. the code planner's `pass` fill), that answer must fail: a validator
that accepts it would report false passes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
import threading
import time


@dataclass
class ReferenceReport:
    rows: int = 0
    passed: int = 0
    failed: list[tuple[int, str]] = field(default_factory=list)  # (row, first violation)
    null_checked: int = 0
    null_passes: list[int] = field(default_factory=list)  # rows whose do-nothing answer passed: false passes
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return {"rows": self.rows, "references_passed": self.passed, "references_failed": len(self.failed),
                "null_checked": self.null_checked, "null_false_passes": len(self.null_passes),
                "seconds": round(self.seconds, 2), "first_failures": self.failed[:5], "null_pass_rows": self.null_passes[:20]}


def check_references(planner, examples: Sequence, *, workers: int = 1,
                     on_row: Callable[[int, bool], None] | None = None) -> ReferenceReport:
    """Validate each example's solution (and its null answer) with `planner.check`; `workers`
    threads each use a planner of their own (for the code planner: a sandbox of its own)."""
    report = ReferenceReport(rows=len(examples))
    local = threading.local()
    lock = threading.Lock()

    def planner_here():
        if workers == 1:
            return planner
        if not hasattr(local, "planner"):
            local.planner = type(planner)()
        return local.planner

    def one(i: int):
        p = planner_here()
        ex = examples[i]
        bad = p.check(ex.problem, ex.solution) if ex.solution is not None else []
        null = getattr(p, "null_solution", None)
        null_text = null(ex.problem, ex.solution) if null is not None and ex.solution is not None else None
        null_passed = null_text is not None and not p.check(ex.problem, null_text)
        with lock:
            if ex.solution is None or not bad:
                report.passed += 1
            else:
                report.failed.append((i, bad[0].message))
            if null_text is not None:
                report.null_checked += 1
                if null_passed:
                    report.null_passes.append(i)
            if on_row is not None:
                on_row(i, not bad)

    start = time.perf_counter()
    if workers == 1:
        for i in range(len(examples)):
            one(i)
    else:
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(one, range(len(examples))))
    report.failed.sort()
    report.null_passes.sort()
    report.seconds = time.perf_counter() - start
    return report
