import json
import shutil

import pytest
import torch
from transformers import AutoConfig, AutoModel, Qwen2Config, Qwen2ForCausalLM

from dream_agent import DiffusionEngine, DreamConfig, DreamModel, ModelLoadError, load_model
from dream_agent.model.modeling_dream import positions_from_padding

from .conftest import tiny_config


def test_defaults_are_dream_7b():
    cfg = DreamConfig()
    assert (cfg.hidden_size, cfg.num_hidden_layers, cfg.num_attention_heads, cfg.num_key_value_heads) == (3584, 28, 28, 4)
    assert (cfg.intermediate_size, cfg.vocab_size, cfg.mask_token_id, cfg.pad_token_id) == (18944, 152064, 151666, 151643)
    assert cfg.rope_parameters["rope_theta"] == 1_000_000.0
    assert cfg.is_causal is False and cfg.tie_word_embeddings is False


def test_parameter_names_are_qwen2s():
    names = {n for n, _ in DreamModel(tiny_config()).named_parameters()}
    for expected in ["model.embed_tokens.weight", "model.layers.0.self_attn.q_proj.bias", "model.layers.1.self_attn.o_proj.weight",
                     "model.layers.0.mlp.gate_proj.weight", "model.layers.0.input_layernorm.weight",
                     "model.layers.0.post_attention_layernorm.weight", "model.norm.weight", "lm_head.weight"]:
        assert expected in names
    assert "model.layers.0.self_attn.o_proj.bias" not in names


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_fidelity_with_qwen2_full_mask(attn):
    """Same weights: DreamModel == Qwen2ForCausalLM given an all-True 4-D mask (i.e. bidirectional)."""
    torch.manual_seed(0)
    cfg = tiny_config()
    dream = DreamModel(cfg).eval()
    qcfg = Qwen2Config(**{k: getattr(cfg, k) for k in ["vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
                                                       "num_attention_heads", "num_key_value_heads", "max_position_embeddings",
                                                       "rope_parameters"]})
    qwen = Qwen2ForCausalLM(qcfg).eval()
    qwen.load_state_dict(dream.state_dict(), strict=True)
    dream.config._attn_implementation = attn
    qwen.config._attn_implementation = attn
    ids = torch.randint(0, 60, (2, 12))
    full = torch.ones(2, 1, 12, 12, dtype=torch.bool)
    with torch.no_grad():
        ours = dream(ids).logits
        theirs = qwen(ids, attention_mask=full).logits
        causal = qwen(ids).logits
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)
    assert (ours - causal).abs().max() > 1e-3  # and it really is not causal


@pytest.mark.parametrize("overrides", [{}, {"absolute_position_embeddings": 16}, {"num_key_value_heads": 4},
                                       {"hidden_act": "gelu"}])
