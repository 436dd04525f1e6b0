"""Issue 10's red-team attacks, each graded at every isolation level this machine offers (full;
Landlock + seccomp with bubblewrap disabled; rlimits only) and judged from outside the worker.

Decoys sit outside the allowlist (a course checkout, a release, a data cache, another student's
results, a secret in the grader's home): no byte of them may reach any output. File attacks are
contained at the full and landlock levels; the rlimits level protects no file (it says so in every
report and `sandbox check`), so there only the resource, cleanup and protocol attacks are judged.
"""
from __future__ import annotations

import json
import os
import random
import shutil
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path
from unittest import mock

import numpy as np
import pytest

from autograder import grade as grade_mod
from autograder.config import load_config
from autograder.grade import grade_source, prepare
from autograder.mnist import mnist_dir
from autograder.sandbox.allowlist import derive
from autograder.sandbox.launch import descendants
from autograder.sandbox.level import LEVELS, NOBODY, Isolation, detect, sandbox_python
from autograder.sandbox.stage import training_split
from autograder.worker.session import WorkerSession, parse_reply
from zoo import escape as E
from zoo import sources as S
from zoo.support import isolation_cap
from timing import load_factor

REFERENCE_SCORES = {"forward": 15.0, "gradients": 35.0, "minibatch": 20.0, "sgd_step": 10.0}
_ENVS: dict[str, object] = {}


def _env(level: str):
    """A prepared environment capped at ``level``, with short limits (the same code paths)."""
    if level not in _ENVS:
        cfg = load_config()
        cfg = replace(cfg, sandbox=replace(cfg.sandbox, load_timeout_s=30.0, call_timeout_s=20.0))
        with isolation_cap(level):
            env = prepare(cfg, with_training=False)
        if env.iso.level != level:
            pytest.skip(f"this machine does not offer the {level} level (got {env.iso.level})")
        _ENVS[level] = env
    return _ENVS[level]


def _levels() -> list[str]:
    return ["full", "landlock", "rlimits"]


@pytest.fixture(scope="module")
def decoys(tmp_path_factory):
    nonce = f"{random.randrange(10**11, 10**12)}"
    base = Path(tempfile.mkdtemp(prefix="bplab-decoys-", dir="/var/tmp"))
    home = Path(tempfile.mkdtemp(prefix=".bplab-decoy-", dir=Path.home()))
    files = {
        base / "instructor" / "backprop-lab" / "solutions" / "mlp.py": f"# BEGIN SOLUTION {nonce}\n",
        base / "dist" / "2026" / "autograder" / "solutions" / "mlp.py": f"# BEGIN SOLUTION {nonce}\n",
        base / "cache" / "mnist" / "test" / "y.npy": f"labels {nonce}\n",
        tmp_path_factory.mktemp("results") / "bob" / "results.json": json.dumps({"score": 100, "who": nonce}),
        home / "secret": f"course-secret-{nonce}\n",
    }
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        os.chmod(path, 0o644)
        for parent in path.parents:   # world-traversable, as a careless checkout would be
            if parent in (base, home) or base in parent.parents or home in parent.parents:
                os.chmod(parent, 0o755)
    canary = base / "canary.txt"
    canary.write_text("canary: must never change\n")
    os.chmod(canary, 0o644)
    yield E.Decoys(nonce, tuple(files), (), canary)
    shutil.rmtree(base, ignore_errors=True)
    shutil.rmtree(home, ignore_errors=True)


def _allowed(env) -> tuple[str, ...]:
    iso = env.iso
    train = training_split(mnist_dir() / "train", iso.uid is not None)   # as the session stages it
    allow = derive(iso.python, iso.uid, iso.gid).with_paths([train])     # (the harness copy is in /tmp)
    return tuple(str(p) for p in allow.read_only) + tuple(link for _, link in allow.symlinks) + \
        ("/dev", "/proc", "/tmp", "/etc/ld.so.cache")


def _named(comm: str) -> list[str]:
    """Live processes anywhere on the machine named ``comm``."""
    found = []
    for entry in os.listdir("/proc"):
        try:
            if entry.isdigit() and Path(f"/proc/{entry}/comm").read_text().strip() == comm:
                state = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
                if state != "Z":
                    found.append(entry)
        except OSError:
            continue
    return found


