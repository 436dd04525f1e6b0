"""Find the students in SUBMISSIONS: a folder (one sub-folder or file per student), a Gradescope
"download submissions" export, or a Canvas submissions zip.

Every entry ends up as exactly one :class:`Entry`. Entries that cannot be graded (unsafe or oversized
files, unsupported types, folders listed in the metadata but missing) are kept with ``problem`` set,
and entries whose student ids clash are kept apart (``alice~1``, ``alice~2``) with ``status`` =
``"clash"``: both are reported in the gradebook and the summary, never merged or dropped.
"""
from __future__ import annotations

import re
import shutil
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import SubmissionError, UserError
from ..submission import walk_files
from .safezip import MAX_MEMBER_BYTES, clean_component, extract_once

SUBMISSION_SUFFIXES = (".py", ".ipynb", ".zip")
GRADESCOPE_METADATA = "submission_metadata.yml"
IGNORED = ("__MACOSX", ".DS_Store", "Thumbs.db", "desktop.ini")
# Canvas: lastfirst[_LATE]_userid_submissionid_original-name  (the submission id is absent in some exports)
CANVAS_NAME = re.compile(r"^(?P<name>[^_/]+?)(?P<late>_LATE)?_(?P<uid>\d+)_(?:(?P<sub>\d+)_)?(?P<file>.+)$")
RESERVED_IDS = {"gradebook.csv", "summary.html", "inputs", "similarity"}  # similarity: RESULTS/similarity/ (the report)
MAX_METADATA_BYTES = 8 * 1024**2     # submission_metadata.yml of a class of thousands is a few MB
MAX_METADATA_DEPTH = 64


@dataclass
class Entry:
    """One student's submission (or the reason it cannot be graded)."""
    student: str
    path: Path | None
    source: str
    late: bool = False
    name: str = ""
    sid: str = ""
    email: str = ""
    problem: str = ""                 # non-empty: unreadable, with the reason
    status: str = ""                  # "clash" when another entry mapped to the same student id
    notes: list[str] = field(default_factory=list)

    def meta(self) -> dict:
        return {"student": self.student, "source": self.source, "late": self.late, "name": self.name,
                "sid": self.sid, "email": self.email, "status": self.status or ("unreadable" if self.problem else ""),
                "note": "; ".join(([self.problem] if self.problem else []) + self.notes)}


@dataclass
class Roster:
    kind: str                         # folder, gradescope, canvas
    origin: Path
    entries: list[Entry] = field(default_factory=list)
    issues: list[str] = field(default_factory=list)   # class-level remarks for the summary


# ---- student ids -------------------------------------------------------------------------------

def readable_name(raw: str) -> str:
    """A file name as text: undecodable bytes (surrogate escapes) re-read as UTF-8, else Latin-1."""
    data = raw.encode("utf-8", "surrogateescape")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def student_id(raw: str) -> str:
    """A student id that is a safe folder name: letters (any script), digits, ``-_.@+``."""
    text = unicodedata.normalize("NFC", readable_name(raw))
    text = "".join(ch if ch.isalnum() or ch in "-_.@+" else "_" for ch in text)
    text = re.sub(r"_+", "_", text).strip("._ ")[:80].rstrip("._ ")
    if not text:
        return "unnamed"
    return f"_{text}" if text.casefold() in RESERVED_IDS else text


def _stem(name: str) -> str:
    for suffix in SUBMISSION_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def _ignored(name: str) -> bool:
    return name.startswith(".") or name in IGNORED


# ---- entry points ------------------------------------------------------------------------------

def discover(submissions: Path | str, inputs_dir: Path | str) -> Roster:
    """The roster of ``submissions`` (a folder or an export zip). Exports unpack under ``inputs_dir``."""
    path = Path(submissions)
    if not path.exists():
        raise UserError(f"{path} does not exist; give a folder of submissions or an LMS export zip")
    if path.is_file():
        if path.suffix.lower() != ".zip":
            raise UserError(f"{path.name} is a single file; `batch` grades a folder with one file or sub-folder "
                            "per student, or an LMS export zip (use `backprop-lab grade` for one submission)")
        roster = _from_zip(path, Path(inputs_dir))
    else:
        roster = _from_folder(path, Path(inputs_dir))
    if not roster.entries:
        raise UserError(f"no submissions found in {path}: expected one sub-folder or one .py/.ipynb/.zip file "
                        "per student, a Gradescope export or a Canvas submissions zip")
    resolve_clashes(roster.entries)
    roster.entries.sort(key=lambda e: (e.student.casefold(), e.student))
    return roster


