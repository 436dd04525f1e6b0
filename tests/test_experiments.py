"""The optional experiments: the variants' math, the shared loop, measured sentences and the quick report.

The quick report (every experiment, real MNIST subsets) runs once through the command line, as a user
would; everything else is small and synthetic.
"""
from __future__ import annotations

import csv
import re

import numpy as np
import pytest

from autograder.experiments import feedback_alignment, noise, random_hidden, rounding, stale_weights, words
from autograder.experiments import training as tr
from autograder.experiments.runner import FAMILIES, all_variants
from autograder.reference import load_reference

# xdist: every test of this module runs on one worker, so the module fixture running `experiments --quick`
# is made once (docs/design.md, issue 16)
pytestmark = pytest.mark.xdist_group("experiments")

ACTS = ("sigmoid", "tanh", "relu")


def tiny_settings(**kw) -> tr.Settings:
    values = dict(mode="quick", n_train=256, n_valid=64, n_test=64, n_train_eval=128, epochs=2, evals_per_epoch=2,
                  learning_rate=0.5, batch_size=16, n_hidden=16, activation="relu", dtype="float64")
    values.update(kw)
    return tr.Settings(**values)


def tiny_data(seed: int = 0, n_in: int = 20) -> tr.Dataset:
    """A learnable synthetic problem: the class is the argmax of a fixed linear map of the input."""
    rng = np.random.default_rng(seed)
    M = rng.standard_normal((n_in, 10))

    def split(n):
        X = rng.standard_normal((n, n_in))
        return X, np.argmax(X @ M, axis=1)

    (Xtr, ytr), (Xva, yva), (Xte, yte) = split(256), split(64), split(64)
    return tr.Dataset(Xtr, ytr, Xva, yva, Xte, yte, np.arange(128))


def fake_run(name: str, test: float, experiment: str = "x", diverged: bool = False, valid=None) -> tr.RunResult:
    valid = valid or [0.9, test + 0.01, test]
    return tr.RunResult(experiment, name, [0.0, 0.5, 1.0][:len(valid)], [0.9, test, test][:len(valid)], valid,
                        test - 0.01, valid[-1], test, 1.0, diverged, 0.5 if diverged else None)


# ---------------------------------------------------------------------------------------------
# the math

@pytest.mark.parametrize("activation", ACTS)
def test_exact_variant_is_the_reference_backward(activation):
    ref = load_reference(activation)
    rng = np.random.default_rng(1)
    params = ref.init_params(7, 5, 3, np.random.default_rng(3))
    ours = tr.init_params(7, 5, 3, activation, np.random.default_rng(3))
    for k in params:
        np.testing.assert_array_equal(params[k], ours[k])  # same draws, same order
    X = rng.standard_normal((6, 7))
    Y = np.eye(3)[rng.integers(0, 3, 6)]
    _, cache = ref.forward(params, X)
    want = ref.backward(params, cache, Y)
    got = tr.exact_gradients(params, X, Y, activation)
    for k in want:
        np.testing.assert_allclose(got[k], want[k], rtol=1e-12, atol=1e-15)


def _state(variant: tr.Variant, params, activation="relu", seed=0):
    return tr._VariantState(variant, params, activation, np.random.default_rng(seed))


def _case(seed=0):
    rng = np.random.default_rng(seed)
    params = tr.init_params(8, 6, 3, "relu", rng)
    params["b"] = rng.standard_normal(6) * 0.3
    X = rng.standard_normal((5, 8))
    Y = np.eye(3)[rng.integers(0, 3, 5)]
    return params, X, Y


def test_random_h_only_in_dV_changes_only_dV():
    params, X, Y = _case()
    exact = tr.exact_gradients(params, X, Y, "relu")
    g = _state(tr.Variant("t", "dV", h_backward="random_fresh", scope="dV"), params).gradients(params, X, Y)
    for k in ("W", "b", "c"):
        np.testing.assert_allclose(g[k], exact[k])
    assert not np.allclose(g["V"], exact["V"])
    g_all = _state(tr.Variant("t", "all", h_backward="random_fresh"), params).gradients(params, X, Y)
    assert not np.allclose(g_all["W"], exact["W"])  # the derivative f'(h) uses the random h too


def test_fixed_feedback_and_fixed_h_stay_fixed_fresh_ones_change():
    params, X, Y = _case()
    for fixed, fresh in ((dict(feedback="random_fixed"), dict(feedback="random_fresh")),
                         (dict(h_backward="random_fixed"), dict(h_backward="random_fresh"))):
        s = _state(tr.Variant("t", "fixed", **fixed), params)
        np.testing.assert_array_equal(s.gradients(params, X, Y)["W"], s.gradients(params, X, Y)["W"])
        s = _state(tr.Variant("t", "fresh", **fresh), params)
        assert not np.allclose(s.gradients(params, X, Y)["W"], s.gradients(params, X, Y)["W"])


