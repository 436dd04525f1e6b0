"""Per-function winnowed token fingerprints of one Python source (copydetect's hashing and winnowing).

copydetect (MOSS-style) turns code into a filtered string (its tokens, every identifier written
``V``, every string ``S``, comments and whitespace dropped); its fingerprints are hashes of the
``K``-character substrings of that string, thinned by winnowing. This module keeps that scheme and its
function ``get_document_fingerprints`` with three changes, each measured in docs/design.md:

* identifiers are renamed consistently instead of all becoming ``V``: the n-th distinct identifier of a
  function becomes the n-th symbol, so a renamed copy gives the same string while ``(probs - Y)`` and
  ``(Y - probs)``, or ``d.T @ X`` and ``X.T @ d``, stay different (with ``V`` they are one string, and
  3 of the 15 known-bug mutants are exact copies of the reference); attribute names after ``.``
  (``.sum``, ``np.einsum``) are library names a copier does not rename, and are kept as written;
* docstrings are blanked first (the characters become spaces, so positions still match the text the
  instructor sees): a docstring is never a match, whether the student kept, changed or removed it;
* every top-level ``def``/``class`` (and every other top-level statement) is fingerprinted on
  its own, with its own identifier numbering, so no fingerprint spans two functions: reordering the
  functions of a file changes nothing, and one function copied into own code can be scored alone.

Nothing is executed: the source is only parsed (``ast``) and tokenized (``tokenize``; pygments, as
copydetect does, for a file with a syntax error).
"""
from __future__ import annotations

import ast
import builtins
import functools
import io
import keyword
import re
import tokenize
from dataclasses import dataclass, field
from typing import Iterable

import numpy as np
from pygments.lexers import PythonLexer
from pygments.token import Comment, Name, String, Text

K = 25          # copydetect's noise threshold: matches shorter than this (filtered characters) are ignored
WINDOW = 1      # winnowing window; copydetect's guarantee threshold is K + WINDOW - 1 (its default: 25)
MODULE_CODE = "(module code)"
MAX_TEXT = 128 * 1024   # characters of a submission compared (a real mlp.py: a few KiB)
MAX_UNITS = 400         # units (functions, statements) of a submission kept, the largest first


@dataclass
class Unit:
    """One top-level function, class or run of module-level statements, and its fingerprints.

    ``hashes`` maps each fingerprint to its positions in ``filtered``; ``token_start``/``token_end``
    (both shape (len(filtered),)) give the offsets in the unit of the token behind each character.
    """
    name: str
    start: int                 # character offset of the unit in Fingerprint.text
    end: int
    filtered: str
    token_start: np.ndarray
    token_end: np.ndarray
    hashes: dict[int, list[int]] = field(default_factory=dict)

    def raw_span(self, lo: int, hi: int) -> tuple[int, int]:
        """The character range of ``Fingerprint.text`` behind filtered[lo:hi] (0 <= lo < hi)."""
        hi = min(hi, len(self.filtered))
        return self.start + int(self.token_start[lo]), self.start + int(self.token_end[hi - 1])


@dataclass
class Fingerprint:
    """A source as the report shows it (``text``: ``\\n`` line endings) and its units' fingerprints."""
    text: str
    units: list[Unit]
    parsed: bool               # False: a syntax error, fingerprinted as one unit, docstrings kept
    truncated: bool = False    # True: longer than MAX_TEXT; only the start was compared

    def hashes(self) -> set[int]:
        out: set[int] = set()
        for u in self.units:
            out.update(u.hashes)
        return out


def normalise_newlines(source: str) -> str:
    return source.replace("\r\n", "\n").replace("\r", "\n")


def _line_starts(text: str) -> list[int]:
    starts = [0]
    for i, ch in enumerate(text):
        if ch == "\n":
            starts.append(i + 1)
    return starts


def _char_index(text: str, starts: list[int], lineno: int, col_utf8: int) -> int:
    """ast positions (1-based line, UTF-8 byte column) -> a character offset into ``text``."""
    line_start = starts[min(lineno - 1, len(starts) - 1)]
    line_end = text.find("\n", line_start)
    line = text[line_start: len(text) if line_end < 0 else line_end]
    return line_start + len(line.encode("utf-8")[:col_utf8].decode("utf-8", "ignore"))


def _docstrings(tree: ast.AST) -> Iterable[ast.Expr]:
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) \
                    and isinstance(first.value.value, str):
                yield first


