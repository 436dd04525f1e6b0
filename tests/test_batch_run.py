"""Batch grading end to end: malformed classes are reported and the rest is graded; reruns skip what is
unchanged and regrade what changed; LMS exports; the real `backprop-lab batch` CLI with MNIST training,
killed -9 while a student trains, loses nothing and grades nobody twice (kill -9 at named and random
moments, a killed pool worker, SIGINT/SIGTERM: test_batch_kill.py); a student cannot read the others'
submissions or results, and parallel workers grade as different sandbox users."""
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
from autograder.batch.runner import run_batch
from autograder.config import load_config
from autograder.mutants import mutant_sources
from autograder.reference import reference_source
from autograder.sandbox.launch import descendants
from batch_states import done_counts, log_events, states, workers_gone

CONFIG = load_config()
ACT = CONFIG.activation
REF = reference_source(ACT)
MUT = mutant_sources(ACT)


def read_gradebook(path: Path) -> dict[str, dict[str, str]]:
    with open(path, newline="", encoding="utf-8-sig") as fh:
        return {row["student"]: row for row in csv.DictReader(fh)}


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


# ---- kill -9 through the CLI, while a student trains on MNIST -------------------------------------
# (the named kill moments, a killed pool worker and random moments: test_batch_kill.py, without training)

def make_training_class(folder: Path) -> list[str]:
    """One student, the reference: it trains on MNIST (about 2 s). Several students, a finished one
    left untouched by the rerun and two pool workers dying with the batch: test_batch_kill.py."""
    folder.mkdir(parents=True)
    (folder / "ref.py").write_text(REF)
    return ["ref"]


def start_batch(subs: Path, out: Path, jobs: int = 2) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "autograder.cli", "batch", str(subs), "--out", str(out),
                             "--jobs", str(jobs)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def training_process(worker: int) -> int | None:
    """The sandboxed student process under pool worker ``worker`` once it has the MNIST training images
    memory-mapped (the grader's training loop, harness.op_train), else None."""
    for pid in descendants(worker):
        try:
            if "harness" not in Path(f"/proc/{pid}/cmdline").read_text(errors="replace"):
                continue  # a fork of the worker itself (before its exec) maps the worker's MNIST too
            if "/train/X.npy" in Path(f"/proc/{pid}/maps").read_text(errors="replace"):
                return pid
        except OSError:
            continue
    return None


def process_gone(pid: int, timeout: float = 30) -> bool:
    """True once ``pid`` has exited (gone or a zombie), False if it still runs after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            return True
        if state in ("Z", "X"):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


@pytest.mark.slow
def test_cli_kill_9_while_a_student_trains_then_rerun(tmp_path):
    """`backprop-lab batch --jobs 2` (MNIST training) killed -9 while the reference trains: its pool worker
    and the training process die with the batch, and the rerun grades only what was left (nobody twice)
    into a gradebook byte-identical to an uninterrupted run's (made with --jobs 1)."""
    subs = tmp_path / "class"
    students = make_training_class(subs)

    reference_out = tmp_path / "uninterrupted"
    proc = start_batch(subs, reference_out, jobs=1)
    output = proc.communicate(timeout=300)[0].decode()
    assert proc.returncode == 0, output
    expected = (reference_out / "gradebook.csv").read_bytes()
    book = read_gradebook(reference_out / "gradebook.csv")
    assert sorted(book) == students
    assert float(book["ref"]["training"]) > 0, book["ref"]   # it was trained on MNIST

    out = tmp_path / "results"
    proc = start_batch(subs, out)
    trainer = None
    deadline = time.monotonic() + 300
    while trainer is None and proc.poll() is None:
        assert time.monotonic() < deadline, "the reference was not seen training within 300 s"
        worker = next((int(pid) for _, pid, event, student, *_ in log_events(out)
                       if event == "start" and student == "ref"), None)
        if worker is not None:
            trainer = training_process(worker)
        if trainer is None:
            time.sleep(0.02)
    assert trainer is not None, ("the batch ended before the reference was seen training:\n"
                                 + proc.communicate()[0].decode())
    proc.send_signal(signal.SIGKILL)              # the batch process only: its workers must die with it
    assert proc.wait(timeout=60) == -signal.SIGKILL
    assert workers_gone(out), "grading workers outlived the batch killed while the reference trained"
    assert process_gone(trainer), "the training process outlived the batch killed while it trained"
    finished = states(out)
    killed_run_lines = len(log_events(out))
    print("finished when the kill landed:", sorted(finished))

    proc = start_batch(subs, out)
    output = proc.communicate(timeout=300)[0].decode()
    assert proc.returncode == 0, output
    assert (out / "gradebook.csv").read_bytes() == expected
    after = states(out)
    for student, data in finished.items():       # a finished student is never graded again
        assert after[student] == data, f"{student} was regraded after the kill"
    regraded = {student for _, _, event, student, *_ in log_events(out)[killed_run_lines:] if event == "start"}
    assert regraded == set(students) - set(finished), regraded
    assert done_counts(out) == {s: 1 for s in students}, done_counts(out)  # each graded to the end once
    assert sorted(after) == students
    assert not [p for p in out.rglob(".*") if p.name.startswith((".stage.", ".old.")) or p.suffix == ".tmp"]


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
