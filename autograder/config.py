"""Typed course configuration read from course.toml; every key carries its description."""
from __future__ import annotations

import difflib
import hashlib
import math
import os
import typing
from dataclasses import dataclass, field, fields, is_dataclass, replace
from pathlib import Path

try:  # Python 3.11+; the grader also runs on Ubuntu 22.04's 3.10 (Gradescope's image)
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

from .errors import ConfigError
from .paths import COURSE_TOML

from .nnmath import ACTIVATIONS  # noqa: F401 - re-exported: the activations a year can pick
from .checks.registry import CHECK_IDS, CORE, EXTENSIONS  # check modules import no config at run time

#: Public development secret. Real courses set BACKPROP_LAB_SECRET or the secret file; reports say
#: when this default was in force, because anyone who reads this repository can derive the cases.
DEV_SECRET = "backprop-lab-development-secret"


def activation_for_year(year: int) -> str:
    """The activation a year picks when course.toml says ``activation = "auto"``."""
    return ACTIVATIONS[year % len(ACTIVATIONS)]


@dataclass(frozen=True)
class TrainingConfig:
    target_error: float = field(default=0.05, metadata={"doc": "test error the training check must reach"})
    eval_every_epochs: float = field(default=0.25, metadata={"doc": "evaluate test error every this many epochs"})
    budget_factor: float = field(default=4.0, metadata={"doc": "budget = max(floor, factor * reference time)"})
    budget_floor_s: float = field(default=20.0, metadata={"doc": "the smallest training budget, seconds"})
    max_epochs: int = field(default=10, metadata={"doc": "the grader never trains longer than this"})


@dataclass(frozen=True)
class HyperparamBounds:
    n_hidden: tuple[int, int] = field(default=(16, 1024), metadata={"doc": "allowed hidden units"})
    learning_rate: tuple[float, float] = field(default=(1e-4, 10.0), metadata={"doc": "allowed SGD step size"})
    batch_size: tuple[int, int] = field(default=(1, 1024), metadata={"doc": "allowed minibatch size"})
    epochs: tuple[int, int] = field(default=(1, 50), metadata={"doc": "allowed epochs"})


ISOLATION_LEVELS = ("full", "landlock", "bwrap", "user", "rlimits")  # strongest first (autograder/sandbox/level.py)


@dataclass(frozen=True)
class SandboxLimits:
    """Every timeout and limit of the sandbox and the checks, in one object (``[sandbox]`` in course.toml).

    Tests shrink these (``dataclasses.replace``) to run hang and crash cases in seconds through the
    same code paths. Sizes in MiB, times in seconds.
    """
    minimum_isolation: str = field(default="rlimits", metadata={
        "doc": "grade/batch refuse to run below this level: full, landlock, bwrap, user or rlimits"})
    load_timeout_s: float = field(default=20.0, metadata={"doc": "importing mlp.py (incl. its top-level code)"})
    call_timeout_s: float = field(default=20.0, metadata={"doc": "one call of a student function by a check"})
    retry_timeout_s: float = field(default=3.0, metadata={
        "doc": "a call after one has already timed out in the same grading gets this long"})
    student_wall_s: float = field(default=900.0, metadata={
        "doc": "wall-clock cap on grading one student, all checks together; past it the rest scores zero"})
    memory_mib: int = field(default=2048, metadata={
        "doc": "memory of the whole worker tree (cgroup, counting shared memory), and its address-space rlimit"})
    processes: int = field(default=64, metadata={"doc": "processes/threads of the whole worker tree"})
    cpu_rlimit_s: int = field(default=600, metadata={"doc": "CPU seconds per worker process (rlimit)"})
    file_size_mib: int = field(default=64, metadata={"doc": "largest file the worker may write"})
    open_files: int = field(default=64, metadata={"doc": "open file descriptors per worker process"})
    scratch_mib: int = field(default=256, metadata={"doc": "size of the worker's private /tmp, /dev/shm and (run as root) scratch folder, each"})


@dataclass(frozen=True)
class SimilarityConfig:
    """``[similarity]`` in course.toml: the similarity report (``backprop-lab similarity``, and batch's
    "Pairs to look at"). It changes no verdict, so it is left out of the batch settings digest."""
    threshold: float = field(default=0.85, metadata={
        "doc": "pairs scoring at least this (0..1) are listed in 'Pairs to look at' and marked in the report"})


