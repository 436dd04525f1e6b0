"""What every check shares: the grading context, turning a failed call into words, point splits."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING

from ..results import CheckResult
from ..judges import squeeze_to  # noqa: F401
from .spec import split_points, zero_results  # noqa: F401 - defined once, used by every check

if TYPE_CHECKING:  # the checks run before config and the worker are imported (checks/registry.py)
    from ..config import CourseConfig
    from ..worker.session import Reply, WorkerSession


#: Diagnosis ids that describe a symptom or a bookkeeping fact, not a bug: never counted as bugs
#: (batch/summary.py's "most common bugs"), never the "root cause" another check points to.
SYMPTOM_TAGS = frozenset({"batch_size_dependent", "not_checked", "not_credited", "not_learning", "too_slow",
                          "did_not_converge", "explained_by_other_check", "grader_error", "diverged",
                          "plateaued", "timeout", "crashed", "exception", "grad_wrong", "forward_wrong"})


@dataclass
class Context:
    """What a check may use: the course config, the hidden reference, and the student's worker."""
    config: CourseConfig
    ref: ModuleType
    session: WorkerSession
    mutations: dict[str, set[str]] = field(default_factory=dict)  # function -> inputs it changed
    succeeded: set[str] = field(default_factory=set)              # functions that returned at least once
    results: list[CheckResult] = field(default_factory=list)      # results of the checks run before (grade.py)
    right: set[str] = field(default_factory=set)                  # functions right on at least one case

    def root_cause(self, check_ids: tuple[str, ...] = ("forward", "gradients", "sgd_step")) -> CheckResult | None:
        """The first failed result of an earlier check that names a bug (not just a symptom)."""
        for r in self.results:
            if r.check_id in check_ids and not r.passed and set(r.diagnoses) - SYMPTOM_TAGS:
                return r
        return None

    def note_mutation(self, function: str, reply: Reply) -> None:
        if reply.ok:
            self.succeeded.add(function)
        changed = reply.meta.get("mutated") if reply.ok else None
        if isinstance(changed, list) and changed:
            self.mutations.setdefault(function, set()).update(str(c)[:40] for c in changed[:10])


def explain_failure(function: str, reply: Reply) -> str:
    """A failed call in the words a TA would use, with the student's own error text."""
    if reply.kind == "not_implemented":
        return (f"{function} is not implemented yet (it raised NotImplementedError: {reply.error}). "
                "Fill in the stub in mlp.py; the public tests (`python -m pytest` in assignment/) check it first.")
    if reply.kind == "syntax":
        return f"mlp.py has a syntax error: {reply.error}. Run `python mlp.py` to see it."
    if reply.kind == "missing_module":
        name = reply.error.strip().split(".")[0][:60] or "a module"
        if name == "gradcheck":
            return ("mlp.py could not import gradcheck: keep gradcheck.py from the handout unchanged "
                    "(the grader puts its own copy next to mlp.py)")
        return (f"the module {name} is not available to the grader: mlp.py may import only numpy, the Python "
                "standard library and the handout's gradcheck.py. Move plotting and other tools to the notebook "
                "(the public self-tests check this before you submit)")
    if reply.kind == "memory":
        return f"{function} ran out of memory (the limit is stated in the report); avoid huge intermediate arrays."
    if reply.kind in ("timeout", "crashed", "protocol"):
        return reply.error
    trace = clean_traceback(reply.traceback)
    return f"{function} raised {scrub_paths(reply.error)}" + (f"\n{trace}" if trace else "")


STUDENT_FILES = ("mlp.py", "gradcheck.py")
_FRAME = re.compile(r'^\s*File "([^"]*)", line (\d+), in (.*)$')
_ABS_PATH = re.compile(r"(?<![\w.])/(?:[\w.+@-]+/)+([\w.+@-]+)")


def scrub_paths(text: str) -> str:
    """Absolute paths (the grader's scratch folder, the project, the interpreter) cut to their file name."""
    return _ABS_PATH.sub(lambda m: m.group(1), str(text))


def clean_traceback(text: str) -> str:
    """A worker traceback reduced to the student's own frames (mlp.py, gradcheck.py) and the error line:
    no harness.py frames, no <frozen importlib...> or numpy internals, no absolute paths."""
    if not text or not text.strip():
        return ""
    out: list[str] = []
    keep = False
    frames = 0
    for line in text.strip().splitlines():
        match = _FRAME.match(line)
        if match:
            name = match.group(1).rsplit("/", 1)[-1]
            keep = name in STUDENT_FILES and not match.group(1).startswith("<")
            if keep:
                frames += 1
                out.append(f'  File "{name}", line {match.group(2)}, in {match.group(3)}')
            continue
        if line.startswith("    ") or line.strip().startswith(("^", "~")):
            if keep:
                out.append(line)
            continue
        keep = False
        if line.startswith("Traceback"):
            out.append(line)
        elif line.strip():
            out.append(scrub_paths(line))
    if not frames:
        out = [line for line in out if not line.startswith("Traceback")]
    return "\n".join(out)


def failure_tag(reply: Reply) -> list[str]:
    return {"not_implemented": ["not_implemented"], "timeout": ["timeout"], "crashed": ["crashed"],
            "memory": ["memory"], "syntax": ["syntax_error"], "protocol": ["hostile_protocol"],
            "missing_module": ["forbidden_import"]}.get(
                reply.kind, ["exception"])


def fmt(x: float) -> str:
    return f"{x:.2e}"
