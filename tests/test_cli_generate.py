"""`dream-agent generate`: open generation with the sampler's options, block caches among them."""

from __future__ import annotations

from pathlib import Path

import pytest

from dream_agent.cli.main import main

DREAM_TINY = Path(__file__).resolve().parents[2] / "shared" / "data" / "dream_tiny"
needs_tiny = pytest.mark.skipif(not DREAM_TINY.is_dir(), reason="../shared/data/dream_tiny is absent")


@needs_tiny
@pytest.mark.parametrize("cache", [None, "prefix", "dual"])
def test_generate_prints_text_with_and_without_a_cache(capsys, cache):
    args = ["generate", "Hello", "--model", str(DREAM_TINY), "--max-new-tokens", "16", "--block-length", "8"]
    assert main(args + (["--cache", cache] if cache else [])) == 0
    assert capsys.readouterr().out.endswith("\n")


@needs_tiny
def test_generate_chat_is_the_engine_s_answer(capsys):
    from dream_agent import DiffusionEngine

    assert main(["generate", "Say hi.", "--model", str(DREAM_TINY), "--max-new-tokens", "8", "--chat"]) == 0
    expected = DiffusionEngine(str(DREAM_TINY)).generate("Say hi.", 8, chat=True, steps=8)
    assert capsys.readouterr().out == expected + "\n"


@pytest.mark.parametrize("args, message", [
    (["--cache", "both", "--block-length", "8"], "unknown cache 'both'"),
    (["--cache", "dual"], "a cache needs --block-length"),
])
def test_bad_cache_options_get_one_line(capsys, args, message):
    assert main(["generate", "Hi", "--model", "countdown", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