def _from_folder(folder: Path, inputs_dir: Path, problems: dict[str, list[str]] | None = None,
                 label: str = "") -> Roster:
    if (folder / GRADESCOPE_METADATA).is_file():
        return _gradescope(folder, problems or {}, label)
    children = sorted((c for c in folder.iterdir() if not _ignored(c.name)), key=lambda c: c.name)
    files = [c for c in children if c.is_file() and not c.is_symlink()]
    if files and len(files) == len(children) and all(CANVAS_NAME.match(readable_name(c.name)) for c in files):
        return _canvas(folder, files, inputs_dir, problems or {}, label)
    roster = Roster("folder", folder)
    for child in children:
        shown = f"{label}{readable_name(child.name)}"
        try:
            roster.entries.append(_folder_entry(child, shown))
        except Exception as exc:  # noqa: BLE001 - the per-student boundary of discovery
            roster.entries.append(Entry(student_id(_stem(child.name)), None, shown,
                                        problem=f"{shown} could not be looked at ({exc.__class__.__name__}: "
                                                f"{str(exc)[:200]})"))
    _attach_problems(roster, problems or {}, lambda first: student_id(_stem(first)))
    return roster


def _folder_entry(child: Path, shown: str) -> Entry:
    """The entry of one child of a plain submissions folder."""
    if child.is_symlink():
        return Entry(student_id(_stem(child.name)), None, shown,
                     problem=f"{shown} is a symbolic link; links are not followed")
    if child.is_dir():
        return Entry(student_id(child.name), child, shown + "/")
    if child.is_file() and child.name.lower().endswith(SUBMISSION_SUFFIXES):
        return Entry(student_id(_stem(child.name)), child, shown)
    return Entry(student_id(_stem(child.name)), None, shown,
                 problem=f"{shown}: unsupported entry (not a .py, .ipynb, .zip or folder)")


def _from_zip(path: Path, inputs_dir: Path) -> Roster:
    extracted = extract_once(path, inputs_dir)
    root = extracted.root
    prefix = ""
    visible = [c for c in root.iterdir() if not _ignored(c.name)]
    # a single top-level folder (e.g. assignment_123_export/) is the export's real root
    if len(visible) == 1 and visible[0].is_dir() and not (root / GRADESCOPE_METADATA).exists():
        root, prefix = visible[0], visible[0].name + "/"
    problems: dict[str, list[str]] = {}
    for member, why in extracted.problems:
        rel = member[len(prefix):] if prefix and member.startswith(prefix) else member
        first = rel.split("/", 1)[0] if rel else member
        if first in ("", ".", "..") or rel.startswith("/") or (len(rel) > 1 and rel[1] == ":"):
            first = rel.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1] or "unnamed"  # traversal: name by its file
        problems.setdefault(first, []).append(f"{member}: {why}")
    roster = _from_folder(root, inputs_dir, problems, label=f"{path.name}:{prefix}")
    roster.origin = path
    return roster


def _attach_problems(roster: Roster, problems: dict[str, list[str]], student_of) -> None:
    """Refused zip members become notes of their student, or unreadable entries of their own."""
    by_id = {e.student: e for e in roster.entries}
    for first, reasons in sorted(problems.items()):
        sid = student_of(first)
        entry = by_id.get(sid)
        if entry is not None and entry.path is not None and _has_files(entry.path):
            entry.notes += [f"not extracted: {r}" for r in reasons]
        elif entry is not None:
            entry.problem = "; ".join(([entry.problem] if entry.problem else []) + reasons)
            entry.path = None
        else:
            new = Entry(sid, None, reasons[0].split(":", 1)[0], problem="; ".join(reasons))
            roster.entries.append(new)
            by_id[sid] = new


def _has_files(path: Path) -> bool:
    if path.is_file():
        return True
    return bool(walk_files(path)[0])


# ---- Gradescope --------------------------------------------------------------------------------

