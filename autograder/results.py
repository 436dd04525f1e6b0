"""The grader's one result type, and the Gradescope results.json adapter over it."""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class CheckResult:
    """One graded test. ``name`` is ``"<check_id>: <label>"`` in results.json.

    ``diagnoses`` are short ids of recognised bugs (e.g. ``grad_factor_n``) for class statistics;
    ``evidence`` holds JSON-able numbers for the report (relative errors, curves, ...).
    """
    check_id: str
    label: str
    score: float
    max_score: float
    message: str
    diagnoses: list[str] = field(default_factory=list)
    evidence: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.check_id}: {self.label}"

    @property
    def passed(self) -> bool:
        return self.score >= self.max_score - 1e-9


@dataclass
class GradeReport:
    """Everything known about one graded submission."""
    results: list[CheckResult]
    isolation: str
    activation: str
    year: int
    status: str = "graded"          # graded, not_implemented, syntax_error, import_error, crashed
    notes: list[str] = field(default_factory=list)
    budget: dict[str, Any] = field(default_factory=dict)
    student_output: str = ""
    events: list[str] = field(default_factory=list)
    seconds: float = 0.0
    grader_version: str = ""

    @property
    def score(self) -> float:
        return round(sum(r.score for r in self.results), 4)

    @property
    def max_score(self) -> float:
        return round(sum(r.max_score for r in self.results), 4)

    def by_check(self) -> dict[str, float]:
        totals: dict[str, float] = {}
        for r in self.results:
            totals[r.check_id] = round(totals.get(r.check_id, 0.0) + r.score, 4)
        return totals

    def diagnoses(self) -> list[str]:
        seen: list[str] = []
        for r in self.results:
            seen += [d for d in r.diagnoses if d not in seen]
        return seen


def to_gradescope(report: GradeReport) -> dict[str, Any]:
    """Gradescope's results.json: score, max_score, output, tests[{name, score, max_score, output, status}]."""
    header = [f"Score {report.score:g} / {report.max_score:g}.",
              f"Isolation: {report.isolation}.",
              f"Activation this year: {report.activation}."]
    if report.budget:
        header.append(report.budget.get("statement", ""))
    header += report.notes
    tests = []
    for i, r in enumerate(report.results, 1):
        tests.append({"name": r.name, "number": str(i), "score": round(r.score, 4), "max_score": r.max_score,
                      "status": "passed" if r.passed else "failed", "output": r.message,
                      "visibility": "visible", "tags": list(r.diagnoses)})
    return {
        "score": report.score,
        "max_score": report.max_score,
        "output": "\n".join(h for h in header if h),
        "execution_time": round(report.seconds, 3),
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "tests": tests,
        "extra_data": {
            "status": report.status,
            "isolation": report.isolation,
            "activation": report.activation,
            "year": report.year,
            "by_check": report.by_check(),
            "diagnoses": report.diagnoses(),
            "budget": report.budget,
            "events": report.events,
            "grader_version": report.grader_version,
            "evidence": {r.name: r.evidence for r in report.results if r.evidence},
        },
    }


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON to ``path`` via a temp file + fsync + rename, so readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2, sort_keys=False, default=_jsonable)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def write_text_atomic(path: Path, text: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def swap_in_dir(stage: Path, out: Path) -> None:
    """Put the finished folder ``stage`` at ``out`` (same parent folder): a rename for a new ``out``;
    an existing one is moved aside first and removed only after the new one is in place."""
    stage, out = Path(stage), Path(out)
    if out.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
        os.replace(out, old / out.name)
        os.replace(stage, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(stage, out)


def _jsonable(value: Any) -> Any:
    try:
        import numpy as np
        if isinstance(value, np.generic):
            return value.item()
        if isinstance(value, np.ndarray):
            return value.tolist()
    except ImportError:  # pragma: no cover
        pass
    if hasattr(value, "__dataclass_fields__"):
        return asdict(value)
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")