@dataclass(frozen=True)
class CourseConfig:
    name: str = field(default="Intro to Deep Learning", metadata={"doc": "course name shown in reports"})
    assignment: str = field(default="backprop-lab", metadata={"doc": "assignment name"})
    year: int = field(default=2026, metadata={"doc": "release year; seeds hidden cases with the secret"})
    activation: str = field(default="relu", metadata={"doc": "hidden activation: sigmoid, tanh or relu"})
    rubric: dict[str, float] = field(
        default_factory=lambda: {s.check_id: s.default_points for s in CORE},
        metadata={"doc": "points per check id"},
    )
    training: TrainingConfig = field(default_factory=TrainingConfig)
    bounds: HyperparamBounds = field(default_factory=HyperparamBounds)
    secret_env: str = field(default="BACKPROP_LAB_SECRET", metadata={"doc": "env var holding the secret"})
    secret_file: str = field(default="~/.config/backprop-lab/secret", metadata={"doc": "file holding the secret"})
    extensions: dict[str, bool] = field(
        default_factory=lambda: {s.check_id: False for s in EXTENSIONS},
        metadata={"doc": "optional extensions, each scored separately when true (autograder/checks/extension_*.py)"},
    )
    extension_points: dict[str, float] = field(
        default_factory=lambda: {s.check_id: float(s.default_points) for s in EXTENSIONS},
        metadata={"doc": "points per enabled extension"},
    )
    sandbox: SandboxLimits = field(default_factory=SandboxLimits)
    # repr=False: settings_digest() hashes repr(config), and a report threshold must not regrade a class
    similarity: SimilarityConfig = field(default_factory=SimilarityConfig, repr=False, compare=False,
                                         metadata={"doc": "the similarity report ([similarity])"})

    @property
    def max_score(self) -> float:
        return float(sum(self.rubric.values()))

    def with_activation(self, activation: str | None) -> "CourseConfig":
        """This config with the activation overridden (``--activation``); None keeps it."""
        if activation is None:
            return self
        if activation not in ACTIVATIONS:
            raise ConfigError(f"unknown activation {activation!r}; choose one of {', '.join(ACTIVATIONS)}")
        return replace(self, activation=activation)

    def secret(self) -> tuple[str, bool]:
        """(secret, is_development_default). Env var first, then the secret file, then DEV_SECRET."""
        env = os.environ.get(self.secret_env)
        if env:
            return env, False
        path = Path(self.secret_file).expanduser()
        if path.is_file():
            text = path.read_text().strip()
            if text:
                return text, False
        return DEV_SECRET, True

    def seed(self, purpose: str) -> int:
        """A 63-bit seed derived from (secret, year, activation, purpose); stable across runs."""
        secret, _ = self.secret()
        digest = hashlib.sha256(f"{secret}|{self.year}|{self.activation}|{purpose}".encode()).digest()
        return int.from_bytes(digest[:8], "little") >> 1

    def fingerprint(self) -> str:
        """A short hash of everything that changes a verdict (for resumable batch grading)."""
        secret, _ = self.secret()
        text = repr((self.year, self.activation, sorted(self.rubric.items()), self.training, self.bounds,
                     sorted(self.extensions.items()), sorted(self.extension_points.items()), self.sandbox,
                     hashlib.sha256(secret.encode()).hexdigest()))
        return hashlib.sha256(text.encode()).hexdigest()[:16]


# ---- course.toml <-> CourseConfig ---------------------------------------------------------------
# Which TOML key holds which field is derived from the dataclasses: a plain field of CourseConfig is a
# key of [course], a dataclass-valued field is a section of that dataclass's fields, a dict-valued
# field is a section whose keys are its default's keys. Only the names that differ are listed here;
# a new field (or a new section dataclass such as [similarity]) needs no entry.

#: CourseConfig field -> (TOML section, key); key None for a field that is a whole section.
TOML_NAMES: dict[str, tuple[str, str | None]] = {
    "secret_env": ("secret", "env"),
    "secret_file": ("secret", "secret_file"),
    "bounds": ("hyperparam_bounds", None),
}
PLAIN_SECTION = "course"