def test_stale_feedback_uses_V_from_k_steps_ago():
    params, _, _ = _case()
    s = _state(tr.Variant("t", "k=2", feedback="stale", stale_k=2), params)
    Vs = [np.full_like(params["V"], i) for i in range(6)]
    used = [s.feedback_matrix(V)[0, 0] for V in Vs]
    assert used == [0, 0, 0, 1, 2, 3]  # the initial V until two steps have passed, then V_{t-2}


def test_noise_positions():
    params, X, Y = _case()
    h = tr.activate(X @ params["W"].T + params["b"], "relu")
    same = _state(tr.Variant("t", "same", h_forward="noise", h_backward="noise_same", noise_std=0.5), params)
    h_fwd, e = same.hidden_forward(h, training=True)
    np.testing.assert_array_equal(same.backward_h(h, h_fwd, e), h_fwd)
    resampled = _state(tr.Variant("t", "res", h_forward="noise", h_backward="noise_resampled", noise_std=0.5), params)
    h_fwd, e = resampled.hidden_forward(h, training=True)
    assert not np.allclose(resampled.backward_h(h, h_fwd, e), h_fwd)
    fwd = _state(tr.Variant("t", "fwd", h_forward="noise", h_backward="clean", noise_std=0.5), params)
    h_fwd, e = fwd.hidden_forward(h, training=True)
    np.testing.assert_array_equal(fwd.backward_h(h, h_fwd, e), h)
    np.testing.assert_array_equal(fwd.hidden_forward(h, training=False)[0], h)  # no noise at evaluation


def test_rounding_stays_in_the_evaluated_model():
    params, X, _ = _case()
    s = _state(tr.Variant("t", "round", h_forward="round", h_backward="clean"), params)
    h = tr.activate(X @ params["W"].T + params["b"], "relu") * 3
    np.testing.assert_array_equal(s.hidden_forward(h, training=False)[0], np.round(h))


def test_variant_validation():
    with pytest.raises(ValueError, match="noise_std"):
        tr.Variant("t", "x", h_forward="noise")
    with pytest.raises(ValueError, match="stale_k"):
        tr.Variant("t", "x", feedback="stale")
    with pytest.raises(ValueError, match="h_backward"):
        tr.Variant("t", "x", h_backward="sideways")


def test_all_variant_names_are_unique_and_cover_the_handout():
    names = [(v.experiment, v.name) for v in all_variants()]
    assert len(names) == len(set(names)) == 1 + 2 + 3 + 4 + 12 + 3
    assert {v.stale_k for v in stale_weights.variants()} == {1, 10, 100}
    assert {v.noise_std for v in noise.variants()} == {0.1, 0.5, 1.0}


# ---------------------------------------------------------------------------------------------
# the loop

def test_training_learns_and_is_reproducible_with_common_random_numbers():
    data, settings = tiny_data(), tiny_settings()
    a = tr.train_variant(tr.BASELINE, data, settings, np.random.default_rng(7))
    b = tr.train_variant(tr.BASELINE, data, settings, np.random.default_rng(7))
    assert a.valid_error == b.valid_error and a.final_test_error == b.final_test_error
    assert a.epochs == [0.0, 0.5, 1.0, 1.5, 2.0]
    assert min(a.valid_error) < a.valid_error[0] - 0.2  # it learns
    v = tr.train_variant(tr.Variant("t", "fa", feedback="random_fixed"), data, settings, np.random.default_rng(7))
    assert v.train_error[0] == a.train_error[0] and v.valid_error[0] == a.valid_error[0]  # same initial weights
    assert v.valid_error[1:] != a.valid_error[1:]


def test_divergence_is_detected_and_stops_the_run():
    data = tiny_data()
    data.X_train[:] *= 1e6
    run = tr.train_variant(tr.BASELINE, data, tiny_settings(learning_rate=1e6), np.random.default_rng(0))
    assert run.diverged and run.diverged_at_epoch is not None
    assert run.epochs[-1] < 2.0
    assert "diverged after" in words.verdict(run, fake_run("b", 0.05))


def test_family_run_function_with_seed_writes_its_plot(tmp_path):
    res = rounding.run(np.random.default_rng(3), out_dir=tmp_path, data=tiny_data(), settings=tiny_settings())
    assert [r.variant for r in res.runs] == [rounding.FWD, rounding.BWD, rounding.DV]
    assert res.plot == tmp_path / "rounding.png" and res.plot.read_bytes().startswith(b"\x89PNG")
    again = rounding.run(np.random.default_rng(3), data=tiny_data(), settings=tiny_settings())
    assert [r.final_test_error for r in again.runs] == [r.final_test_error for r in res.runs]
    assert again.sentence == res.sentence


