"""`dream-agent serve`: the real server on loopback, called by the real openai and LangChain clients."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

from dream_agent.cli.main import main  # noqa: E402
from dream_agent.server import ServerConfig  # noqa: E402

from .server_fixtures import DREAM_TINY, metric, serving  # noqa: E402

pytestmark = pytest.mark.skipif(not DREAM_TINY.is_dir(), reason="../shared/data/dream_tiny is absent")

COUNTDOWN = ["86,28,13,31,96", "3,7,25,50,75", "10,2,4,8,30"]


@pytest.fixture(scope="module")
def url():
    with serving(ServerConfig(model=str(DREAM_TINY), device="cpu", max_batch=16)) as base:
        yield base


def test_models_health_and_planners(url):
    from openai import OpenAI

    client = OpenAI(base_url=f"{url}/v1", api_key="none")
    ids = [m.id for m in client.models.list()]
    assert ids[0] == "dream_tiny" and "countdown" in ids and "sudoku" in ids
    assert httpx.get(f"{url}/health").json()["status"] == "ok"
    names = [p["name"] for p in httpx.get(f"{url}/v1/planners").json()["data"]]
    assert {"countdown", "sudoku", "code"} <= set(names)


def test_openai_client_completion_and_chat_stream_matches_whole(url):
    from openai import OpenAI

    client = OpenAI(base_url=f"{url}/v1", api_key="none")
    done = client.completions.create(model="dream_tiny", prompt="Once upon a time", max_tokens=8, temperature=0)
    assert done.choices[0].finish_reason in ("stop", "length") and done.usage.completion_tokens <= 8
    streamed = client.completions.create(model="dream_tiny", prompt="Once upon a time", max_tokens=8, temperature=0,
                                         stream=True, stream_options={"include_usage": True})
    chunks = list(streamed)
    assert "".join(c.choices[0].text for c in chunks if c.choices) == done.choices[0].text
    assert chunks[-1].usage.completion_tokens == done.usage.completion_tokens
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Name a prime."}]
    whole = client.chat.completions.create(model="dream_tiny", messages=messages, max_tokens=12, temperature=0,
                                           extra_body={"block_length": 4})
    text = whole.choices[0].message.content
    assert whole.choices[0].message.role == "assistant" and isinstance(text, str)
    chunks = list(client.chat.completions.create(model="dream_tiny", messages=messages, max_tokens=12, temperature=0,
                                                 stream=True, extra_body={"block_length": 4}))
    pieces = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert "".join(pieces) == text  # the stream is the same answer, sent block by block
    assert len(pieces) >= 2 or whole.choices[0].finish_reason == "stop"
    assert chunks[-1].choices[0].finish_reason == whole.choices[0].finish_reason


def test_langchain_chat_openai(url):
    from langchain_openai import ChatOpenAI

    chat = ChatOpenAI(base_url=f"{url}/v1", api_key="none", model="dream_tiny", max_tokens=8, temperature=0)
    reply = chat.invoke([("system", "Be brief."), ("human", "Hi")])
    streamed = "".join(chunk.content for chunk in chat.stream([("system", "Be brief."), ("human", "Hi")]))
    assert isinstance(reply.content, str) and streamed == reply.content


def test_solve_answers_what_solve_json_prints(url, capsys):
    body = httpx.post(f"{url}/v1/solve/countdown", json={"problem": COUNTDOWN[0]}, timeout=60).json()
    assert main(["solve", "countdown", COUNTDOWN[0], "--json"]) == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    for d in (body, printed):
        d["stats"].pop("seconds")
    assert body == printed and body["valid"]


def test_concurrent_solves_share_forward_passes_and_match_alone(url):
    alone = [httpx.post(f"{url}/v1/solve/countdown", json={"problem": p}, timeout=60).json() for p in COUNTDOWN]
    before_rows, before_passes = metric(url, "dream_agent_batch_rows_sum"), metric(url, "dream_agent_forward_passes_total")
    problems = COUNTDOWN * 3
    with ThreadPoolExecutor(len(problems)) as pool:
        together = list(pool.map(lambda p: httpx.post(f"{url}/v1/solve/countdown", json={"problem": p},
                                                      timeout=60).json(), problems))
    rows = metric(url, "dream_agent_batch_rows_sum") - before_rows
    passes = metric(url, "dream_agent_forward_passes_total") - before_passes
    assert rows / passes > 1.5  # requests arriving together joined the same passes
    for i, got in enumerate(together):
        assert got["solution"] == alone[i % 3]["solution"] and got["valid"] == alone[i % 3]["valid"]


def test_infill(url):
    body = httpx.post(f"{url}/v1/infill", json={"model": "countdown", "text": "86-28=[MASK:2]"}).json()
    assert body["text"].startswith("86-28=") and len(body["holes"]) == 1 and body["nfe"] >= 1, body


@pytest.mark.parametrize("path, payload, status, param", [
    ("/v1/completions", {"model": "dream_tiny", "prompt": "x", "max_tokens": 0}, 422, "max_tokens"),
    ("/v1/completions", {"prompt": "x"}, 422, "model"),
    ("/v1/chat/completions", {"model": "dream_tiny", "messages": []}, 422, "messages"),
    ("/v1/chat/completions", {"model": "dream_tiny", "messages": [{"role": "wizard", "content": "x"}]}, 422,
     "messages.0.role"),
    ("/v1/solve/countdown", {"problem": "not numbers"}, 422, "problem"),
    ("/v1/solve/countdown", {"problem": COUNTDOWN[0], "max_rounds": "many"}, 422, "max_rounds"),
    ("/v1/solve/countdown", {"problem": COUNTDOWN[0], "max_round": 3}, 422, "max_round"),
    ("/v1/solve/nope", {"problem": "1"}, 404, "planner"),
    ("/v1/completions", {"model": "gpt-4", "prompt": "x"}, 404, "model"),
    ("/v1/infill", {"model": "countdown", "text": "no holes"}, 422, "text"),
    ("/v1/completions", {"model": "countdown", "prompt": "1" * 200, "max_tokens": 4}, 422, "prompt"),
])
def test_bad_input_is_answered_4xx_naming_the_field(url, path, payload, status, param):
    r = httpx.post(f"{url}{path}", json=payload, timeout=30)
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["param"] == param and error["message"]


def test_invalid_json_and_oversized_body(url):
    r = httpx.post(f"{url}/v1/completions", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422 and "JSON" in r.json()["error"]["message"]
    r = httpx.post(f"{url}/v1/completions", json={"model": "dream_tiny", "prompt": "x" * (2 << 20)})
    assert r.status_code == 413

    def chunks():  # no Content-Length: capped as it arrives
        for _ in range(40):
            yield b"x" * 65536

    assert httpx.post(f"{url}/v1/completions", content=chunks()).status_code == 413
    assert httpx.get(f"{url}/health").status_code == 200  # none of it hurt the server


def test_metrics_in_prometheus_format(url):
    from prometheus_client.parser import text_string_to_metric_families

    names = {f.name for f in text_string_to_metric_families(httpx.get(f"{url}/metrics").text)}
    assert {"dream_agent_requests", "dream_agent_queue_length", "dream_agent_batch_rows", "dream_agent_forward_passes",
            "dream_agent_request_latency_seconds", "process_resident_memory_bytes"} <= names


LONG = {"model": "dream_tiny", "prompt": "Hi", "max_tokens": 128, "steps": 128, "block_length": 128}  # random weights: no early end


def test_full_queue_503_deadline_504_and_disconnect_frees_rows():
    with serving(ServerConfig(model=str(DREAM_TINY), device="cpu", max_queue=1)) as base:
        busy = threading.Thread(target=lambda: httpx.post(f"{base}/v1/completions", json={**LONG, "timeout": 3},
                                                          timeout=30))
        busy.start()
        time.sleep(0.3)
        r = httpx.post(f"{base}/v1/completions", json={"model": "countdown", "prompt": "1", "max_tokens": 2})
        assert r.status_code == 503 and r.headers["retry-after"] == "1"
        busy.join()
        r = httpx.post(f"{base}/v1/completions", json={**LONG, "timeout": 0.3}, timeout=30)
        assert r.status_code == 504 and r.json()["error"]["code"] == "deadline_exceeded"
        # a client that goes away mid-request: its job is cancelled, its rows freed
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(f"{base}/v1/completions", json=LONG, timeout=0.5)
        deadline = time.monotonic() + 5
        while metric(base, "dream_agent_in_flight") and time.monotonic() < deadline:
            time.sleep(0.1)
        assert metric(base, "dream_agent_in_flight") == 0
        # the same for a stream the client stops reading
        chat = {"model": "dream_tiny", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 128, "steps": 128,
                "block_length": 8, "stream": True}
        with httpx.stream("POST", f"{base}/v1/chat/completions", json=chat, timeout=30) as r:
            assert r.status_code == 200 and next(r.iter_lines()).startswith("data: ")
        deadline = time.monotonic() + 5
        while metric(base, "dream_agent_in_flight") and time.monotonic() < deadline:
            time.sleep(0.1)
        assert metric(base, "dream_agent_in_flight") == 0
        assert httpx.post(f"{base}/v1/completions", json={"model": "countdown", "prompt": "1", "max_tokens": 2}
                          ).status_code == 200
