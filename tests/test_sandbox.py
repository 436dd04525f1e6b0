"""The sandbox seen from inside the worker, and the parent's side of the boundary under attack.

Inside: who the worker runs as, which limits bind, what it can see and write, its environment and
network (facts printed by a probe submission). Outside: the parent never reads or writes through a
link the worker planted, never blocks on a FIFO, refuses oversized and bomb npz files, does not start
a worker it cannot trust, and spends a hang's full time only once.
"""
from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from autograder.errors import UserError
from autograder.grade import grade_source
from autograder.mnist import mnist_dir
from autograder.paths import PROJECT_ROOT
from autograder.config import SandboxLimits
from autograder.sandbox.allowlist import Allowlist, derive
from autograder.sandbox.launch import LaunchSpec, command, nproc_limit, worker_env
from autograder.sandbox.level import Isolation
from autograder.worker import session as session_mod
from autograder.worker import arrayfile
from autograder.worker.session import CONFINE, HARNESS, MAX_ARRAY_FILE, WorkerSession, WorkerStartError

Limits = SandboxLimits
RETRY_TIMEOUT = SandboxLimits().retry_timeout_s
from zoo import sources as S
from zoo.support import environment, needs_full, sandbox_uid

FACTS = r'''
import json as _json, os as _os, resource as _r
def _can_write(d):
    path = _os.path.join(d, "zoo_probe_write_%d" % _os.getpid())
    try:
        with open(path, "x") as fh:
            fh.write("x")
    except OSError:
        return False
    _os.unlink(path)  # at the rlimits level this really is the host's folder
    return True
def _ls(d):
    try:
        return sorted(_os.listdir(d))
    except OSError as exc:
        return type(exc).__name__
_facts = {
    "uid": _os.getuid(), "gid": _os.getgid(), "groups": _os.getgroups(), "pid": _os.getpid(),
    "limits": {k: _r.getrlimit(getattr(_r, "RLIMIT_" + k))[0] for k in ("AS", "CPU", "FSIZE", "NOFILE", "NPROC")},
    "ifaces": sorted(l.split(":")[0].strip() for l in open("/proc/net/dev").read().splitlines()[2:]),
    "env": sorted(_os.environ), "cwd": _os.getcwd(),
    "project": _ls(PROJECT), "solutions": _ls(PROJECT + "/solutions"), "git": _ls(PROJECT + "/.git"),
    "test": _ls(MNIST + "/test"), "valid": _ls(MNIST + "/valid"), "train": _ls(MNIST + "/train"),
    "write_tmp": _can_write("/tmp"), "write_project": _can_write(PROJECT), "write_cwd": _can_write("."),
    "write_root": _can_write("/"), "procs": sorted(p for p in _os.listdir("/proc") if p.isdigit()),
}
print("FACTS " + _json.dumps(_facts))
'''


def _facts_submission() -> str:
    code = f"PROJECT = {str(PROJECT_ROOT)!r}\nMNIST = {str(mnist_dir())!r}\n" + FACTS
    return S.prelude(S.ref(), code)


def _facts(level: str | None) -> dict:
    report = grade_source(_facts_submission(), environment(level))
    assert report.score == 80, [r.message for r in report.results if not r.passed]  # still the reference
    line = next(line for line in report.student_output.splitlines() if line.startswith("FACTS "))
    return json.loads(line[len("FACTS "):])


def _session(tmp_path: Path, source: str = "", iso: Isolation | None = None) -> WorkerSession:
    src = tmp_path / "mlp.py"
    src.write_text(source or S.ref())
    return WorkerSession(src, iso or environment(None).iso, "relu")


