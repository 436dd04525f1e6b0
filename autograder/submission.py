"""Turn what a student handed in (.py, .ipynb, .zip or a folder) into one mlp.py source."""
from __future__ import annotations

import json
import os
import re
import stat
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from .errors import SubmissionError
from .notebook_kinds import select_cells

MAX_SOURCE_BYTES = 2 * 1024**2        # an mlp.py larger than this is not a real answer
MAX_ZIP_MEMBERS = 2000
MAX_ZIP_TOTAL = 200 * 1024**2         # uncompressed bytes we are willing to look through
MAX_RATIO = 200                        # compression ratio above which a member is a zip bomb
MAGIC = re.compile(r"^\s*(%|!)")
MAX_NOTEBOOK_BYTES = 32 * 1024**2    # a notebook with its outputs (plots) may be larger than an mlp.py
MAX_JSON_DEPTH = 100                  # nbformat nests about 6 deep; json.loads recurses per level
MAX_FOLDER_DEPTH = 8                  # a submission folder deeper than this is not looked into further
MAX_FOLDER_ENTRIES = 5000
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')   # "unrolled": linear, no per-char alternation
#: files of the handout (public self-test set-up, the shipped checks and judges), never the submission itself
HANDOUT_HELPERS = ("conftest.py", "bplab_checks.py", "bplab_judges.py", "bplab_extension_judges.py", "gradcheck.py",
                   "selftest_helpers.py")
_OPEN, _CLOSE = (ord("["), ord("{")), (ord("]"), ord("}"))


@dataclass
class Submission:
    """The student's code as one Python source, and notes on how it was obtained."""
    source: str
    origin: str
    notes: list[str] = field(default_factory=list)


def json_depth(text: str) -> int:
    """The nesting depth of the JSON ``text`` (brackets outside strings), found without recursion:
    strings are blanked by one regex pass, then the depth is a running sum over the brackets (numpy,
    so a 32 MiB notebook costs well under a second)."""
    import numpy as np
    bare = _JSON_STRING.sub("", text).encode("utf-8", "surrogatepass")
    codes = np.frombuffer(bare, dtype=np.uint8)
    steps = ((codes == _OPEN[0]) | (codes == _OPEN[1])).view(np.int8)
    steps = steps - ((codes == _CLOSE[0]) | (codes == _CLOSE[1])).view(np.int8)
    return int(np.cumsum(steps, dtype=np.int32).max(initial=0))


def notebook_to_source(text: str, name: str) -> tuple[str, list[str]]:
    """Join a notebook's code cells, dropping IPython magics (``%...``) and shell lines (``!...``).

    Bounded: at most MAX_JSON_DEPTH levels of nesting (checked before parsing), and every field used is
    type-checked (``cells`` a list of objects; a code cell's ``source`` a string or a list of strings)."""
    if json_depth(text) > MAX_JSON_DEPTH:
        raise SubmissionError(f"{name} nests deeper than {MAX_JSON_DEPTH} levels, which no Jupyter notebook does; "
                              "re-save it from Jupyter or submit mlp.py instead")
    try:
        nb = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise SubmissionError(f"{name} is not a readable notebook (invalid JSON: {str(exc)[:200]}); "
                              "re-save it from Jupyter or submit mlp.py instead") from None
    cells = nb.get("cells") if isinstance(nb, dict) else None
    if not isinstance(cells, list):
        raise SubmissionError(f"{name} has no notebook cells; submit mlp.py instead")
    code = []
    for number, cell in enumerate(cells, 1):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        src = cell.get("source", "")
        if isinstance(src, list) and all(isinstance(line, str) for line in src):
            src = "".join(src)
        elif not isinstance(src, str):
            kind = type(src).__name__ if not isinstance(src, list) else "list holding " + ", ".join(
                sorted({type(x).__name__ for x in src if not isinstance(x, str)}))
            raise SubmissionError(f"{name}: code cell {number} has a source that is a {kind}, not text; "
                                  "the notebook is damaged: re-save it from Jupyter or submit mlp.py instead")
        code.append({**cell, "source": src})
    cells, kind_notes = select_cells(code, name)  # otter/nbgrader/handout notebooks: only the implementation
    parts, dropped = [], 0
    for cell in cells:
        src = cell["source"]
        lines = []
        for line in src.splitlines():
            if MAGIC.match(line):
                dropped += 1
                lines.append("pass  # dropped by the grader: " + line.strip()[:60].replace("\\", "/"))
            else:
                lines.append(line)
        parts.append("\n".join(lines))
    notes = kind_notes or [f"graded the code cells of notebook {name}"]
    if not parts:
        notes.append(f"{name} has no code cells")
    if dropped:
        notes.append(f"{dropped} IPython magic/shell line(s) (starting with % or !) were dropped")
    source = "\n\n".join(parts) + "\n"
    if len(source.encode("utf-8", "surrogatepass")) > MAX_SOURCE_BYTES:
        raise SubmissionError(f"the code cells of {name} add up to more than {MAX_SOURCE_BYTES // 1024**2} MiB; "
                              "that is not a real mlp.py")
    return source, notes


