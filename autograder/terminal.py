"""Student text on a terminal: shortened at word boundaries with an ellipsis, on a console as wide as the
terminal. (Escaping for rich markup is ``rich.markup.escape`` at each call site.)"""
from __future__ import annotations

ELLIPSIS = "…"


def shorten(text: str, width: int) -> str:
    """``text`` on one line, at most ``width`` characters: cut at a word boundary and ended with "…".
    A first word longer than ``width`` is cut inside the word (still with the ellipsis).
    (``textwrap.shorten`` counts a space before its placeholder, so it cuts one word early.)"""
    text = " ".join(str(text).split())
    if len(text) <= width:
        return text
    if width <= 1:
        return ELLIPSIS[:max(width, 0)]
    kept = ""
    for word in text.split(" "):
        candidate = f"{kept} {word}" if kept else word
        if len(candidate) + 1 > width:
            break
        kept = candidate
    if not kept:
        return text[: width - 1] + ELLIPSIS
    return kept.rstrip(",;:") + ELLIPSIS


def first_line(text: str, width: int) -> str:
    """The first non-empty line of ``text``, shortened to ``width``."""
    for line in str(text or "").splitlines():
        if line.strip():
            return shorten(line, width)
    return ""


def console_for(stream):
    """A rich Console writing to ``stream``; its width is the terminal's (COLUMNS, else 80, when not a tty)."""
    from rich.console import Console
    return Console(file=stream, highlight=False)