# ---- inside the worker ---------------------------------------------------------------------------
def test_full_isolation_inside_the_worker():
    """Under full isolation: the sandbox user, its own PID and network namespaces, the limits, the
    training split only, a clean environment, and nothing writable but the scratch folder."""
    needs_full()
    facts = _facts(None)
    limits = Limits()
    assert facts["uid"] == sandbox_uid() and facts["groups"] in ([], [facts["gid"]])
    assert facts["pid"] < 10 and len(facts["procs"]) < 10, "not in its own PID namespace"
    assert facts["ifaces"] == ["lo"], "the worker has a network interface besides loopback"
    assert facts["limits"] == {"AS": limits.memory_mib * 1024**2, "CPU": limits.cpu_rlimit_s,
                               "FSIZE": limits.file_size_mib * 1024**2, "NOFILE": limits.open_files,
                               "NPROC": nproc_limit(limits, environment(None).iso.cgroups)}
    assert set(facts["env"]) <= set(worker_env(Path("/x"))) | {"PWD"}, facts["env"]  # bwrap --chdir sets PWD
    for hidden in ("solutions", "test", "valid", "git"):  # not part of the allowlist: absent
        assert facts[hidden] in ("FileNotFoundError", "PermissionError"), (hidden, facts[hidden])
    # the project is absent (a clone in a closed folder: harness and training split are staged copies),
    # or shows only the folders leading to the harness and the training split
    assert facts["project"] in ("PermissionError", "FileNotFoundError") or \
        set(facts["project"]) <= {"autograder", "data"}, facts["project"]
    assert facts["project"] == "FileNotFoundError" or {"X.npy", "y.npy"} <= set(facts["train"])
    assert facts["write_cwd"] and not (facts["write_tmp"] or facts["write_project"] or facts["write_root"])


def test_rlimits_bind_at_every_level():
    facts = _facts("rlimits")
    limits = Limits()
    assert facts["limits"]["AS"] == limits.memory_mib * 1024**2 and facts["limits"]["CPU"] == limits.cpu_rlimit_s
    assert facts["limits"]["FSIZE"] == limits.file_size_mib * 1024**2 and facts["limits"]["NOFILE"] == limits.open_files
    assert set(facts["env"]) <= set(worker_env(Path("/x")))


@pytest.mark.parametrize("level", ["landlock", "bwrap", "user", "rlimits"])
def test_intermediate_levels_grade_the_reference(level):
    """Every weaker level still grades a correct submission with full marks: the allowlist derived
    from the interpreter holds everything numpy and the harness need."""
    env = environment(level)
    if env.iso.level != level:
        pytest.skip(f"level {level!r} is not available here (got {env.iso.level!r})")
    report = grade_source(S.ref(), env)
    assert report.by_check() == {"forward": 15, "gradients": 35, "minibatch": 20, "sgd_step": 10, "training": 0}


def test_worker_env_is_clean(monkeypatch):
    monkeypatch.setenv("BACKPROP_LAB_SECRET", "s3cret")
    env = worker_env(Path("/scratch"))
    assert "s3cret" not in json.dumps(env) and not any(k.startswith("BACKPROP") for k in env)
    assert env["OPENBLAS_NUM_THREADS"] == "1" and env["HOME"] == "/scratch"


def test_bwrap_root_is_built_from_the_allowlist_only(tmp_path):
    """No bind of / or of any folder that is not in the allowlist; scratch is the only writable bind;
    /tmp and /dev/shm are size-capped private tmpfs; the root itself is read-only."""
    allow = Allowlist((Path("/usr/lib/python3.11"), HARNESS), (("usr/lib", "/lib"),))
    spec = LaunchSpec(scratch=Path("/tmp/x/scratch"), harness=HARNESS, allowlist=allow)
    argv = command(Isolation("full", "/usr/bin/python3", 1, 1, "/usr/bin/bwrap", 7, True), spec)
    pairs = [(argv[i], argv[i + 1]) for i in range(len(argv) - 1)]
    ro = [b for a, b in pairs if a == "--ro-bind"]
    assert ro == ["/usr/lib/python3.11", str(HARNESS)], ro
    assert [b for a, b in pairs if a == "--bind"] == ["/tmp/x/scratch"]
    assert "/" not in ro and "--symlink" in argv
    text = " ".join(argv)
    assert f"--size {spec.limits.scratch_mib * 1024**2} --tmpfs /dev/shm" in text and "--remount-ro /" in text
    confine = json.loads(argv[argv.index("--confine") + 1])
    assert confine["landlock"] and confine["seccomp"] and confine["writable"][0] == "/tmp/x/scratch"


