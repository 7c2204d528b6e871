"""The server under Ray Serve, on a local Ray instance: two CPU replicas behind Ray's proxy."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

ray = pytest.importorskip("ray")
serve = pytest.importorskip("ray.serve")
httpx = pytest.importorskip("httpx")

from dream_agent.server import ServerConfig  # noqa: E402
from dream_agent.server.ray_app import deployment  # noqa: E402

from .server_fixtures import free_port  # noqa: E402


def test_requests_are_routed_across_replicas():
    port = free_port()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        serve.run(deployment(ServerConfig(model="countdown", device="cpu"), replicas=2, gpus_per_replica=0),
                  name="dream-agent", route_prefix="/")
        url = f"http://127.0.0.1:{port}"
        solved = httpx.post(f"{url}/v1/solve/countdown", json={"problem": "86,28,13,31,96"}, timeout=60).json()
        assert solved["valid"]
        assert httpx.post(f"{url}/v1/solve/nope", json={"problem": "1"}, timeout=30).status_code == 404
        pids, deadline = set(), time.monotonic() + 30
        with ThreadPoolExecutor(8) as pool:
            while len(pids) < 2 and time.monotonic() < deadline:
                pids |= {r.json()["pid"] for r in pool.map(lambda _: httpx.get(f"{url}/health", timeout=30), range(16))}
        assert len(pids) == 2  # both replicas answered
    finally:
        serve.shutdown()
        ray.shutdown()
