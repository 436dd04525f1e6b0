"""Shared helpers for the zoo and sandbox tests: environments per isolation level, the probe, and the
containment facts every graded entry must leave true (no process, no scratch folder, no file touched)."""
from __future__ import annotations

import contextlib
import hashlib
import os
import random
import socket
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

from autograder import grade as grade_mod
from autograder.config import load_config
from autograder.grade import Environment, GradeReport, grade_source
from autograder.paths import PROJECT_ROOT
from autograder.sandbox.launch import descendants
from autograder.sandbox.level import SANDBOX_USER, detect
from autograder.worker.session import WorkerSession
from . import Entry
from .hostile import Probe
from shared_cache import prepare_shared
from timing import wall_bound

_ENVS: dict[tuple, Environment] = {}


@contextlib.contextmanager
def isolation_cap(level: str | None):
    """BACKPROP_LAB_ISOLATION=level for the block (detect() is cached: cleared on entry and exit)."""
    old = os.environ.get("BACKPROP_LAB_ISOLATION")
    if level is None:
        os.environ.pop("BACKPROP_LAB_ISOLATION", None)
    else:
        os.environ["BACKPROP_LAB_ISOLATION"] = level
    detect.cache_clear()
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("BACKPROP_LAB_ISOLATION", None)
        else:
            os.environ["BACKPROP_LAB_ISOLATION"] = old
        detect.cache_clear()


#: The zoo's limits: the same code paths as a course's, with hangs that cost seconds (a correct
#: submission's slowest call, finite differences through a per-example loop, takes well under 1 s).
ZOO_LIMITS = {"load_timeout_s": 8.0, "call_timeout_s": 6.0, "retry_timeout_s": 2.0}


def zoo_config(activation: str = "relu", limits: tuple[tuple[str, float], ...] = (),
               budget_floor_s: float | None = None):
    """The course config with ``activation``, under ZOO_LIMITS and then ``limits`` (an entry's own),
    and the training budget floor ``budget_floor_s`` when given."""
    cfg = load_config().with_activation(activation)
    cfg = replace(cfg, sandbox=replace(cfg.sandbox, **{**ZOO_LIMITS, **dict(limits)}))
    if budget_floor_s is not None:
        cfg = replace(cfg, training=replace(cfg.training, budget_floor_s=budget_floor_s))
    return cfg


def environment(level: str | None, activation: str = "relu", with_training: bool = False,
                limits: tuple[tuple[str, float], ...] = (), budget_floor_s: float | None = None) -> Environment:
    """A prepared grading environment at isolation ``level`` (None: the best this machine offers),
    under ZOO_LIMITS, ``limits`` and ``budget_floor_s`` (see zoo_config)."""
    key = (level or "", activation, with_training, limits, budget_floor_s)
    if key not in _ENVS:
        with isolation_cap(level):
            _ENVS[key] = prepare_shared(zoo_config(activation, limits, budget_floor_s), with_training)
    return _ENVS[key]


def entry_environment(entry: Entry, level: str | None, with_training: bool) -> Environment:
    """The environment ``entry`` is graded in: its activation, its own limits and budget floor."""
    return environment(level, entry.activation, with_training, entry.limits, entry.budget_floor_s)


def best_level() -> str:
    return environment(None).iso.level


def needs_full() -> None:
    if best_level() != "full":
        pytest.skip(f"needs the full isolation level (this machine offers {best_level()!r}; "
                    "run `backprop-lab sandbox setup` as root)")


@dataclass
class Canary:
    path: Path
    text: str
    uid: int
    mode: int

    def intact(self) -> str | None:
        """None when untouched, else what changed."""
        try:
            st = self.path.lstat()
            text = self.path.read_text(errors="replace")
        except OSError as exc:
            return f"canary unreadable: {exc}"
        if text != self.text:
            return f"canary overwritten ({text[:40]!r})"
        if st.st_uid != self.uid:
            return f"canary chowned to uid {st.st_uid}"
        if st.st_mode & 0o7777 != self.mode:
            return f"canary mode changed to {oct(st.st_mode & 0o7777)}"
        return None


def make_probe(folder: Path) -> tuple[Probe, socket.socket, socket.socket, Canary]:
    """A probe for hostile entries: TCP/UDP listeners on one port, a canary file outside any scratch."""
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.bind(("127.0.0.1", 0))
    tcp.listen(8)
    tcp.setblocking(False)
    port = tcp.getsockname()[1]
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", port))
    udp.setblocking(False)
    folder.mkdir(parents=True, exist_ok=True)
    canary_path = folder / "canary.txt"
    canary_path.write_text("canary: must never change\n")
    os.chmod(canary_path, 0o644)
    canary = Canary(canary_path, canary_path.read_text(), canary_path.stat().st_uid, 0o644)
    nonce = f"{os.getpid() % 10000}{random.randrange(10**5, 10**6)}"
    return Probe(nonce, port, canary_path, PROJECT_ROOT), tcp, udp, canary