#: Tighter value ranges than the default (every number of a section dataclass > 0, points >= 0):
#: (dataclass, field) -> (low, high, low_inclusive). A field's ``metadata["range"]`` may say the same.
RANGES: dict[tuple[type, str], tuple[float, float, bool]] = {
    (TrainingConfig, "target_error"): (0.0, 1.0, False),
    (SimilarityConfig, "threshold"): (0.0, 1.0, True),
}


def _hints(cls) -> dict:
    return typing.get_type_hints(cls)


def _near(name: str, known) -> str:
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _unknown(where: str, names, known) -> ConfigError:
    name = sorted(names)[0]
    return ConfigError(f"{where}: unknown key {name!r}{_near(name, known)}; known: {', '.join(sorted(known))}")


def _describe(value) -> str:
    return f"the string {value!r}" if isinstance(value, str) else f"{value!r} ({type(value).__name__})"


def _coerce(value, typ, where: str):
    """``value`` as ``typ`` (str, bool, int, float or tuple[...] of those), or a ConfigError naming ``where``."""
    origin = typing.get_origin(typ)
    if origin is tuple:
        args = typing.get_args(typ)
        if not isinstance(value, (list, tuple)) or len(value) != len(args):
            raise ConfigError(f"{where} must be a list of {len(args)} numbers, e.g. {list(args[0](1) for _ in args)}; "
                              f"got {_describe(value)}")
        return tuple(_coerce(v, t, f"{where}[{i}]") for i, (v, t) in enumerate(zip(value, args)))
    if typ is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false; got {_describe(value)}")
        return value
    if typ in (int, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (typ is int and not isinstance(value, int)):
            hint = ""
            if isinstance(value, str) and value.strip().endswith("%"):
                try:
                    hint = f" (write {float(value.strip()[:-1]) / 100:g} for {value})"
                except ValueError:
                    pass
            kind = "a whole number" if typ is int else "a number"
            raise ConfigError(f"{where} must be {kind}; got {_describe(value)}{hint}")
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{where} must be a finite number; got {value!r}")
        return typ(value)
    if typ is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where} must be a string; got {_describe(value)}")
        return value
    raise AssertionError(f"config type {typ!r} of {where} has no TOML reading")


def _in_range(value, low: float, high: float, low_inclusive: bool, where: str) -> None:
    values = value if isinstance(value, tuple) else (value,)
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            return
        if v < low or (v == low and not low_inclusive) or v > high:
            lo = "[" if low_inclusive else "("
            raise ConfigError(f"{where} = {value!r} is out of range {lo}{low:g}, {high:g}]")
    if isinstance(value, tuple) and len(value) == 2 and value[0] > value[1]:
        raise ConfigError(f"{where} = {list(value)}: the low end is above the high end")


def _section(cls, raw: dict, where: str):
    """A section dataclass from its TOML table: unknown keys, wrong types and out-of-range values refused."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{where} must be a table, not a value")
    hints = _hints(cls)
    known = {f.name: f for f in fields(cls)}
    unknown = set(raw) - set(known)
    if unknown:
        raise _unknown(where, unknown, known)
    kwargs = {}
    for key, value in raw.items():
        at = f"{where} {key}"
        kwargs[key] = _coerce(value, hints[key], at)
        low, high, inclusive = known[key].metadata.get("range") or RANGES.get((cls, key), (0.0, math.inf, False))
        _in_range(kwargs[key], low, high, inclusive, at)
    return cls(**kwargs)


def _table(default: dict, typ, raw: dict, where: str, complete: bool) -> dict:
    """A dict field's table: keys from its default, values of the annotated type, points >= 0."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{where} must be a table, not a value")
    value_type = typing.get_args(typ)[1]
    unknown = set(raw) - set(default)
    if unknown:
        raise _unknown(where, unknown, default)
    out = {k: _coerce(v, value_type, f"{where} {k}") for k, v in raw.items()}
    for k, v in out.items():
        _in_range(v, 0.0, math.inf, True, f"{where} {k}")
    if complete and raw:
        missing = [k for k in default if k not in raw]
        if missing:
            raise ConfigError(f"{where} is missing {', '.join(missing)}; give each check its points")
    return {**default, **out} if not complete or not raw else out


#: dict fields whose table must name every key when it is given at all
COMPLETE_TABLES = ("rubric",)