# ---------------------------------------------------------------------------------------------
# sentences are computed from the numbers

def test_feedback_alignment_sentence_reports_the_numbers():
    b = fake_run("exact backprop", 0.038)
    text = words.sentence(feedback_alignment.interpret(
        {feedback_alignment.FIXED: fake_run("f", 0.061), feedback_alignment.FRESH: fake_run("r", 0.85)}, b))
    assert "6.1% test error, 2.3 points worse than exact backprop" in text
    assert "did not learn (85.0% test error)" in text
    text2 = words.sentence(feedback_alignment.interpret(
        {feedback_alignment.FIXED: fake_run("f", 0.036), feedback_alignment.FRESH: fake_run("r", 0.040)}, b))
    assert "matched exact backprop (3.6% test error, -0.2 points)" in text2 and text2 != text
    assert "changed the test error by only 0.4 points" in text2


def test_other_sentences_follow_the_numbers():
    b = fake_run("exact backprop", 0.030)
    st = stale_weights.interpret({stale_weights.label(k): fake_run(str(k), e) for k, e in
                                  zip(stale_weights.KS, (0.031, 0.035, 0.06))}, b)
    assert "3.1% (+0.1 points), 3.5% (+0.5 points) and 6.0% (+3.0 points)" in st
    assert "the older the feedback, the worse" in st
    rh = random_hidden.interpret({random_hidden.BWD_FIXED: fake_run("a", 0.15), random_hidden.BWD_FRESH: fake_run("b", 0.14),
                                  random_hidden.DV_FIXED: fake_run("c", 0.04), random_hidden.DV_FRESH: fake_run("d", 0.035)}, b)
    assert "15.0%" in rh and "3.5%" in rh and "comes from the wrong derivative" in rh
    runs = {noise.label(w, s): fake_run(w, 0.03 + 0.01 * i) for i, (w, s) in
            enumerate((w, s) for w in noise.WHERE for s in noise.LEVELS)}
    ns = noise.interpret(runs, b)
    assert "forward 3.0/4.0/5.0%" in ns and "both, resampled 12.0/13.0/14.0%" in ns
    assert "noise in the forward pass only hurt least (+2.0 points)" in ns
    assert "with a new sample for the backward pass most: it reached 14.0% test error, 11.0 points worse" in ns
    rising = fake_run("r", 0.46, valid=[0.9, 0.108, 0.465])
    assert "rose from 10.8% at epoch 0.5 to 46.5%" in words.verdict(rising, b)
    ro = rounding.interpret({rounding.FWD: fake_run("f", 0.9), rounding.BWD: fake_run("b", 0.031),
                             rounding.DV: fake_run("d", 0.029)}, b)
    assert "did not learn (90.0% test error)" in ro and "forward pass cost the most" in ro


# ---------------------------------------------------------------------------------------------
# the quick report, end to end through the command line (real MNIST subsets)

@pytest.fixture(scope="module")
def quick_report(tmp_path_factory):
    from autograder.cli import main
    out = tmp_path_factory.mktemp("exp-quick")
    assert main(["experiments", "--quick", "--out", str(out)]) == 0
    return out


def test_quick_report_files(quick_report):
    html = (quick_report / "report.html").read_text()
    assert html.count("data:image/png;base64,") == len(FAMILIES)
    assert not re.search(r"""(src|href)=["'](https?:|/|file:)""", html)  # self-contained
    for fam in FAMILIES:
        assert fam.TITLE in html
        assert (quick_report / f"{fam.NAME}.png").is_file()
    with open(quick_report / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(all_variants())
    assert rows[0]["experiment"] == "baseline" and rows[0]["variant"] == "exact backprop"
    for row in rows:
        assert 0.0 <= float(row["final_test_error"]) <= 1.0
    baseline_test = float(rows[0]["final_test_error"])
    assert baseline_test < 0.2  # exact backprop learns even on the quick subset


def test_quick_report_sentences_contain_the_measured_numbers(quick_report):
    import json
    data = json.loads((quick_report / "results.json").read_text())
    html = (quick_report / "report.html").read_text()
    baseline = data["baseline"]
    assert words.pct(baseline["final_test_error"]) in data["meta"]["baseline_sentence"]
    for exp in data["experiments"]:
        text = exp["sentence"]
        assert text in html.replace("&#39;", "'")
        for run in exp["runs"]:
            number = words.pct(run["final_test_error"])
            assert number.rstrip("%") in text, (exp["name"], run["variant"], number, text)