def marked_processes(probe: Probe) -> list[str]:
    """Live processes carrying the probe's marks (sleep arguments, comm names) anywhere on the machine."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            comm = Path(f"/proc/{entry}/comm").read_text().strip()
            state = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z" and (probe.nonce in cmdline or comm == probe.comm):
            found.append(f"{entry}: {comm} {cmdline[:60]}")
    return found


def sandbox_uid() -> int | None:
    import pwd
    try:
        return pwd.getpwnam(SANDBOX_USER).pw_uid
    except KeyError:
        return None


GUARDED = [PROJECT_ROOT / "autograder" / "grade.py", PROJECT_ROOT / "autograder" / "worker" / "harness.py",
           PROJECT_ROOT / "solutions" / "mlp.py", PROJECT_ROOT / "course.toml"]


def guarded_digest() -> dict[str, str]:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in GUARDED if p.exists()}


@dataclass
class Graded:
    report: GradeReport
    wall: float
    roots: list[Path] = field(default_factory=list)
    source: str = ""   # what was graded (the entry built with the probe)


def grade_contained(entry: Entry, probe: Probe, canary: Canary, env: Environment, monkeypatch) -> Graded:
    """Grade ``entry`` and assert the generic containment facts; returns the report for verdict checks."""
    roots: list[Path] = []

    class Recording(WorkerSession):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            roots.append(self.root)

    monkeypatch.setattr(grade_mod, "WorkerSession", Recording)
    before_children = descendants(os.getpid())
    started = time.perf_counter()
    source = entry.build(probe)
    report = grade_source(source, env)
    wall = time.perf_counter() - started

    bound = wall_bound(entry.seconds)   # entry.seconds on a quiet machine, stretched by the load
    assert wall <= bound, f"{entry.name}: grading took {wall:.1f} s (limit {bound:.1f} s at this load): a hang?"
    left = descendants(os.getpid()) - before_children
    assert not left, f"{entry.name}: processes left behind as children of the grader: {sorted(left)}"
    deadline = time.monotonic() + 3
    while (marked := marked_processes(probe)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not marked, f"{entry.name}: processes of the submission survived grading: {marked}"
    assert not any(r.exists() for r in roots), f"{entry.name}: scratch folder not removed: {roots}"
    problem = canary.intact()
    assert problem is None, f"{entry.name}: a file outside the scratch folder was touched: {problem}"
    for path in GUARDED:
        assert "pwned" not in path.read_text(errors="replace"), f"{entry.name}: {path} was written"
    assert not (PROJECT_ROOT / "autograder" / "evil.py").exists()
    return Graded(report, wall, roots, source)


def check_verdict(entry: Entry, report: GradeReport, skip_training: bool = True) -> None:
    """Score per check id, diagnosis ids and words of the feedback, and the status, as the entry says."""
    got = report.by_check()
    expect = dict(entry.expect)
    if entry.training is not None:
        expect["training"] = entry.training
    for check_id, score in expect.items():
        detail = "\n".join(f"  {r.name}: {r.score:g}/{r.max_score:g} {r.diagnoses} {r.message[:200]}"
                           for r in report.results if r.check_id == check_id)
        allowed = score if isinstance(score, tuple) else (score,)
        assert any(got.get(check_id) == pytest.approx(s, abs=1e-6) for s in allowed), \
            f"{entry.name}: {check_id} scored {got.get(check_id)}, expected {' or '.join(map(str, allowed))}\n{detail}"
    for check_id, ids in entry.diagnoses.items():
        seen = {d for r in report.results if r.check_id == check_id for d in r.diagnoses}
        assert set(ids) <= seen, f"{entry.name}: {check_id} diagnoses {sorted(seen)} lack {sorted(set(ids) - seen)}"
    for check_id, words in entry.words.items():
        failing = [r for r in report.results if r.check_id == check_id and not r.passed]
        text = " ".join(r.message for r in failing).lower()
        for word in words:
            assert word.lower() in text, f"{entry.name}: the {check_id} feedback does not say {word!r}:\n{text[:800]}"
    if entry.status:
        assert report.status == entry.status, f"{entry.name}: status {report.status}, expected {entry.status}"
