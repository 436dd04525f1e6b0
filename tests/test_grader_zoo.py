"""The grader against its zoo: correct-but-different submissions, realistic bugs and hostile entries.

Each entry (tests/zoo) gets its expected score per check id, names its bug in the feedback, finishes
within its time bound, and leaves nothing behind: no process, no scratch folder, no file touched
outside the scratch folder. Non-training checks for most entries (training is then "not graded" and
ignored); a few key entries train on MNIST (``-m slow``). Hostile entries run at the best isolation
level here and a subset again at ``BACKPROP_LAB_ISOLATION=rlimits``.
"""
from __future__ import annotations

import os

import pytest

import verdict_cache
from autograder.grade import grade_source
from autograder.report.feedback import render_feedback
from autograder.results import to_gradescope
from zoo import BY_NAME, RLIMITS_SUBSET, SLOW_TRAINING, TRAINING, ZOO, Entry
from zoo.sources import SOLUTION_LINES
from zoo.support import (best_level, check_verdict, entry_environment, environment, grade_contained, make_probe,
                         needs_full)


@pytest.fixture(scope="module")
def probe_kit(tmp_path_factory):
    probe, tcp, udp, canary = make_probe(tmp_path_factory.mktemp("zoo-probe"))
    yield probe, tcp, udp, canary
    tcp.close()
    udp.close()


def _lines(report, label: str) -> list[str]:
    return [line for line in report.student_output.splitlines() if line.startswith(label + " ")]


INTERNALS = ("harness.py", "<frozen", "/tmp/backprop-lab", "session.py", "autograder/")


def _no_internals(report) -> None:
    """Student-facing messages name no grader file, frame or path (issue 12)."""
    for r in report.results:
        if "grader_error" in r.diagnoses:
            continue  # an internal error is for the staff, and says so
        for word in INTERNALS:
            assert word not in r.message, f"{r.check_id}/{r.name} shows grader internals ({word!r}): {r.message[:300]}"
        assert "Best test error seen: 100.00%" not in r.message, r.message


# ---- what some hostile entries must additionally leave true ---------------------------------------
def _no_leak(report) -> None:
    html = render_feedback(report, figures={})
    for text in (report.student_output, html, str(to_gradescope(report))):
        for line in SOLUTION_LINES:
            assert line not in text, f"a solution line reached the student: {line!r}"


def _after_read_secrets(report, kit) -> None:
    assert report.student_output.strip(), "the probe printed nothing: did it run?"
    for label in ("solution", "labels", "valid labels", "git show", "walk", "secret file", "root"):
        lines = _lines(report, label)
        assert lines, f"no report from the {label!r} probe"
        assert not any(" READ " in f"{line} " for line in lines), f"leak: {lines}"
    _no_leak(report)


def _after_fake_results(report, kit) -> None:
    probe = kit[0]
    assert report.score == 0 and to_gradescope(report)["score"] == 0
    for folder in (probe.project, probe.project / "results", probe.canary.parent):
        assert not (folder / "results.json").exists(), f"a fake results.json was written in {folder}"
    assert '{"score": 100}' in report.student_output  # printed, shown as output, never believed


def _after_write_grader(report, kit) -> None:
    attempts = [line for line in report.student_output.splitlines()
                if line.split(" ", 1)[0] in ("append", "chmod", "create", "rename")]
    assert len(attempts) >= 12, report.student_output[-1500:]
    assert all(" BLOCKED " in line for line in attempts), attempts


def _after_network(report, kit) -> None:
    _, tcp, udp, _ = kit
    for label in ("tcp", "dns"):
        lines = _lines(report, label)
        assert lines and all("BLOCKED" in line for line in lines), f"{label}: {lines}"
    assert _lines(report, "udp")  # sendto may "succeed" inside the worker's own network namespace ...
    with pytest.raises(BlockingIOError):
        tcp.accept()
    with pytest.raises(BlockingIOError):  # ... but nothing arrives out here
        udp.recvfrom(100)


def _after_symlink_log(report, kit) -> None:
    _no_leak(report)


def _after_flood(report, kit) -> None:
    assert len(report.student_output) < 4000
    assert "earlier output cut" in report.student_output


AFTER = {"read_secrets": _after_read_secrets, "fake_results": _after_fake_results,
         "write_grader": _after_write_grader, "network": _after_network,
         "symlink_output_log": _after_symlink_log, "stdout_flood": _after_flood}


def _grade(entry: Entry, kit, monkeypatch, level: str | None, with_training: bool = False):
    probe, _, _, canary = kit
    if entry.needs_full:
        needs_full()
    env = entry_environment(entry, level, with_training)
    graded = grade_contained(entry, probe, canary, env, monkeypatch)
    if entry.kind in ("correct", "bug"):  # test_agreement grades these again: it reads this report back
        verdict_cache.remember(graded.source, env, graded.report)
    return graded.report


