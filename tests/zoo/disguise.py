"""The usual disguises of a copied mlp.py, applied programmatically (for the similarity tests and bench).

Each function takes a source and returns a disguised source that still runs the same: renamed
variables, parameters and helpers; reordered functions; comments removed and others written;
docstrings removed or rewritten; reformatted (ast.unparse, two-space indents, extra blank lines);
as a notebook; one function transplanted into another file. Nothing here executes the sources.
"""
from __future__ import annotations

import ast
import io
import json
import keyword
import random
import re
import tokenize

API = {"init_params", "forward", "backward", "sgd_step", "HYPERPARAMS", "ACTIVATION", "SUGGESTED_HYPERPARAMS"}
WORDS = ["alpha", "beta", "gamma", "delta", "omega", "tmp", "val", "acc", "res", "out", "buf", "mat", "vec",
         "z", "q", "u", "layer", "hid", "act", "grad", "inp", "targ", "weights", "bias", "store"]


def _renamable(src: str) -> set[str]:
    """Local variables, parameters and helper functions (never the API, builtins or modules)."""
    tree = ast.parse(src)
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.Lambda)):
            names.update(a.arg for a in node.args.args)
            if isinstance(node, ast.FunctionDef) and node.name.startswith("_"):
                names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.comprehension):
            for t in ast.walk(node.target):
                if isinstance(t, ast.Name):
                    names.add(t.id)
    imported = {a.asname or a.name for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))
                for a in n.names}
    return {n for n in names if n not in API and n not in imported and not keyword.iskeyword(n)}


def rename(src: str, seed: int = 0) -> str:
    """Every renamable name replaced by a fresh one (attributes and keyword arguments untouched)."""
    rng = random.Random(seed)
    names = sorted(_renamable(src))
    fresh = {}
    for i, n in enumerate(names):
        fresh[n] = f"{rng.choice(WORDS)}_{i}" if not n.startswith("_") else f"_helper_{rng.choice(WORDS)}_{i}"
    toks = list(tokenize.generate_tokens(io.StringIO(src).readline))
    lines = src.splitlines(keepends=True)
    edits = []
    for k, t in enumerate(toks):
        if t.type != tokenize.NAME or t.string not in fresh:
            continue
        prev = toks[k - 1].string if k else ""
        nxt = toks[k + 1].string if k + 1 < len(toks) else ""
        if prev == "." or (nxt == "=" and _inside_call(toks, k)):
            continue
        edits.append((t.start, t.end, fresh[t.string]))
    for (r0, c0), (_, c1), new in sorted(edits, reverse=True):
        line = lines[r0 - 1]
        lines[r0 - 1] = line[:c0] + new + line[c1:]
    return "".join(lines)


def _inside_call(toks, k) -> bool:
    depth = 0
    for t in reversed(toks[:k]):
        if t.string in ")]}":
            depth += 1
        elif t.string in "([{":
            if depth == 0:
                return t.string == "("
            depth -= 1
        elif t.type == tokenize.NEWLINE:
            return False
    return False


def _blocks(src: str) -> tuple[str, list[str]]:
    """(header, [each later top-level statement, a def with its decorators]) of a source."""
    tree = ast.parse(src)
    lines = src.splitlines(keepends=True)
    first = next((i for i, n in enumerate(tree.body) if isinstance(n, (ast.FunctionDef, ast.ClassDef))), None)
    if first is None:
        return src, []
    nodes = tree.body[first:]
    start = lambda n: min([n.lineno] + [d.lineno for d in getattr(n, "decorator_list", [])])  # noqa: E731
    header = "".join(lines[: start(nodes[0]) - 1])
    blocks = ["".join(lines[start(n) - 1: n.end_lineno]).rstrip("\n") + "\n" for n in nodes]
    return header, blocks


def reorder(src: str, seed: int = 0) -> str:
    """The top-level functions in another order (reversed, then shuffled by ``seed``)."""
    header, blocks = _blocks(src)
    blocks = blocks[::-1]
    random.Random(seed).shuffle(blocks)
    return header.rstrip("\n") + "\n\n\n" + "\n\n".join(blocks)


def recomment(src: str) -> str:
    """Every comment removed; new comments of the copier's own written above some lines."""
    out = []
    toks = tokenize.generate_tokens(io.StringIO(src).readline)
    comment_at = {t.start[0]: t.start[1] for t in toks if t.type == tokenize.COMMENT}
    for i, line in enumerate(src.splitlines(keepends=True), 1):
        if i in comment_at:
            line = line[: comment_at[i]].rstrip() + "\n"
            if not line.strip():
                continue
        stripped = line.lstrip()
        if stripped.startswith(("return", "for ")):
            indent = line[: len(line) - len(stripped)]
            out.append(f"{indent}# my step: {stripped.split()[0]} here\n")
        out.append(line)
    return "".join(out)


def redocstring(src: str, drop: bool = True) -> str:
    """Docstrings removed (``drop``) or replaced by one-liners of the copier's own."""
    tree = ast.parse(src)
    lines = src.splitlines(keepends=True)
    spans = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
                keep_one = len(node.body) == 1
                spans.append((first.lineno, first.end_lineno, first.col_offset, keep_one))
    for lo, hi, col, keep_one in sorted(spans, reverse=True):
        new = [] if drop and not keep_one else [" " * col + '"""My own implementation."""\n']
        lines[lo - 1: hi] = new
    return "".join(lines)


def reformat(src: str) -> str:
    """ast.unparse (quotes, line breaks, parentheses), two-space indents, a blank line after each def line."""
    text = ast.unparse(ast.parse(src))
    out = []
    for line in text.splitlines():
        stripped = line.lstrip(" ")
        depth = (len(line) - len(stripped)) // 4
        out.append("  " * depth + stripped)
        if stripped.startswith("def "):
            out.append("")
    return "\n".join(out) + "\n"


def to_notebook(src: str) -> str:
    """A notebook: a markdown cell, a magic, then one code cell per top-level block."""
    header, blocks = _blocks(src)
    cells = [{"cell_type": "markdown", "metadata": {}, "source": ["# My MLP\n", "Homework 3."]},
             {"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [],
              "source": ["%matplotlib inline"]}]
    for chunk in [header] + blocks:
        cells.append({"cell_type": "code", "metadata": {}, "execution_count": 1, "outputs": [],
                      "source": chunk.strip("\n").splitlines(keepends=True)})
    nb = {"cells": cells, "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3"}},
          "nbformat": 4, "nbformat_minor": 5}
    return json.dumps(nb, indent=1)


def function_of(src: str, name: str) -> str:
    for block in _blocks(src)[1]:
        if re.match(rf"def {re.escape(name)}\b", block):
            return block
    raise KeyError(name)


def transplant(src: str, donor: str, name: str) -> str:
    """``src`` with its function ``name`` replaced by the donor's (itself renamed)."""
    header, blocks = _blocks(src)
    theirs = rename(function_of(donor, name), seed=7)
    for i, block in enumerate(blocks):
        if re.match(rf"def {re.escape(name)}\b", block):
            blocks[i] = theirs
            return header + "\n\n".join(blocks)
    raise KeyError(name)


def combined(src: str, seed: int = 0) -> str:
    """Every disguise of a .py at once (the notebook is applied separately by the caller)."""
    return reformat(reorder(redocstring(recomment(rename(src, seed)), drop=False), seed))


DISGUISES = {
    "rename": rename,
    "reorder": reorder,
    "comments": recomment,
    "docstrings": redocstring,
    "reformat": reformat,
    "combined": combined,
}