def blank_docstrings(text: str, docs: list[ast.Expr]) -> str:
    """``text`` with the characters of every docstring in ``docs`` (newlines aside) replaced by spaces."""
    starts = _line_starts(text)
    chars = list(text)
    for doc in docs:
        lo = _char_index(text, starts, doc.lineno, doc.col_offset)
        hi = _char_index(text, starts, doc.end_lineno or doc.lineno, doc.end_col_offset or 0)
        for i in range(lo, hi):
            if chars[i] != "\n":
                chars[i] = " "
    return "".join(chars)


def _spans(tree: ast.Module, docstrings: list[ast.Expr]) -> list[tuple[str, int, int]]:
    """(name, first line, last line) of each unit: a def, a method of a top-level class (``C.m``), or
    another top-level (or class-level) statement."""
    docs = {id(d) for d in docstrings}
    spans: list[tuple[str, int, int]] = []

    def add(nodes, prefix: str) -> None:
        for node in nodes:
            if id(node) in docs:
                continue
            first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
            last = node.end_lineno or node.lineno
            if isinstance(node, ast.ClassDef) and not prefix:
                add(node.body, f"{node.name}.")
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                spans.append((prefix + node.name, first, last))
            elif not spans or spans[-1][2] < first:      # one unit per statement (or per line)
                spans.append((f"{prefix or ''}{MODULE_CODE} line {first}", first, last))

    add(tree.body, "")
    return spans


_LEXER = PythonLexer()
_SYMBOLS = 0xE000          # identifiers become private-use characters U+E000, U+E001, ... (one per name)
_QUOTES = ("'", '"', "'''", '"""')
_CLOSING = (")", "]", "}")
_BUILTINS = frozenset(dir(builtins))
_SKIP = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT, tokenize.ENDMARKER}
_STRINGS = {tokenize.STRING} | {getattr(tokenize, n) for n in ("FSTRING_START", "FSTRING_MIDDLE", "FSTRING_END")
                                 if hasattr(tokenize, n)}
_BEFORE_WHOLE = {"return", "yield", "=", "+=", "-=", "*=", "/=", "@=", "//=", "%=", "**="}


def _piece(kind: str, value: str, previous: str, names: dict[str, int]) -> str:
    """What one token contributes to the filtered string (see the module docstring)."""
    if kind == "string":
        return "S"
    if kind == "name" and not keyword.iskeyword(value) and value not in _BUILTINS and previous != ".":
        return chr(_SYMBOLS + names.setdefault(value, len(names)) % 6000)
    return "".join(value.split())


def _stdlib_tokens(code: str) -> list[tuple[str, str, int, int]]:
    """(kind, text, start, end) of the code tokens, by the standard library's tokenizer (fast path)."""
    starts = _line_starts(code)
    out = []
    for t in tokenize.generate_tokens(io.StringIO(code).readline):
        if t.type in _SKIP:
            continue
        kind = ("string" if t.type in _STRINGS else "name" if t.type == tokenize.NAME else "op")
        start = starts[t.start[0] - 1] + t.start[1]
        out.append((kind, t.string, start, starts[t.end[0] - 1] + t.end[1]))
    return out


def _pygments_tokens(code: str) -> list[tuple[str, str, int, int]]:
    """The same from pygments, which also lexes code that does not tokenize (syntax errors)."""
    out = []
    for index, kind, value in _LEXER.get_tokens_unprocessed(code):
        if kind in Text or kind in Comment or kind in String.Doc or not value.strip() or value in _QUOTES:
            continue
        kind_name = "string" if kind in String else "name" if kind in Name and value.isidentifier() else "op"
        out.append((kind_name, value, index, index + len(value)))
    return out


def _tokens(code: str, pygments: bool = False) -> list[list]:
    """[piece, start, end] per kept token: copydetect's filtering, identifiers numbered per unit."""
    try:
        raw = _pygments_tokens(code) if pygments else _stdlib_tokens(code)
    except (tokenize.TokenError, SyntaxError, IndentationError):
        raw = _pygments_tokens(code)
    toks: list[list] = []
    names: dict[str, int] = {}
    previous = ""
    for kind, value, start, end in raw:
        piece = _piece(kind, value, previous, names)
        previous = value
        if piece == "S" and toks and toks[-1][0] == "S":
            continue
        if piece in _CLOSING and toks and toks[-1][0] == ",":   # a trailing comma is formatting, not code
            toks.pop()
        if piece:
            toks.append([piece, start, end])
    return toks


def _drop_outer_parens(toks: list[list], code: str) -> list[list]:
    """``return (a, b)`` -> ``return a, b``, ``x = (a, b)`` -> ``x = a, b``: parentheses around a whole
    returned or assigned expression are layout (``ast.unparse`` and formatters add and remove them)."""
    drop: set[int] = set()
    for i, (piece, _, _) in enumerate(toks[:-1]):
        if piece not in _BEFORE_WHOLE or toks[i + 1][0] != "(":
            continue
        depth = 0
        for j in range(i + 1, len(toks)):
            depth += toks[j][0] in ("(", "[", "{")
            depth -= toks[j][0] in _CLOSING
            if depth == 0:
                break
        if depth == 0 and toks[j][0] == ")" and (j + 1 == len(toks) or "\n" in code[toks[j][2]:toks[j + 1][1]]):
            drop.update((i + 1, j))
    return [t for k, t in enumerate(toks) if k not in drop]


