"""`PlainDreamLM` (a small model run without transformers) against `DreamDiffusionLM` over
`DreamModel`, the reference: the same logits bit for bit, the same tokenizer ids and text, the
same solves; and the CLI's solve imports no transformers."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from transformers import AutoTokenizer

from dream_agent import DiffusionEngine, DreamModel, ModelLoadError, load_model
from dream_agent.model import PlainDreamLM, bundled_models
from dream_agent.model.plain import plain_refusal
from dream_agent.refine import solve
from dream_agent.tokenization import SavedTokenizer
from planners.countdown import CountdownPlanner

from .conftest import tiny_config

DREAM_TINY = Path(__file__).resolve().parents[2] / "shared" / "data" / "dream_tiny"
BUNDLED = sorted(bundled_models())


@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_logits_equal_the_transformers_model(name):
    plain, full = load_model(name, runtime="plain"), load_model(name, device="cpu")
    assert isinstance(plain, PlainDreamLM) and not isinstance(full, PlainDreamLM)
    torch.manual_seed(1)
    for n in (1, 17, min(full.max_length, 90)):
        ids = torch.randint(0, full.vocab_size, (3, n))
        assert torch.equal(plain.logits(ids), full.logits(ids))
    assert (plain.mask_token_id, plain.pad_token_id, plain.max_length, plain.sampling) == \
        (full.mask_token_id, full.pad_token_id, full.max_length, full.sampling)


@pytest.mark.parametrize("overrides", [{}, {"tie_word_embeddings": True}, {"hidden_act": "gelu"},
                                       {"absolute_position_embeddings": 32, "shift_logits": False}])
def test_random_configs_equal_the_transformers_model(tmp_path, overrides):
    torch.manual_seed(0)
    DreamModel(tiny_config(**overrides)).save_pretrained(tmp_path)
    plain, full = load_model(tmp_path, runtime="plain"), load_model(tmp_path, device="cpu")
    ids = torch.randint(0, 64, (2, 24))
    assert torch.equal(plain.logits(ids), full.logits(ids))
    padded = torch.ones_like(ids)
    padded[1, 20:] = 0  # a padded batch takes the transformers path of the same directory
    assert torch.equal(plain.logits(ids, padded), full.logits(ids, padded))


@pytest.mark.parametrize("name", BUNDLED)
def test_saved_tokenizer_matches_autotokenizer(name):
    path = bundled_models()[name]
    ours, theirs = SavedTokenizer(path), AutoTokenizer.from_pretrained(path)
    assert ours.get_vocab() == theirs.get_vocab() and len(ours) == len(theirs)
    for role in SavedTokenizer.ROLES:
        assert getattr(ours, f"{role}_token_id") == getattr(theirs, f"{role}_token_id")
    texts = ["", "4.....8.5.3", "86,28,13 -> 96\n", "a + b\n\tz", "<|mask|>12<|eos|>", "ü?☃", "  two  spaces "]
    for text in texts:
        for special in (True, False):
            ids = ours.encode(text, add_special_tokens=special)
            assert ids == theirs.encode(text, add_special_tokens=special)
            for skip in (True, False):
                assert ours.decode(ids, skip_special_tokens=skip) == theirs.decode(ids, skip_special_tokens=skip)
        assert ours.convert_ids_to_tokens(ours.encode(text)) == theirs.convert_ids_to_tokens(theirs.encode(text))
    assert ours.decode(torch.tensor([5, 6])) == theirs.decode([5, 6])


def test_auto_runtime_chooses_plain_only_where_it_applies(tmp_path):
    assert isinstance(load_model("countdown", runtime="auto"), PlainDreamLM)
    assert not isinstance(load_model("countdown", runtime="auto", dtype="bfloat16"), PlainDreamLM)
    if DREAM_TINY.is_dir():  # a Dream-org layout: its config leaves fields to DreamConfig's defaults
        assert plain_refusal(DREAM_TINY) is not None
        assert not isinstance(load_model(DREAM_TINY, runtime="auto"), PlainDreamLM)
        with pytest.raises(ModelLoadError, match="cannot run without transformers"):
            load_model(DREAM_TINY, runtime="plain")
    with pytest.raises(ModelLoadError, match="unknown runtime"):
        load_model("countdown", runtime="jax")
    scaled = tmp_path / "scaled"
    shutil.copytree(bundled_models()["countdown"], scaled)
    config = json.loads((scaled / "config.json").read_text())
    config["rope_parameters"] = {"rope_type": "linear", "factor": 2.0, "rope_theta": 10000.0}
    (scaled / "config.json").write_text(json.dumps(config))
    assert plain_refusal(scaled) == "it scales its rotary embeddings"
    (scaled / "model.safetensors").write_bytes(b"\x00" * 12)
    config["rope_parameters"] = {"rope_type": "default", "rope_theta": 10000.0}
    (scaled / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelLoadError, match="model.safetensors is corrupt or truncated"):
        load_model(scaled, runtime="plain")


def test_a_solve_is_the_same_on_both_runtimes():
    planner = CountdownPlanner()
    problem = planner.parse("86,28,13,31,96")
    plain = solve(DiffusionEngine(load_model("countdown", runtime="plain")), planner, problem)
    full = solve(DiffusionEngine(load_model("countdown", device="cpu")), planner, problem)
    assert (plain.solution, plain.nfe, plain.rounds, plain.valid) == (full.solution, full.nfe, full.rounds, full.valid)


def test_cli_solve_never_imports_transformers():
    code = ("import sys; from dream_agent.cli.main import main; rc = main(sys.argv[1:]); "
            "print('transformers' if 'transformers' in sys.modules else 'plain'); sys.exit(rc)")
    done = subprocess.run([sys.executable, "-c", code, "solve", "countdown", "86,28,13,31,96"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "plain"
