"""`dream-agent solve/eval/train tasks`: outputs, exit codes and one-line errors, with a tiny random model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from dream_agent import DreamModel
from dream_agent.cli.main import main
from dream_agent.training.small import small_config
from planners.tasks.planner import TasksPlanner

PDDL = Path("/work/shared/data/pddl")
if not PDDL.is_dir():
    PDDL = Path(__file__).resolve().parents[2] / "shared" / "data" / "pddl"
DOMAIN = PDDL / "blocks" / "domain.pddl"

TWO_BLOCKS = """(define (problem two) (:domain BLOCKS) (:objects red blue)
  (:init (clear red) (clear blue) (ontable red) (ontable blue) (handempty))
  (:goal (and (on red blue))))"""


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """A random tiny model with the blocks domain's tokenizer and settings, saved as `train` would."""
    path = tmp_path_factory.mktemp("tasks_model")
    planner = TasksPlanner.for_domain(DOMAIN, max_steps=6, max_objects={"o": 4})
    tok = planner.tokenizer()
    torch.manual_seed(0)
    DreamModel(small_config(tok, size="tiny", max_length=96)).save_pretrained(path)
    tok.save_pretrained(path)
    for name, text in planner.model_files().items():
        (path / name).write_text(text)
    return str(path)


@pytest.fixture(scope="module")
def problem(tmp_path_factory):
    path = tmp_path_factory.mktemp("tasks_problem") / "two.pddl"
    path.write_text(TWO_BLOCKS)
    return str(path)


def run(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_solve_json_plan_graph_and_dot(capsys, model, problem, tmp_path):
    dot = tmp_path / "plan.dot"
    code, out, err = run(capsys, "solve", "tasks", "--domain", DOMAIN, "--problem", problem, "--model", model,
                         "--json", "--dot", dot)
    assert code == 0, err
    d = json.loads(out.strip().splitlines()[-1])
    assert set(d) == {"plan", "valid", "violations", "graph", "stats"}
    assert d["valid"] and d["plan"][-1] == "(stack red blue)" and d["stats"]["steps"] == len(d["plan"])
    # random weights: whichever valid plan the search found, its graph covers every step
    assert sorted(k for layer in d["graph"]["layers"] for k in layer) == list(range(len(d["plan"])))
    assert d["graph"]["edges"][0]["kind"] == "supplies"
    assert dot.read_text().startswith("digraph plan {")


def test_solve_show_prints_layers(capsys, model, problem):
    code, out, err = run(capsys, "solve", "tasks", "--domain", DOMAIN, "--problem", problem, "--model", model, "--show")
    assert code == 0, err
    assert "1. (pick-up" in out and "layer 1: (pick-up" in out and "valid plan of" in out


def test_anchors_forbid_and_before(capsys, model, problem):
    # Step 1 pinned to the other block and an ordering: the plan must take the long way round.
    code, out, err = run(capsys, "solve", "tasks", "--domain", DOMAIN, "--problem", problem, "--model", model,
                         "--anchor", "1:(pick-up blue)", "--before", "(put-down blue)", "(pick-up red)", "--json")
    assert code == 0, err
    d = json.loads(out.strip().splitlines()[-1])
    assert d["plan"][0] == "(pick-up blue)" and d["plan"][-1] == "(stack red blue)"
    assert d["plan"].index("(put-down blue)") < d["plan"].index("(pick-up red)")


def test_goal_unreachable_within_max_steps_exits_1(capsys, model, problem):
    code, out, err = run(capsys, "solve", "tasks", "--domain", DOMAIN, "--problem", problem, "--model", model,
                         "--max-steps", "1")
    assert code == 1 and "no valid plan" in out


@pytest.mark.parametrize("extra, message", [
    (["--anchor", "2:(pick-up zz)"], "unknown object 'zz'"),
    (["--anchor", "1:(pick-up red)", "--anchor", "1:(pick-up blue)"], "contradictory anchors"),
    (["--forbid", "(fly red)"], "unknown action 'fly'"),
    (["--max-steps", "50"], "more than the model's 6 plan slots"),
    (["--anchor", "nonsense"], "needs the form STEP:(action args)"),
])
def test_bad_rules_are_one_line_errors(capsys, model, problem, extra, message):
    code, out, err = run(capsys, "solve", "tasks", "--domain", DOMAIN, "--problem", problem, "--model", model, *extra)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1 and not out


def test_bad_pddl_inputs(capsys, model, tmp_path):
    broken = tmp_path / "broken.pddl"
    broken.write_text("(define (problem p) (:domain BLOCKS) (:objects a) (:init (ontable a)")
    cases = [(broken, "malformed PDDL"), (PDDL / "gripper" / "prob01.pddl", "for domain 'gripper-strips'"),
             (PDDL / "blocks" / "probBLOCKS-6-0.pddl", "more than the model's limit of 4"),
             (tmp_path / "missing.pddl", "does not exist")]
    for path, message in cases:
        code, out, err = run(capsys, "solve", "tasks", "--domain", DOMAIN, "--problem", path, "--model", model)
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1, (path, err)


def test_a_model_of_another_domain_is_refused(capsys, model):
    gripper = PDDL / "gripper"
    code, out, err = run(capsys, "solve", "tasks", "--domain", gripper / "domain.pddl", "--problem",
                         gripper / "prob01.pddl", "--model", model)
    assert code == 2 and "not trained for domain" in err


def test_eval_reports_oracle_lengths(capsys, model, problem, tmp_path):
    folder = tmp_path / "set"
    folder.mkdir()
    (folder / "two.pddl").write_text(Path(problem).read_text())
    code, out, err = run(capsys, "eval", "tasks", "--domain", DOMAIN, "--problems", folder, "--model", model, "--json")
    assert code == 0, err
    d = json.loads(out.strip().splitlines()[-1])
    row = d["rows"][0]
    assert d["valid_rate"] == 1.0 and row["optimal"] == 2 and d["median_length_ratio"] == row["length"] / 2
    assert set(d["random_weights"]) >= {"valid_rate", "model_only_rate", "median_seconds"}


def test_train_tasks_from_a_users_problem(capsys, problem, tmp_path):
    out_dir = tmp_path / "m"
    code, out, err = run(capsys, "train", "tasks", "--domain", DOMAIN, "--problem", problem, "--out", out_dir,
                         "--steps", "2", "--size", "tiny", "--heldout", "2", "--batch-size", "4", "--threads", "1",
                         "--data-problems", "6")
    assert code == 0, err
    settings = json.loads((out_dir / "tasks.json").read_text())
    assert settings["max_objects"] == {"o": 2} and (out_dir / "domain.pddl").is_file()
    assert len((out_dir / "data.jsonl").read_text().splitlines()) == 6
