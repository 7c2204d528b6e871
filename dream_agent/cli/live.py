"""`--show`: the denoising drawn live in the terminal with rich, one frame a sampler step.

The frame is the template itself, token by token, so every planner and tokenizer gets it
without a renderer of its own: anchors plain, masks as dim dots, the tokens revealed in this
step highlighted, earlier fills of the model in cyan, positions a refinement round masked
again in red. It draws on stderr, so `--json` keeps stdout to itself, and is transient: the
final answer is printed after it, as without `--show`.
"""

from __future__ import annotations

import time

import torch
from rich.console import Console, Group
from rich.live import Live
from rich.text import Text

MASK_GLYPH = "·"
ROUND_SECONDS = 2.0  # pace a round to about this long on a terminal, so the eye can follow it
MAX_FRAME_SECONDS = 0.06


class LiveView:
    """`on_step` callback for `refine.solve`: `view(round, step, x_row, template)`."""

    def __init__(self, planner, tokenizer, *, mask_token_id: int | None = None, console: Console | None = None):
        self.planner, self.tokenizer = planner, tokenizer
        self.mask_token_id = mask_token_id
        self.console = console or Console(stderr=True)
        self.live = Live(console=self.console, transient=True, auto_refresh=False)
        self._pieces: dict[int, str] = {}
        self._prev: list[int] | None = None
        self.paused = 0.0  # seconds spent pacing frames, which the caller takes off the solve time

    def __enter__(self) -> LiveView:
        self.live.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.live.__exit__(*exc)

    def _piece(self, token_id: int) -> str:
        if token_id not in self._pieces:
            self._pieces[token_id] = self.tokenizer.decode([token_id], skip_special_tokens=True)
        return self._pieces[token_id]

    def frame(self, round_: int, step: int | None, x: torch.Tensor, template) -> Group:
        ids = x[: len(template)].tolist()
        mask_id = self.mask_token_id if self.mask_token_id is not None else template.mask_token_id
        prev = self._prev if self._prev is not None and len(self._prev) == len(ids) else ids
        text = Text()
        masked = 0
        for p, (tok, before) in enumerate(zip(ids, prev)):
            if bool(template.anchor_mask[p]):
                text.append(self._piece(tok))
            elif tok == mask_id:
                masked += 1
                text.append(MASK_GLYPH, style="bold white on red" if before != mask_id else "dim")  # red: masked again
            else:
                text.append(self._piece(tok), style="bold black on green" if before == mask_id else "cyan")
        self._prev = ids
        where = "start" if step is None else f"step {step + 1}"
        slots = int((~template.anchor_mask).sum())
        header = Text(f"{self.planner.name} · round {round_} · {where} · {masked}/{slots} masked", style="bold")
        return Group(header, text)

    def __call__(self, round_: int, step: int | None, x: torch.Tensor, template) -> None:
        self.live.update(self.frame(round_, step, x, template), refresh=True)
        if self.console.is_terminal:
            slots = max(int((~template.anchor_mask).sum()), 1)
            pause = min(MAX_FRAME_SECONDS, ROUND_SECONDS / slots)
            time.sleep(pause)
            self.paused += pause
