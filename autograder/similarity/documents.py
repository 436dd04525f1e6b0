"""Documents to compare: the class, each ``--against`` folder, and the template code, read with the
project's own loaders (``batch.discover`` for class folders and LMS exports, ``load_submission`` for a
.py, .ipynb, .zip or folder). Student code is only read, never run.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

from ..errors import SubmissionError, UserError
from .fingerprints import fingerprint, template_hashes
from .scoring import Document

SOURCES = "sources"            # RESULTS/similarity/sources/<student>.py: what batch compared (for next years)


def default_templates(activations: Iterable[str] = ("sigmoid", "tanh", "relu")) -> list[str]:
    """The handout's code: the skeleton for every activation, and each .py/.ipynb of assignment/."""
    from ..handout.markers import parse
    from ..handout.skeleton import build_skeleton
    from ..paths import ASSIGNMENT_DIR
    from ..reference import reference_source
    from ..submission import notebook_to_source
    out = []
    for activation in activations:
        try:
            out.append(build_skeleton(parse(reference_source(activation)), activation))
        except (OSError, UserError):
            pass  # no reference here (a grader install without solutions/): the assignment folder still counts
    if ASSIGNMENT_DIR.is_dir():
        for path in sorted(ASSIGNMENT_DIR.iterdir()):
            try:
                if path.suffix == ".py":
                    out.append(path.read_text(encoding="utf-8", errors="replace"))
                elif path.suffix == ".ipynb":
                    out.append(notebook_to_source(path.read_text(encoding="utf-8", errors="replace"), path.name)[0])
            except (OSError, SubmissionError):
                continue
    return out


def template_fingerprints(extra: Iterable[Path | str] = ()) -> frozenset[int]:
    """Fingerprints of the default templates and of every ``--template`` file (.py, .ipynb, .zip, folder)."""
    from ..submission import load_submission
    sources = default_templates()
    for path in extra:
        try:
            sources.append(load_submission(path).source)
        except SubmissionError as exc:
            raise UserError(f"--template {path}: {exc}") from None
    return template_hashes(sources)


def from_sources(named: Iterable[tuple[str, str, str]], source: str, template: frozenset[int]) -> list[Document]:
    """Documents from (name, origin, text) triples."""
    return [Document(name, source, origin, fingerprint(text, template)) for name, origin, text in named]


def read_roster(folder: Path, inputs_dir: Path) -> tuple[list[tuple[str, str, str]], list[str]]:
    """(name, origin, text) of every readable student of a class folder or LMS export; and the problems."""
    from ..batch.discover import discover
    roster = discover(folder, inputs_dir)
    found, problems = roster_sources(roster, note_unreadable=True)
    return found, list(roster.issues) + problems


def roster_sources(roster, note_unreadable: bool) -> tuple[list[tuple[str, str, str]], list[str]]:
    """(student, origin, source) of every readable entry of a discovered roster, and a note per entry
    that could not be read (entries discovery already marked unreadable too, with ``note_unreadable``)."""
    from ..submission import load_submission
    found, notes = [], []
    for e in roster.entries:
        if e.problem or e.path is None:
            if note_unreadable:
                notes.append(f"{e.student}: not compared ({e.problem or 'nothing to read'})")
            continue
        try:
            sub = load_submission(e.path)
        except (SubmissionError, OSError) as exc:
            notes.append(f"{e.student}: not compared ({exc})")
            continue
        found.append((e.student, sub.origin, sub.source))
    return found, notes


def read_saved(folder: Path) -> list[tuple[str, str, str]]:
    """The sources a batch run saved under RESULTS/similarity/sources/."""
    from ..submission import MAX_SOURCE_BYTES
    out = []
    for path in sorted((folder / "similarity" / SOURCES).glob("*.py")):
        if path.is_file() and not path.is_symlink() and path.stat().st_size <= MAX_SOURCE_BYTES:
            out.append((path.stem, f"{folder.name}/similarity/{SOURCES}/{path.name}",
                        path.read_text(encoding="utf-8", errors="replace")))
    return out


def read_against(folder: Path, inputs_dir: Path) -> tuple[list[tuple[str, str, str]], list[str]]:
    """An earlier year's submissions folder (or export zip), a batch RESULTS folder, or a corpus folder."""
    if not folder.exists():
        raise UserError(f"--against {folder} does not exist")
    if folder.is_dir() and (folder / "similarity" / SOURCES).is_dir():
        return read_saved(folder), []
    if folder.is_dir() and (folder / "gradebook.csv").is_file():
        raise UserError(f"--against {folder} is a batch RESULTS folder without saved sources "
                        f"(similarity/{SOURCES}/); give that year's submissions folder instead")
    return read_roster(folder, inputs_dir / "against" / folder.name)
