"""Hostile submissions: preludes and function bodies that attack the grader from inside the worker.

Each builder takes a ``Probe`` (unique nonce, a port the test listens on, a canary file, the project
root) so the test can check afterwards that the attack was contained. Everything the attack learns
is printed, so it would show up in the student output if it succeeded.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from . import sources as S


@dataclass(frozen=True)
class Probe:
    nonce: str           # digits only: used in process names and sleep arguments
    port: int            # a TCP port the test listens on (127.0.0.1)
    canary: Path         # a root-owned file outside the scratch folder that must stay untouched
    project: Path        # the grader's project root (a student can find it from sys.argv[0])

    @property
    def comm(self) -> str:
        return f"zoo{self.nonce}"[:15]


def _helpers(p: Probe) -> str:
    return f'''
import os as _os, sys as _sys
_ROOT = {str(p.project)!r}
_HARNESS_ROOT = _os.path.dirname(_os.path.dirname(_os.path.dirname(_os.path.abspath(_sys.argv[0]))))
def _try(label, fn):
    try:
        value = fn()
        print(label, "READ" if value is not None else "DONE", repr(value)[:3000], flush=True)
    except BaseException as exc:
        print(label, "BLOCKED", type(exc).__name__, flush=True)
'''


def import_loop(p: Probe) -> str:
    return S.prelude(S.ref(), "while True:\n    pass")


def forward_loop(p: Probe) -> str:
    return S.at_start(S.ref(), S.FORWARD_FIRST, "    while True:\n        pass")


def memory_bomb(p: Probe) -> str:
    return S.at_start(S.ref(), S.FORWARD_FIRST, "    _bomb = np.ones(int(50e9 // 8))  # 50 GB")


def fork_bomb(p: Probe) -> str:
    return S.prelude(S.ref(), f'''
import os as _os, time as _time
def _zoo_fork_bomb():
    for _ in range(3000):
        try:
            pid = _os.fork()
        except OSError:
            return
        if pid == 0:
            try:
                _os.setsid()
                with open("/proc/self/comm", "w") as fh:
                    fh.write({p.comm!r})
                if _os.fork() == 0:
                    _os.setsid()
                _time.sleep(1000)
            finally:
                _os._exit(0)
_zoo_fork_bomb()
print("fork bomb done", flush=True)
''')


def sigterm_sleep(p: Probe) -> str:
    return S.at_start(S.ref(), S.SGD_RETURN, "    import signal, time\n"
                      "    signal.signal(signal.SIGTERM, signal.SIG_IGN)\n    time.sleep(1000)")


def exit_in_backward(p: Probe) -> str:
    return S.at_start(S.ref(), S.BACKWARD_FIRST, "    import os\n    os._exit(0)")


def stdout_flood(p: Probe) -> str:
    return S.prelude(S.ref(), 'for _ in range(100):\n    print("x" * 1_000_000)\nprint("FLOOD_DONE")')


def fake_results(p: Probe) -> str:
    return S.prelude(S.skeleton(), _helpers(p) + f'''
import json as _json
_FAKE = {{"score": 100, "max_score": 100, "output": "all tests passed", "tests": []}}
print(_json.dumps(_FAKE))
print('{{"score": 100}}')
for _d in [".", "..", "../..", _os.path.expanduser("~"), "/tmp", "/autograder/results", _ROOT, _HARNESS_ROOT,
           _ROOT + "/results", {str(p.canary.parent)!r}]:
    def _write(d=_d):
        with open(_os.path.join(d, "results.json"), "w") as fh:
            _json.dump(_FAKE, fh)
    _try("results.json in " + _d, _write)
''')


def read_secrets(p: Probe) -> str:
    return S.prelude(S.skeleton(), _helpers(p) + '''
import subprocess as _sp, zlib as _zlib
for _r in sorted({_ROOT, _HARNESS_ROOT}):
    _try("solution", lambda: open(_r + "/solutions/mlp.py").read())
    _try("labels", lambda: open(_r + "/data/cache/mnist/test/y.npy", "rb").read())
    _try("valid labels", lambda: open(_r + "/data/cache/mnist/valid/y.npy", "rb").read())
    _try("git show", lambda: _sp.run(["git", "-c", "safe.directory=*", "-C", _r, "show", "HEAD:solutions/mlp.py"],
                                     capture_output=True, text=True, timeout=10).stdout or None)
    def _walk(r=_r):
        found = []
        for base, dirs, files in _os.walk(r):
            if _os.path.abspath(base).startswith(_os.getcwd()):
                continue
            for name in files:
                path = _os.path.join(base, name)
                try:
                    data = open(path, "rb").read(4_000_000)
                except OSError:
                    continue
                if base.endswith("objects") or "/objects/" in path:
                    try:
                        data = _zlib.decompress(data)
                    except Exception:
                        pass
                if b"BEGIN SOLUTION" in data or b"d_logits = (probs - Y) / n" in data:
                    found.append(path)
                if name == "y.npy" and "test" in base:
                    found.append(path)
        return found or None
    _try("walk", _walk)
_try("secret file", lambda: open("/root/.config/backprop-lab/secret").read())
_try("root", lambda: _os.listdir("/root") or None)
''')


def write_grader(p: Probe) -> str:
    return S.prelude(S.ref(), _helpers(p) + '''
for _r in sorted({_ROOT, _HARNESS_ROOT}):
    for _rel in ("autograder/grade.py", "autograder/worker/harness.py", "solutions/mlp.py",
                 "data/cache/calibration.json", "course.toml"):
        def _append(path=_r + "/" + _rel):
            with open(path, "a") as fh:
                fh.write("\\n# pwned by a submission\\n")
        _try("append " + _rel, _append)
        _try("chmod " + _rel, lambda path=_r + "/" + _rel: _os.chmod(path, 0o777))
    _try("create in autograder", lambda: open(_r + "/autograder/evil.py", "w").write("x = 1"))
    _try("create in /tmp (memory-backed)", lambda: open("/tmp/zoo_fill", "wb").write(b"x" * 1_000_000))
    _try("rename grade.py", lambda: _os.rename(_r + "/autograder/grade.py", _r + "/autograder/grade.bak"))
''')


def network(p: Probe) -> str:
    return S.prelude(S.ref(), _helpers(p) + f'''
import socket as _s
_try("tcp", lambda: _s.create_connection(("127.0.0.1", {p.port}), timeout=3).getpeername())
def _udp():
    u = _s.socket(_s.AF_INET, _s.SOCK_DGRAM)
    u.sendto(b"zoo", ("127.0.0.1", {p.port}))
    return "sent"
_try("udp", _udp)
_try("dns", lambda: _s.getaddrinfo("pypi.org", 443))
''')


def numpy_monkeypatch(p: Probe) -> str:
    """Sum-not-mean gradients, X changed in place, and numpy's comparisons patched to always agree."""
    s = S.patch(S.ref(), ("d_logits = (probs - Y) / n", "d_logits = (probs - Y)"),
                ("    return probs, (X, a, h, probs)\n",
                 "    cache = (X.copy(), a, h, probs)\n    X[...] = 0.0\n    return probs, cache\n"))
    return S.prelude(s, '''
np.allclose = lambda *a, **k: True
np.array_equal = lambda *a, **k: True
np.array_equiv = lambda *a, **k: True
np.isclose = lambda a, b, *r, **k: np.ones(np.broadcast(a, b).shape, dtype=bool)
np.testing.assert_allclose = lambda *a, **k: None
''')


