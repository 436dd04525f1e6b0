"""Units of the grader: the array boundary, loading .py/.ipynb/.zip/folder submissions (and refusing
unusable ones with one clear line), syntax errors, and bug diagnosis on cases the zoo cannot reach."""
from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from autograder.boundary import check_array, tolerance
from autograder.checks.cases import make_case, reference_gradients
from autograder.checks.known_bugs import diagnose_gradient
from autograder.cli import main
from autograder.errors import SubmissionError
from autograder.grade import grade_source
from autograder.paths import SOLUTIONS_DIR
from autograder.reference import load_reference
from autograder.submission import MAX_SOURCE_BYTES, load_submission, notebook_to_source, syntax_error
from zoo import sources as S

REF = S.strip_markers(S.ref())


# ---- boundary: type, then shape, then dtype, then finiteness ------------------------------------
class TestCheckArray:
    def test_plain_float64_passes(self):
        got = check_array("probs", {"p": np.ones((2, 3))}, "p", (2, 3))
        assert got.ok and got.value.shape == (2, 3)

    def test_subclass_is_refused_before_anything_else(self):
        got = check_array("probs", {"p": np.ones((2, 3))}, "p", (2, 3),
                          type_info={"exact_ndarray": False, "type": "numpy.matrix"})
        assert not got.ok and "subclass" in got.problem and "numpy.matrix" in got.problem

    def test_missing_names_what_it_was(self):
        got = check_array("dL/dW", {}, "grad_W", (2, 3), type_info={"type": "builtins.list"})
        assert "dL/dW" in got.problem and "builtins.list" in got.problem

    def test_transposed_and_per_example_hints(self):
        assert "transposed" in check_array("dL/dW", {"g": np.ones((3, 2))}, "g", (2, 3)).problem
        assert "sum over the batch" in check_array("dL/db", {"g": np.ones((4, 5))}, "g", (5,)).problem

    def test_oversized_array_reports_its_shape(self):
        got = check_array("probs", {}, "probs", (4, 2), type_info={"type": "numpy.ndarray", "shape": [100000000]})
        assert "(100000000,)" in got.problem and "(4, 2)" in got.problem

    def test_untrusted_shape_info_is_parsed_defensively(self):
        for bad in ({"shape": "x"}, {"shape": [None]}, {"shape": 5}, {}):
            got = check_array("probs", {}, "probs", (4, 2), type_info=bad)
            assert "missing" in got.problem

    def test_integer_dtype_refused(self):
        got = check_array("probs", {"p": np.ones((2, 3), dtype=np.int64)}, "p", (2, 3))
        assert "dtype int64" in got.problem

    def test_nonfinite_counted_or_allowed(self):
        arr = np.array([[1.0, np.nan], [np.inf, 0.0]])
        assert "2 NaN/inf" in check_array("probs", {"p": arr}, "p", (2, 2)).problem
        allowed = check_array("probs", {"p": arr}, "p", (2, 2), allow_nonfinite=True)
        assert allowed.ok and allowed.nonfinite

    def test_float32_tolerance(self):
        assert tolerance(np.float32, 1e-6, 1e-4) == 1e-4 and tolerance(np.float64, 1e-6, 1e-4) == 1e-6


# ---- loading submissions -------------------------------------------------------------------------
def _notebook(cells: list[str]) -> str:
    return json.dumps({"cells": [{"cell_type": "code", "source": c, "metadata": {}, "outputs": []} for c in cells]
                      + [{"cell_type": "markdown", "source": "# notes"}], "metadata": {}, "nbformat": 4,
                      "nbformat_minor": 5})


