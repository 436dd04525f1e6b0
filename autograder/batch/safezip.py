"""Extract an untrusted zip (an LMS export) without trusting anything it says.

Refused, member by member (and reported, never silently dropped): absolute paths and ``..``
(path traversal), symbolic links and other special files, encrypted members, members over the size
cap, members whose compression ratio says "zip bomb", members that unpack to more bytes than they
declare, duplicates, and anything past the total-size cap. Names that are not UTF-8 are decoded
without failing (UTF-8 when it is valid, cp437 as the zip standard says otherwise), then cleaned.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import unicodedata
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from ..errors import SubmissionError

MAX_MEMBERS = 20_000
MAX_MEMBER_BYTES = 64 * 1024**2      # no single file of a class export is bigger than this
MAX_TOTAL_BYTES = 2 * 1024**3        # the whole export, unpacked
MAX_RATIO = 100                      # uncompressed/compressed above this (and over 1 MiB): zip bomb
RATIO_MIN_BYTES = 1024**2
CHUNK = 1024**2
MARKER = ".extracted.json"
MAX_DEPTH = 32                       # folder levels of one member; an LMS export needs about 4


@dataclass
class Extracted:
    """Where the export was unpacked, and each member that was refused (cleaned path, reason)."""
    root: Path
    files: list[str] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)


def decode_member_name(info: zipfile.ZipInfo) -> str:
    """The member's name as text: UTF-8 when flagged or valid, else the cp437 reading zipfile made."""
    name = info.filename
    if info.flag_bits & 0x800:
        return name
    try:
        raw = name.encode("cp437")
    except UnicodeEncodeError:
        return name
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return name


def clean_component(part: str) -> str:
    """One path component safe to create on disk: no control characters, no separators, bounded."""
    part = unicodedata.normalize("NFC", part)
    part = "".join(ch if ch.isprintable() and ch not in "/\\:\0" else "_" for ch in part).strip()
    if len(part.encode("utf-8")) > 180:
        digest = hashlib.sha256(part.encode("utf-8")).hexdigest()[:10]
        part = part[:60] + "-" + digest
    return part


