"""`dream-agent serve` as a process: started by one command, stopped cleanly by SIGTERM with a request
in flight (it finishes), nothing left running."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time

import pytest

pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

from .server_fixtures import DREAM_TINY, free_port  # noqa: E402


@pytest.mark.skipif(not DREAM_TINY.is_dir(), reason="../shared/data/dream_tiny is absent")
def test_sigterm_lets_the_request_in_flight_finish():
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", "from dream_agent.cli.main import run; run()", "serve",
                             "--model", str(DREAM_TINY), "--device", "cpu", "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, proc.stdout.read()
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.2)
        answer = {}
        body = {"model": "dream_tiny", "prompt": "Hi", "max_tokens": 32, "steps": 32, "block_length": 32}
        client = threading.Thread(target=lambda: answer.setdefault(
            "r", httpx.post(f"{url}/v1/completions", json=body, timeout=60)))
        client.start()
        while not httpx.get(f"{url}/health").json()["in_flight"]:
            time.sleep(0.02)
        proc.send_signal(signal.SIGTERM)
        client.join(60)
        assert answer["r"].status_code == 200 and answer["r"].json()["choices"][0]["text"] is not None
        # uvicorn re-raises the signal once shut down, so the exit status is the signal's, as for any process
        assert proc.wait(30) in (0, -signal.SIGTERM)
        assert "Application shutdown complete" in proc.stdout.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_model_that_cannot_load_fails_in_one_line(capsys):
    from dream_agent.cli.main import main

    assert main(["serve", "--model", "/nonexistent/model", "--port", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "/nonexistent/model" in err[0]