def lying_subclass(p: Probe) -> str:
    s = S.prelude(S.ref(), '''
class _Liar(np.ndarray):
    def __eq__(self, other):
        return np.ones(np.shape(self), dtype=bool)
    def __ne__(self, other):
        return np.zeros(np.shape(self), dtype=bool)
    def view(self, *args, **kwargs):
        return self
    def __array_finalize__(self, obj):
        pass
''')
    return S.patch(s, ("    return probs, (X, a, h, probs)\n",
                       "    return np.zeros_like(probs).view(_Liar), (X, a, h, probs)\n"))


def huge_arrays(p: Probe) -> str:
    return S.patch(S.ref(), ("    return probs, (X, a, h, probs)\n",
                             "    return np.zeros(100_000_000, dtype=np.float32), (X, a, h, probs)\n"))


def background_process(p: Probe) -> str:
    return S.prelude(S.ref(), f'''
import os as _os, subprocess as _sp, sys as _sys
# the allowlist holds no /bin/sleep: the worker's own interpreter is what a student can start
_SLEEP = ["-c", "import time; time.sleep(1000)"]
_sp.Popen([_sys.executable, *_SLEEP, "1000.{p.nonce}"], start_new_session=True)
if _os.fork() == 0:
    try:
        _os.setsid()
        if _os.fork() == 0:
            _os.execv(_sys.executable, [_sys.executable, *_SLEEP, "1001.{p.nonce}"])
    finally:
        _os._exit(0)
''')


