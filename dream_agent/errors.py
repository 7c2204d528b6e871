"""Errors a user can act on. The CLI prints their message as one line and exits non-zero."""


class DreamAgentError(Exception):
    """Base class: anything raised with this type is a user-facing, one-line message."""


class TemplateError(DreamAgentError, ValueError):
    """A template that cannot be built (bad slot, unknown token, too long)."""


class ModelLoadError(DreamAgentError):
    """A model directory or hub id that cannot be loaded."""


class ProblemError(DreamAgentError, ValueError):
    """A problem a planner cannot parse or that is inconsistent from the start."""


def quoted(text: object, limit: int = 60) -> str:
    """`repr(text)`, cut to about `limit` characters: user input quoted in a one-line message."""
    r = repr(text)
    return r if len(r) <= limit else f"{r[: limit - 12]}...' ({len(str(text)):,} characters)"
