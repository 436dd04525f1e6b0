"""Strict course.toml: unknown sections/keys, wrong types and out-of-range values name the key and
the near miss; the loader's schema comes from the dataclasses; course.toml round-trips through tomli-w."""

from dataclasses import dataclass, field, fields, is_dataclass, replace

import pytest
import tomli_w

from autograder import config as config_mod
from autograder.config import (CourseConfig, HyperparamBounds, SandboxLimits, TrainingConfig,
                               config_from_toml, config_to_toml, load_config, toml_layout)
from autograder.errors import ConfigError


def load_text(tmp_path, text: str) -> CourseConfig:
    path = tmp_path / "course.toml"
    path.write_text(text)
    return load_config(path)


@pytest.mark.parametrize("text, words", [
    ("[trainig]\ntarget_error = 0.05\n", ["[trainig]", "did you mean 'training'"]),
    ("[course]\nyaer = 2027\n", ["'yaer'", "did you mean 'year'"]),
    ("[rubric]\nforwrd = 15\ngradients = 35\nminibatch = 20\nsgd_step = 10\ntraining = 20\n",
     ["'forwrd'", "did you mean 'forward'"]),
    ('[training]\ntarget_error = "5%"\n', ["[training] target_error", "must be a number", "the string '5%'",
                                           "write 0.05"]),
    ("[training]\ntarget_error = 1.5\n", ["target_error = 1.5", "out of range"]),
    ("[training]\nmax_epochs = 2.5\n", ["max_epochs", "whole number"]),
    ("[training]\nmax_epochs = true\n", ["max_epochs", "whole number"]),
    ("[sandbox]\nmemory_mib = -1\n", ["memory_mib = -1", "out of range"]),
    ("[sandbox]\nload_timeout_s = 0\n", ["load_timeout_s", "out of range"]),
    ("[sandbox]\nmemroy_mib = 10\n", ["'memroy_mib'", "did you mean 'memory_mib'"]),
    ('[sandbox]\nminimum_isolation = "ful"\n', ["minimum_isolation", "did you mean 'full'"]),
    ("[hyperparam_bounds]\nn_hidden = [1024, 16]\n", ["n_hidden", "low end is above"]),
    ("[hyperparam_bounds]\nn_hidden = 16\n", ["n_hidden", "list of 2"]),
    ("[rubric]\nforward = -5\ngradients = 35\nminibatch = 20\nsgd_step = 10\ntraining = 20\n",
     ["forward = -5", "out of range"]),
    ("[rubric]\nforward = 15\n", ["missing gradients"]),
    ('[extension_points]\nl2 = "five"\n', ["[extension_points] l2", "must be a number"]),
    ("[extensions]\nl2 = 1\n", ["l2", "true or false"]),
    ("[extensions]\ndropuot = true\n", ["'dropuot'", "did you mean 'dropout'"]),
    ('[course]\nactivation = "rleu"\n', ["activation", "did you mean 'relu'"]),
    ("[course]\nyear = 27\n", ["year = 27", "four-digit"]),
    ('[secret]\nenv = 3\n', ["[secret] env", "must be a string"]),
    ("training = 3\n", ["[training]", "must be a table"]),
])
def test_mistakes_name_the_key_and_the_near_miss(tmp_path, text, words):
    with pytest.raises(ConfigError) as info:
        load_text(tmp_path, text)
    for word in words:
        assert word in str(info.value), (word, str(info.value))


def test_good_values_are_read_and_ints_become_floats(tmp_path):
    cfg = load_text(tmp_path, "[course]\nyear = 2027\n[training]\ntarget_error = 0.04\nbudget_floor_s = 30\n"
                              "[sandbox]\nmemory_mib = 1024\n[hyperparam_bounds]\nlearning_rate = [1, 2]\n")
    assert cfg.year == 2027 and cfg.training.target_error == 0.04
    assert cfg.training.budget_floor_s == 30.0 and isinstance(cfg.training.budget_floor_s, float)
    assert cfg.sandbox.memory_mib == 1024 and cfg.bounds.learning_rate == (1.0, 2.0)
    assert load_text(tmp_path, '[course]\nyear = 2027\nactivation = "auto"\n').activation == config_mod.activation_for_year(2027)


