"""The otter/nbgrader training test (``bplab_training.py``, autograder/release/nbtraining.py) on real MNIST.

Unit tests run the shipped files as shipped (copied into a folder, imported from there) on a small
MNIST-shaped subset of the real cache; the slow test trains on the whole split and compares the run
checkpoint by checkpoint with the backprop-lab grader's own training check (same seed, same schedule,
same test errors, same score)."""
from __future__ import annotations

import importlib.util
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from autograder.checks.training import schedule as grader_schedule
from autograder.config import load_config
from autograder.mutants import mutant_sources
from autograder.reference import reference_source
from autograder.release import nbtraining
from autograder.release.expected import build_tests, run_tests, training_spec, training_steps

pytestmark = pytest.mark.xdist_group("release_training")  # its module fixtures: made once, on one worker

CONFIG = load_config(activation="relu")


@pytest.fixture(scope="module")
def subset(tmp_path_factory, mnist_data) -> Path:
    """A small MNIST-shaped split of the real data: 3,000 train, 500 valid, 2,000 test images."""
    root = tmp_path_factory.mktemp("mnist-subset")
    for split, n in (("train", 3000), ("valid", 500), ("test", 2000)):
        (root / split).mkdir()
        data = getattr(mnist_data, split)
        np.save(root / split / "X.npy", np.asarray(data.X[:n]))
        np.save(root / split / "y.npy", np.asarray(data.y[:n]))
    return root