def member_parts(name: str) -> tuple[list[str] | None, str]:
    """(cleaned path components, "") or (None, why the name is unsafe)."""
    text = name.replace("\\", "/")
    pure = PurePosixPath(text)
    if text.startswith("/") or pure.is_absolute() or (len(text) > 1 and text[1] == ":"):
        return None, "absolute path (path traversal attempt); not extracted"
    raw_parts = [p for p in text.split("/") if p not in ("", ".")]
    if any(p == ".." for p in raw_parts):
        return None, "path contains '..' (path traversal attempt); not extracted"
    if len(raw_parts) > MAX_DEPTH:
        return None, f"nested {len(raw_parts)} folders deep (limit {MAX_DEPTH}); not extracted"
    parts = [clean_component(p) for p in raw_parts]
    if not parts or any(p in ("", ".", "..") for p in parts):
        return None, "empty or unusable file name; not extracted"
    return parts, ""


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def extract_once(zip_path: Path, inputs_dir: Path) -> Extracted:
    """Extract ``zip_path`` under ``inputs_dir`` (reused when this exact zip was extracted before)."""
    zip_path = Path(zip_path)
    digest = _sha256(zip_path)[:16]
    stem = clean_component(zip_path.stem) or "export"
    dest = Path(inputs_dir) / f"{stem}-{digest}"
    marker = dest / MARKER
    if marker.is_file():
        try:
            saved = json.loads(marker.read_text(encoding="utf-8"))
            return Extracted(dest, list(saved["files"]), [tuple(p) for p in saved["problems"]])
        except (OSError, ValueError, KeyError, TypeError):
            pass
    if dest.exists():
        shutil.rmtree(dest)
    tmp = Path(inputs_dir) / f".{stem}-{digest}.{os.getpid()}.tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    result = safe_extract(zip_path, tmp)
    (tmp / MARKER).write_text(json.dumps({"source": str(zip_path), "files": result.files,
                                          "problems": result.problems}, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, dest)
    result.root = dest
    return result


def safe_extract(zip_path: Path, dest: Path) -> Extracted:
    """Extract into the existing folder ``dest``; unusable members are listed in ``problems``."""
    try:
        zf = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise SubmissionError(f"{Path(zip_path).name} is not a readable zip file ({exc}); "
                              "download the export again") from None
    out = Extracted(Path(dest))
    seen: set[str] = set()
    total = 0
    with zf:
        infos = zf.infolist()
        if len(infos) > MAX_MEMBERS:
            raise SubmissionError(f"{Path(zip_path).name} has {len(infos)} entries (limit {MAX_MEMBERS}); "
                                  "that is not a class export")
        for info in infos:
            name = decode_member_name(info)
            parts, why = member_parts(name)
            label = "/".join(parts) if parts else name.replace("\\", "/")
            if parts is None:
                out.problems.append((label, why))
                continue
            mode = info.external_attr >> 16
            if info.is_dir() or (mode and stat.S_ISDIR(mode)):
                continue
            if mode and stat.S_ISLNK(mode):
                out.problems.append((label, "symbolic link; not followed or extracted"))
                continue
            if mode and not stat.S_ISREG(mode) and stat.S_IFMT(mode):
                out.problems.append((label, "not a regular file (device, pipe, ...); not extracted"))
                continue
            if info.flag_bits & 0x1:
                out.problems.append((label, "encrypted; cannot be read"))
                continue
            if info.file_size > MAX_MEMBER_BYTES:
                out.problems.append((label, f"{_mb(info.file_size)} unpacked, over the {_mb(MAX_MEMBER_BYTES)} "
                                     "limit for one file; not extracted"))
                continue
            if info.file_size > RATIO_MIN_BYTES and info.file_size > MAX_RATIO * max(info.compress_size, 1):
                ratio = info.file_size / max(info.compress_size, 1)
                out.problems.append((label, f"compresses {ratio:.0f}:1 to {_mb(info.file_size)} (a zip bomb?); "
                                     "not extracted"))
                continue
            if total + info.file_size > MAX_TOTAL_BYTES:
                out.problems.append((label, f"the export exceeds {_mb(MAX_TOTAL_BYTES)} unpacked; not extracted"))
                continue
            key = "/".join(parts).casefold()
            if key in seen:
                out.problems.append((label, "a second entry with the same name; only the first was extracted"))
                continue
            target = Path(dest).joinpath(*parts)
            problem = _extract_member(zf, info, target, Path(dest))
            if problem:
                out.problems.append((label, problem))
                continue
            seen.add(key)
            total += info.file_size
            out.files.append("/".join(parts))
    return out


def _extract_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, root: Path) -> str:
    """Stream one member to ``target`` with a byte cap; '' on success, else why not."""
    parent = target.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        return "its folder clashes with a file of the same name; not extracted"
    except OSError as exc:
        return f"its folder cannot be created ({exc.strerror or exc}); not extracted"
    real_root = root.resolve()
    if real_root not in parent.resolve().parents and parent.resolve() != real_root:
        return "resolves outside the extraction folder; not extracted"
    cap = min(info.file_size, MAX_MEMBER_BYTES)
    written = 0
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o644)
    except FileExistsError:
        return "a second entry with the same name; only the first was extracted"
    except OSError as exc:
        return f"cannot be written ({exc.strerror})"
    ok = False
    try:
        with os.fdopen(fd, "wb") as fh, zf.open(info) as src:
            while True:
                chunk = src.read(CHUNK)
                if not chunk:
                    break
                written += len(chunk)
                if written > cap:
                    return "unpacks to more bytes than it declares (a zip bomb?); not extracted"
                fh.write(chunk)
        ok = True
        return ""
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, NotImplementedError, RuntimeError) as exc:
        return f"corrupt or unreadable ({exc}); not extracted"
    finally:
        if not ok:
            try:
                target.unlink()
            except OSError:
                pass


def _mb(n: int) -> str:
    return f"{n / 1024**2:.0f} MB" if n >= 1024**2 else f"{n / 1024:.0f} KB"
