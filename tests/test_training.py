"""Planner data, the collator, DiffusionTrainer, the small-model recipe and resuming it."""

from __future__ import annotations

import random
import shutil

import pytest
import torch
from transformers import TrainerCallback

from dream_agent import DreamModel, load_model
from dream_agent.errors import DreamAgentError
from dream_agent.refine import solve
from dream_agent.engine import DiffusionEngine
from dream_agent.tokenization import char_tokenizer
from dream_agent.training import (DiffusionLoss, DiffusionTrainer, PlannerCollator, PlannerDataset, PlannerStream,
                                  diffusion_loss, diffusion_training_args, small_config)
from dream_agent.training.losses import IGNORE_INDEX
from dream_agent.training.recipe import train_small_model
from dream_agent.training.trainer import COMPLETE, find_resumable
from planners import get_planner
from planners.sudoku import SudokuPlanner


@pytest.fixture(scope="module")
def sudoku4():
    return SudokuPlanner(sizes=(4,))


def test_collator_marks_slots_maskable_and_pads(sudoku4):
    tok = char_tokenizer(sudoku4.alphabet)
    examples = sudoku4.examples(3, random.Random(0)) + get_planner("sudoku").examples(1, random.Random(1), sizes=(6,))
    batch = PlannerCollator(sudoku4, tok)(examples)
    for b, ex in enumerate(examples):
        template = sudoku4.encode(ex.problem, tok)
        n = len(template)
        assert batch["attention_mask"][b, :n].all() and not batch["attention_mask"][b, n:].any()
        assert torch.equal(batch["maskable"][b, :n], template.masked)  # blanks, never clues
        assert not batch["maskable"][b, n:].any()
        # the solution's digits sit at the blanks, and only they are labelled
        filled = sudoku4.encode(ex.problem, tok, ex.solution).input_ids
        assert torch.equal(batch["input_ids"][b, :n], filled)
        assert (batch["labels"][b][~batch["maskable"][b]] == IGNORE_INDEX).all()
        assert torch.equal(batch["labels"][b][batch["maskable"][b]], filled[template.masked])
    assert (batch["input_ids"][batch["attention_mask"] == 0] == tok.pad_token_id).all()


def test_collator_rejects_examples_without_solutions(sudoku4):
    ex = sudoku4.examples(1, random.Random(0))[0]
    with pytest.raises(ValueError, match="needs a solution"):
        PlannerCollator(sudoku4, char_tokenizer(sudoku4.alphabet))([type(ex)(ex.problem, None)])


def test_stream_is_deterministic_and_resumes_mid_run(sudoku4):
    full = list(zip(range(24), PlannerStream(sudoku4, seed=3, chunk_size=8)))
    resumed = list(zip(range(8), PlannerStream(sudoku4, seed=3, chunk_size=8, start=16)))
    assert [ex.solution for _, ex in full[16:]] == [ex.solution for _, ex in resumed]
    other = list(zip(range(8), PlannerStream(sudoku4, seed=4, chunk_size=8)))
    assert [ex.solution for _, ex in other] != [ex.solution for _, ex in full[:8]]


def test_dataset_draws_once(sudoku4):
    ds = PlannerDataset(sudoku4, 5, seed=0)
    assert len(ds) == 5 and ds[0] is ds[0]


def _fixed_loss(model, batch, seed=0):
    with torch.no_grad():
        return float(diffusion_loss(model, batch, DiffusionLoss(), generator=torch.Generator().manual_seed(seed)).loss)


def test_diffusion_trainer_lowers_the_loss(tmp_path, sudoku4):
    tok = char_tokenizer(sudoku4.alphabet)
    torch.manual_seed(0)
    model = DreamModel(small_config(tok, size="tiny", max_length=32))
    collate = PlannerCollator(sudoku4, tok)
    data = PlannerDataset(sudoku4, 64, seed=0)
    batch = collate(list(data.examples))
    before = sum(_fixed_loss(model, batch, s) for s in range(4))
    args = diffusion_training_args(tmp_path, max_steps=60, per_device_train_batch_size=32, learning_rate=3e-3,
                                   save_strategy="no", logging_steps=10, use_cpu=True)
    DiffusionTrainer(model=model, args=args, train_dataset=data, data_collator=collate).train()
    after = sum(_fixed_loss(model.eval(), batch, s) for s in range(4))
    assert after < 0.8 * before


class _Interrupt(TrainerCallback):
    def __init__(self, at: int):
        self.at = at

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.at:
            raise KeyboardInterrupt


def _weights(path):
    return DreamModel.from_pretrained(path).state_dict()


def test_recipe_writes_a_loadable_model_and_resumes(tmp_path, sudoku4):
    common = dict(steps=6, batch_size=8, size="tiny", seed=0, save_steps=2, heldout=4)
    straight = train_small_model(sudoku4, tmp_path / "straight", **common)
    assert straight.steps == 6 and straight.examples == 48

    out = tmp_path / "interrupted"
    with pytest.raises(KeyboardInterrupt):
        train_small_model(sudoku4, out, callbacks=[_Interrupt(5)], **common)
    assert find_resumable(out / "checkpoints").name == "checkpoint-4"
    # a checkpoint killed while being written has no marker and is never resumed from
    shutil.copytree(out / "checkpoints" / "checkpoint-4", out / "checkpoints" / "checkpoint-5")
    (out / "checkpoints" / "checkpoint-5" / COMPLETE).unlink()
    assert find_resumable(out / "checkpoints").name == "checkpoint-4"
    with pytest.raises(DreamAgentError, match="--resume"):
        train_small_model(sudoku4, out, **common)

    shutil.rmtree(out / "checkpoints" / "checkpoint-5")
    resumed = train_small_model(sudoku4, out, resume=True, **common)
    assert resumed.resumed_from == 4 and resumed.steps == 6
    # same data, same RNG, same optimizer state: the resumed run ends where the straight one did
    a, b = _weights(tmp_path / "straight"), _weights(out)
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    # resuming a finished run (the checkpoint at --steps) trains nothing more: it writes that checkpoint's model
    again = train_small_model(sudoku4, out, resume=True, **common)
    assert again.resumed_from == 6 and again.steps == 6
    c = _weights(out)
    assert all(torch.equal(b[k], c[k]) for k in b)

    card = (out / "README.md").read_text()
    assert "dream-agent sudoku model" in card and "Steps: 6 of batch 8" in card and "no evaluation file" in card
    lm = load_model(str(out), device="cpu")
    assert lm.tokenizer is not None and lm.mask_token_id == lm.tokenizer.mask_token_id
    puzzle = sudoku4.parse("1234341221434321".replace("4", "0", 2))
    result = solve(DiffusionEngine(lm), sudoku4, puzzle, max_rounds=3)
    assert len(result.solution) == 16 and result.rounds >= 1


def test_cli_train_runs_and_reports(tmp_path, capsys):
    from dream_agent.cli.main import main

    code = main(["train", "countdown", "--out", str(tmp_path / "cd"), "--steps", "3", "--batch-size", "4",
                 "--size", "tiny", "--heldout", "2"])
    assert code == 0
    assert "wrote" in capsys.readouterr().out
    assert (tmp_path / "cd" / "model.safetensors").is_file() and (tmp_path / "cd" / "tokenizer.json").is_file()
    assert main(["train", "nosuch", "--out", str(tmp_path / "x")]) == 2
    assert main(["train", "countdown", "--out", str(tmp_path / "y"), "--size", "huge", "--steps", "1"]) == 2
