"""Every bad input a user can give the CLI gets one line and exit 2 (1: not solved), never a traceback;
the start-up paths that need no model stay light. Tiny random models, as in test_cli_solve.py."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest
import torch

from dream_agent.cli.main import main
from dream_agent.model import loading
from planners import get_planner

from .test_cli_solve import PUZZLE_4, models, run  # noqa: F401  (models: a fixture)


def one_line(err: str) -> bool:
    return err.startswith("dream-agent: ") and len(err.strip().splitlines()) == 1 and "Traceback" not in err


@pytest.mark.parametrize("cut", ["truncated", "garbage"])
def test_corrupt_weights_name_the_file(capsys, models, tmp_path, cut):
    bad = tmp_path / "model"
    bad.mkdir()
    for f in os.listdir(models["sudoku"]):
        data = open(os.path.join(models["sudoku"], f), "rb").read()
        if f == "model.safetensors":
            data = data[: len(data) // 2] if cut == "truncated" else os.urandom(4000)
        (bad / f).write_bytes(data)
    code, out, err = run(capsys, "solve", "sudoku", PUZZLE_4, "--model", bad)
    assert code == 2 and one_line(err)
    assert f"{bad / 'model.safetensors'} is corrupt or truncated" in err


@pytest.mark.parametrize("device, words", [("bogus", "unknown device 'bogus'; available here: cpu"),
                                           ("cuda:7", "device 'cuda:7' is not available here; available: cpu")])
def test_a_device_that_is_not_there_names_those_that_are(capsys, models, device, words):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    code, _, err = run(capsys, "solve", "sudoku", PUZZLE_4, "--model", models["sudoku"], "--device", device)
    assert code == 2 and one_line(err) and words in err


def test_a_model_for_another_planner_is_named_as_such(capsys, models):
    code, _, err = run(capsys, "solve", "sudoku", PUZZLE_4, "--model", models["countdown"])
    assert code == 2 and one_line(err)
    assert f"model {models['countdown']!r} does not fit the sudoku planner" in err and "another planner" in err


def test_file_paths_that_are_not_there_say_so(capsys, tmp_path):
    for arg, words in ((tmp_path / "nope.txt", "no such file"), ("puzzle.txt", "no such file: puzzle.txt"),
                       (tmp_path, "is a directory")):
        code, out, err = run(capsys, "solve", "sudoku", arg)
        assert code == 2 and one_line(err) and words in err, err
    binary = tmp_path / "grid.txt"
    binary.write_bytes(b"\xff\xfe\x00")
    code, _, err = run(capsys, "solve", "sudoku", binary)
    assert code == 2 and "not UTF-8" in err


@pytest.mark.parametrize("plot, words", [(".", "is a directory"), ("curve", "needs an image extension"),
                                         ("no/such/dir/curve.png", "no such directory")])
def test_plot_is_checked_before_the_work(capsys, plot, words):
    data = "../shared/data/sudoku/top95.txt"  # never read: --plot fails first
    code, out, err = run(capsys, "eval", "sudoku", "--data", data, "--plot", plot)
    assert code == 2 and one_line(err) and words in err and out == ""


def test_train_out_naming_a_file(capsys, tmp_path):
    f = tmp_path / "model.bin"
    f.write_text("x")
    code, _, err = run(capsys, "train", "sudoku", "--out", f, "--steps", "1")
    assert code == 2 and one_line(err) and "is a file" in err


def test_ctrl_c_says_interrupted(capsys, monkeypatch):
    planner = type(get_planner("sudoku"))

    def interrupted(self, text):
        raise KeyboardInterrupt

    monkeypatch.setattr(planner, "parse", interrupted)
    code, _, err = run(capsys, "solve", "sudoku", PUZZLE_4)
    assert code == 130 and err.strip() == "dream-agent: interrupted"


def test_countdown_sizes_parse_refuses(capsys):
    code, _, err = run(capsys, "solve", "countdown", "1", "2", "3", "4", "5", "6", "--target", "720")
    assert code == 2 and one_line(err) and "got 6 numbers; countdown solves 2 to 5" in err


def test_unsolved_countdown_is_readable_and_its_counts_agree(capsys, models):
    code, out, _ = run(capsys, "solve", "countdown", "86", "28", "13", "31", "7", "--target", "89", "--model", models["countdown"],
                       "--max-rounds", "2")
    if code == 0:
        pytest.skip("the random model happened to solve it")
    lines = out.splitlines()
    stats = lines[-1]
    nfe = int(stats.split(" forward passes")[0].split()[-1])
    assert code == 1 and f"the search spent its budget (--max-rounds 2: {nfe} forward passes)" in out
    assert " = " in lines[0] or "," not in lines[0]  # one step a line, spaced, no raw comma-joined fill


def test_huge_numbers_reach_the_langchain_tool_as_a_message():
    from dream_agent.integrations.langchain import planner_tool

    answer = planner_tool("countdown").invoke({"problem": "9" * 5000 + " 3 --target 7"})
    assert isinstance(answer, str) and "out of range" in answer


def test_threads_default_to_one_for_a_small_model_and_follow_the_option(models):
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        loading.load_model(models["sudoku"], device="cpu")
        assert torch.get_num_threads() == 2  # None: torch's setting is left alone
        loading.load_model(models["sudoku"], device="cpu", threads="auto")
        assert torch.get_num_threads() == 1  # a tiny model on the CPU: one thread
        loading.load_model(models["sudoku"], device="cpu", threads=2)
        assert torch.get_num_threads() == 2
        with pytest.raises(loading.ModelLoadError, match="at least 1"):
            loading.load_model(models["sudoku"], device="cpu", threads=0)
    finally:
        torch.set_num_threads(before)


def test_model_files_share_one_mode(tmp_path):
    from dream_agent import DreamModel
    from dream_agent.tokenization import char_tokenizer
    from dream_agent.training.recipe import write_model_dir
    from dream_agent.training.small import small_config

    tok = char_tokenizer("0123")
    write_model_dir(tmp_path, DreamModel(small_config(tok, size="tiny", max_length=16)), tok, "# card\n")
    modes = {f.name: stat.S_IMODE(f.stat().st_mode) for f in tmp_path.iterdir()}
    assert "model.safetensors" in modes and len(set(modes.values())) == 1, modes
    umask = os.umask(0)
    os.umask(umask)
    assert set(modes.values()) == {0o666 & ~umask}


@pytest.mark.parametrize("args", [["planners"], ["solve", "sudoku", "1.34 34.2 2.4. 4.2a"], ["solve", "sudoku", "nope.txt"],
                                  ["solve", "countdown", "9" * 5000, "--target", "3"]])
def test_light_paths_import_no_torch(args):
    """A fresh process: listing planners and refusing input load neither torch nor transformers."""
    code = ("import sys; from dream_agent.cli.main import main; rc = main(sys.argv[1:]); "
            "print('heavy' if {'torch', 'transformers'} & set(sys.modules) else 'light'); sys.exit(rc)")
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120)
    assert done.returncode in (0, 2) and done.stdout.strip().splitlines()[-1] == "light", done.stderr


def test_eval_names_the_file_and_line_of_a_huge_number(capsys, tmp_path):
    data = tmp_path / "cd.jsonl"
    data.write_text('{"input": "1,2,3"}\n{"input": "1,2,' + "9" * 5000 + '"}\n')
    code, _, err = run(capsys, "eval", "countdown", "--data", data)
    assert code == 2 and one_line(err) and f"{data}:2:" in err and "out of range" in err
