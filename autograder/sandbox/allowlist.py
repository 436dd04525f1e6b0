"""What the worker may see: derived from the worker's interpreter itself, never from a list of secrets.

A probe runs the worker's Python (as the sandbox user, before any student code exists) and asks it
which files it is made of: its prefix and venv, the standard library, numpy's package folders, and
every shared library it has mapped after importing numpy, the harness's modules and every extension
module of the standard library (so a lazy ``import decimal`` finds its libmpdec). That list, plus
the harness, the training split and the worker's own scratch, is ALL the worker sees: bubblewrap
builds its root from these paths alone, Landlock grants read access to these paths alone.
"""
from __future__ import annotations

import functools
import json
import os
import struct
import subprocess
from dataclasses import dataclass, replace
from pathlib import Path

#: Run by the worker interpreter: prints the files and folders it needs, as JSON.
PROBE = r"""
import json, os, sys, sysconfig, importlib, pkgutil
import numpy, numpy.linalg, numpy.random, numpy.fft, zipfile, ctypes, json, io, signal, traceback, selectors
try:
    import pyseccomp
except Exception:
    pyseccomp = None
stdlib = os.path.dirname(os.__file__)
dynload = [p for p in sys.path if p.rstrip("/").endswith("lib-dynload")]
for info in pkgutil.iter_modules(dynload):
    try:
        importlib.import_module(info.name)
    except Exception:
        pass
maps = set()
with open("/proc/self/maps") as fh:
    for line in fh:
        parts = line.split(None, 5)
        if len(parts) == 6 and parts[5].startswith("/"):
            maps.add(parts[5].strip().replace(" (deleted)", ""))
packages = [os.path.dirname(numpy.__file__)]
site = os.path.dirname(packages[0])
packages += [os.path.join(site, n) for n in os.listdir(site)
             if n.startswith(("numpy.libs", "numpy-", "numpy_", "pyseccomp"))]
if pyseccomp is not None:
    packages.append(os.path.abspath(pyseccomp.__file__))
print(json.dumps({"prefix": sys.prefix, "base_prefix": sys.base_prefix, "executable": sys.executable,
                  "stdlib": stdlib, "dynload": dynload, "packages": packages,
                  "maps": sorted(maps), "seccomp": pyseccomp is not None,
                  "version": "%d.%d" % sys.version_info[:2], "cache_tag": sys.implementation.cache_tag}))
"""

#: The only files of the host's /etc the worker gets: the dynamic loader's cache.
ETC_FILES = ("/etc/ld.so.cache",)


@dataclass(frozen=True)
class Allowlist:
    """Read-only host paths the worker needs (files or folders), and the top-level symlinks of ``/``
    (``/lib -> usr/lib`` on merged-/usr systems) that the dynamic loader's paths go through."""
    read_only: tuple[Path, ...]
    symlinks: tuple[tuple[str, str], ...] = ()   # (target, link): top-level links of / and links on the way
    seccomp_available: bool = False
    python: str = ""
    cache_tag: str = ""    # the interpreter's bytecode tag (cpython-311): which .pyc files it can run

    def with_paths(self, extra: list[Path]) -> "Allowlist":
        """This list plus ``extra`` (the session's harness copy, the training split), still minimal.
        Only ``extra`` is examined on disk: this list was made minimal when it was derived."""
        added = _build(list(extra), list(self.symlinks), self.seccomp_available, self.python)
        base = set(self.read_only)
        new = [p for p in added.read_only if p not in base and not any(d in base for d in p.parents)]
        new_set = set(new)
        kept = [p for p in self.read_only if not any(d in new_set for d in p.parents)]
        return Allowlist(tuple(sorted(kept + new)), added.symlinks, self.seccomp_available, self.python,
                         self.cache_tag)


class AllowlistError(RuntimeError):
    """The worker's interpreter could not describe itself: the installation is broken."""


def _minimal(paths: list[Path]) -> list[Path]:
    """Existing paths, deduplicated, without any path already inside another listed folder."""
    unique = sorted({Path(os.path.normpath(p)) for p in paths if os.path.lexists(p)}, key=lambda p: len(p.parts))
    folders: set[Path] = set()
    kept: list[Path] = []
    for path in unique:
        if path in folders or any(parent in folders for parent in path.parents):
            continue
        kept.append(path)
        if os.path.isdir(path):
            folders.add(path)
    return sorted(kept)