def _grade(build, env, decoys: E.Decoys):
    source = build(replace(decoys, allowed=_allowed(env)))
    before = {p: (p.stat().st_uid, p.stat().st_mode, p.read_bytes()) for p in [decoys.canary, *decoys.paths]}
    shm_before = set(os.listdir("/dev/shm"))
    roots: list[Path] = []

    class Recording(WorkerSession):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            roots.append(self.root)

    children_before = descendants(os.getpid())
    with mock.patch.object(grade_mod, "WorkerSession", Recording):
        report = grade_source(source, env)
    assert roots and not [r for r in roots if r.exists()], f"session folders left: {roots}"
    assert not descendants(os.getpid()) - children_before, "processes left behind"
    comm = f"zoo{decoys.nonce}"[:15]
    deadline = time.monotonic() + 3
    while (alive := _named(comm)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive, f"processes of the submission survived grading: {alive}"
    for path, facts in before.items():
        st = path.stat()
        assert (st.st_uid, st.st_mode, path.read_bytes()) == facts, f"{path} changed"
    left = [n for n in set(os.listdir("/dev/shm")) - shm_before if decoys.nonce in n]
    assert not left, f"files left in /dev/shm: {left}"
    for folder in ("/tmp", "/var/tmp"):
        assert not [n for n in os.listdir(folder) if f"zoo{decoys.nonce}" in n], f"files left in {folder}"
    text = json.dumps([r.message for r in report.results]) + report.student_output
    assert decoys.nonce not in text, f"a decoy reached the output:\n{report.student_output[-2000:]}"
    assert "BEGIN SOLUTION" not in text
    return report


@pytest.mark.parametrize("level", ["full", "landlock"])
def test_walk_of_root_finds_nothing_outside_the_allowlist(level, decoys):
    env = _env(level)
    report = _grade(E.walk_root, env, decoys)
    out = report.student_output
    assert "DECOY_READ" not in out and "FOUND" not in out, out[-2000:]
    outside = [line for line in out.splitlines() if line.startswith("OUTSIDE")]
    assert not outside, outside
    assert out.count("DECOY_BLOCKED") == len(decoys.paths), out[-2000:]
    walked = int(next(line for line in out.splitlines() if line.startswith("WALKED")).split()[1])
    if level == "full":
        assert walked > 300, "the walk saw too little to prove anything"
    assert report.by_check() == {**REFERENCE_SCORES, "training": 0.0}


#: Tests that fill a worker up to its memory limit share one xdist worker, so they never run side by
#: side: the memory-sharing test reads the host's MemAvailable, which two of them at once (2 GiB each)
#: would move by twice the limit (docs/design.md, issue 16).
MEMORY_GROUP = pytest.mark.xdist_group("memory_limit")


@MEMORY_GROUP
@pytest.mark.parametrize("level", ["full", "landlock"])
def test_shared_memory_and_tmp_cannot_hold_more_than_the_cap(level, decoys):
    env = _env(level)
    report = _grade(E.shm_fill, env, decoys)
    cap = env.config.sandbox.scratch_mib * 1024**2
    for label in ("SHM", "TMP"):
        line = next((line for line in report.student_output.splitlines() if line.startswith(label)), None)
        if line is None:    # the worker was killed for memory while filling: the cgroup held
            assert any("memory" in e for e in report.events), report.events
            continue
        written = int(line.split()[1])
        assert written <= cap + (64 << 20), line
        assert "no limit" not in line


@pytest.mark.parametrize("level", _levels())
def test_the_scratch_folder_cannot_hold_more_than_the_cap(level, decoys):
    """Many files, each under the per-file limit, 4.2 GB in all: where the grader runs as root the
    scratch folder is a tmpfs of scratch_mib, so the host disk never sees them."""
    env = _env(level)
    if not env.iso.scratch_quota:
        pytest.skip("no scratch tmpfs here (not root): only the per-file size limit applies (stated)")
    free_before = shutil.disk_usage(tempfile.gettempdir()).free
    report = _grade(E.scratch_fill, env, decoys)
    line = next(line for line in report.student_output.splitlines() if line.startswith("SCRATCH"))
    written, why = int(line.split()[1]), line.split()[2]
    assert why == "OSError" and written <= env.config.sandbox.scratch_mib * 1024**2, line
    assert free_before - shutil.disk_usage(tempfile.gettempdir()).free < 64 << 20
    assert report.by_check() == {**REFERENCE_SCORES, "training": 0.0}


def _mem_available() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable"):
            return int(line.split()[1]) * 1024
    return 0


@MEMORY_GROUP
@pytest.mark.parametrize("level", _levels())
def test_forked_children_share_one_memory_limit(level, decoys):
    env = _env(level)
    if not env.iso.cgroups:
        pytest.skip("no writable cgroups here: per-process rlimits only (stated in the report)")
    low = [_mem_available()]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            low.append(_mem_available())
            time.sleep(0.05)

    thread = threading.Thread(target=sample, daemon=True)
    start = low[0]
    thread.start()
    try:
        _grade(E.fork_memory, env, decoys)
    finally:
        stop.set()
        thread.join()
    growth = start - min(low)
    limit = env.config.sandbox.memory_mib * 1024**2
    # MemAvailable is the host's: tests running beside this one (xdist workers: a browser, a notebook
    # kernel with MNIST) move it too, so the margin is 1.25 GiB; an unshared limit would let the three
    # children hold 4.8 GB, still far above limit + margin (3.3 GB).
    assert growth < limit + (1280 << 20), f"host memory fell by {growth >> 20} MiB (limit {limit >> 20} MiB)"


def _busy_source() -> str:
    """A correct submission whose forward also burns a fixed amount of CPU (the neighbour's work)."""
    return S.at_start(S.ref(), S.FORWARD_FIRST, "    _m = np.ones((160, 160))\n    for _ in range(400):\n"
                                                "        _m = np.tanh(_m @ _m * 1e-3)")


def _time_forward(session: WorkerSession) -> float:
    arrays = {"W": np.ones((5, 10)), "b": np.ones(5), "V": np.ones((2, 5)), "c": np.ones(2), "X": np.ones((3, 10))}
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        assert session.call("forward", arrays).ok
        best = min(best, time.perf_counter() - started)
    return best


@pytest.mark.parametrize("level", _levels())
def test_a_cpu_hog_does_not_slow_its_neighbour(level, decoys, tmp_path):
    env = _env(level)
    if not env.iso.cgroups:
        pytest.skip("no writable cgroups here: the CPU cap needs one")
    busy = tmp_path / "busy.py"
    busy.write_text(_busy_source())
    hog = tmp_path / "hog.py"
    hog.write_text(E.cpu_hog(decoys))
    ratios, hog_cpus = [], []
    with WorkerSession(busy, env.iso, "relu", env.config.sandbox) as neighbour:
        with WorkerSession(hog, env.iso, "relu", env.config.sandbox) as attacker:
            for _ in range(3):   # other load on the machine moves both numbers: the best of 3 rounds
                attacker.stop()
                alone = _time_forward(neighbour)
                assert attacker.ensure_started().ok
                time.sleep(0.3)
                assert attacker.group is None or len(attacker.group.pids()) > 5, "the hog did not fork"
                cpu_before, wall_before = attacker.group.cpu_seconds(), time.perf_counter()
                beside = _time_forward(neighbour)
                interval = time.perf_counter() - wall_before
                if cpu_before is not None:
                    hog_cpus.append(((attacker.group.cpu_seconds() - cpu_before) / interval, interval))
                ratios.append((beside / alone, beside, alone))
                if beside <= 1.5 * alone + 0.05:
                    break
    time.sleep(0.2)
    assert not _named(f"zoo{decoys.nonce}"[:15]), "the hog's processes outlived its session"
    # The defence itself, whatever else runs: the hog's whole tree (> 5 processes) gets one CPU at most
    # (one 100 ms CFS period of slack over the interval).
    for cpus, interval in hog_cpus:
        assert cpus <= 1.0 + 0.12 / interval, f"the hog's tree used {cpus:.2f} CPUs over {interval:.2f} s"
    # What it buys the neighbour: on a quiet machine at most 1.5x slower; other load (two CPU hogs beside
    # the suite) slows it by its fair share too, so the bound stretches with the load (tests/timing.py).
    ratio, beside, alone = min(ratios)
    assert ratio <= (1.5 + 0.05 / alone) * load_factor(), \
        f"neighbour {beside:.2f} s beside the hog vs {alone:.2f} s alone (load factor {load_factor():.1f})"


@pytest.mark.parametrize("level", _levels())
def test_deep_folder_in_scratch_is_removed(level, decoys):
    report = _grade(E.deep_scratch, _env(level), decoys)
    assert report.by_check() == {**REFERENCE_SCORES, "training": 0.0}


@pytest.mark.parametrize("level", _levels())
def test_deep_json_on_the_protocol_fd_fails_nothing_of_the_grader(level, decoys):
    report = _grade(E.deep_json, _env(level), decoys)
    assert report.max_score == 100 and report.status in ("graded", "import_error", "crashed")


@pytest.mark.parametrize("level", _levels())
def test_links_planted_before_a_restart_are_never_followed(level, decoys):
    report = _grade(E.chown_link_restart, _env(level), decoys)
    assert any("restarted" in e or "ended" in e for e in report.events), report.events


def test_bwrap_started_as_root_runs_student_code_as_nobody(decoys):
    """Before `sandbox setup` there is no sandbox user: root's bubblewrap drops to nobody first."""
    import shutil as _sh
    bwrap, py = _sh.which("bwrap"), sandbox_python()
    if os.geteuid() != 0 or not bwrap or not py.exists():
        pytest.skip("needs root, bubblewrap and a Python nobody can run")
    base = detect()
    iso = Isolation("bwrap", str(py), NOBODY, NOBODY, bwrap, base.landlock, base.seccomp, base.cgroups)
    env = replace(_env("rlimits"), iso=iso)
    report = grade_source(E.facts(decoys), env)
    line = next(line for line in report.student_output.splitlines() if line.startswith("UID"))
    assert line.split()[1:] == [str(NOBODY), str(NOBODY)], line
    assert report.by_check()["gradients"] == 35.0


def test_per_student_wall_cap_zeroes_the_rest():
    cfg = load_config()
    cfg = replace(cfg, sandbox=replace(cfg.sandbox, student_wall_s=4.0, call_timeout_s=3.0))
    with isolation_cap(None):
        env = prepare(cfg, with_training=False)
    slow = S.at_start(S.ref(), S.FORWARD_FIRST, "    import time\n    time.sleep(1.0)")
    started = time.perf_counter()
    report = grade_source(slow, env)
    wall = time.perf_counter() - started
    assert wall < 4.0 + 8.0, wall
    capped = [r for r in report.results if "per-student time cap" in r.message]
    assert capped and all(r.score == 0 for r in capped)
    assert any("stops after 4 s per student" in n for n in report.notes)


def test_protocol_reader_refuses_deep_and_odd_lines():
    assert parse_reply(b"[" * 50000) is None and parse_reply(b"{" * 50000) is None
    assert parse_reply(b'{"a": ' + b"[" * 20 + b"]" * 20 + b"}") is None
    assert parse_reply(b'{"id": 1, "ok": true, "s": "[[[[[[[[[[[[[["}') == {"id": 1, "ok": True, "s": "[[[[[[[[[[[[[["}
    assert parse_reply(b"\xff\xfe") is None and parse_reply(b"[1, 2]") is None


def test_levels_refuse_below_the_course_minimum():
    from autograder.errors import IsolationError
    cfg = load_config()
    cfg = replace(cfg, sandbox=replace(cfg.sandbox, minimum_isolation="full"))
    with isolation_cap("rlimits"):
        with pytest.raises(IsolationError, match="minimum_isolation"):
            prepare(cfg, with_training=False)
    assert LEVELS[0] == "full" and LEVELS[-1] == "rlimits"
