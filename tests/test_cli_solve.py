"""`dream-agent solve`: output shapes, exit codes and one-line errors, with tiny random models."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from dream_agent import DreamModel
from dream_agent.cli.main import main
from dream_agent.template import Anchor, Slot, Template
from dream_agent.tokenization import char_tokenizer
from dream_agent.training.small import small_config
from dream_agent.validation import Violation
from planners import Planner, get_planner, register_planner
from planners import _extra as registered_in_process

PUZZLE_4 = "1.34 34.2 2.4. 4.2."
UNSOLVABLE_4 = "12.. ...4 ..3. ...."


def save_random_model(path, alphabet: str) -> str:
    tok = char_tokenizer(alphabet)
    torch.manual_seed(0)
    DreamModel(small_config(tok, size="tiny", max_length=128)).save_pretrained(path)
    tok.save_pretrained(path)
    return str(path)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Random tiny models with each planner's character tokenizer, saved as checkpoints."""
    return {name: save_random_model(tmp_path_factory.mktemp(name), get_planner(name).alphabet)
            for name in ("sudoku", "countdown")}


def run(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_sudoku_json_is_the_last_line(capsys, models):
    code, out, err = run(capsys, "solve", "sudoku", PUZZLE_4, "--model", models["sudoku"], "--json")
    assert code == 0, err
    d = json.loads(out.strip().splitlines()[-1])
    assert set(d) == {"solution", "valid", "violations", "stats"}
    assert set(d["stats"]) == {"nfe", "rounds", "seconds", "model_only_valid", "exhausted"}
    assert d["valid"] is True and d["violations"] == [] and d["solution"] == "1234341221434321"
    assert isinstance(d["stats"]["nfe"], int) and d["stats"]["rounds"] >= 1


def test_sudoku_default_output_is_the_grid_and_one_stats_line(capsys, models, tmp_path):
    puzzle = tmp_path / "puzzle.txt"
    puzzle.write_text("1.34\n34.2\n2.4.\n4.2.\n")  # a file, multi-line
    code, out, _ = run(capsys, "solve", "sudoku", puzzle, "--model", models["sudoku"], "--steps", "2", "--seed", "1")
    assert code == 0
    lines = out.strip().splitlines()
    assert lines[0] == "1 2 | 3 4" and "----+----" in lines
    assert lines[-1].startswith("solved:") and "forward passes" in lines[-1]


def test_show_animates_without_disturbing_output(capsys, models):
    code, out, _ = run(capsys, "solve", "sudoku", PUZZLE_4, "--model", models["sudoku"], "--show", "--json")
    assert code == 0 and json.loads(out.strip().splitlines()[-1])["valid"]
    code, out, _ = run(capsys, "solve", "countdown", "3", "5", "--target", "8", "--model", models["countdown"], "--show")
    assert code in (0, 1) and "rounds" in out.strip().splitlines()[-1]


def test_show_frame_marks_reveals():
    from rich.console import Console

    from dream_agent.cli.live import MASK_GLYPH, LiveView

    planner = get_planner("sudoku")
    tok = char_tokenizer(planner.alphabet)
    problem = planner.parse(PUZZLE_4)
    template = planner.encode(problem, tok)
    view = LiveView(planner, tok, console=Console(force_terminal=False))
    first = view.frame(1, None, template.input_ids, template).renderables[1].plain
    assert first.count(MASK_GLYPH) == 6 and first.startswith("4x4\n1" + MASK_GLYPH)
    filled = planner.encode(problem, tok, solution="1234341221434321").input_ids
    last = view.frame(1, 0, filled, template).renderables[1]
    assert last.plain == "4x4\n1234\n3412\n2143\n4321\n"
    assert any("green" in str(span.style) for span in last.spans)  # the cells revealed in this step


def test_countdown_json_in_dreams_format(capsys, models):
    code, out, _ = run(capsys, "solve", "countdown", "86", "28", "13", "31", "--target", "96",
                       "--model", models["countdown"], "--json", "--max-rounds", "2")
    d = json.loads(out.strip().splitlines()[-1])
    assert code == (0 if d["valid"] else 1)
    steps = d["solution"].split(",")
    assert len(steps) == 3 and steps[-1].endswith("=96")


def test_unsolved_says_so_and_exits_1(capsys, models):
    code, out, err = run(capsys, "solve", "countdown", "1", "1", "--target", "99", "--model", models["countdown"],
                         "--max-rounds", "2", "--no-search")
    assert code == 1
    assert "not solved within 2 rounds" in out and "\n  - " in out  # the best answer's violations
    # the search tries everything the constraints allow, well within the budget: it says so
    code, out, err = run(capsys, "solve", "countdown", "1", "1", "--target", "99", "--model", models["countdown"])
    assert code == 1 and "no valid answer fits the template" in out and "\n  - " in out

    code, out, err = run(capsys, "solve", "sudoku", UNSOLVABLE_4, "--model", models["sudoku"], "--max-rounds", "2", "--json")
    assert code == 1 and err.startswith("dream-agent: no valid answer fits the template")
    d = json.loads(out.strip().splitlines()[-1])
    assert d["valid"] is False and d["violations"] and 1 <= d["stats"]["rounds"] <= 2 and d["stats"]["exhausted"]

    code, out, _ = run(capsys, "solve", "sudoku", UNSOLVABLE_4, "--model", models["sudoku"], "--max-rounds", "1",
                       "--no-constraints")
    assert code == 1 and out.splitlines()[0].startswith("1 2 |") and "  - " in out


@pytest.mark.parametrize("args, words", [
    (["sudoku", "1.34 34.2 2.4. 4.2"], "16, 36 or 81 cells"),
    (["sudoku", "1.34 34.2 2.4. 4.2a"], "unexpected character 'a'"),
    (["sudoku", "11.. .... .... ...."], "clues conflict"),
    (["countdown", "86", "x", "--target", "96"], "'x' is not a whole number"),
    (["countdown", "86", "--target", "96"], "need at least 2 numbers"),
    (["countdown", "86", "-5", "--target", "96"], "negative"),
    (["countdown", "86", "100000", "--target", "96"], "out of range"),
    (["countdown", "86", "5", "--tagret", "96"], "no such option: --tagret"),
    (["chess", "e4"], "no planner named 'chess'"),
    (["sudoku"], "give a problem"),
    (["sudoku", "--many", "nope.txt"], "no such file"),
    (["sudoku", "1.34", "--many", "p.txt"], "give no PROBLEM"),
    (["sudoku", PUZZLE_4, "--steps", "0"], "--steps"),
    (["sudoku", PUZZLE_4, "--alg", "sideways"], "'sideways' is not one of"),
])
def test_bad_input_is_one_line_and_exit_2(capsys, models, args, words):
    model = models["countdown" if args[0] == "countdown" else "sudoku"]
    code, out, err = run(capsys, "solve", *args, "--model", model)
    assert code == 2
    assert out == "" and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 and err.startswith("dream-agent: ")
    assert words in err


def test_alg_choices_are_the_samplers():
    import typing

    from dream_agent.cli.solve import AlgName
    from dream_agent.sampler import ALGS

    assert set(typing.get_args(AlgName)) == set(ALGS)


@pytest.mark.parametrize("args", [
    ["solve", "countdown", "86", "x", "--target", "96"],
    ["solve", "countdown", "86", "5", "--target", "96", "--alg", "sideways"],
    ["solve", "sudoku", "1.34 34.2 2.4. 4.2a"],
    ["eval", "countdown", "--data", "no-such-file.jsonl"],
])
def test_bad_input_fails_before_the_model_stack_loads(args):
    """A fresh process: the error comes before transformers (seconds of imports) is loaded."""
    code = ("import sys; from dream_agent.cli.main import main; rc = main(sys.argv[1:]); "
            "print('loaded' if 'transformers' in sys.modules else 'light'); sys.exit(rc)")
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stderr.startswith("dream-agent: ")
    assert done.stdout.strip() == "light"


def test_missing_bundled_model_says_what_to_do(capsys, monkeypatch):
    from dream_agent.model import loading

    monkeypatch.setattr(loading, "bundled_models", lambda: {})
    code, out, err = run(capsys, "solve", "sudoku", PUZZLE_4)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "--model" in err and "dream-agent train sudoku --out DIR" in err


def test_wrong_model_for_the_planner_is_one_line(capsys, models):
    code, _, err = run(capsys, "solve", "sudoku", PUZZLE_4, "--model", models["countdown"])
    assert code == 2 and len(err.strip().splitlines()) == 1 and "tokenizer" in err


class EchoPlanner(Planner):
    """A plug-in planner the CLI has never heard of: fill one digit, any digit but the given one."""

    name = "echo"
    alphabet = "123456789x\n"

    def parse(self, text):
        if text.strip() not in list("123456789"):
            raise ValueError(f"give one digit 1-9, not {text.strip()!r}")
        return int(text)

    def encode(self, problem, tokenizer, solution=None):
        return Template([Anchor(f"{problem}x"), Slot("d", 1, allowed="123456789"), Anchor("\n")], tokenizer)

    def decode(self, problem, template, ids):
        return str(template.read(ids)["d"])

    def check(self, problem, solution):
        return [Violation(f"{solution} is the given digit", ("d",))] if solution == str(problem) else []

    def examples(self, n, rng):
        return []


def test_a_registered_planner_is_solvable_without_cli_changes(capsys, models):
    register_planner("echo", EchoPlanner)
    try:
        code, out, _ = run(capsys, "solve", "echo", "3", "--model", models["sudoku"], "--json")
        d = json.loads(out.strip().splitlines()[-1])
        assert code == 0 and d["valid"] and d["solution"] in "12456789"
        code, _, err = run(capsys, "solve", "echo", "33", "--model", models["sudoku"])
        assert code == 2 and err == "dream-agent: give one digit 1-9, not '33'\n"
    finally:
        registered_in_process.pop("echo", None)


def test_many_solves_a_file_of_problems_batched(capsys, models, tmp_path):
    problems = tmp_path / "puzzles.txt"
    problems.write_text(f"# 4x4 puzzles\n{PUZZLE_4}\n\n..34 34.2 2.4. 4.2.\n")
    outputs = {}
    for size in ("1", "8"):
        code, out, err = run(capsys, "solve", "sudoku", "--many", problems, "--model", models["sudoku"], "--json",
                             "--batch-size", size)
        assert code == 0, err
        rows = [json.loads(line) for line in out.strip().splitlines()]
        assert [r["problem"] for r in rows] == [PUZZLE_4, "..34 34.2 2.4. 4.2."] and all(r["valid"] for r in rows)
        outputs[size] = [(r["solution"], r["stats"]["nfe"]) for r in rows]
    assert outputs["1"] == outputs["8"]  # the batch does not change an answer

    problems.write_text(f"{PUZZLE_4}\n{UNSOLVABLE_4}\n")
    code, out, err = run(capsys, "solve", "sudoku", "--many", problems, "--model", models["sudoku"], "--max-rounds", "2")
    assert code == 1 and "1 of 2 problems not solved" in err and out.count("solved:") == 2

    problems.write_text(f"{PUZZLE_4}\n1.3\n")
    code, out, err = run(capsys, "solve", "sudoku", "--many", problems, "--model", models["sudoku"])
    assert code == 2 and f"{problems}:2:" in err and len(err.strip().splitlines()) == 1 and out == ""


def test_cli_batch_default_is_the_evaluations():
    from dream_agent.cli.solve import DEFAULT_BATCH
    from dream_agent.evaluation import DEFAULT_BATCH as EVALUATION_DEFAULT

    assert DEFAULT_BATCH == EVALUATION_DEFAULT
