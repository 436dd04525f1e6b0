"""Typed course configuration read from course.toml; every key carries its description."""
from __future__ import annotations

import hashlib
import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from .errors import ConfigError
from .paths import COURSE_TOML

ACTIVATIONS = ("sigmoid", "tanh", "relu")
CHECK_IDS = ("forward", "gradients", "minibatch", "sgd_step", "training")

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
    scratch_mib: int = field(default=256, metadata={"doc": "size of the worker's private /tmp and /dev/shm"})


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
        default_factory=lambda: {"forward": 15, "gradients": 35, "minibatch": 20, "sgd_step": 10, "training": 20},
        metadata={"doc": "points per check id"},
    )
    training: TrainingConfig = field(default_factory=TrainingConfig)
    bounds: HyperparamBounds = field(default_factory=HyperparamBounds)
    secret_env: str = field(default="BACKPROP_LAB_SECRET", metadata={"doc": "env var holding the secret"})
    secret_file: str = field(default="~/.config/backprop-lab/secret", metadata={"doc": "file holding the secret"})
    extensions: dict[str, bool] = field(
        default_factory=lambda: {"l2": False, "early_stopping": False, "dropout": False},
        metadata={"doc": "optional extensions, each scored separately when true (autograder/checks/extensions.py)"},
    )
    extension_points: dict[str, float] = field(
        default_factory=lambda: {"l2": 5.0, "early_stopping": 5.0, "dropout": 5.0},
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


def _take(section: dict, cls, where: str):
    names = {f.name for f in fields(cls)}
    unknown = set(section) - names
    if unknown:
        raise ConfigError(f"course.toml [{where}]: unknown key(s) {', '.join(sorted(unknown))}; "
                          f"known: {', '.join(sorted(names))}")
    kwargs = {}
    for key, value in section.items():
        kwargs[key] = tuple(value) if isinstance(value, list) else value
    return cls(**kwargs)


def _extensions(section: dict, path: Path) -> dict[str, bool]:
    known = CourseConfig().extensions
    unknown = set(section) - set(known)
    if unknown:
        raise ConfigError(f"{path}: [extensions] unknown key(s) {', '.join(sorted(unknown))}; known: {', '.join(known)}")
    bad = [k for k, v in section.items() if not isinstance(v, bool)]
    if bad:
        raise ConfigError(f"{path}: [extensions] {bad[0]} must be true or false")
    return {**known, **section}


def _extension_points(section: dict, path: Path) -> dict[str, float]:
    known = CourseConfig().extension_points
    unknown = set(section) - set(known)
    if unknown:
        raise ConfigError(f"{path}: [extension_points] unknown key(s) {', '.join(sorted(unknown))}; "
                          f"known: {', '.join(known)}")
    try:
        return {**known, **{k: float(v) for k, v in section.items()}}
    except (TypeError, ValueError):
        raise ConfigError(f"{path}: [extension_points] values must be numbers") from None


def _sandbox(section: dict, path: Path) -> SandboxLimits:
    limits = _take(section, SandboxLimits, "sandbox")
    if limits.minimum_isolation not in ISOLATION_LEVELS:
        raise ConfigError(f"{path}: [sandbox] minimum_isolation = {limits.minimum_isolation!r}; "
                          f"choose one of {', '.join(ISOLATION_LEVELS)}")
    return limits


def _similarity(section: dict, path: Path) -> SimilarityConfig:
    cfg = _take(section, SimilarityConfig, "similarity")
    if isinstance(cfg.threshold, bool) or not isinstance(cfg.threshold, (int, float)) or not 0 <= cfg.threshold <= 1:
        raise ConfigError(f"{path}: [similarity] threshold = {cfg.threshold!r}; give a number from 0 to 1")
    return replace(cfg, threshold=float(cfg.threshold))


def load_config(path: Path | str | None = None, activation: str | None = None) -> CourseConfig:
    """Read course.toml (default: the project's) and apply an optional activation override."""
    path = Path(path) if path else Path(os.environ.get("BACKPROP_LAB_COURSE", COURSE_TOML))
    if not path.is_file():
        raise ConfigError(f"course config {path} not found; create it (see course.toml in the project) "
                          "or point BACKPROP_LAB_COURSE at one")
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    course = raw.get("course", {})
    year = int(course.get("year", 2026))
    act = course.get("activation", "relu")
    if act == "auto":
        act = activation_for_year(year)
    if act not in ACTIVATIONS:
        raise ConfigError(f"{path}: [course] activation = {act!r}; choose sigmoid, tanh, relu or auto")
    rubric = {k: float(v) for k, v in raw.get("rubric", {}).items()} or CourseConfig().rubric
    missing = [c for c in CHECK_IDS if c not in rubric]
    if missing:
        raise ConfigError(f"{path}: [rubric] is missing {', '.join(missing)}; give each check its points")
    secret = raw.get("secret", {})
    cfg = CourseConfig(
        name=str(course.get("name", CourseConfig.name)),
        assignment=str(course.get("assignment", CourseConfig.assignment)),
        year=year,
        activation=act,
        rubric=rubric,
        training=_take(raw.get("training", {}), TrainingConfig, "training"),
        bounds=_take(raw.get("hyperparam_bounds", {}), HyperparamBounds, "hyperparam_bounds"),
        secret_env=str(secret.get("env", CourseConfig.secret_env)),
        secret_file=str(secret.get("secret_file", CourseConfig.secret_file)),
        extensions=_extensions(raw.get("extensions", {}), path),
        extension_points=_extension_points(raw.get("extension_points", {}), path),
        sandbox=_sandbox(raw.get("sandbox", {}), path),
        similarity=_similarity(raw.get("similarity", {}), path),
    )
    return cfg.with_activation(activation)