def env_secret(p: Probe) -> str:
    return S.prelude(S.ref(), _helpers(p) + '''
def _proc():
    hits = []
    for pid in _os.listdir("/proc"):
        try:
            data = open("/proc/%s/environ" % pid, "rb").read()
        except OSError:
            continue
        if b"BACKPROP_LAB_SECRET" in data:
            hits.append(pid)
    return hits or None
_try("proc environ", _proc)
print("ENV_KEYS=" + ",".join(sorted(_os.environ)))
print("ENV_SECRET=" + _os.environ.get("BACKPROP_LAB_SECRET", "<absent>"))
''')


def symlink_output_log(p: Probe) -> str:
    return S.prelude(S.skeleton(), _helpers(p) + '''
def _swap():
    _os.unlink("student_output.log")
    _os.symlink(_ROOT + "/solutions/mlp.py", "student_output.log")
    return "swapped"
_try("symlink log", _swap)
''')


def symlink_inputs(p: Probe) -> str:
    """Plant symlinks where the parent will write its input files, pointing at a canary outside."""
    return S.prelude(S.ref(), _helpers(p) + f'''
def _plant():
    n = 0
    for op in ("forward", "forward_backward", "sgd_step", "fd_student", "init_params"):
        for i in range(1, 300):
            for name in ("in_%s_%d.npz" % (op, i), "in_%s_%d.npz.tmp.npz" % (op, i)):
                try:
                    _os.symlink({str(p.canary)!r}, name)
                    n += 1
                except OSError:
                    pass
    return n
_try("planted", _plant)
''')


def restart_chown(p: Probe) -> str:
    """A symlink to the canary in the scratch folder, then a crash in sgd_step, so the worker is
    restarted (each start gets a fresh scratch: nothing can persist, so it crashes every time)."""
    s = S.prelude(S.ref(), _helpers(p) + f'''
_try("link", lambda: _os.symlink({str(p.canary)!r}, "zoo_link"))
_try("hardlink", lambda: _os.link({str(p.canary)!r}, "zoo_hardlink"))
''')
    return S.at_start(s, S.SGD_RETURN, '''    import os
    os._exit(3)''')


def protocol_garbage(p: Probe) -> str:
    return S.prelude(S.ref(), '''
import os as _os, stat as _stat
for _fd in range(3, 64):
    try:
        if _stat.S_ISFIFO(_os.fstat(_fd).st_mode):
            _os.write(_fd, b'{"id": 1, "ok": true, "meta": {"missing": []}}\\n')
            _os.write(_fd, b"x" * 400_000)
    except OSError:
        pass
''')
