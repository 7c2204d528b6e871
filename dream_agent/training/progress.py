"""A Trainer callback that drives a rich progress bar: step, latest loss, examples a second."""

from __future__ import annotations

import time

from rich.progress import Progress
from transformers import TrainerCallback


class RichProgressCallback(TrainerCallback):
    """A rich progress bar with the latest loss and examples a second.

    Where the console is not a terminal (a log file), each logged loss is one plain line instead.
    """

    def __init__(self, progress: Progress, batch_size: int):
        self.progress, self.batch_size = progress, batch_size
        self.task = None
        self.loss = float("nan")
        self.rate = 0.0
        self._t0, self._step0 = time.time(), 0

    def on_train_begin(self, args, state, control, **kwargs):
        self.task = self.progress.add_task("training", total=state.max_steps, completed=state.global_step,
                                           loss=self.loss, rate=self.rate)
        self._t0, self._step0 = time.time(), state.global_step

    def on_step_end(self, args, state, control, **kwargs):
        seconds = time.time() - self._t0
        if seconds > 0:
            self.rate = (state.global_step - self._step0) * self.batch_size / seconds
        self.progress.update(self.task, completed=state.global_step, loss=self.loss, rate=self.rate)
        last = state.log_history[-1] if state.log_history else {}
        if "solve_rate" in last and last.get("step") == state.global_step:  # SolveRateCallback just measured
            self.progress.console.print(f"step {state.global_step}: held-out solve rate {last['solve_rate']:.1%}")

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "loss" in logs:
            self.loss = float(logs["loss"])
            if not self.progress.console.is_terminal:
                self.progress.console.print(f"step {state.global_step}/{state.max_steps} loss {self.loss:.4f} "
                                            f"{self.rate:.0f} ex/s")