def test_every_field_has_a_toml_home():
    """Every CourseConfig field (and every field of its section dataclasses) is readable from TOML."""
    layout = toml_layout()
    homes = {name for keys in layout.values() for name, _ in keys.values()}
    assert homes == {f.name for f in fields(CourseConfig)}
    assert set(layout) >= {"course", "rubric", "training", "hyperparam_bounds", "secret", "extensions",
                           "extension_points", "sandbox"}


def test_a_new_section_dataclass_is_known_without_a_hand_kept_list(monkeypatch):
    """What the [similarity] section will need: only its dataclass as a field of CourseConfig."""
    @dataclass(frozen=True)
    class Similarity:
        threshold: float = field(default=0.9, metadata={"range": (0.0, 1.0, True)})

    @dataclass(frozen=True)
    class Extended(CourseConfig):
        similarity: Similarity = field(default_factory=Similarity)

    monkeypatch.setattr(config_mod, "CourseConfig", Extended)
    cfg = config_from_toml({"similarity": {"threshold": 0.5}})
    assert cfg.similarity.threshold == 0.5
    with pytest.raises(ConfigError, match="did you mean 'threshold'"):
        config_from_toml({"similarity": {"treshold": 0.5}})
    with pytest.raises(ConfigError, match="out of range"):
        config_from_toml({"similarity": {"threshold": 1.5}})
    with pytest.raises(ConfigError, match="did you mean 'similarity'"):
        config_from_toml({"simlarity": {"threshold": 0.5}})


def _changed(value):
    """A different value of the same type (for the round trip)."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 3
    if isinstance(value, float):
        return value / 2 + 0.125 if value < 1 else value + 1.5
    if isinstance(value, tuple):
        return tuple(_changed(v) for v in value)
    if isinstance(value, str):
        return {"relu": "tanh", "rlimits": "user"}.get(value, value + " x")
    if isinstance(value, dict):
        return {k: _changed(v) for k, v in value.items()}
    if is_dataclass(value):
        return replace(value, **{f.name: _changed(getattr(value, f.name)) for f in fields(value)})
    raise AssertionError(value)


def test_round_trip_field_by_field(tmp_path):
    """load(write(cfg)) == cfg for a config whose every field differs from the default."""
    base = CourseConfig()
    cfg = replace(base, **{f.name: _changed(getattr(base, f.name)) for f in fields(CourseConfig)})
    for f in fields(CourseConfig):
        assert getattr(cfg, f.name) != getattr(base, f.name), f.name
    path = tmp_path / "course.toml"
    path.write_text(tomli_w.dumps(config_to_toml(cfg)))
    back = load_config(path)
    for f in fields(CourseConfig):
        assert getattr(back, f.name) == getattr(cfg, f.name), f.name
    for sub in (TrainingConfig, HyperparamBounds, SandboxLimits):
        name = next(f.name for f in fields(CourseConfig) if getattr(base, f.name).__class__ is sub)
        for f in fields(sub):
            assert getattr(getattr(back, name), f.name) == getattr(getattr(cfg, name), f.name), (name, f.name)
    assert back == cfg


def test_the_project_course_toml_loads():
    assert load_config() == CourseConfig()


def test_release_without_the_tools_says_so_in_one_line(monkeypatch, capsys, tmp_path):
    """`release` stops before the gate, with exit 2 and one line naming the install."""
    import importlib.util
    import shutil

    from autograder.cli import main
    real_find = importlib.util.find_spec
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None)
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a, **k: None if name in ("otter", "nbgrader") else real_find(name, *a, **k))
    assert main(["release", "--year", "2027", "--out", str(tmp_path / "dist")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "otter-grader is not installed" in err and ".[release]" in err