def _plain(value):
    """Metadata with Ruby-symbol keys (':submitters:' / ':name') turned into plain keys."""
    if isinstance(value, dict):
        return {str(k).strip(":"): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def load_gradescope_metadata(text: str) -> dict:
    """Gradescope's submission_metadata.yml as plain data, read by a bounded safe loader.

    Refused: more than MAX_METADATA_BYTES, any alias (``*name``: the "billion laughs" bomb needs them and
    Gradescope never writes one), nesting deeper than MAX_METADATA_DEPTH. Ruby object tags
    (``!ruby/object:...``) are read as plain mappings; nothing is ever constructed from a tag."""
    import yaml

    if len(text) > MAX_METADATA_BYTES:
        raise ValueError(f"{len(text) // 1024**2} MB, over the {MAX_METADATA_BYTES // 1024**2} MB limit")

    class Loader(yaml.SafeLoader):
        """safe_load without aliases and with a depth bound; Ruby tags read as plain mappings."""

        def compose_node(self, parent, index):
            if self.check_event(yaml.AliasEvent):
                raise yaml.YAMLError(f"aliases are not accepted (line {self.peek_event().start_mark.line + 1})")
            self._depth = getattr(self, "_depth", 0) + 1
            try:
                if self._depth > MAX_METADATA_DEPTH:
                    raise yaml.YAMLError(f"nested deeper than {MAX_METADATA_DEPTH} levels")
                return super().compose_node(parent, index)
            finally:
                self._depth -= 1

    def generic(loader, suffix, node):
        if isinstance(node, yaml.MappingNode):
            return loader.construct_mapping(node, deep=True)
        if isinstance(node, yaml.SequenceNode):
            return loader.construct_sequence(node, deep=True)
        return loader.construct_scalar(node)

    Loader.add_multi_constructor("!", generic)
    Loader.add_multi_constructor("tag:yaml.org,2002:", generic)
    data = yaml.load(text, Loader=Loader)  # noqa: S506 - a SafeLoader subclass
    if not isinstance(data, dict):
        raise ValueError("not a mapping of submission folders")
    return _plain(data)


def _gradescope(root: Path, problems: dict[str, list[str]], label: str) -> Roster:
    roster = Roster("gradescope", root)
    try:
        with open(root / GRADESCOPE_METADATA, "rb") as fh:
            raw = fh.read(MAX_METADATA_BYTES + 1)
        meta = load_gradescope_metadata(raw.decode("utf-8", errors="replace"))
    except Exception as exc:  # noqa: BLE001 - reported; the folders are still graded by folder name
        meta = {}
        roster.issues.append(f"{GRADESCOPE_METADATA} could not be read ({exc}); students are named by "
                             "their submission folder")
    folders = {c.name: c for c in root.iterdir() if c.is_dir() and not _ignored(c.name)}
    others = [c for c in root.iterdir() if not c.is_dir() and not _ignored(c.name) and c.name != GRADESCOPE_METADATA]
    for c in sorted(others, key=lambda c: c.name):
        roster.issues.append(f"{label}{readable_name(c.name)}: a file outside any submission folder; not graded")
    for key in sorted(set(folders) | set(k for k in meta if isinstance(k, str))):
        try:
            roster.entries.append(_gradescope_entry(key, meta, folders, label))
        except Exception as exc:  # noqa: BLE001 - the per-student boundary of discovery
            why = (f"its entry in {GRADESCOPE_METADATA} could not be used ({exc.__class__.__name__}: "
                   f"{str(exc)[:200]}); named by its folder")
            entry = Entry(student_id(key), folders.get(key), f"{label}{readable_name(key)}/", notes=[why])
            if key not in folders:
                entry.problem = why
            roster.entries.append(entry)
    by_folder = {e.source[len(label):].rstrip("/"): e for e in roster.entries}
    _attach_problems(roster, problems, lambda first: by_folder[first].student if first in by_folder
                     else student_id(first))
    return roster


def _gradescope_entry(key: str, meta: dict, folders: dict[str, Path], label: str) -> Entry:
    """One submission folder of a Gradescope export, named from its metadata."""
    info = meta.get(key) if isinstance(meta.get(key), dict) else {}
    people = [p for p in (info.get("submitters") or []) if isinstance(p, dict)]
    ids = [_person_id(p) for p in people]
    ids = [i for i in ids if i]
    sid = "+".join(ids) if ids else key
    entry = Entry(student_id(sid), folders.get(key), f"{label}{readable_name(key)}/",
                  name="; ".join(str(p.get("name", "")) for p in people if p.get("name")),
                  sid="; ".join(str(p.get("sid", "")) for p in people if p.get("sid")),
                  email="; ".join(str(p.get("email", "")) for p in people if p.get("email")),
                  late=_truthy(info.get("late")))
    if key not in folders:
        entry.problem = f"listed in {GRADESCOPE_METADATA} but the folder {key}/ is missing from the export"
    elif meta and key not in meta:
        entry.notes.append(f"{key}/ is not listed in {GRADESCOPE_METADATA}; named by its folder")
    if len(people) > 1:
        entry.notes.append(f"group submission of {len(people)} students")
    return entry


def _person_id(person: dict) -> str:
    for key in ("sid", "email", "name"):
        value = person.get(key)
        if value not in (None, ""):
            text = str(value)
            return text.split("@", 1)[0] if key == "email" else text
    return ""


def _truthy(value) -> bool:
    return value is True or (isinstance(value, str) and value.strip().lower() in ("true", "yes", "late"))


# ---- Canvas ------------------------------------------------------------------------------------

def _canvas(folder: Path, files: list[Path], inputs_dir: Path, problems: dict[str, list[str]],
            label: str) -> Roster:
    """Flat ``name[_LATE]_userid_subid_file`` files, grouped per student (and per submission id)."""
    roster = Roster("canvas", folder)
    groups: dict[tuple[str, str, str], list[tuple[Path, str]]] = {}
    late: dict[tuple[str, str, str], bool] = {}
    for f in files:
        m = CANVAS_NAME.match(readable_name(f.name))
        assert m is not None
        key = (m.group("name"), m.group("uid"), m.group("sub") or "")
        groups.setdefault(key, []).append((f, m.group("file")))
        late[key] = late.get(key, False) or bool(m.group("late"))
    staging = inputs_dir / "canvas" / clean_component(f"{folder.name}")
    if staging.exists():
        shutil.rmtree(staging)
    for (name, uid, sub), members in sorted(groups.items()):
        sid = student_id(f"{name}_{uid}")
        source = label + ", ".join(readable_name(f.name) for f, _ in members)
        entry = Entry(sid, None, source, late=late[(name, uid, sub)], name=name, sid=uid)
        try:
            if len(members) == 1 and members[0][0].name.lower().endswith(SUBMISSION_SUFFIXES):
                entry.path = members[0][0]
            else:
                entry.path = _stage(staging / f"{sid}-{sub}", members, entry)
        except Exception as exc:  # noqa: BLE001 - the per-student boundary of discovery
            entry.path = None
            entry.problem = f"its files could not be gathered ({exc.__class__.__name__}: {str(exc)[:200]})"
        roster.entries.append(entry)
    _attach_problems(roster, problems, lambda first: _canvas_id(first))
    return roster


def _stage(target: Path, members: list[tuple[Path, str]], entry: Entry) -> Path | None:
    """One folder holding a Canvas student's files under their original names (copies, size-capped)."""
    target.mkdir(parents=True, exist_ok=True)
    for f, original in members:
        name = clean_component(readable_name(original)) or "file"
        if f.stat().st_size > MAX_MEMBER_BYTES:
            entry.notes.append(f"{readable_name(f.name)} is over {MAX_MEMBER_BYTES // 1024**2} MB; not used")
            continue
        if (target / name).exists():
            entry.notes.append(f"two files named {name}; only the first was used")
            continue
        shutil.copyfile(f, target / name)
    if not any(target.iterdir()):
        entry.problem = "no usable file in this submission"
        return None
    return target


def _canvas_id(first: str) -> str:
    m = CANVAS_NAME.match(first)
    return student_id(f"{m.group('name')}_{m.group('uid')}") if m else student_id(_stem(first))


# ---- clashes -----------------------------------------------------------------------------------

def resolve_clashes(entries: list[Entry]) -> None:
    """Entries sharing a student id (case-insensitively) become ``id~1``, ``id~2``, ... with status clash."""
    groups: dict[str, list[Entry]] = {}
    for e in entries:
        groups.setdefault(e.student.casefold(), []).append(e)
    for group in groups.values():
        if len(group) < 2:
            continue
        group.sort(key=lambda e: e.source)
        base = group[0].student
        sources = ", ".join(e.source for e in group)
        for n, e in enumerate(group, 1):
            e.student = f"{base}~{n}"
            e.status = "clash"
            e.notes.insert(0, f"{len(group)} entries map to student id {base!r} ({sources}); each was kept "
                              f"and graded separately as {base}~1..{base}~{len(group)}: decide which one counts")


__all__ = ["Entry", "Roster", "discover", "student_id", "readable_name", "load_gradescope_metadata",
           "resolve_clashes", "SubmissionError"]