def _decode(data: bytes, name: str, cap: int = MAX_SOURCE_BYTES) -> str:
    if len(data) > cap:
        what = "a notebook" if name.endswith(".ipynb") else "an mlp.py"
        raise SubmissionError(f"{name} is {len(data) // 1024} KiB; {what} over "
                              f"{cap // 1024**2} MiB is not accepted")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _from_file_bytes(data: bytes, name: str) -> Submission:
    if name.endswith(".ipynb"):
        source, notes = notebook_to_source(_decode(data, name, MAX_NOTEBOOK_BYTES), name)
        return Submission(source, name, notes)
    return Submission(_decode(data, name), name)


def _pick(names: list[str], where: str) -> str:
    """Choose the file to grade among candidate names: mlp.py first, then one .py (never a file of the
    handout, HANDOUT_HELPERS), then one .ipynb."""
    def base(n: str) -> str:
        return PurePosixPath(n).name

    visible = [n for n in names if not any(part.startswith((".", "__MACOSX")) for part in PurePosixPath(n).parts)]
    for wanted in ("mlp.py",):
        hits = sorted((n for n in visible if base(n) == wanted), key=lambda n: (n.count("/"), n))
        if hits:
            return hits[0]
    notebooks = [n for n in visible if n.endswith(".ipynb") and ".ipynb_checkpoints" not in n]
    pys = [n for n in visible if n.endswith(".py") and not base(n).startswith("test_")
           and base(n) not in HANDOUT_HELPERS]
    if len(notebooks) == 1 and not pys:
        return notebooks[0]
    if len(pys) == 1:
        return pys[0]
    if not pys and not notebooks:
        raise SubmissionError(f"{where} contains no mlp.py (nor a .py or .ipynb file); submit your mlp.py")
    raise SubmissionError(f"{where} has no mlp.py and several candidates ({', '.join(sorted(pys + notebooks)[:5])}); "
                          "name the file to grade mlp.py")


def _cap(name: str) -> int:
    return MAX_NOTEBOOK_BYTES if name.lower().endswith(".ipynb") else MAX_SOURCE_BYTES


def walk_files(root: Path, max_depth: int = MAX_FOLDER_DEPTH,
               max_entries: int = MAX_FOLDER_ENTRIES) -> tuple[list[Path], bool]:
    """(regular files under ``root``, truncated?) without recursion and without following links:
    at most ``max_depth`` folder levels and ``max_entries`` directory entries are looked at."""
    files: list[Path] = []
    stack = [(Path(root), 0)]
    seen = 0
    truncated = False
    while stack:
        folder, depth = stack.pop()
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError:
            continue
        for e in entries:
            seen += 1
            if seen > max_entries:
                return sorted(files), True
            try:
                if e.is_symlink():
                    continue
                if e.is_dir(follow_symlinks=False):
                    if depth + 1 < max_depth:
                        stack.append((Path(e.path), depth + 1))
                    else:
                        truncated = True
                elif e.is_file(follow_symlinks=False):
                    files.append(Path(e.path))
            except OSError:
                continue
    return sorted(files), truncated


