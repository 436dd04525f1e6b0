"""``backprop-lab similarity SUBMISSIONS --out DIR [--against DIR ...] [--template FILE ...]``."""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from ..errors import UserError
from .documents import from_sources, read_against, read_roster, template_fingerprints
from .report import Written, write_report
from .scoring import Ranking, score_pairs

INPUTS = ".inputs"             # LMS exports unpack under DIR/.inputs


@dataclass
class Outcome:
    ranking: Ranking
    written: Written
    students: int
    against: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0


def _label(folder: Path, taken: set[str]) -> str:
    base = (folder.stem if folder.is_file() else folder.name) or "against"
    if base == "class":
        base = "class-folder"
    name, n = base, 1
    while name in taken:
        n += 1
        name = f"{base}-{n}"
    taken.add(name)
    return name


def run_similarity(submissions: Path | str, out: Path | str, against: Iterable[Path | str] = (),
                   templates: Iterable[Path | str] = (), threshold: float | None = None) -> Outcome:
    """Compare every pair of the class and every student with each ``against`` folder; write the report."""
    started = time.monotonic()
    submissions, out = Path(submissions), Path(out).resolve()
    if not submissions.exists():
        raise UserError(f"{submissions} does not exist; give a folder of submissions or an LMS export zip")
    subs = submissions.resolve()
    if subs == out or (subs in out.parents and not out.relative_to(subs).parts[0].startswith(".")):
        raise UserError(f"--out {out} is inside the submissions folder; choose a folder outside it")
    if threshold is None:
        from ..config import load_config
        threshold = load_config().similarity.threshold
    if not 0 <= threshold <= 1:
        raise UserError(f"--threshold {threshold}: give a number from 0 to 1")
    out.mkdir(parents=True, exist_ok=True)
    template = template_fingerprints(templates)
    found, notes = read_roster(submissions, out / INPUTS)
    docs = from_sources(found, "class", template)
    counts: dict[str, int] = {}
    taken: set[str] = set()
    for folder in against:
        folder = Path(folder)
        if folder.exists() and folder.resolve() == subs:
            raise UserError(f"--against {folder} is the class itself; give an earlier year's or a corpus folder")
        label = _label(folder, taken)
        entries, problems = read_against(folder, out / INPUTS)
        docs += from_sources([(f"{label}/{name}", origin, text) for name, origin, text in entries], label, template)
        counts[label] = len(entries)
        notes += [f"{label}: {p}" for p in problems]
    ranking = score_pairs(docs)
    written = write_report(out, ranking, threshold, title=f"Similarity: {submissions.name}", notes=notes)
    return Outcome(ranking, written, len(found), counts, notes, time.monotonic() - started)


def cli_similarity(args) -> int:
    outcome = run_similarity(args.submissions, args.out, args.against or (), args.template or (), args.threshold)
    pairs = outcome.ranking.pairs
    threshold = args.threshold
    if threshold is None:
        from ..config import load_config
        threshold = load_config().similarity.threshold
    above = [p for p in pairs if p.score >= threshold]
    extra = "".join(f", {n} from {label}" for label, n in outcome.against.items())
    print(f"compared {outcome.students} students{extra}: {len(pairs)} pairs in {outcome.seconds:.1f} s; "
          f"{len(above)} at or above {threshold}")
    for p in above[:10]:
        print(f"  {p.score:.2f}  {p.a.name}  {p.b.name}  ({p.source})")
    for note in outcome.notes[:10]:
        print(f"note: {note}", file=sys.stderr)
    print(f"report: {outcome.written.html}")
    print(f"csv:    {outcome.written.csv}")
    return 0
