"""The solution-marker grammar: parse a reference source once into code and solution segments.

Grammar (one marker per line, nothing else on a marker line but indentation):

    # BEGIN SOLUTION                 a solution block starts on the next line
    # BEGIN SOLUTION: <hint text>    the same, with a hint for the student's stub
    # END SOLUTION                   the block ends; same indentation as its BEGIN
    <code>  # SOLUTION               this one code line is a solution line

Blocks do not nest, every BEGIN has its END, and no line marker sits inside a block. Anything that
looks like a marker but is not exactly one of these forms (wrong case, missing space, text after
END, ...) is an error too, so a typo can never leak a solution. Every error names the line.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Union

from ..errors import UserError

_BEGIN = re.compile(r"^(?P<indent>[ \t]*)# BEGIN SOLUTION(?::(?P<hint>.*))?$")
_END = re.compile(r"^(?P<indent>[ \t]*)# END SOLUTION$")
_LINE = re.compile(r"^(?P<code>[ \t]*[^#\s].*?)[ \t]+# SOLUTION$")
# Anything resembling a marker; a line matching this but none of the strict forms is an error.
_LOOSE = re.compile(r"#\s*(BEGIN\s*SOLUTION|END\s*SOLUTION|SOLUTION\b)", re.IGNORECASE)


class MarkerError(UserError):
    """A solution marker is malformed, nested or unmatched."""

    def __init__(self, path: str, lineno: int, message: str) -> None:
        super().__init__(f"{path}:{lineno}: {message}")
        self.path = path
        self.lineno = lineno


@dataclass(frozen=True)
class Code:
    """Lines shipped as they are. ``start`` is the 1-based number of the first line."""

    lines: tuple[str, ...]
    start: int


@dataclass(frozen=True)
class SolutionBlock:
    """The lines between a BEGIN and its END (markers excluded).

    ``begin``/``end`` are the 1-based line numbers of the two marker lines; ``indent`` is the
    BEGIN marker's indentation; ``hint`` is the text after ``BEGIN SOLUTION:`` or None.
    """

    lines: tuple[str, ...]
    begin: int
    end: int
    indent: str
    hint: str | None


@dataclass(frozen=True)
class SolutionLine:
    """One code line that ended in ``# SOLUTION`` (``code`` is the line without the marker)."""

    code: str
    lineno: int

    @property
    def indent(self) -> str:
        return self.code[: len(self.code) - len(self.code.lstrip())]


Segment = Union[Code, SolutionBlock, SolutionLine]


@dataclass(frozen=True)
class ParsedSource:
    """A reference source split into segments, in source order (marker lines are not kept)."""

    path: str
    segments: tuple[Segment, ...]

    @property
    def solutions(self) -> tuple[SolutionBlock | SolutionLine, ...]:
        return tuple(s for s in self.segments if not isinstance(s, Code))

    def solution_lines(self) -> list[str]:
        """Every line of every solution region (without the marker lines)."""
        out: list[str] = []
        for seg in self.solutions:
            out.extend(seg.lines if isinstance(seg, SolutionBlock) else [seg.code])
        return out


def parse(text: str, path: str = "<source>") -> ParsedSource:
    """Split ``text`` into Code / SolutionBlock / SolutionLine segments; MarkerError on bad markers."""
    segments: list[Segment] = []
    code: list[str] = []
    code_start = 1
    block: list[str] | None = None
    begin_no, begin_indent, hint = 0, "", None

    def flush_code(next_start: int) -> None:
        nonlocal code, code_start
        if code:
            segments.append(Code(tuple(code), code_start))
        code, code_start = [], next_start

    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.rstrip()
        begin, end, one = _BEGIN.match(line), _END.match(line), _LINE.match(line)
        if begin:
            if block is not None:
                raise MarkerError(path, lineno, f"nested BEGIN SOLUTION: the block opened on line {begin_no} "
                                  "has no END SOLUTION before this one (blocks do not nest)")
            flush_code(lineno + 1)
            block, begin_no, begin_indent = [], lineno, begin.group("indent")
            hint = (begin.group("hint") or "").strip() or None
        elif end:
            if block is None:
                raise MarkerError(path, lineno, "END SOLUTION without a BEGIN SOLUTION before it")
            if end.group("indent") != begin_indent:
                raise MarkerError(path, lineno, f"END SOLUTION is indented differently from its BEGIN SOLUTION "
                                  f"on line {begin_no}; put both at the same indentation")
            segments.append(SolutionBlock(tuple(block), begin_no, lineno, begin_indent, hint))
            block = None
            code_start = lineno + 1
        elif one:
            if block is not None:
                raise MarkerError(path, lineno, f"'# SOLUTION' line marker inside the block opened on line "
                                  f"{begin_no}; the whole block is already a solution")
            flush_code(lineno + 1)
            segments.append(SolutionLine(one.group("code").rstrip(), lineno))
        elif _LOOSE.search(line):
            raise MarkerError(path, lineno, f"malformed solution marker {line.strip()!r}; use exactly "
                              "'# BEGIN SOLUTION[: hint]', '# END SOLUTION' or '<code>  # SOLUTION'")
        elif block is not None:
            block.append(raw)
        else:
            code.append(raw)
    if block is not None:
        raise MarkerError(path, begin_no, "BEGIN SOLUTION is never closed; add '# END SOLUTION'")
    flush_code(0)
    return ParsedSource(path, tuple(segments))
