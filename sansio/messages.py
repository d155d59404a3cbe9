"""How values are quoted in the messages people read: short, with control characters escaped."""

from __future__ import annotations

SHOWN_CHARS = 80  # values quoted in messages are cut to this


def show(value: str, limit: int = SHOWN_CHARS) -> str:
    """A value quoted for a message: cut to ``limit`` characters, control characters escaped."""
    if len(value) > limit:
        value = value[: limit - 1] + "…"
    return repr(value)


def plural(n: int, word: str) -> str:
    return f"{n:,} {word}" if n == 1 else f"{n:,} {word}s"