# ---- the zoo at the best isolation level --------------------------------------------------------
@pytest.mark.parametrize("entry", ZOO, ids=[e.name for e in ZOO])
def test_zoo_entry(entry: Entry, probe_kit, monkeypatch):
    """Does the grader give this entry its expected verdict, name its bug, and contain it?"""
    secret = f"zoo-secret-{probe_kit[0].nonce}"
    if entry.name == "env_secret":
        monkeypatch.setenv("BACKPROP_LAB_SECRET", secret)
    report = _grade(entry, probe_kit, monkeypatch, None)
    check_verdict(entry, report)
    _no_internals(report)
    if entry.kind == "correct":
        assert report.status == "graded" and not report.events, report.events
    if entry.name == "env_secret":
        assert secret not in report.student_output
        assert "ENV_SECRET=<absent>" in report.student_output
        if best_level() == "full":
            assert not any(" READ " in f"{line} " for line in _lines(report, "proc environ"))
    if entry.name in AFTER:
        AFTER[entry.name](report, probe_kit)


SWEEP = [e for e in ZOO if e.kind in ("correct", "bug")]


@pytest.mark.parametrize("secret", ["sweep-1"])  # sweep-2, sweep-3 and 20 more: BACKPROP_LAB_LONG_TESTS=1
def test_verdicts_do_not_depend_on_the_secret(secret, probe_kit, monkeypatch):
    """Hidden cases change with the secret (and year): no verdict may hang on a lucky case
    (a float32 sgd_step once failed for 5 secrets in 6; a vacuous row-independence case passed a
    softmax over the batch axis)."""
    monkeypatch.setenv("BACKPROP_LAB_SECRET", secret)
    failures = []
    for entry in SWEEP:
        report = grade_source(entry.build(probe_kit[0]), environment(None, entry.activation))
        try:
            check_verdict(entry, report)
        except AssertionError as exc:
            failures.append(str(exc).splitlines()[0])
    assert not failures, "\n".join(failures)


@pytest.mark.skipif(not os.environ.get("BACKPROP_LAB_LONG_TESTS"),
                    reason="22 more secrets (~9 min): set BACKPROP_LAB_LONG_TESTS=1 (release checklist, docs/release.md)")
def test_verdicts_do_not_depend_on_the_secret_sweep(probe_kit, monkeypatch):
    for secret in ["sweep-2", "sweep-3"] + [f"long-sweep-{i}" for i in range(20)]:
        test_verdicts_do_not_depend_on_the_secret(secret, probe_kit, monkeypatch)


def test_zoo_is_broad():
    kinds = [e.kind for e in ZOO]
    assert len(ZOO) >= 35 and kinds.count("correct") >= 9 and kinds.count("bug") >= 20 and kinds.count("hostile") >= 15


# ---- a subset again with rlimits only -----------------------------------------------------------
@pytest.mark.parametrize("name", RLIMITS_SUBSET)
def test_zoo_entry_at_rlimits(name: str, probe_kit, monkeypatch):
    """Without user drop or bwrap the verdicts stay the same and processes are still cleaned up."""
    entry = BY_NAME[name]
    secret = f"zoo-secret-{probe_kit[0].nonce}"
    if name == "env_secret":
        monkeypatch.setenv("BACKPROP_LAB_SECRET", secret)
    report = _grade(entry, probe_kit, monkeypatch, "rlimits")
    assert "rlimits" in report.isolation
    check_verdict(entry, report)
    if name == "env_secret":  # the environment is clean at every level (/proc is not, at rlimits)
        assert "ENV_SECRET=<absent>" in report.student_output


# ---- with training -------------------------------------------------------------------------------
@pytest.mark.parametrize("entry", TRAINING, ids=[e.name for e in TRAINING])
def test_training_entry(entry: Entry, probe_kit, monkeypatch):
    """HYPERPARAMS problems fail the training check at once, with the reason, and nothing else."""
    report = _grade(entry, probe_kit, monkeypatch, None, with_training=True)
    check_verdict(entry, report)
    _no_internals(report)
    training = next(r for r in report.results if r.check_id == "training")
    curve = training.evidence.get("curve") or []
    steps = int(round(1 / report_eval_every())) * 10 + 2  # the schedule's length at most (max_epochs = 10)
    assert len(curve) <= steps, f"{entry.name}: {len(curve)} evaluations, more than the schedule allows"


def report_eval_every() -> float:
    from autograder.config import load_config
    return load_config().training.eval_every_epochs


@pytest.mark.slow
@pytest.mark.parametrize("entry", SLOW_TRAINING, ids=[e.name for e in SLOW_TRAINING])
def test_training_entry_full_run(entry: Entry, probe_kit, monkeypatch):
    """Full MNIST training through the grader's loop: correct entries reach the target within the
    budget; a learning rate too small or a step too slow loses the training points, saying why."""
    report = _grade(entry, probe_kit, monkeypatch, None, with_training=True)
    training = next(r for r in report.results if r.check_id == "training")
    if entry.name == "train_per_example_loop" and not training.passed:
        # Correct but ~10x slower than the reference: a fail is only fair if the budget really ran out.
        curve = training.evidence.get("curve") or []
        assert "too_slow" in training.diagnoses and (not curve or curve[-1]["seconds"] > report.budget["seconds"]), \
            training.message
        pytest.skip(f"this machine is too slow for the per-example loop within the budget: {training.message[:120]}")
    check_verdict(entry, report)
    if training.passed:
        assert training.evidence["time_to_target_s"] <= report.budget["seconds"]