@pytest.fixture()
def shipped(tmp_path, monkeypatch):
    """bplab_checks.py and bplab_training.py copied next to each other and imported from there."""
    folder = tmp_path / "notebook"
    folder.mkdir()
    from autograder.release import shipped as shipped_files
    shipped_files.copy_to(folder)   # bplab_checks.py, the judges, bplab_training.py, gradcheck.py
    monkeypatch.syspath_prepend(str(folder))  # as the notebook's own folder is, in its kernel
    for name in ("bplab_checks", "bplab_training", "bplab_judges", "bplab_extension_judges"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    spec = importlib.util.spec_from_file_location("bplab_checks", folder / "bplab_checks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setitem(sys.modules, "bplab_checks", module)
    monkeypatch.delenv("BPLAB_MNIST", raising=False)
    monkeypatch.delenv("BACKPROP_LAB_CACHE", raising=False)
    yield folder, module
    sys.modules.pop("bplab_training", None)


def _reference() -> dict:
    namespace: dict = {}
    exec(compile(reference_source("relu"), "reference", "exec"), namespace)
    return namespace


def _spec(**changes) -> dict[str, np.ndarray]:
    spec = training_spec(CONFIG, 7, "test", budget=60.0)
    return spec | {k: np.asarray(v) for k, v in changes.items()}


def test_missing_mnist_is_an_assertion_naming_every_path_tried(shipped, tmp_path, monkeypatch):
    folder, checks = shipped
    monkeypatch.setenv("BPLAB_MNIST", str(tmp_path / "nowhere"))
    ref = _reference()
    with pytest.raises(AssertionError) as failed:
        checks.training_reaches(ref["init_params"], ref["forward"], ref["backward"], ref["sgd_step"],
                                ref["HYPERPARAMS"], _spec(), 0.2, False)
    text = str(failed.value)
    assert "MNIST (train split) not found" in text and str(tmp_path / "nowhere" / "train") in text
    assert "$BPLAB_MNIST" in text and str(folder / "mnist" / "train") in text and "bplab_mnist.txt" in text


def test_mnist_found_through_a_file_next_to_the_notebook_or_a_cache_folder(shipped, subset, tmp_path, monkeypatch):
    folder, checks = shipped
    training = checks._training_module()
    assert Path(training.__file__).parent == folder  # bplab_checks imports the shipped copy next to it
    assert sys.modules["bplab_training"] is training
    (folder / "bplab_mnist.txt").write_text(f"{subset}\n")
    assert Path(training.mnist_folder("test")) == subset
    X, y = training.load_split("valid")
    assert X.shape == (500, 784) and y.shape == (500,) and X.dtype == np.float32
    (folder / "bplab_mnist.txt").unlink()
    cache = tmp_path / "cache"
    (cache / "mnist").mkdir(parents=True)
    for split in ("train", "valid", "test"):
        (cache / "mnist" / split).symlink_to(subset / split)
    monkeypatch.setenv("BPLAB_MNIST", str(cache))  # a backprop-lab cache folder (holding mnist/) works too
    assert Path(training.mnist_folder("train")) == cache / "mnist"


def test_schedule_is_the_graders(subset):
    for hp in ({"batch_size": 64, "epochs": 3}, {"batch_size": 1, "epochs": 50}, {"batch_size": 1000, "epochs": 1},
               {"batch_size": 7, "epochs": 2}):
        for n in (50000, 3000, 999):
            steps, per_epoch = nbtraining.schedule(_spec(), hp, n)
            theirs, their_per_epoch, _ = grader_schedule(CONFIG, hp, n)
            assert (steps, per_epoch) == (theirs, their_per_epoch)


def test_steps_add_up_to_the_graders_scale():
    steps = training_steps(CONFIG)
    assert [e for e, _ in steps] == [0.2, 0.1, 0.07, CONFIG.training.target_error]
    assert sum(p for _, p in steps) == pytest.approx(CONFIG.rubric["training"])
    assert np.cumsum([p for _, p in steps]) / CONFIG.rubric["training"] == pytest.approx([0.2, 0.4, 0.6, 1.0])


@pytest.mark.parametrize("bad, words", [
    ({"n_hidden": 8}, ["n_hidden", "outside the allowed range [16, 1024]"]),
    ({"learning_rate": float("nan")}, ["learning_rate", "not a finite number"]),
    ({"batch_size": 32.5}, ["batch_size", "whole number"]),
    ({"epochs": True}, ["epochs", "not a finite number"]),
])
def test_hyperparams_outside_the_bounds_score_nothing(bad, words):
    hp = dict(_reference()["HYPERPARAMS"], **bad)
    with pytest.raises(AssertionError) as failed:
        nbtraining.check_hyperparams(hp, _spec())
    assert all(w in str(failed.value) for w in words)


def test_the_reference_learns_on_a_subset_and_a_pretrained_init_scores_zero(subset, monkeypatch):
    monkeypatch.setenv("BPLAB_MNIST", str(subset))
    ref = _reference()
    fns = [ref[k] for k in ("init_params", "forward", "backward", "sgd_step")]
    run = nbtraining.train(*fns, ref["HYPERPARAMS"], _spec(target=0.15))
    assert run["reached"] and run["best"] < 0.15 and not run["problem"], run
    epochs = [c[0] for c in run["curve"]]
    assert epochs == sorted(epochs) and epochs[0] == round(12 / 46, 4)  # the first checkpoint: step 12 of 46

    state = {"params": None}

    def pretrained_init(n_in, n_hidden, n_out, rng):  # returns weights trained beforehand
        if state["params"] is None:
            params = ref["init_params"](n_in, n_hidden, n_out, np.random.default_rng(1))
            X, y = nbtraining.load_split("train")
            for _ in range(3):
                for i in range(0, 3000, 64):
                    _, cache = ref["forward"](params, np.asarray(X[i:i + 64], dtype=np.float64))
                    params = ref["sgd_step"](params, ref["backward"](params, cache, np.eye(10)[y[i:i + 64]]), 0.5)
            state["params"] = params
        return {k: v.copy() for k, v in state["params"].items()}

    run = nbtraining.train(pretrained_init, *fns[1:], ref["HYPERPARAMS"], _spec(target=0.15))
    assert run["zero"] and "already has test error" in run["problem"], run
    with pytest.raises(AssertionError, match="parameters trained beforehand score 0"):
        nbtraining.reaches(pretrained_init, *fns[1:], ref["HYPERPARAMS"], _spec(target=0.15), 0.2, False)


def test_diverging_and_crashing_runs_keep_the_credit_of_their_checkpoints(subset, monkeypatch):
    monkeypatch.setenv("BPLAB_MNIST", str(subset))
    ref = _reference()
    calls = {"n": 0}

    def late_crash(params, grads, lr):
        calls["n"] += 1
        if calls["n"] > 20:  # after the first checkpoint (step 12: 46 steps per epoch at batch 64)
            raise ValueError("boom")
        return ref["sgd_step"](params, grads, lr)

    hp = dict(ref["HYPERPARAMS"], learning_rate=0.5)
    run = nbtraining.train(ref["init_params"], ref["forward"], ref["backward"], late_crash, hp, _spec())
    assert len(run["curve"]) == 1 and "sgd_step raised ValueError: boom" in run["problem"]
    diverged = nbtraining.train(ref["init_params"], ref["forward"], ref["backward"], ref["sgd_step"],
                                dict(hp, learning_rate=10.0), _spec())
    assert diverged["best"] > 0.5 and ("NaN/inf" in diverged["problem"] or "not learning" in diverged["problem"])


def test_over_budget_is_partial_credit_at_most(subset, monkeypatch):
    """A run past its budget keeps partial credit for its best error, never the target's points."""
    monkeypatch.setenv("BPLAB_MNIST", str(subset))
    ref = _reference()
    fns = [ref[k] for k in ("init_params", "forward", "backward", "sgd_step")]
    data = _spec(target=0.15, budget_s=0.0, grace_s=1e9)  # every checkpoint is past a zero budget
    with pytest.raises(AssertionError, match="within the budget"):
        nbtraining.reaches(*fns, ref["HYPERPARAMS"], data, 0.15, True)
    nbtraining.reaches(*fns, ref["HYPERPARAMS"], data, 0.6, False)  # below 60% at the first checkpoint
    run = next(v[1] for v in nbtraining._TRAINED.values() if isinstance(v[1], dict) and v[1]["budget_s"] == 0.0)
    assert len(run["curve"]) == 1 and "whole budget" in run["problem"]


@pytest.mark.slow
def test_the_run_is_the_graders_checkpoint_by_checkpoint(trained_env, monkeypatch, tmp_path):
    """Full MNIST, the grader's seed: the same test error at every checkpoint and the same score as the
    grader's training check, for the reference and for a mutant that only earns partial credit (both
    capped at one epoch, to keep the test short)."""
    from autograder.checks import training
    from autograder.checks.common import Context
    from autograder.mnist import mnist_dir
    from autograder.reference import load_reference
    from autograder.worker.session import WorkerSession
    monkeypatch.setenv("BPLAB_MNIST", str(mnist_dir()))
    config = replace(trained_env.config, training=replace(trained_env.config.training, max_epochs=1))
    env = replace(trained_env, config=config)
    tests = [t for t in build_tests(config) if t.check_id == "training" and t.hidden]
    for name, source in (("reference", reference_source("relu")),
                         ("grad_factor_1_over_n", mutant_sources("relu")["grad_factor_1_over_n"])):
        src = tmp_path / name / "mlp.py"  # the grader's training check alone, in its sandboxed worker
        src.parent.mkdir()
        src.write_text(source)
        with WorkerSession(src, env.iso, config.activation, config.sandbox) as session:
            ctx = Context(config, load_reference(config.activation), session)
            result = training.run(ctx, env.data, env.budget, env.budget_statement)[0]
        namespace: dict = {}
        exec(compile(source, name, "exec"), namespace)
        ours = sum(score for _, score, _ in run_tests(tests, namespace))
        run = next(v[1] for v in nbtraining._TRAINED.values() if v[0][1] is namespace["forward"])
        theirs = [(c["epoch"], c["test_error"]) for c in result.evidence["curve"]]
        assert [(e, err) for e, _, err in run["curve"]] == theirs, name
        assert ours == pytest.approx(result.score), (name, result.message)
        if name != "reference":
            assert 0 < result.score < result.max_score, result.message  # partial credit, on both sides


def test_a_recycled_function_id_never_reuses_another_run(subset, monkeypatch):
    """The run cache keeps the functions it trained: a later set of functions that happens to get the
    same ids (the gate executes one namespace after another) trains anew."""
    monkeypatch.setenv("BPLAB_MNIST", str(subset))
    ref = _reference()
    fns = [ref[k] for k in ("init_params", "forward", "backward", "sgd_step")]
    data = _spec(target=0.15)
    nbtraining.reaches(*fns, ref["HYPERPARAMS"], data, 0.6, False)

    def broken_init(n_in, n_hidden, n_out, rng):
        raise NotImplementedError("init_params")

    # broken_init gets the trained init_params' id, as a recycled id would
    monkeypatch.setattr(nbtraining, "id", lambda f: id(fns[0]) if f is broken_init else id(f), raising=False)
    with pytest.raises(AssertionError, match="not implemented yet"):
        nbtraining.reaches(broken_init, *fns[1:], ref["HYPERPARAMS"], data, 0.6, False)
