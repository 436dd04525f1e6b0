"""Print the zoo's per-entry verdict table: expected and actual score per check, false passes and fails.

    cd <project> && PYTHONPATH=$PWD:$PWD/tests python -m zoo.table [--train] [--slow] [NAME ...]

A FALSE PASS is a check scoring above its expected score (a bug earning points), a FALSE FAIL one
scoring below it (correct work losing points); "words"/"ids" flag a missing diagnosis or sentence.
Without --train the training check is not graded; --train grades the TRAINING entries with MNIST,
--slow adds the full training runs.
"""
from __future__ import annotations

import sys
import time
from dataclasses import replace
from pathlib import Path

from autograder.grade import grade_source

from . import SLOW_TRAINING, TRAINING, ZOO, Entry
from .support import check_verdict, entry_environment, environment, make_probe

CHECKS = ("forward", "gradients", "minibatch", "sgd_step", "training")


def _cell(expected, got) -> tuple[str, str]:
    if expected is None:
        return f"{got:g}" if got is not None else "-", ""
    allowed = expected if isinstance(expected, tuple) else (expected,)
    mark = "" if any(abs((got or 0.0) - a) < 1e-6 for a in allowed) else \
        ("FALSE PASS" if (got or 0.0) > max(allowed) else "FALSE FAIL")
    shown = "/".join(f"{a:g}" for a in allowed)
    return (f"{got:g}" if mark == "" else f"{got:g}!={shown}"), mark


def row(entry: Entry, probe, with_training: bool) -> tuple[str, list[str]]:
    env = entry_environment(entry, None, with_training)
    started = time.perf_counter()
    report = grade_source(entry.build(probe), env)
    seconds = time.perf_counter() - started
    got = report.by_check()
    expect = dict(entry.expect)
    if entry.training is not None and with_training:
        expect["training"] = entry.training
    cells, marks = [], []
    for check in CHECKS:
        if check == "training" and not with_training:
            cells.append("not run")  # graded without MNIST: only the training entries train (--train)
            continue
        text, mark = _cell(expect.get(check), got.get(check))
        cells.append(text)
        if mark:
            marks.append(f"{mark} {check}")
    try:
        check_verdict(entry if with_training or entry.training is None else replace(entry, training=None), report)
    except AssertionError as exc:
        first = str(exc).splitlines()[0]
        if "scored" not in first:
            marks.append("diagnosis/words: " + first[:120])
    line = f"| {entry.name:34} | {entry.kind:7} | " + " | ".join(f"{c:>11}" for c in cells) + \
        f" | {seconds:5.1f} | {'; '.join(marks) or 'ok'} |"
    return line, marks


def main(argv: list[str]) -> int:
    with_training = "--train" in argv
    names = [a for a in argv if not a.startswith("--")]
    entries = list(ZOO) + (TRAINING if with_training else []) + (SLOW_TRAINING if "--slow" in argv else [])
    if names:
        entries = [e for e in entries if e.name in names]
    probe, tcp, udp, _ = make_probe(Path("/tmp") / "zoo-table-probe")
    print("| entry | kind | " + " | ".join(CHECKS) + " | s | verdict |")
    print("|---|---|" + "---|" * len(CHECKS) + "---|---|")
    false_pass = false_fail = other = 0
    for entry in entries:
        needs_training = entry in TRAINING or entry in SLOW_TRAINING
        if entry.needs_full and environment(None).iso.level != "full":
            print(f"| {entry.name:34} | {entry.kind:7} | (needs full isolation: skipped) |")
            continue
        line, marks = row(entry, probe, with_training and needs_training)
        print(line, flush=True)
        false_pass += sum(m.startswith("FALSE PASS") for m in marks)
        false_fail += sum(m.startswith("FALSE FAIL") for m in marks)
        other += sum(m.startswith("diagnosis") for m in marks)
    tcp.close()
    udp.close()
    print(f"\n{len(entries)} entries: {false_pass} false passes, {false_fail} false fails, "
          f"{other} missing diagnoses/words (per check)")
    return 1 if false_pass or false_fail or other else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
