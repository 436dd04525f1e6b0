"""Batch grading end to end: malformed classes are reported and the rest is graded; reruns skip what is
unchanged and regrade what changed; LMS exports; kill -9 at any moment loses nothing and grades nobody twice."""
from __future__ import annotations

import csv
import io
import json
import os
import re
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from autograder.batch.demo import skeleton_source
from autograder.batch.runner import LOG, WORKERS_LOCK, run_batch
from autograder.config import load_config
from autograder.mutants import mutant_sources
from autograder.reference import reference_source
from batch_states import states

CONFIG = load_config()
ACT = CONFIG.activation
REF = reference_source(ACT)
MUT = mutant_sources(ACT)


def read_gradebook(path: Path) -> dict[str, dict[str, str]]:
    with open(path, newline="", encoding="utf-8-sig") as fh:
        return {row["student"]: row for row in csv.DictReader(fh)}


def done_events(out: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    if (out / LOG).exists():
        for line in (out / LOG).read_text(encoding="utf-8").splitlines():
            parts = line.split("\t")
            if len(parts) >= 4 and parts[2] in ("done", "unreadable"):
                counts[parts[3]] = counts.get(parts[3], 0) + 1
    return counts


def quiet(**kw):
    return dict(progress="none", stream=io.StringIO(), prepare_progress=lambda m: None, **kw)


# ---- malformed inputs, resumability (no training: fast) -------------------------------------------

def test_malformed_class_is_reported_and_the_rest_graded(tmp_path):
    subs = tmp_path / "class"
    (subs / "alice").mkdir(parents=True)
    (subs / "alice" / "mlp.py").write_text(REF)
    (subs / "alice.py").write_text(MUT["sgd_ascends"])                   # clashes with alice/
    (subs / "bob.py").write_text(MUT["grad_factor_n"])
    (subs / "skel.py").write_text(skeleton_source(ACT))
    (subs / "syntax.py").write_text("def forward(:\n")
    with open(os.path.join(os.fsencode(subs), b"m\xfcller.py"), "w") as fh:
        fh.write(REF)
    with open(subs / "huge.py", "wb") as fh:                              # 200 MB, sparse
        fh.truncate(200 * 1024**2)
    with zipfile.ZipFile(subs / "bomb.zip", "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("mlp.py", b"#" * (30 * 1024**2))
    (subs / "notes.txt").write_text("not a submission")
    out = tmp_path / "out"
    outcome = run_batch(subs, out, jobs=2, with_training=False, **quiet())
    book = read_gradebook(out / "gradebook.csv")
    assert set(book) == {"alice~1", "alice~2", "bob", "skel", "syntax", "müller", "huge", "bomb", "notes.txt"}
    assert book["alice~1"]["status"] == book["alice~2"]["status"] == "clash"
    assert "decide which one counts" in book["alice~1"]["note"]
    assert float(book["alice~2"]["total"]) == 80 and float(book["alice~1"]["total"]) < 80  # both graded
    assert book["müller"]["total"] == "80" and book["müller"]["status"] == "graded"
    assert "grad_factor_n" in book["bob"]["diagnoses"]
    assert book["skel"]["status"] == "not_implemented" and book["skel"]["total"] == "0"
    assert book["syntax"]["status"] == "syntax_error"
    for bad, words in (("huge", "MiB"), ("bomb", "zip bomb"), ("notes.txt", "unsupported")):
        assert book[bad]["status"] == "unreadable" and words in book[bad]["note"], book[bad]
        assert (out / bad / "feedback.html").is_file()
    summary = (out / "summary.html").read_text(encoding="utf-8")
    for sid in ("alice~1", "huge", "bomb", "notes.txt"):
        assert sid in summary.split('id="scores"')[0]  # listed under "Students who need a look"
    assert "grad_factor_n" in summary
    assert len(outcome.graded) == 9

    # rerun: nothing changed, nothing regraded, same gradebook bytes
    before = (out / "gradebook.csv").read_bytes()
    again = run_batch(subs, out, jobs=2, with_training=False, **quiet())
    assert again.graded == [] and len(again.skipped) == 9
    assert (out / "gradebook.csv").read_bytes() == before

    # one changed submission is regraded, alone
    (subs / "bob.py").write_text(REF)
    third = run_batch(subs, out, jobs=2, with_training=False, **quiet())
    assert [g["student"] for g in third.graded] == ["bob"]
    assert read_gradebook(out / "gradebook.csv")["bob"]["total"] == "80"

    # a different configuration (or grader version) regrades everyone; so does --force
    other = CONFIG.with_activation("tanh" if ACT != "tanh" else "sigmoid")
    fourth = run_batch(subs, out, jobs=2, with_training=False, config=other, **quiet())
    assert len(fourth.graded) == 9
    fifth = run_batch(subs, out, jobs=2, with_training=False, config=other, force=True, **quiet())
    assert len(fifth.graded) == 9


def test_gradescope_export_end_to_end(tmp_path):
    meta = ("submission_1:\n  :submitters:\n  - :name: Ada Lovelace\n    :sid: '1815'\n    :email: ada@x.edu\n"
            "submission_2:\n  :submitters:\n  - :name: Alan Turing\n    :sid: '1912'\n")
    z = tmp_path / "export.zip"
    with zipfile.ZipFile(z, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("submission_metadata.yml", meta)
        zf.writestr("submission_1/mlp.py", REF)
        zf.writestr("submission_2/mlp.py", MUT["missing_c"])
        zf.writestr("submission_2/../../escape.py", "x")
    out = tmp_path / "out"
    run_batch(z, out, jobs=1, with_training=False, **quiet())
    book = read_gradebook(out / "gradebook.csv")
    assert book["1815"]["name"] == "Ada Lovelace" and book["1815"]["email"] == "ada@x.edu"
    assert book["1815"]["total"] == "80"
    assert "forward_missing_c" in book["1912"]["diagnoses"] and "traversal" in book["1912"]["note"]
    assert not (tmp_path / "escape.py").exists()
    data = json.loads((out / "1912" / "results.json").read_text())
    assert data["extra_data"]["batch"]["sid"] == "1912"


def test_out_inside_submissions_is_refused(tmp_path):
    from autograder.errors import UserError
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "a.py").write_text(REF)
    with pytest.raises(UserError, match="inside the submissions"):
        run_batch(tmp_path / "c", tmp_path / "c" / "results", **quiet())


# ---- kill -9 (full grading incl. training, through the CLI) ----------------------------------------

def make_quick_class(folder: Path) -> None:
    """Six students: two references (each trains on MNIST), two skeletons and two bugs."""
    folder.mkdir(parents=True)
    for i in range(2):
        (folder / f"ref{i}.py").write_text(f"# student {i}\n{REF}")
    (folder / "skel1.py").write_text(skeleton_source(ACT))
    (folder / "skel2.py").write_text(f"# another\n{skeleton_source(ACT)}")
    (folder / "sgd_skips_key.py").write_text(MUT["sgd_skips_key"])
    (folder / "sgd_ascends.py").write_text(MUT["sgd_ascends"])


def start_batch(subs: Path, out: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "autograder.cli", "batch", str(subs), "--out", str(out),
                             "--jobs", "2"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def workers_gone(out: Path, timeout: float = 15) -> bool:
    """Pool workers hold a shared lock on RESULTS/.workers.lock while alive (and die with the batch)."""
    import fcntl
    path = out / WORKERS_LOCK
    if not path.exists():
        return True
    fd = os.open(path, os.O_RDWR)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                fcntl.flock(fd, fcntl.LOCK_UN)
                return True
            except BlockingIOError:
                if time.monotonic() > deadline:
                    return False
                time.sleep(0.05)
    finally:
        os.close(fd)


def wait_for(predicate, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if proc.poll() is not None:
            return
        assert time.monotonic() < deadline, "batch made no progress"
        time.sleep(0.02)


@pytest.mark.slow
def test_kill_9_at_any_moment_then_rerun(tmp_path):
    subs = tmp_path / "class"
    make_quick_class(subs)
    students = sorted(p.stem for p in subs.iterdir())

    reference_out = tmp_path / "uninterrupted"
    proc = start_batch(subs, reference_out)
    assert proc.wait(timeout=300) == 0, proc.stdout.read().decode()
    expected = (reference_out / "gradebook.csv").read_bytes()
    assert sorted(read_gradebook(reference_out / "gradebook.csv")) == students

    out = tmp_path / "results"
    started = [0.0]
    kill_points = [
        ("before anything is graded", lambda: time.monotonic() - started[0] > 0.5),
        ("right after the first results appear", lambda: any(out.glob("*/results.json"))),
        ("mid-write, a few students in", lambda: len(list(out.glob("*/.results.json.*.tmp"))) > 0
         or len(states(out)) >= 3),
        ("almost done", lambda: len(states(out)) >= len(students) - 1),
    ]
    killed_at = []
    for label, when in kill_points:
        before = states(out) if out.exists() else {}
        proc = start_batch(subs, out)
        started[0] = time.monotonic()
        wait_for(when, proc)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)      # the batch process only: its workers must die with it
            killed_at.append(label)
        proc.wait(timeout=60)
        assert workers_gone(out), f"grading workers outlived the batch killed {label!r}"
        after = states(out)
        for student, data in before.items():      # a finished student is never graded again
            assert after.get(student) == data, f"{student} was regraded after the kill {label!r}"
    assert len(killed_at) >= 3, killed_at  # the last point may come too late on a fast machine
    print("killed:", killed_at, "| finished before the rerun:", sorted(states(out)))

    proc = start_batch(subs, out)
    output = proc.communicate(timeout=300)[0].decode()
    assert proc.returncode == 0, output
    assert (out / "gradebook.csv").read_bytes() == expected
    book = read_gradebook(out / "gradebook.csv")
    assert sorted(book) == students
    events = done_events(out)
    assert all(n <= 1 for n in events.values()), events   # no student graded (to completion) twice
    assert sorted(states(out)) == students
    assert not list(out.glob("*/.*.tmp"))

    # a grading worker killed (not the batch): the pool is rebuilt and the class still finishes
    out2 = tmp_path / "worker-killed"
    proc = start_batch(subs, out2)
    wait_for(lambda: any(out2.glob("*/results.json")), proc)
    children = subprocess.run(["ps", "-o", "pid=,args=", "--ppid", str(proc.pid)], capture_output=True,
                              text=True).stdout.splitlines()
    workers = [int(line.split()[0]) for line in children if "spawn_main" in line]
    if proc.poll() is None and workers:
        os.kill(workers[0], signal.SIGKILL)
    output = proc.communicate(timeout=300)[0].decode()
    assert proc.returncode == 0, output
    assert (out2 / "gradebook.csv").read_bytes() == expected
    assert all(n <= 1 for n in done_events(out2).values()), done_events(out2)


def test_a_student_cannot_read_other_submissions_or_results(tmp_path):
    from autograder.sandbox.level import detect
    if not detect().bwrap:
        pytest.skip("needs the bubblewrap isolation level")
    subs, out = tmp_path / "class", tmp_path / "out"
    subs.mkdir()
    (subs / "victim.py").write_text("# SECRET-ANSWER-42\n" + REF)
    spy = (f"import os\nLEAK = []\nfor _p in [{str(subs / 'victim.py')!r}, {str(subs)!r}, {str(out)!r}]:\n"
           "    try:\n"
           "        LEAK.append(open(_p).read()[:40] if os.path.isfile(_p) else sorted(os.listdir(_p)))\n"
           "    except Exception as _e:\n"
           "        LEAK.append(type(_e).__name__)\n"
           "print('LEAK', LEAK)\n") + REF
    (subs / "spy.py").write_text(spy)
    run_batch(subs, out, jobs=2, with_training=False, **quiet())
    page = (out / "spy" / "feedback.html").read_text(encoding="utf-8")
    assert "LEAK" in page
    assert "SECRET-ANSWER-42" not in page and "victim" not in page.split("LEAK", 1)[1]



def test_parallel_workers_run_students_as_different_sandbox_users(tmp_path):
    """Each pool worker claims a grading slot with a sandbox user of its own, so two students graded
    side by side never share a uid (process limit, scratch folders)."""
    import pwd
    from autograder.sandbox.level import detect, slot_user
    if detect().uid is None:
        pytest.skip(f"no sandbox user at isolation level {detect().level}")
    try:
        pwd.getpwnam(slot_user(1))
    except KeyError:
        pytest.skip("only one sandbox user: run `backprop-lab sandbox setup` as root")
    subs = tmp_path / "class"
    subs.mkdir()
    slow = REF.replace("import numpy as np\n", "import numpy as np\nimport os, time\nprint('UID=%d' % os.getuid())\n"
                       "time.sleep(0.5)\n", 1)
    for i in range(6):
        (subs / f"s{i}.py").write_text(slow + f"\n# student {i}\n")
    out = tmp_path / "out"
    run_batch(subs, out, jobs=2, with_training=False, **quiet())
    uids = set()
    for i in range(6):
        page = (out / f"s{i}" / "feedback.html").read_text(encoding="utf-8")
        uids.update(int(uid) for uid in re.findall(r"UID=(\d+)", page))
    assert len(uids) == 2, f"students ran as uids {sorted(uids)}; expected one sandbox user per pool worker"
    assert 0 not in uids