def test_direct_path_gives_the_modules_logits(overrides, monkeypatch):
    """Float32 inference on unpadded input calls the layers' weights as functions (`_direct_logits`)."""
    torch.manual_seed(0)
    model = DreamModel(tiny_config(**overrides)).eval()
    calls = []
    direct_logits = model._direct_logits
    monkeypatch.setattr(model, "_direct_logits", lambda ids: calls.append(ids) or direct_logits(ids))
    ids = torch.randint(0, 60, (2, 12))
    with torch.no_grad():
        direct = model(ids).logits
        unpadded = model(ids, attention_mask=torch.ones(2, 12, dtype=torch.long)).logits
    modules = model(ids).logits  # with grad: the modules themselves
    assert len(calls) == 2  # the two no-grad calls took the direct path, the last one did not
    torch.testing.assert_close(direct, modules, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(unpadded, modules, rtol=1e-5, atol=1e-5)


def test_padding_matches_unpadded():
    torch.manual_seed(0)
    model = DreamModel(tiny_config()).eval()
    ids = torch.randint(3, 60, (2, 9))
    am = torch.ones(2, 9, dtype=torch.long)
    am[1, 6:] = 0
    with torch.no_grad():
        padded = model(ids, attention_mask=am).logits
        alone = model(ids[1:, :6]).logits
    torch.testing.assert_close(padded[1, :6], alone[0], rtol=1e-5, atol=1e-5)
    assert not torch.isnan(padded).any()
    assert positions_from_padding(am)[1].tolist() == [0, 1, 2, 3, 4, 5, 1, 1, 1]


def test_dream_org_config_json_loads_without_remote_code(tmp_path):
    """A config.json shaped like Dream-org's (auto_map, rope_theta, rope_scaling: null, torch_dtype)."""
    raw = {"architectures": ["DreamModel"], "auto_map": {"AutoConfig": "configuration_dream.DreamConfig",
           "AutoModel": "modeling_dream.DreamModel"}, "model_type": "Dream", "hidden_size": 32, "intermediate_size": 64,
           "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 64,
           "mask_token_id": 63, "pad_token_id": 0, "bos_token_id": 1, "eos_token_id": 2, "rope_theta": 1000000.0,
           "rope_scaling": None, "torch_dtype": "float32", "max_position_embeddings": 2048, "tie_word_embeddings": False,
           "use_sliding_window": False, "sliding_window": None, "transformers_version": "4.46.2"}
    (tmp_path / "config.json").write_text(json.dumps(raw))
    cfg = AutoConfig.from_pretrained(tmp_path)
    assert isinstance(cfg, DreamConfig) and cfg.rope_parameters["rope_theta"] == 1e6 and cfg.shift_logits
    torch.manual_seed(0)
    model = AutoModel.from_config(cfg)
    model.save_pretrained(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps(raw))  # keep Dream-org's own config.json
    lm = load_model(str(tmp_path), device="cpu")
    assert isinstance(lm.model, DreamModel) and lm.tokenizer is None and lm.mask_token_id == 63
    ids = torch.randint(3, 60, (1, 7))
    raw_logits = lm.model(ids).logits
    torch.testing.assert_close(lm.logits(ids)[:, 1:], raw_logits[:, :-1])  # the adapter shifts, Dream-style


def test_load_model_reuses_and_errors(tiny_dir, tmp_path):
    assert load_model(str(tiny_dir), device="cpu") is load_model(str(tiny_dir), device="cpu")
    with pytest.raises(ModelLoadError, match="is not a directory"):
        load_model(str(tmp_path / "nope"))
    with pytest.raises(ModelLoadError, match="no config.json"):
        load_model(str(tmp_path))
    (tmp_path / "config.json").write_text((tiny_dir / "config.json").read_text())
    with pytest.raises(ModelLoadError, match="no weights"):
        load_model(str(tmp_path))


def _copy_with_generation_config(tiny_dir, path, text: str):
    shutil.copytree(tiny_dir, path)
    (path / "generation_config.json").write_text(text)
    return str(path)


def test_a_model_ships_its_sampler_defaults(tiny_dir, tmp_path):
    """The "dream_agent" block of generation_config.json sets the engine's defaults; Dream's own
    top-level keys there (chat defaults: alg "origin", 512 steps) do not; a caller's setting beats both."""
    raw = {"alg": "origin", "steps": 512, "temperature": 0.0, "dream_agent": {"alg": "maskgit_plus", "steps": 12}}
    lm = load_model(_copy_with_generation_config(tiny_dir, tmp_path / "m", json.dumps(raw)), device="cpu")
    assert lm.sampling == {"alg": "maskgit_plus", "steps": 12}
    engine = DiffusionEngine(lm)
    assert (engine.settings.alg, engine.settings.steps, engine.settings.temperature) == ("maskgit_plus", 12, 0.0)
    assert DiffusionEngine(lm, alg="entropy").settings.alg == "entropy"

    dream_org = {key: value for key, value in raw.items() if key != "dream_agent"}
    lm = load_model(_copy_with_generation_config(tiny_dir, tmp_path / "d", json.dumps(dream_org)), device="cpu")
    assert lm.sampling == {} and (DiffusionEngine(lm).settings.alg, DiffusionEngine(lm).settings.steps) == ("entropy", 64)
    assert load_model(str(tiny_dir), device="cpu").sampling == {}  # no generation_config.json at all


@pytest.mark.parametrize("text", ['{"dream_agent": {"alg": "sideways"}}', '{"dream_agent": {"stepz": 3}}',
                                  '{"dream_agent": {"steps": 0}}', '{"dream_agent": "maskgit_plus"}', "not json"])
def test_bad_sampler_defaults_fail_at_load_in_one_line(tiny_dir, tmp_path, text):
    with pytest.raises(ModelLoadError, match="generation_config.json") as err:
        load_model(_copy_with_generation_config(tiny_dir, tmp_path / "m", text), device="cpu")
    assert "\n" not in str(err.value)


def test_unreachable_hub_is_one_line(monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # no network here: fail fast
    with pytest.raises(ModelLoadError) as err:
        load_model("Dream-org/Dream-v0-Instruct-7B")
    assert "\n" not in str(err.value) and "Dream-org/Dream-v0-Instruct-7B" in str(err.value)
