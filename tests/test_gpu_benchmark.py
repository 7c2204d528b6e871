"""benchmarks/gpu.py runs end to end on the CPU with a tiny config (the GPU run uses Dream 7B's shape)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu.py"


def test_gpu_benchmark_runs_with_a_tiny_config():
    done = subprocess.run([sys.executable, str(SCRIPT), "--scale", "tiny", "--device", "cpu", "--dtype", "float32",
                           "--tokens", "32", "--batch-sizes", "1", "2", "--problems", "2", "--json"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    generate = [r for r in rows if r["what"] == "generate"]
    assert {(r["batch"], r["cache"]) for r in generate} == {(b, c) for b in (1, 2) for c in (None, "prefix", "dual")}
    assert all(r["tokens_per_s"] > 0 and 1 <= r["nfe"] <= 32 for r in generate)
    countdown = [r for r in rows if r["what"] == "countdown"]
    assert [r["batch"] for r in countdown] == [1, 2] and countdown[0]["nfe"] == countdown[1]["nfe"]  # batching changes no result
    assert rows[-1]["what"] == "model" and rows[-1]["parameters"] > 0