def _zip(path: Path, members: dict[str, bytes], compression=zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


class TestLoadSubmission:
    def test_py(self, tmp_path):
        (tmp_path / "mlp.py").write_text(REF)
        sub = load_submission(tmp_path / "mlp.py")
        assert sub.source == REF and sub.origin == "mlp.py"

    def test_empty_py(self, tmp_path):
        (tmp_path / "mlp.py").write_text("")
        with pytest.raises(SubmissionError, match="empty"):
            load_submission(tmp_path / "mlp.py")

    def test_missing_path(self, tmp_path):
        with pytest.raises(SubmissionError, match="does not exist"):
            load_submission(tmp_path / "nope.py")

    def test_unsupported_suffix(self, tmp_path):
        (tmp_path / "mlp.txt").write_text(REF)
        with pytest.raises(SubmissionError, match="unsupported"):
            load_submission(tmp_path / "mlp.txt")

    def test_oversized_source(self, tmp_path):
        (tmp_path / "mlp.py").write_text("#" * (MAX_SOURCE_BYTES + 10))
        with pytest.raises(SubmissionError, match="not accepted"):
            load_submission(tmp_path / "mlp.py")

    def test_notebook_drops_magics_and_shell_lines(self, tmp_path):
        head, _, rest = REF.partition("def init_params")
        cells = ["%matplotlib inline\n!pip install numpy\nimport numpy as np", head,
                 "def init_params" + rest, "%%time\nx = 1", "  %timeit forward(p, X)\nprint('ok')"]
        (tmp_path / "hw.ipynb").write_text(_notebook(cells))
        sub = load_submission(tmp_path / "hw.ipynb")
        assert syntax_error(sub.source) is None
        assert "%matplotlib" not in sub.source.replace("# dropped by the grader: %matplotlib", "")
        assert any("dropped" in n and "4" in n for n in sub.notes), sub.notes
        namespace: dict = {}
        exec(compile(sub.source, "mlp.py", "exec"), namespace)  # noqa: S102 - our own reference text
        assert callable(namespace["forward"])

    def test_notebook_source_as_list_of_lines(self):
        text = json.dumps({"cells": [{"cell_type": "code", "source": ["x = 1\n", "%who\n", "y = 2\n"]}]})
        source, notes = notebook_to_source(text, "a.ipynb")
        assert "x = 1" in source and "y = 2" in source and syntax_error(source) is None

    @pytest.mark.parametrize("text, match", [("{not json", "invalid JSON"), ("[1, 2]", "no notebook cells"),
                                             ('{"cells": 3}', "no notebook cells")])
    def test_broken_notebook(self, tmp_path, text, match):
        (tmp_path / "hw.ipynb").write_text(text)
        with pytest.raises(SubmissionError, match=match):
            load_submission(tmp_path / "hw.ipynb")

    def test_zip_picks_mlp_py_and_ignores_macos_junk(self, tmp_path):
        path = _zip(tmp_path / "sub.zip", {"__MACOSX/._mlp.py": b"junk", "hw/test_mlp.py": b"x = 1",
                                           "hw/mlp.py": REF.encode(), "hw/notes.md": b"hi"})
        sub = load_submission(path)
        assert sub.source == REF and sub.origin == "sub.zip:hw/mlp.py"

    def test_empty_zip(self, tmp_path):
        path = _zip(tmp_path / "empty.zip", {})
        with pytest.raises(SubmissionError, match="empty zip"):
            load_submission(path)

    def test_not_a_zip(self, tmp_path):
        (tmp_path / "bad.zip").write_bytes(b"PK\x03\x04 not really")
        with pytest.raises(SubmissionError, match="not a readable zip"):
            load_submission(tmp_path / "bad.zip")

    def test_path_traversal_entries_are_ignored_and_noted(self, tmp_path):
        path = _zip(tmp_path / "sub.zip", {"../../evil/mlp.py": b"import os", "/etc/mlp.py": b"import os",
                                           "..\\..\\win.py": b"import os", "mlp.py": REF.encode()})
        sub = load_submission(path)
        assert sub.source == REF
        assert any("3 unsafe zip entries" in n for n in sub.notes), sub.notes
        assert not (tmp_path.parent / "evil").exists()

    def test_only_unsafe_entries(self, tmp_path):
        path = _zip(tmp_path / "sub.zip", {"../mlp.py": REF.encode()})
        with pytest.raises(SubmissionError, match="unsafe entries"):
            load_submission(path)

    def test_symlink_entry_is_ignored(self, tmp_path):
        path = tmp_path / "sub.zip"
        with zipfile.ZipFile(path, "w") as zf:
            link = zipfile.ZipInfo("mlp.py")
            link.external_attr = (0o120777 << 16)
            zf.writestr(link, str(SOLUTIONS_DIR / "mlp.py"))  # the real solutions, wherever the project is
            zf.writestr("student/mlp.py", REF)
        sub = load_submission(path)
        assert sub.source == REF and sub.origin.endswith("student/mlp.py")

    def test_zip_bomb(self, tmp_path):
        path = _zip(tmp_path / "bomb.zip", {"mlp.py": b" " * (50 * 1024**2)})
        assert path.stat().st_size < 200_000
        with pytest.raises(SubmissionError, match="zip bomb"):
            load_submission(path)

    def test_zip_with_several_candidates(self, tmp_path):
        path = _zip(tmp_path / "sub.zip", {"a.py": b"x = 1", "b.py": b"y = 2"})
        with pytest.raises(SubmissionError, match="several candidates"):
            load_submission(path)

    def test_zip_with_a_notebook(self, tmp_path):
        path = _zip(tmp_path / "sub.zip", {"hw/backprop.ipynb": _notebook([REF]).encode(),
                                           "hw/.ipynb_checkpoints/backprop-checkpoint.ipynb": b"{}"})
        sub = load_submission(path)
        assert syntax_error(sub.source) is None and "def forward" in sub.source

    def test_folder(self, tmp_path):
        (tmp_path / "student" / "src").mkdir(parents=True)
        (tmp_path / "student" / "src" / "mlp.py").write_text(REF)
        (tmp_path / "student" / "test_mlp.py").write_text("x = 1")
        assert load_submission(tmp_path / "student").source == REF

    def test_folder_with_only_a_zip(self, tmp_path):
        (tmp_path / "student").mkdir()
        _zip(tmp_path / "student" / "upload.zip", {"mlp.py": REF.encode()})
        assert load_submission(tmp_path / "student").source == REF

    def test_empty_folder(self, tmp_path):
        (tmp_path / "student").mkdir()
        with pytest.raises(SubmissionError, match="empty"):
            load_submission(tmp_path / "student")

    def test_latin1_source_is_decoded(self, tmp_path):
        (tmp_path / "mlp.py").write_bytes(("# caf\xe9\n" + REF).encode("latin-1"))
        assert "café" in load_submission(tmp_path / "mlp.py").source


# ---- syntax errors and the command line ----------------------------------------------------------
class TestSyntaxAndCli:
    def test_syntax_error_is_one_line_with_its_line_number(self):
        text = syntax_error("x = 1\ndef f(:\n    pass\n")
        assert text.startswith("line 2") and "\n" not in text

    def test_null_bytes(self):
        assert syntax_error("x = 1\x00") is not None

    def test_syntax_error_graded_zero_with_the_error(self, grading_env):
        report = grade_source("def forward(params, X)\n    return X\n", grading_env)
        assert report.status == "syntax_error" and report.score == 0
        assert all("line 1" in r.message and "does not compile" in r.message for r in report.results)
        assert report.max_score == 100

    def test_missing_path_exits_2_with_one_line(self, tmp_path, capsys):
        rc = main(["grade", str(tmp_path / "nowhere" / "mlp.py"), "--out", str(tmp_path / "out")])
        err = capsys.readouterr().err
        assert rc == 2 and len(err.strip().splitlines()) == 1 and "does not exist" in err
        assert not (tmp_path / "out").exists()

    def test_empty_zip_exits_2_with_one_line(self, tmp_path, capsys):
        rc = main(["grade", str(_zip(tmp_path / "e.zip", {})), "--out", str(tmp_path / "out")])
        err = capsys.readouterr().err
        assert rc == 2 and len(err.strip().splitlines()) == 1 and "empty zip" in err

    def test_cli_grades_a_syntax_error_to_zero(self, tmp_path, capsys):
        (tmp_path / "mlp.py").write_text("def forward(params, X)\n    return X\n")
        rc = main(["grade", str(tmp_path / "mlp.py"), "--out", str(tmp_path / "out")])
        assert rc == 0
        data = json.loads((tmp_path / "out" / "results.json").read_text())
        assert data["score"] == 0 and "line 1" in data["tests"][0]["output"]


# ---- diagnosis on cases the zoo does not reach ---------------------------------------------------
def test_transposed_gradient_on_a_square_case():
    """Hidden cases are rarely square, so the square-transposed diagnosis is checked here directly."""
    case = make_case("square", np.random.default_rng(3), 6, 6, 3, 5, "relu")
    truth = reference_gradients(load_reference("relu"), case)
    tags, text = diagnose_gradient("W", truth["W"].T.copy(), truth["W"], case, "relu")
    assert tags == ["grad_transposed"] and "transposed" in text


def test_float32_sgd_update_is_judged_by_its_operands():
    """Where p and lr*g nearly cancel, a correct float32 update differs from the float64 one by more
    than 1e-6 of the (small) result; the check scales by |p| + lr*|g| (this failed 37% of random cases)."""
    from autograder.checks.sgd_step import matches
    rng = np.random.default_rng(0)
    for _ in range(500):
        p, g, lr = rng.standard_normal((7, 11)), rng.standard_normal((7, 11)), float(rng.uniform(0.05, 0.9))
        new32 = p.astype(np.float32) - np.float32(lr) * g.astype(np.float32)
        assert matches(new32, p - lr * g, p, g, lr, 1e-6)
        for wrong in (p + lr * g, p - g, p, p - lr * lr * g):
            assert not matches(wrong.astype(np.float32), p - lr * g, p, g, lr, 1e-6)


def test_gradient_truth_falls_back_to_the_analytic_gradient_on_fd_noise(monkeypatch):
    """A hidden case whose finite differences are noisy (1e-7..1e-5 from the reference's analytic
    gradient) uses the analytic gradient as the truth; a larger gap is a broken reference and fails loudly."""
    from autograder.checks import gradients
    from autograder.checks.cases import public_toy, reference_gradients
    from autograder.checks.common import Context
    from autograder.config import load_config
    from autograder.reference import load_reference
    config = load_config()
    ref = load_reference(config.activation)
    ctx = Context(config, ref, session=None)
    case = public_toy(config.activation)
    gradients._TRUTH.clear()
    monkeypatch.setattr(gradients, "fd_agrees_with_reference", lambda *a: 3e-7)
    got = gradients.truth(ctx, case)
    exact = reference_gradients(ref, case)
    assert all(np.array_equal(got[k], exact[k]) for k in exact)
    gradients._TRUTH.clear()
    monkeypatch.setattr(gradients, "fd_agrees_with_reference", lambda *a: 1e-3)
    with pytest.raises(RuntimeError, match="reference solution is wrong"):
        gradients.truth(ctx, case)
    gradients._TRUTH.clear()


# ---- issue 12: tolerances, tracebacks, the training schedule and budget ---------------------------
def test_near_zero_gradients_compare_equal_with_a_scaled_floor():
    """A batch gradient exactly 0 against a per-example mean of -6e-17 is the same gradient."""
    from autograder.checks.tolerances import scaled_error
    assert scaled_error(np.zeros(3), np.full(3, -6e-17), scale=0.3) < 1e-8
    assert scaled_error(np.zeros(3), np.full(3, 1e-3), scale=0.3) > 0.5  # a real difference still shows


def test_float32_threshold_follows_the_reference_in_float32():
    from autograder.checks.tolerances import FLOAT32_FLOOR, threshold
    assert threshold(np.float64, 1e-6, 1e-3) == 1e-6                       # float64: the float64 threshold
    assert threshold(np.float32, 1e-6, 1e-7) == pytest.approx(max(25e-7, FLOAT32_FLOOR))
    assert threshold(np.float32, 1e-6, 1e-7) < 1.5e-5                      # a 3e-5 error fails in float32 too


def test_traceback_keeps_only_the_students_frames():
    from autograder.checks.common import clean_traceback, explain_failure
    from autograder.worker.session import Reply
    trace = ('Traceback (most recent call last):\n'
             '  File "/work/x/autograder/worker/harness.py", line 380, in serve\n    meta = op(req)\n'
             '  File "<frozen importlib._bootstrap_external>", line 940, in exec_module\n'
             '  File "/tmp/backprop-lab-ab12/scratch/submission/mlp.py", line 40, in forward\n'
             '    a = X @ params["W"].T\n'
             '  File "/usr/lib/python3/site-packages/numpy/core/_methods.py", line 3, in _sum\n    raise\n'
             'ValueError: shapes (4,10) and (5,11) not aligned, see /tmp/backprop-lab-ab12/scratch/x.npz\n')
    text = clean_traceback(trace)
    assert 'File "mlp.py", line 40, in forward' in text and 'a = X @ params["W"].T' in text
    for internal in ("harness.py", "<frozen", "/tmp/", "numpy/core", "backprop-lab-"):
        assert internal not in text
    message = explain_failure("forward", Reply("exception", error="ValueError: at /tmp/backprop-lab-1/scratch/a",
                                               traceback=trace))
    assert "/tmp/" not in message and "harness" not in message


def test_missing_module_is_one_line_naming_what_is_available():
    from autograder.checks.common import explain_failure
    from autograder.worker.session import Reply
    text = explain_failure("importing mlp.py", Reply("missing_module", error="matplotlib"))
    assert "matplotlib" in text and "numpy" in text and "notebook" in text and "\n" not in text


def test_hyperparams_must_be_finite_numbers():
    from autograder.checks.training import validate_hyperparams
    from autograder.config import load_config
    config = load_config()
    good = {"n_hidden": 100.0, "learning_rate": 0.5, "batch_size": 64.0, "epochs": 3.0}
    assert validate_hyperparams(good, config)[0] == good
    hp, why = validate_hyperparams({**good, "n_hidden": "nan"}, config)
    assert hp is None and "finite" in why
    hp, why = validate_hyperparams({k: v for k, v in good.items() if k != "n_hidden"}, config,
                                   {"n_hidden": ["str", "'100'"]})
    assert hp is None and "str" in why and "not a number" in why


def test_the_checkpoint_schedule_starts_untrained_and_ends_at_the_last_step():
    from autograder.checks.training import schedule
    from autograder.config import load_config
    steps, per_epoch, epochs = schedule(load_config(), {"batch_size": 64, "epochs": 3}, 50_000)
    assert steps[0] == 0 and steps[-1] == 3 * per_epoch and epochs == 3
    assert len(steps) <= 1 + 4 * 3 + 1 and steps == sorted(set(steps))  # + the last step when 0.25 epoch does not divide it


def test_a_run_that_reports_steps_it_cannot_have_computed_is_forged():
    from autograder.checks.training import Run
    run = Run(0.05, 20.0, np.zeros((1, 784)), np.zeros(1), np.zeros((1, 784)), np.zeros(1), 100, 781,
              ref_step_seconds=1e-3)
    assert run.forged(781, 0.02)          # 781 steps in 0.02 CPU s: a reference step costs 1 ms
    assert not run.forged(781, 0.5)       # an honest loop at 2/3 of the reference's cost
    assert not run.forged(0, 0.0)
    # counted from the untrained checkpoint: CPU spent before it (decoding weights a forged stream
    # brought along: the zoo's forged_trained_stream) buys nothing (it scored 20/20 one run in five)
    run.init_used = 0.3
    assert run.forged(781, 0.32) and not run.forged(781, 0.8)


def test_plateau_stops_only_far_above_every_credit_level():
    from autograder.checks.training import Run
    run = Run(0.05, 20.0, np.zeros((1, 784)), np.zeros(1), np.zeros((1, 784)), np.zeros(1), 100, 781)
    for err in (0.90, 0.895, 0.90):
        run.curve.append({"epoch": 0, "seconds": 0, "test_error": err, "valid_error": err})
    run.best_error = 0.895
    assert run.plateaued()
    run.curve[-1]["test_error"], run.best_error = 0.80, 0.80   # still moving: keep training
    assert not run.plateaued()


def test_scale_claims_need_three_classes():
    """With 2 classes every zero-sum c-gradient is a multiple of (1, -1): no 'constant factor' claims."""
    ref = load_reference("relu")
    case = make_case("two classes", np.random.default_rng(3), 6, 4, 2, 5, "relu")
    truth = reference_gradients(ref, case)["c"]
    tags, text = diagnose_gradient("c", -0.37 * truth, truth, case, "relu")
    assert "constant factor" not in text and "opposite sign" not in text
    case3 = make_case("three classes", np.random.default_rng(3), 6, 4, 3, 5, "relu")
    truth3 = reference_gradients(ref, case3)["c"]
    assert diagnose_gradient("c", -truth3, truth3, case3, "relu")[0] == ["grad_sign_flipped"]
