"""handout.zip: the student handout of the year (the handout writer's files), checked for leaks."""
from __future__ import annotations

import json
import tempfile
import zipfile
from pathlib import Path

from ..config import CourseConfig
from ..errors import UserError
from ..handout.markers import parse
from ..paths import SOLUTIONS_DIR
from .zipping import folder_files, write_zip


def solution_lines(min_length: int = 15) -> list[str]:
    """Every non-trivial line of every solution region of the reference (stripped, not comments)."""
    parsed = parse((SOLUTIONS_DIR / "mlp.py").read_text(encoding="utf-8"), "solutions/mlp.py")
    lines = {s.strip() for s in parsed.solution_lines()}
    return sorted(s for s in lines if len(s) >= min_length and not s.startswith("#"))


def readable_text(name: str, data: bytes) -> str:
    """What a reader of the file sees: notebook cell sources decoded, other files as UTF-8 text."""
    text = data.decode("utf-8", errors="replace")
    if name.endswith(".ipynb"):
        try:
            cells = json.loads(text).get("cells", [])
            return text + "\n" + "\n".join("".join(c["source"]) if isinstance(c["source"], list) else c["source"]
                                           for c in cells)
        except (ValueError, KeyError, TypeError, AttributeError):
            return text
    return text


def leaks_in_files(files: dict[str, bytes], secrets: list[str], forbidden: list[str] | None = None) -> list[str]:
    """``"<file>: <what>"`` for every solution line, secret or forbidden string found in ``files``."""
    lines = solution_lines()
    found = []
    for name, data in sorted(files.items()):
        text = readable_text(name, data)
        found += [f"{name}: solution line {line!r}" for line in lines if line in text]
        found += [f"{name}: a secret" for s in secrets if s and s in text]
        found += [f"{name}: forbidden text {f[:40]!r}" for f in (forbidden or []) if f and f in text]
        if Path(name).parts and Path(name).parts[0] in ("solutions",):
            found.append(f"{name}: a file from solutions/")
    return found


def zip_files(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {info.filename: zf.read(info) for info in zf.infolist() if not info.is_dir()}


def build_handout(config: CourseConfig, out_zip: Path, secrets: list[str]) -> list[str]:
    """Write ``handout.zip`` (one top folder ``<assignment>-<year>/``); refuse on any leak."""
    from ..handout.writer import write_assignment
    top = f"{config.assignment}-{config.year}"
    with tempfile.TemporaryDirectory(prefix="backprop-lab-handout-") as tmp:
        folder = Path(tmp) / top
        write_assignment(folder, config)
        files = folder_files(folder)
    leaks = leaks_in_files(files, secrets)
    if leaks:
        raise UserError("refusing to release: the handout would leak " + "; ".join(leaks[:5]))
    write_zip(out_zip, {f"{top}/{name}": data for name, data in files.items()})
    return sorted(files)