def test_allowlist_derived_from_the_interpreter_holds_no_site_packages():
    """The grader's own interpreter keeps every package (the grader's too) in site-packages: only
    numpy's folders of it are allowed, plus the standard library and the mapped libraries."""
    allow = derive(sys.executable)
    site = [p for p in allow.read_only if "site-packages" in p.parts]
    assert site and all(any(part.startswith(("numpy", "pyseccomp")) for part in p.parts) for p in site), site
    assert not any(p == Path(sys.prefix) or p.name == "site-packages" for p in allow.read_only)
    assert any(p.name.startswith("libc.so") or p.name.startswith("libc-") for p in allow.read_only)
    assert Path("/etc/ld.so.cache") in allow.read_only and Path("/etc") not in allow.read_only


# ---- the parent's side of the boundary -----------------------------------------------------------
def _npz_bytes(**arrays) -> bytes:
    """An array file as the harness writes it (worker/arrayfile.py)."""
    import io
    buf = io.BytesIO()
    arrayfile.write(buf, arrays)
    return buf.getvalue()


def _in_thread(fn, seconds: float = 5.0):
    out: dict = {}
    thread = threading.Thread(target=lambda: out.setdefault("value", fn()), daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "the parent blocked"
    return out["value"]


class TestParentReads:
    def test_plain_npz(self, tmp_path):
        with _session(tmp_path) as s:
            (s.scratch / "out.npz").write_bytes(_npz_bytes(a=np.arange(3.0)))
            assert s.load_arrays("out.npz")["a"].tolist() == [0, 1, 2]
            assert not (s.scratch / "out.npz").exists()

    def test_symlink_is_not_followed(self, tmp_path):
        outside = tmp_path / "outside.npz"
        outside.write_bytes(_npz_bytes(secret=np.ones(2)))
        with _session(tmp_path) as s:
            (s.scratch / "out.npz").symlink_to(outside)
            assert s.load_arrays("out.npz") == {}
        assert outside.exists()

    def test_fifo_does_not_block(self, tmp_path):
        with _session(tmp_path) as s:
            os.mkfifo(s.scratch / "out.npz")
            assert _in_thread(lambda: s.load_arrays("out.npz")) == {}
            os.mkfifo(s.scratch / "student_output.log.fifo")
            os.replace(s.scratch / "student_output.log.fifo", s.scratch / "student_output.log")
            assert _in_thread(s.output_tail) == ""

    def test_hardlink_is_refused(self, tmp_path):
        with _session(tmp_path) as s:
            target = s.scratch / "real.npz"
            target.write_bytes(_npz_bytes(a=np.ones(2)))
            os.link(target, s.scratch / "out.npz")
            assert s.load_arrays("out.npz") == {}

    def test_a_header_claiming_a_huge_array_is_refused_without_allocating(self, tmp_path):
        """A 1 KiB file whose header claims 40 GB (as one record field, or as a plain array, or as
        320 MB in a zip as np.savez writes): refused from the header alone, nothing inflated."""
        with _session(tmp_path) as s:
            path = s.scratch / "out.npz"
            for descr, shape in (("[('probs', '<f8', (5000000000,))]", "()"), ("'<f8'", "(5000000000,)"),
                                 ("[('a', '<f8')]", "(5000000000,)")):
                header = f"{{'descr': {descr}, 'fortran_order': False, 'shape': {shape}, }}".encode().ljust(117) + b"\n"
                path.write_bytes(b"\x93NUMPY\x01\x00" + header + bytes(1024))
                started = time.perf_counter()
                assert s.load_arrays("out.npz") == {}
                assert time.perf_counter() - started < 1.0 and not path.exists()
            header = b"\x93NUMPY\x01\x00" + b"{'descr': '<f8', 'fortran_order': False, 'shape': (40000000,), }".ljust(
                117) + b"\n"
            with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
                with zf.open("probs.npy", "w", force_zip64=True) as fh:
                    fh.write(header)
                    chunk = bytes(1 << 20)
                    for _ in range(320):
                        fh.write(chunk)
            assert path.stat().st_size < MAX_ARRAY_FILE // 16
            started = time.process_time()   # the parent's own CPU: what inflating would cost
            assert s.load_arrays("out.npz") == {}
            assert time.process_time() - started < 1.0

    def test_a_pickled_or_object_file_is_refused(self, tmp_path):
        with _session(tmp_path) as s:
            path = s.scratch / "out.npy"
            np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
            assert s.load_arrays("out.npy") == {}
            record = np.zeros((), dtype=[("o", object)])
            np.save(path, record, allow_pickle=True)
            assert s.load_arrays("out.npy") == {}

    def test_oversized_npz_is_refused(self, tmp_path):
        with _session(tmp_path) as s:
            with open(s.scratch / "out.npz", "wb") as fh:
                fh.truncate(MAX_ARRAY_FILE + 1)
            assert s.load_arrays("out.npz") == {}

    def test_output_tail_symlink_is_not_followed(self, tmp_path):
        with _session(tmp_path) as s:
            (s.scratch / "student_output.log").symlink_to(PROJECT_ROOT / "solutions" / "mlp.py")
            assert s.output_tail() == ""

    def test_output_tail_keeps_the_end(self, tmp_path):
        with _session(tmp_path) as s:
            (s.scratch / "student_output.log").write_text("a" * 10_000 + "THE END\n")
            tail = s.output_tail()
            assert tail.startswith("... (earlier output cut)") and tail.endswith("THE END\n") and len(tail) < 3100

    def test_inputs_written_under_unguessable_names_without_following_links(self, tmp_path):
        canary = tmp_path / "canary"
        canary.write_text("keep")
        with _session(tmp_path) as s:
            for i in range(1, 5):
                (s.scratch / f"in_forward_{i}.npz").symlink_to(canary)
            name = s._write_input("forward_1", {"X": np.ones((2, 2))})
            path = s.scratch / name
            assert name != "in_forward_1.npz" and stat.S_ISREG(path.lstat().st_mode)
            if s.iso.uid is not None:
                assert path.stat().st_uid == s.iso.uid
        assert canary.read_text() == "keep" and canary.stat().st_uid == os.getuid()

    def test_mutations_are_judged_in_the_parent(self):
        sent = {"p_W": np.ones(2), "g_W": np.ones(2), "g_b": np.zeros(1)}
        back = {"after_p_W": np.zeros(2), "after_g_W": np.ones(2) * 2}  # params may change; g_b missing
        assert WorkerSession._mutations("sgd_step", sent, back) == ["grads.W", "grads.b"]
        sent = {"X": np.ones((2, 2)), "W": np.ones((1, 2))}
        back = {"after_X": np.ones((2, 2)), "after_W": np.array([[1.0, np.nan]])}
        assert WorkerSession._mutations("forward", sent, back) == ["params.W"]


def test_every_start_gets_a_fresh_scratch_and_copy(tmp_path):
    """A restart never reuses (so never chowns or opens) anything the previous worker could touch."""
    canary = tmp_path / "canary"
    canary.write_text("keep")
    with _session(tmp_path) as s:
        assert s.ensure_started().ok
        first = s.scratch
        (first / "link").symlink_to(canary)
        (first / "dirlink").symlink_to(tmp_path)
        s.stop()
        assert not first.exists(), "the used scratch folder is removed when its worker stops"
        assert s.ensure_started().ok and s.scratch != first
        assert (s.scratch / "submission" / "mlp.py").read_bytes() == (tmp_path / "mlp.py").read_bytes()
    assert canary.read_text() == "keep" and canary.stat().st_uid == os.getuid()
    assert tmp_path.stat().st_uid == os.getuid()


# ---- starting and stopping workers ---------------------------------------------------------------
@pytest.mark.parametrize("python", ["/nonexistent/python3", "/bin/false"])
def test_a_worker_that_cannot_start_is_the_graders_problem(tmp_path, python, monkeypatch):
    """No student code ran, so no score: an error naming the installation (CLI: exit 2, one line),
    after every retry of the back-off (its waits shortened here: 1 + 4 + 10 s in a real run)."""
    delays = (0.01, 0.02, 0.03)
    monkeypatch.setattr(session_mod, "START_RETRY_DELAYS", delays)
    with _session(tmp_path, iso=Isolation("rlimits", python)) as s:
        with pytest.raises(WorkerStartError, match="sandbox check") as info:
            s.ensure_started()
        retries = [e for e in s.events if "did not start; retrying" in e]
    assert isinstance(info.value, UserError)
    assert len(retries) == len(delays), s.events


def test_a_hang_costs_its_full_time_only_once(tmp_path):
    source = S.at_start(S.ref(), S.FORWARD_FIRST, "    import time\n    time.sleep(1000)")
    arrays = {"W": np.ones((2, 3)), "b": np.ones(2), "V": np.ones((2, 2)), "c": np.ones(2), "X": np.ones((1, 3))}
    with _session(tmp_path, source) as s:
        started = time.perf_counter()
        assert s.call("forward", arrays, timeout=2.0).kind == "timeout"
        first = time.perf_counter() - started
        started = time.perf_counter()
        assert s.call("forward", arrays, timeout=20.0).kind == "timeout"
        second = time.perf_counter() - started
        assert s.call("sgd_step", {f"{p}_{k}": np.ones(2) for p in "pg" for k in "WbVc"}, timeout=20.0,
                      learning_rate=0.1).ok, "a later call of another function still works"
    assert 1.9 < first < 8 and second < RETRY_TIMEOUT + 5


def test_limits_fit_the_training_split():
    """The memory limit leaves room for numpy, the memory-mapped training split and a large hidden
    layer (a correct submission must never hit it)."""
    x = mnist_dir() / "train" / "X.npy"
    assert Limits().memory_mib * 1024**2 > 3 * x.stat().st_size + 512 * 1024**2
    assert Limits().cpu_rlimit_s >= 60


def test_allowlist_holds_the_harness_and_the_training_split_only_of_the_project(tmp_path):
    iso = environment(None).iso
    if not (iso.bwrap or iso.landlock):
        pytest.skip("no layer enforces an allowlist at this level")
    with _session(tmp_path) as s:
        listed = s.allowlist().read_only
    inside = [p for p in listed if p == PROJECT_ROOT or PROJECT_ROOT in p.parents]
    assert sorted(inside) == sorted([HARNESS, CONFINE, mnist_dir() / "train"]) or \
        set(inside) <= {HARNESS, CONFINE, mnist_dir() / "train"}, inside
    assert session_mod.HARNESS.is_file()


def test_groups_a_killed_grader_left_behind_are_swept_and_live_ones_kept():
    """`kill -9` of a batch leaves its workers' cgroups (and any process still in them): the next
    grader process removes them; the groups of a grader that is still running are left alone."""
    from autograder.sandbox import cgroups
    mine = cgroups.create(64 * 1024**2, 8)
    if mine is None:
        pytest.skip("no writable cgroups here")
    try:
        parents = sorted({f.parent for f in mine.folders.values()})
        dead = subprocess.Popen(["true"])
        dead.wait()
        stale = [p / f"{cgroups.PREFIX}{dead.pid}-feedface" for p in parents]
        for folder in stale:
            folder.mkdir()
        sleeper = subprocess.Popen(["sleep", "60"])
        for folder in stale:
            (folder / "cgroup.procs").write_text(str(sleeper.pid))
        removed = cgroups.sweep_stale(parents)
        # Other tests (kill -9 of a batch) may have left groups of dead graders too: those go as well,
        # and nothing removed belongs to a grader that is still alive.
        assert set(stale) <= set(removed) and not any(f.exists() for f in stale)
        for folder in removed:
            owner = int(folder.name[len(cgroups.PREFIX):].split("-")[0])
            assert not cgroups.process_alive(owner), f"{folder} belonged to a live grader"
        assert sleeper.wait(timeout=10) == -signal.SIGKILL     # its process went with it
        assert all(f.exists() for f in mine.folders.values())  # this live process's group stays
    finally:
        mine.remove()
