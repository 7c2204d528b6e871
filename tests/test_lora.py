"""LoRA on DreamModel: train a few steps, save, reload with the same logits, merge."""

from __future__ import annotations

import pytest
import torch

from dream_agent import DreamModel
from dream_agent.tokenization import char_tokenizer
from dream_agent.training import DiffusionLoss, DiffusionTrainer, PlannerCollator, PlannerDataset, diffusion_loss
from dream_agent.training import diffusion_training_args, small_config
from dream_agent.training.lora import LORA_TARGETS, add_lora, load_lora, lora_config, merge_lora
from planners.countdown import CountdownPlanner


def _fixed_loss(model, batch):
    with torch.no_grad():
        return sum(float(diffusion_loss(model, batch, DiffusionLoss(), generator=torch.Generator().manual_seed(s)).loss)
                   for s in range(4))


def test_lora_trains_saves_reloads_and_merges(tmp_path):
    planner = CountdownPlanner(sizes=(3,))
    tok = char_tokenizer(planner.alphabet)
    torch.manual_seed(0)
    DreamModel(small_config(tok, size="tiny", max_length=48)).save_pretrained(tmp_path / "base")

    model = add_lora(DreamModel.from_pretrained(tmp_path / "base"), lora_config(r=8, dropout=0.0))
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    assert {n.split(".")[-4] for n in trainable} == set(LORA_TARGETS)  # ...<proj>.lora_A.default.weight

    collate = PlannerCollator(planner, tok)
    data = PlannerDataset(planner, 64, seed=0)
    batch = collate(list(data.examples))
    before = _fixed_loss(model, batch)
    args = diffusion_training_args(tmp_path / "run", max_steps=60, per_device_train_batch_size=32, learning_rate=2e-2,
                                   save_strategy="no", use_cpu=True)
    DiffusionTrainer(model=model, args=args, train_dataset=data, data_collator=collate).train()
    model.eval()
    assert _fixed_loss(model, batch) < 0.95 * before  # the loss falls (only the adapters learn)

    model.save_pretrained(tmp_path / "adapter")
    assert (tmp_path / "adapter" / "adapter_model.safetensors").is_file()
    reloaded = load_lora(DreamModel.from_pretrained(tmp_path / "base"), tmp_path / "adapter").eval()
    ids = batch["input_ids"][:4]
    with torch.no_grad():
        expected = model(input_ids=ids).logits
        assert torch.allclose(reloaded(input_ids=ids).logits, expected, atol=1e-5)
        merged = merge_lora(reloaded)
        assert isinstance(merged, DreamModel)
        assert torch.allclose(merged(input_ids=ids).logits, expected, atol=1e-4)
        plain = DreamModel.from_pretrained(tmp_path / "base").eval()
        assert not torch.allclose(plain(input_ids=ids).logits, expected, atol=1e-3)  # the adapter did something


def test_lora_rank_must_be_positive():
    with pytest.raises(ValueError):
        lora_config(r=0)
