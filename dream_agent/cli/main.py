"""`dream-agent` command line. Thin: each command parses, calls the library, prints.

Commands live one group a module (solve.py, evaluate.py, train.py) and register on `app`.
Errors a user can fix (`DreamAgentError`, bad arguments) print one line and exit 2.
"""

from __future__ import annotations

import os
import sys

import click
import typer

INTERRUPTED = 130  # the shell's exit status for a process ended by SIGINT (Ctrl-C)

app = typer.Typer(
    name="dream-agent",
    help="Masked diffusion language models for planning and constraint problems.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.command("planners")
def list_planners() -> None:
    """List the registered planners."""
    from planners import available_planners, get_planner

    for name in available_planners():
        typer.echo(f"{name}\t{get_planner(name).description}")


def _register_commands() -> None:
    from . import doctor, evaluate, generate, serve, solve, train  # noqa: F401  (each module adds its commands to `app`)


def main(argv: list[str] | None = None) -> int:
    """Console entry point: run the app, turning user errors into one line on stderr."""
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    # transformers reads those variables when it is first imported. The commands import it only
    # once input has parsed (bad input fails fast); if it is already loaded (main called from
    # Python), apply them to its live settings.
    if "transformers" in sys.modules:
        from transformers.utils import logging as hf_logging

        if os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] == "1":
            hf_logging.disable_progress_bar()
        if os.environ["TRANSFORMERS_VERBOSITY"] == "error":
            hf_logging.set_verbosity_error()

    from dream_agent.errors import DreamAgentError

    _register_commands()
    try:
        # Without standalone mode, click returns a command's `typer.Exit(code)` instead of raising it.
        code = app(args=argv, standalone_mode=False, prog_name="dream-agent")
    except (click.exceptions.Exit, typer.Exit) as exc:
        return exc.exit_code
    except (click.exceptions.Abort, typer.Abort, KeyboardInterrupt):
        typer.echo("dream-agent: interrupted", err=True)
        return INTERRUPTED
    except (click.ClickException, typer.TyperException) as exc:
        # typer >= 0.2x vendors click: its usage errors derive from TyperException, not from click's classes.
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        typer.echo(f"dream-agent: {message}", err=True)
        return getattr(exc, "exit_code", None) or 2
    except (DreamAgentError, ValueError, OSError) as exc:  # OSError: a file that cannot be read or written
        typer.echo(f"dream-agent: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}", err=True)
        return 2
    if code == INTERRUPTED:  # typer turns Ctrl-C into exit 130 itself, silently, before the handler above
        typer.echo("dream-agent: interrupted", err=True)
    return code if isinstance(code, int) else 0


def run() -> None:
    sys.exit(main())