def toml_layout() -> dict[str, dict[str, tuple[str, str]]]:
    """section -> {toml key: (field name, kind)} where kind is 'plain', 'section' or 'table'."""
    layout: dict[str, dict[str, tuple[str, str]]] = {}
    defaults = CourseConfig()
    for f in fields(CourseConfig):
        value = getattr(defaults, f.name)
        section, key = TOML_NAMES.get(f.name, (None, None))
        if is_dataclass(value) or isinstance(value, dict):
            layout.setdefault(section or f.name, {})[""] = (f.name, "section" if is_dataclass(value) else "table")
        else:
            layout.setdefault(section or PLAIN_SECTION, {})[key or f.name] = (f.name, "plain")
    return layout


def config_from_toml(raw: dict, where: str = "course.toml") -> CourseConfig:
    """CourseConfig from parsed course.toml; ``activation = "auto"`` resolved by the year."""
    layout = toml_layout()
    unknown = set(raw) - set(layout)
    if unknown:
        name = sorted(unknown)[0]
        raise ConfigError(f"{where}: unknown section [{name}]{_near(name, layout)}; "
                          f"known: {', '.join(f'[{s}]' for s in sorted(layout))}")
    hints, defaults, kwargs = _hints(CourseConfig), CourseConfig(), {}
    for section, keys in layout.items():
        table = raw.get(section, {})
        at = f"{where} [{section}]"
        if "" in keys:
            name, kind = keys[""]
            if section in raw:
                kwargs[name] = (_section(hints[name], table, at) if kind == "section" else
                                _table(getattr(defaults, name), hints[name], table, at, name in COMPLETE_TABLES))
            continue
        if not isinstance(table, dict):
            raise ConfigError(f"{at} must be a table, not a value")
        unknown = set(table) - set(keys)
        if unknown:
            raise _unknown(at, unknown, keys)
        for key, value in table.items():
            name, _ = keys[key]
            kwargs[name] = _coerce(value, hints[name], f"{at} {key}")
    year = kwargs.get("year", defaults.year)
    if not 1900 <= year <= 9999:
        raise ConfigError(f"{where} [course] year = {year} is out of range: give a four-digit year")
    if kwargs.get("activation") == "auto":
        kwargs["activation"] = activation_for_year(year)
    if kwargs.get("activation", defaults.activation) not in ACTIVATIONS:
        raise ConfigError(f"{where}: [course] activation = {kwargs['activation']!r}; choose sigmoid, tanh, relu or auto"
                          f"{_near(kwargs['activation'], ACTIVATIONS)}")
    sandbox = kwargs.get("sandbox", defaults.sandbox)
    if sandbox.minimum_isolation not in ISOLATION_LEVELS:
        raise ConfigError(f"{where}: [sandbox] minimum_isolation = {sandbox.minimum_isolation!r}; "
                          f"choose one of {', '.join(ISOLATION_LEVELS)}{_near(sandbox.minimum_isolation, ISOLATION_LEVELS)}")
    return CourseConfig(**kwargs)


def config_to_toml(cfg: CourseConfig) -> dict:
    """The TOML document (a dict for tomli_w) that :func:`config_from_toml` reads back as ``cfg``."""
    doc: dict[str, dict] = {}
    for section, keys in toml_layout().items():
        if "" in keys:
            value = getattr(cfg, keys[""][0])
            doc[section] = dict(value) if isinstance(value, dict) else {
                f.name: list(v) if isinstance(v := getattr(value, f.name), tuple) else v for f in fields(value)}
        else:
            doc[section] = {key: getattr(cfg, name) for key, (name, _) in keys.items()}
    return doc


def load_config(path: Path | str | None = None, activation: str | None = None) -> CourseConfig:
    """Read course.toml (default: the project's) and apply an optional activation override.

    Strict: an unknown section or key, a value of the wrong type or out of range is a ConfigError
    naming the key (and the near miss: ``[trainig]`` -> did you mean 'training'?).
    """
    path = Path(path) if path else Path(os.environ.get("BACKPROP_LAB_COURSE", COURSE_TOML))
    if not path.is_file():
        raise ConfigError(f"course config {path} not found; create it (see course.toml in the project) "
                          "or point BACKPROP_LAB_COURSE at one")
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    return config_from_toml(raw, str(path)).with_activation(activation)
