"""The solution-marker grammar (autograder/handout/markers.py): what parses, and what is an error."""
from __future__ import annotations

import textwrap

import pytest

from autograder.errors import UserError
from autograder.handout.markers import Code, MarkerError, SolutionBlock, SolutionLine, parse
from autograder.paths import SOLUTIONS_DIR


def src(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def test_reference_parses_into_four_stubs_and_one_helper_block():
    """Does the real reference parse, with one hinted block per API function and one top-level block?"""
    parsed = parse((SOLUTIONS_DIR / "mlp.py").read_text(), "solutions/mlp.py")
    blocks = [s for s in parsed.segments if isinstance(s, SolutionBlock)]
    assert len(blocks) == 5
    assert [b.indent for b in blocks] == ["    "] * 4 + [""]
    assert all(b.hint for b in blocks[:4]), "every API stub needs a hint"
    assert "def _activate(a):" in blocks[4].lines


def test_block_with_and_without_hint():
    """Are the hint text, the marker line numbers and the indentation recorded?"""
    parsed = parse(src("""
        def f(x):
            # BEGIN SOLUTION: double it
            return 2 * x
            # END SOLUTION


        def g(x):
            # BEGIN SOLUTION
            return x
            # END SOLUTION
        """))
    kinds = [type(s) for s in parsed.segments]
    assert kinds == [Code, SolutionBlock, Code, SolutionBlock]
    first, second = parsed.segments[1], parsed.segments[3]
    assert (first.hint, first.begin, first.end, first.indent) == ("double it", 2, 4, "    ")
    assert first.lines == ("    return 2 * x",)
    assert second.hint is None and (second.begin, second.end) == (8, 10)
    assert parsed.segments[2].start == 5


def test_empty_hint_after_colon_is_no_hint():
    parsed = parse("def f():\n    # BEGIN SOLUTION:   \n    pass\n    # END SOLUTION\n")
    assert parsed.solutions[0].hint is None


def test_line_marker():
    """Is a code line ending in '# SOLUTION' one solution line, without the marker?"""
    parsed = parse(src("""
        def f(x):
            y = x + 1  # SOLUTION
            return y
        """))
    line = parsed.segments[1]
    assert isinstance(line, SolutionLine)
    assert (line.code, line.lineno, line.indent) == ("    y = x + 1", 2, "    ")
    assert parsed.solution_lines() == ["    y = x + 1"]


def test_code_lines_are_kept_in_order():
    """Does every non-marker line end up in exactly one segment, in source order?"""
    text = src("""
        a = 1
        # BEGIN SOLUTION
        b = 2
        # END SOLUTION
        c = 3  # SOLUTION
        d = 4
        """)
    parsed = parse(text)
    lines = []
    for seg in parsed.segments:
        lines.extend(seg.lines if not isinstance(seg, SolutionLine) else [seg.code])
    assert lines == ["a = 1", "b = 2", "c = 3", "d = 4"]


@pytest.mark.parametrize("text, lineno, words", [
    ("# BEGIN SOLUTION\nx = 1\n# BEGIN SOLUTION\ny = 2\n# END SOLUTION\n# END SOLUTION\n", 3, "nested"),
    ("x = 1\n# END SOLUTION\n", 2, "without a BEGIN"),
    ("x = 1\n# BEGIN SOLUTION: hint\ny = 2\n", 2, "never closed"),
    ("# BEGIN SOLUTION\nx = 1  # SOLUTION\n# END SOLUTION\n", 2, "inside the block opened on line 1"),
    ("def f():\n    # BEGIN SOLUTION\n    pass\n# END SOLUTION\n", 4, "indented differently"),
])
def test_structural_errors_name_the_line(text, lineno, words):
    """Are nested, unmatched and misplaced markers errors that give the line number?"""
    with pytest.raises(MarkerError) as info:
        parse(text, "mlp.py")
    assert info.value.lineno == lineno
    assert str(info.value).startswith(f"mlp.py:{lineno}: ")
    assert words in str(info.value)


@pytest.mark.parametrize("bad", [
    "# begin solution",
    "#BEGIN SOLUTION",
    "# BEGIN SOLUTION hint without a colon",
    "# END SOLUTION here",
    "# BEGIN  SOLUTION",
    "x = 1  # solution",
    "x = 1  #SOLUTION",
    "x = 1  # SOLUTION: a hint is not allowed on a line marker",
])
def test_malformed_markers_are_errors(bad):
    """Is a near-miss marker an error rather than silently shipped code?"""
    with pytest.raises(MarkerError) as info:
        parse(f"a = 0\n{bad}\nb = 1\n", "mlp.py")
    assert info.value.lineno == 2
    assert "malformed" in str(info.value)


def test_marker_errors_are_user_errors():
    """Does the CLI print a marker error as one line (exit 2) rather than a traceback?"""
    assert issubclass(MarkerError, UserError)


def test_source_without_markers_is_all_code():
    parsed = parse("x = 1\ny = 2\n")
    assert parsed.segments == (Code(("x = 1", "y = 2"), 1),)
    assert parsed.solutions == ()
