"""The otter/nbgrader assignment in one neutral form; :mod:`.otter` and :mod:`.nbgrader` write it out.

The notebook holds the student's module in two code cells: the implementation (everything of
``solutions/mlp.py`` but its top-level solution blocks) and the helpers (those blocks: the
reference's private helpers, optional for students). One question per check follows, with the
check's tests. Solution regions are rendered in each tool's own marker syntax by a ``Markers``
object, so the reference's marker grammar is parsed once and written twice.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from ..checks.registry import CORE, EXTENSIONS
from ..checks.training import PARTIAL_SCALE
from ..config import CourseConfig
from ..handout.markers import Code, SolutionBlock, SolutionLine, parse
from ..handout.skeleton import _enclosing_function, stub_message
from ..paths import SOLUTIONS_DIR
from ..reference import set_activation_line
from .expected import ReleaseTest, notebook_budget

CHECKS_MODULE = "bplab_checks"
TRAINING_MODULE = "bplab_training"  # autograder/release/nbtraining.py, imported by bplab_checks.py
NOTEBOOK = "backprop_lab.ipynb"


class Markers(Protocol):
    def block(self, indent: str, lines: list[str], stub: str | None) -> list[str]:
        """A solution region; ``stub`` is the NotImplementedError message (None: top-level helpers)."""


@dataclass
class Question:
    check_id: str
    points: float
    prompt: str
    tests: list[ReleaseTest] = field(default_factory=list)


def _render(segments, markers: Markers) -> list[str]:
    out: list[str] = []
    for seg in segments:
        if isinstance(seg, Code):
            out.extend(seg.lines)
            continue
        lines = list(seg.lines) if isinstance(seg, SolutionBlock) else [seg.code]
        indent = seg.indent
        function = _enclosing_function(out, indent) if indent else None
        hint = seg.hint if isinstance(seg, SolutionBlock) else None
        out.extend(markers.block(indent, lines, stub_message(function, hint) if function else None))
    while out and not out[-1].strip():
        out.pop()
    return out


def module_cells(config: CourseConfig, markers: Markers) -> tuple[str, str]:
    """(implementation cell, helpers cell) sources with solution regions in ``markers``' syntax."""
    text = set_activation_line((SOLUTIONS_DIR / "mlp.py").read_text(encoding="utf-8"), config.activation)
    parsed = parse(text, "solutions/mlp.py")
    top = [s for s in parsed.segments if isinstance(s, (SolutionBlock, SolutionLine)) and not s.indent]
    rest = [s for s in parsed.segments if s not in top]
    implementation = "\n".join(_render(rest, markers))
    helpers = "\n".join(["# Your own helper functions (for example the activation and its derivative) go in this",
                         "# cell, if you want any (delete the placeholder below if you need none). The graded",
                         "# functions are in the cell above."]
                        + _render(top, markers))
    return implementation, helpers


def extension_cell(config: CourseConfig, markers: Markers) -> str | None:
    """The enabled extensions' cell (``solutions/extensions.py`` with its solution regions in ``markers``'
    syntax), or None when course.toml enables none."""
    if not any(config.extensions.values()):
        return None
    parsed = parse((SOLUTIONS_DIR / "extensions.py").read_text(encoding="utf-8"), "solutions/extensions.py")
    return "\n".join(["# Optional extensions enabled this year: " + ", ".join(k for k, on in config.extensions.items()
                                                                        if on) + " (the others are not graded)."]
                     + _render(parsed.segments, markers))


def intro(config: CourseConfig) -> str:
    return (f"# {config.name}: backprop lab ({config.year})\n\n"
            f"Implement a one-hidden-layer network in numpy. **This year's hidden activation is "
            f"`{config.activation}`.** Write `init_params`, `forward`, `backward` and `sgd_step` in the first code "
            "cell below (the docstrings give every shape; keep the names and signatures), run it, then run the "
            "test cells. Shapes are batch-major: `X` is `(N, n_in)`, `Y` one-hot `(N, n_out)`.\n\n"
            f"The tests call `{CHECKS_MODULE}.py` (next to this notebook). Public tests check your code on "
            "a public toy case; hidden tests use this year's hidden cases. Points per part: "
            + ", ".join(f"{k} {v:g}" for k, v in graded_parts(config).items())
            + f" (total {sum(graded_parts(config).values()):g}).")


def _training_prompt(config: CourseConfig) -> str:
    steps = sorted(PARTIAL_SCALE, key=lambda ef: -ef[0])
    scale = "; ".join(f"below {e:.0%}: {f:.0%}" for e, f in steps)
    t = config.training
    return (f"The network is trained on MNIST (50,000 training images) with YOUR four functions and YOUR "
            f"`HYPERPARAMS`, by the grader's own minibatch SGD loop, and evaluated on the 10,000 test images "
            f"every {t.eval_every_epochs:g} epoch (at most {t.max_epochs} epochs). Full points for a test error "
            f"below {t.target_error:.0%} within the budget of {notebook_budget(config):.0f} CPU seconds of "
            f"training; partial credit for the best test error seen: {scale}. The public self-check does the "
            "same on the validation images. MNIST (its `.npy` split) is found through the environment variable "
            "`BPLAB_MNIST`, a file `bplab_mnist.txt` holding its path, or a folder `mnist/` next to this notebook.")


PROMPTS = {s.check_id: s.prompt for s in CORE if s.prompt}  # autograder/checks/registry.py
EXTENSION_PROMPTS = {s.check_id: s.prompt for s in EXTENSIONS}


def graded_parts(config: CourseConfig) -> dict[str, float]:
    """Points per graded part: the rubric, then each enabled extension (course.toml's extension_points)."""
    extra = {k: float(config.extension_points[k]) for k, on in config.extensions.items() if on}
    return {**{k: float(v) for k, v in config.rubric.items()}, **extra}


def questions(config: CourseConfig, tests: list[ReleaseTest]) -> list[Question]:
    """One question per check id (rubric order), then one per enabled extension, each with its tests."""
    out = []
    for check_id, points in graded_parts(config).items():
        prompt = PROMPTS.get(check_id) or EXTENSION_PROMPTS.get(check_id) or _training_prompt(config)
        out.append(Question(check_id, float(points), prompt, [t for t in tests if t.check_id == check_id]))
    return out