def filter_code(code: str, pygments: bool = False) -> tuple[str, np.ndarray, np.ndarray]:
    """copydetect's filtered string with identifiers numbered by first appearance, and where each
    filtered character came from: (filtered, token_start, token_end), both arrays (len(filtered),)."""
    toks = _drop_outer_parens(_tokens(code, pygments), code)
    starts = [t[1] for t in toks for _ in t[0]]
    ends = [t[2] for t in toks for _ in t[0]]
    return "".join(t[0] for t in toks), np.asarray(starts, dtype=np.int64), np.asarray(ends, dtype=np.int64)


def _unit(name: str, text: str, start: int, end: int, template: frozenset[int] | set[int],
          pygments: bool = False) -> Unit:
    filtered, token_start, token_end = filter_code(text[start:end], pygments)
    unit = Unit(name, start, end, filtered, token_start, token_end)
    if len(filtered) >= K:
        # imported here: copydetect imports matplotlib.pyplot (0.5 s of CPU) for its reports, which this
        # module never draws, and every importer of the similarity package would pay for it
        from copydetect.utils import get_document_fingerprints
        _, positions = get_document_fingerprints(filtered, K, WINDOW)
        unit.hashes = {int(h): [int(p) for p in pos] for h, pos in positions.items() if int(h) not in template}
    return unit


def fingerprint(source: str, template: frozenset[int] | set[int] = frozenset()) -> Fingerprint:
    """Fingerprints of ``source`` with every hash in ``template`` (see :func:`template_hashes`) left out.

    Only the first ``MAX_TEXT`` characters are read (a real mlp.py is a few KiB), and at most
    ``MAX_UNITS`` units are kept (the largest), so no submission can make the comparison slow.
    """
    text = normalise_newlines(source)
    truncated = len(text) > MAX_TEXT
    if truncated:  # cut before the last top-level line that starts within the limit
        cut = text.rfind("\n", 0, MAX_TEXT)
        while cut > 0 and text[cut + 1: cut + 2].isspace():
            cut = text.rfind("\n", 0, cut)
        text = text[: cut + 1] if cut > 0 else text[:MAX_TEXT]
    try:
        tree = ast.parse(text)
        docs = list(_docstrings(tree))
        spans = _spans(tree, docs)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return Fingerprint(text, _units_without_ast(text, template), False, truncated)
    blanked = blank_docstrings(text, docs)
    starts = _line_starts(text) + [len(text) + 1]
    units = []
    for name, first, last in spans:
        start, end = starts[first - 1], min(len(text), starts[last] - 1)
        units.append(_unit(name, blanked, start, end, template))
    if len(units) > MAX_UNITS:
        keep = set(sorted(range(len(units)), key=lambda i: -len(units[i].hashes))[:MAX_UNITS])
        units = [u for i, u in enumerate(units) if i in keep]
    return Fingerprint(text, units, True, truncated)


_TOP_LEVEL = re.compile(r"^(?:async\s+def|def|class|@)\b|^@", re.MULTILINE)


def _units_without_ast(text: str, template: frozenset[int] | set[int]) -> list[Unit]:
    """A file that does not parse: cut at each top-level ``def``/``class``/decorator line, lexed by
    pygments (which marks docstrings), so its intact functions still match."""
    cuts = [0] + [m.start() for m in _TOP_LEVEL.finditer(text) if m.start() > 0] + [len(text)]
    units = []
    for lo, hi in zip(cuts, cuts[1:]):
        if text[lo:hi].strip():
            units.append(_unit(f"(syntax error) line {text.count(chr(10), 0, lo) + 1}", text, lo, hi, template,
                               pygments=True))
    return units[:MAX_UNITS]


def template_hashes(sources: Iterable[str]) -> frozenset[int]:
    """Every fingerprint of the template sources (the handout skeleton, starter code, ``--template``).
    A pure function of the texts, remembered per process: every batch run's summary asks for the same
    handout's (about 0.2 CPU s each time)."""
    return _template_hashes(tuple(sources))


@functools.lru_cache(maxsize=8)
def _template_hashes(sources: tuple[str, ...]) -> frozenset[int]:
    out: set[int] = set()
    for source in sources:
        out |= fingerprint(source).hashes()
    return frozenset(out)