def _from_zip(path: Path) -> Submission:
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise SubmissionError(f"{path.name} is not a readable zip ({exc}); re-create it or submit mlp.py") from None
    with zf:
        infos = [i for i in zf.infolist() if not i.is_dir()]
        if not infos:
            raise SubmissionError(f"{path.name} is an empty zip; put your mlp.py in it")
        if len(infos) > MAX_ZIP_MEMBERS:
            raise SubmissionError(f"{path.name} has {len(infos)} files; submit just mlp.py")
        safe = {}
        for info in infos:
            name = info.filename
            pure = PurePosixPath(name.replace("\\", "/"))
            if pure.is_absolute() or ".." in pure.parts:
                continue  # path traversal: never used, noted below
            if stat.S_ISLNK(info.external_attr >> 16):
                continue
            safe[str(pure)] = info
        if not safe:
            raise SubmissionError(f"{path.name} only has unsafe entries (absolute paths, '..', links); "
                                  "zip your mlp.py again")
        chosen = _pick(list(safe), path.name)
        info = safe[chosen]
        if info.file_size > _cap(chosen) or (info.compress_size and info.file_size / info.compress_size > MAX_RATIO
                                                 and info.file_size > 1024**2):
            raise SubmissionError(f"{path.name}: {chosen} would unpack to {info.file_size} bytes; "
                                  "that is not a real mlp.py (zip bomb?)")
        with zf.open(info) as fh:
            data = fh.read(_cap(chosen) + 1)
        sub = _from_file_bytes(data, chosen)
        sub.origin = f"{path.name}:{chosen}"
        skipped = len(infos) - len(safe)
        if skipped:
            sub.notes.append(f"{skipped} unsafe zip entr{'y was' if skipped == 1 else 'ies were'} ignored "
                             "(absolute path, '..' or link)")
        return sub


def load_submission(path: Path | str) -> Submission:
    """Read a submission from a .py, .ipynb, .zip or folder; SubmissionError says what is wrong."""
    path = Path(path)
    if not path.exists():
        raise SubmissionError(f"submission {path} does not exist; check the path")
    if path.is_dir():
        found, truncated = walk_files(path)
        files = [str(p.relative_to(path)) for p in found]
        if not files:
            deep = f" within {MAX_FOLDER_DEPTH} folder levels" if truncated else ""
            raise SubmissionError(f"folder {path} is empty (no files{deep}); it should contain mlp.py")
        candidates = [f for f in files if f.endswith((".py", ".ipynb"))]
        if not candidates:
            zips = [f for f in files if f.endswith(".zip")]
            if len(zips) == 1:
                return _from_zip(path / zips[0])
        chosen = _pick(candidates, f"folder {path}")
        with open(path / chosen, "rb") as fh:
            return _from_file_bytes(fh.read(_cap(chosen) + 1), chosen)
    suffix = path.suffix.lower()
    if suffix == ".zip":
        return _from_zip(path)
    if suffix in (".py", ".ipynb"):
        if path.stat().st_size == 0:
            raise SubmissionError(f"{path.name} is empty; it should contain your mlp.py code")
        with open(path, "rb") as fh:
            return _from_file_bytes(fh.read(_cap(path.name) + 1), path.name)
    raise SubmissionError(f"{path.name}: unsupported submission type {suffix or '(no suffix)'}; "
                          "submit mlp.py, a notebook (.ipynb), a .zip or a folder")


def syntax_error(source: str) -> str | None:
    """The syntax error of ``source`` as one line, or None. Uses compile() only; nothing runs."""
    try:
        compile(source, "mlp.py", "exec", dont_inherit=True)
    except SyntaxError as exc:
        line = (exc.text or "").strip()
        return f"line {exc.lineno}: {exc.msg}" + (f": {line[:80]}" if line else "")
    except ValueError as exc:  # e.g. null bytes
        return str(exc)
    return None
