"""No hidden case reaches a student: the scanner finds hidden values however they are written (the real
tools' student view of the shared release is scanned in test_release_build.py)."""
from __future__ import annotations

import base64

import numpy as np
import pytest

from autograder.release import hiddenscan, nbchecks
from autograder.release.expected import build_tests, save_hidden
from autograder.release.yearly import bind_secret, plan_release

pytestmark = pytest.mark.xdist_group("release_hidden")  # its module fixtures: made once, on one worker

SECRET = "course-secret-for-the-hidden-test-5512"


@pytest.fixture(scope="module")
def year(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hidden")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BACKPROP_LAB_SECRET", SECRET)
        plan = plan_release(2027, "relu")
        config = bind_secret(plan, tmp / "secret")
        yield config, build_tests(config), tmp


def _forward_hidden(tests):
    return next(t for t in tests if t.hidden and t.check_id == "forward")


def test_the_scanner_finds_hidden_values_in_every_form(year):
    _, tests, _ = year
    t = _forward_hidden(tests)
    probs = t.data["case0.probs"]
    files = {
        "packed.html": f"data = unpack('{nbchecks.pack(t.data)}')".encode(),
        "raw-b64.txt": b"x " + base64.b64encode(np.ascontiguousarray(t.data["case0.X"]).tobytes()),
        "float32-b64.txt": base64.b64encode(t.data["case0.X"].astype(np.float32).tobytes()),
        "numbers.txt": f"got {float(probs[0, 0])!r} and {float(probs[0, 1]):.8g}".encode(),
        "raw.bin": b"\x00" + t.data["case0.W"].tobytes(),
    }
    found = hiddenscan.scan(files, tests)
    assert {f.split(":")[0] for f in found} == set(files), found


def test_public_data_and_single_coincidences_are_no_evidence(year):
    _, tests, _ = year
    public = [t for t in tests if not t.hidden]
    files = {f"{t.test_id}.txt": f"data = unpack('{nbchecks.pack(t.data)}')".encode() for t in public}
    t = _forward_hidden(tests)
    files["one-number.txt"] = f"{float(t.data['case0.probs'][0, 0])!r}".encode()  # one 8-digit value alone
    assert hiddenscan.scan(files, tests) == []


def test_hidden_file_round_trips_through_bplab_checks(year, monkeypatch):
    _, tests, tmp = year
    save_hidden(tmp / "h.npz", tests)
    monkeypatch.setenv(nbchecks.HIDDEN_ENV, str(tmp / "h.npz"))
    t = _forward_hidden(tests)
    got = nbchecks.hidden(t.test_id)
    assert got.keys() == t.data.keys() and all(np.array_equal(got[k], t.data[k]) for k in got)
    with pytest.raises(AssertionError, match="not in"):
        nbchecks.hidden("no_such_test")
    monkeypatch.setenv(nbchecks.HIDDEN_ENV, str(tmp / "missing.npz"))
    with pytest.raises(AssertionError, match="is missing"):
        nbchecks.hidden(t.test_id)
