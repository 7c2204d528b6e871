"""`dream-agent doctor`: what a model is, the settings it will use, one short fill; one line when unusable."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dream_agent.cli.main import main

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def test_doctor_reports_a_bundled_model_as_json(capsys):
    assert main(["doctor", "countdown", "--json"]) == 0
    info = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert info["model_type"] == "Dream" and info["device"] == "cpu" and info["dtype"] == "float32"
    assert info["sampler_defaults"]["alg"] == "maskgit_plus" == info["model_sampler_defaults"]["alg"]
    assert info["chat_template"] is False and info["probe"]["tokens"] == 8 and info["parameters"] > 100_000


@pytest.mark.skipif(not (SHARED / "dream_tiny").is_dir(), reason="../shared/data/dream_tiny is absent")
def test_doctor_on_a_dream_org_layout(capsys):
    assert main(["doctor", str(SHARED / "dream_tiny")]) == 0
    out = capsys.readouterr().out
    for line in ("mask_token_id           151666", "tokenizer               Qwen2Tokenizer", "chat_template           True"):
        assert line in out


@pytest.mark.skipif(not (SHARED / "dream_checkpoint").is_dir(), reason="../shared/data/dream_checkpoint is absent")
def test_doctor_names_what_is_missing(capsys, tmp_path):
    assert main(["doctor", str(SHARED / "dream_checkpoint")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "lacks 4 of the 4 weight files" in err
    assert main(["doctor", str(tmp_path / "nope")]) == 2
    assert "is not a directory" in capsys.readouterr().err