def elf_interpreter(path: str) -> str | None:
    """The dynamic loader an ELF executable names (PT_INTERP), e.g. /lib64/ld-linux-x86-64.so.2."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(64)
            if head[:4] != b"\x7fELF" or head[4] != 2:   # 64-bit only
                return None
            order = "<" if head[5] == 1 else ">"
            phoff, = struct.unpack(order + "Q", head[32:40])
            phentsize, phnum = struct.unpack(order + "HH", head[54:58])
            for i in range(phnum):
                fh.seek(phoff + i * phentsize)
                ptype, _, offset, _, _, size = struct.unpack(order + "IIQQQQ", fh.read(40))
                if ptype == 3:   # PT_INTERP
                    fh.seek(offset)
                    return fh.read(size).rstrip(b"\0").decode()
    except (OSError, struct.error, UnicodeDecodeError):
        return None
    return None


def _build(paths: list[Path], links: list[tuple[str, str]], seccomp: bool, python: str) -> Allowlist:
    """Split ``paths`` into real files/folders (bound) and symlinks (recreated as links)."""
    real: list[Path] = []
    top = {link for _, link in root_symlinks()}
    for path in paths:
        if os.path.islink(path) and str(path) not in top:
            # recreate the link where it really is (its folder resolved: /lib64/x is /usr/lib64/x)
            links.append((os.readlink(path), os.path.join(os.path.realpath(os.path.dirname(path)),
                                                          os.path.basename(path))))
            continue
        real.append(Path(path))
    kept = [p for p in _minimal(real) if "/" + p.parts[1] not in top]
    unique_links = sorted(set(links), key=lambda t: (t[1] not in top, len(Path(t[1]).parts), t[1]))
    return Allowlist(tuple(kept), tuple(unique_links), seccomp, python)


def _with_links(path: str) -> list[Path]:
    """``path`` and every symlink on the way to its target (the venv's ``bin/python`` -> /usr/bin/...)."""
    out = [Path(path)]
    seen = 0
    current = path
    while os.path.islink(current) and seen < 20:
        target = os.readlink(current)
        current = os.path.normpath(os.path.join(os.path.dirname(current), target))
        out.append(Path(current))
        seen += 1
    out.append(Path(os.path.realpath(path)))
    return out


@functools.lru_cache(maxsize=64)
def _links_in(folder: str) -> dict[str, list[str]]:
    """Symlinks of ``folder`` by the real path they point to. A link to a plain name in the same folder
    that is no link itself (``libz.so.1 -> libz.so.1.2.13``: nearly all of /usr/lib's thousand) resolves
    to the folder's real path joined with that name, without ``os.path.realpath`` walking every
    component again (the ten folders a sandbox python maps: 0.031 -> 0.014 CPU s per grader process)."""
    found: dict[str, list[str]] = {}
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return found
    real_folder = os.path.realpath(folder)
    plain = {e.name for e in entries if not e.is_symlink()}
    for entry in entries:
        if not entry.is_symlink():
            continue
        try:
            target = os.readlink(entry.path)
        except OSError:
            continue
        if "/" not in target and target in plain:
            real = os.path.join(real_folder, target)
        else:
            real = os.path.realpath(entry.path)
        found.setdefault(real, []).append(entry.path)
    return found


def _aliases(path: str) -> list[Path]:
    """The soname links of a mapped library (``libz.so.1 -> libz.so.1.2.13``): the loader opens those."""
    return [Path(p) for p in _links_in(os.path.dirname(path)).get(os.path.realpath(path), [])]


def _without_site_packages(folder: Path) -> list[Path]:
    """``folder`` (the standard library), or its entries but site-packages when it holds one
    (pyenv and python.org builds keep every installed package, the grader's own included, there)."""
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return []
    if "site-packages" not in names and "dist-packages" not in names:
        return [folder]
    return [folder / n for n in names if n not in ("site-packages", "dist-packages")]


def root_symlinks() -> tuple[tuple[str, str], ...]:
    """Top-level symlinks of ``/`` (lib, lib64, bin, sbin on merged-/usr Debian)."""
    links = []
    for name in sorted(os.listdir("/")):
        full = "/" + name
        if os.path.islink(full):
            links.append((os.readlink(full), full))
    return tuple(links)


#: Allowlists derived in this process, per (interpreter, uid, gid); a batch's pool workers adopt
#: the parent's (:func:`adopt`) instead of probing the interpreter again.
_DERIVED: dict[tuple[str, int | None, int | None], Allowlist] = {}


def derive(python: str, uid: int | None = None, gid: int | None = None) -> Allowlist:
    """Ask ``python`` (run as ``uid``) which files it is made of; cached per interpreter and user."""
    key = (python, uid, gid)
    if key not in _DERIVED:
        _DERIVED[key] = _probe_interpreter(python, uid, gid)
    return _DERIVED[key]


def derived() -> dict[tuple[str, int | None, int | None], Allowlist]:
    """What this process has derived so far (to hand to processes it starts)."""
    return dict(_DERIVED)


def adopt(found: dict[tuple[str, int | None, int | None], Allowlist]) -> None:
    """Take over allowlists another grader process derived (the batch parent's, for its pool)."""
    _DERIVED.update(found)


def _probe_interpreter(python: str, uid: int | None, gid: int | None) -> Allowlist:
    def drop() -> None:
        if uid is not None:
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "OPENBLAS_NUM_THREADS": "1"}
    try:
        proc = subprocess.run([python, "-I", "-B", "-c", PROBE], capture_output=True, text=True, timeout=60,
                              preexec_fn=drop if uid is not None else None, env=env, cwd="/")
        facts = json.loads(proc.stdout)
    except (OSError, subprocess.SubprocessError, ValueError) as exc:
        raise AllowlistError(f"the worker's Python {python} could not describe itself ({exc}); "
                             "run `backprop-lab sandbox setup`") from None
    paths: list[Path] = []
    paths += _with_links(python)
    paths += _with_links(facts["executable"])
    loader = elf_interpreter(os.path.realpath(python))
    if loader:
        paths += _with_links(loader)
    paths += _without_site_packages(Path(facts["stdlib"])) + [Path(p) for p in facts["dynload"]]
    paths += [Path(p) for p in facts["packages"]]
    for mapped in facts["maps"]:
        paths += _with_links(mapped) + _aliases(mapped)
    cfg = Path(facts["prefix"]) / "pyvenv.cfg"
    if cfg.exists():
        paths.append(cfg)
    paths += [Path(p) for p in ETC_FILES]
    # never a whole site-packages or prefix: only the interpreter's own files and numpy's folders
    found = _build(paths, list(root_symlinks()), bool(facts.get("seccomp")), python)
    return replace(found, cache_tag=str(facts.get("cache_tag", "")))
