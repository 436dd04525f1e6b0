"""Reproducible zips and source copies: same inputs, same bytes (fixed timestamps, sorted names)."""
from __future__ import annotations

import shutil
import stat
import zipfile
from pathlib import Path

EPOCH = (2020, 1, 1, 0, 0, 0)
EXECUTABLE = {"setup.sh", "run_autograder", "backprop-lab.sh"}
IGNORE = ("__pycache__", "*.pyc", ".pytest_cache", ".ipynb_checkpoints", ".DS_Store")


def write_zip(path: Path, files: dict[str, bytes]) -> None:
    """Write ``files`` ({archive name: bytes}) to ``path``; scripts get mode 0755, the rest 0644."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, date_time=EPOCH)
            mode = 0o755 if Path(name).name in EXECUTABLE else 0o644
            info.external_attr = (stat.S_IFREG | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, files[name])


def zip_folder(folder: Path, path: Path, prefix: str = "") -> None:
    folder = Path(folder)
    files = {prefix + str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
             if p.is_file() and not any(part in ("__pycache__", ".pytest_cache") for part in p.parts)}
    write_zip(path, files)


def folder_files(folder: Path) -> dict[str, bytes]:
    """{relative path: bytes} of every file under ``folder`` (caches left out)."""
    folder = Path(folder)
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and not any(part in ("__pycache__", ".pytest_cache") for part in p.parts)}


def copy_tree(src: Path, dst: Path) -> None:
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns(*IGNORE))


def extract_zip(path: Path, dst: Path) -> None:
    """Unzip keeping the executable bits (zipfile alone drops them)."""
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            target = Path(dst) / info.filename
            if not target.resolve().is_relative_to(Path(dst).resolve()):
                raise ValueError(f"{path}: member {info.filename!r} escapes the folder")
            zf.extract(info, dst)
            mode = (info.external_attr >> 16) & 0o777
            if mode and not info.is_dir():
                target.chmod(mode)
