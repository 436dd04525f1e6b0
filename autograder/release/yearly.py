"""What a release grades with: the year, its activation (and why), and the per-release secret.

Activation rule: ``--activation`` wins; otherwise course.toml's ``activation`` when it names one
(a fixed activation stays the same whatever the year); ``activation = "auto"`` lets the release
year pick (:func:`autograder.config.activation_for_year`), which is what we recommend.

Secret rule: the course secret (``BACKPROP_LAB_SECRET`` or the secret file, never in git) never
leaves the instructor's machine. A release ships a *release secret* derived from it by a one-way
hash with the year; the hidden cases of that release are seeded by it, so graders built from the
release (local, Gradescope) agree with the gate, and no release reveals another year's cases. With
the public development secret in force nothing is derived and every report says so.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, replace
from pathlib import Path

import tomli_w

from ..config import ACTIVATIONS, CourseConfig, activation_for_year, config_to_toml, load_config, tomllib
from ..errors import ConfigError
from ..paths import COURSE_TOML

RELEASE_SECRET_ENV = "BACKPROP_LAB_RELEASE_SECRET"
SECRET_FILE = "release.secret"


@dataclass(frozen=True)
class ReleasePlan:
    """The grading identity of one release."""
    year: int
    config: CourseConfig           # reads its secret from nowhere until bound with :func:`bind_secret`
    activation_reason: str
    dev_secret: bool
    release_secret: str | None     # None when the development secret is in force

    @property
    def secret_fingerprint(self) -> str:
        """A short public fingerprint of the release secret (for manifests; reveals nothing)."""
        text = self.release_secret or "development"
        return hashlib.sha256(f"fingerprint|{text}".encode()).hexdigest()[:12]


def course_path() -> Path:
    return Path(os.environ.get("BACKPROP_LAB_COURSE", COURSE_TOML))


def activation_setting(path: Path) -> str:
    """course.toml's ``[course] activation`` as written (``"auto"`` kept), default ``relu``."""
    try:
        raw = tomllib.loads(Path(path).read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None
    return str(raw.get("course", {}).get("activation", "relu"))


def derive_release_secret(master: str, year: int) -> str:
    """The secret a release ships: one-way from the course secret and the year."""
    return hashlib.sha256(f"backprop-lab release|{year}|{master}".encode()).hexdigest()


def plan_release(year: int, activation: str | None = None, path: Path | None = None) -> ReleasePlan:
    """The release config for ``year``: course.toml with the year (and maybe activation) replaced."""
    if not 1900 <= int(year) <= 9999:
        raise ConfigError(f"--year {year}: give a four-digit year, e.g. --year 2027")
    path = Path(path) if path else course_path()
    base = load_config(path)
    setting = activation_setting(path)
    if activation is not None:
        if activation not in ACTIVATIONS:
            raise ConfigError(f"unknown activation {activation!r}; choose one of {', '.join(ACTIVATIONS)}")
        chosen, reason = activation, "--activation"
    elif setting == "auto":
        chosen, reason = activation_for_year(year), f'course.toml says "auto": the year {year} picks it'
    else:
        chosen, reason = base.activation, f'course.toml fixes activation = "{base.activation}" (use "auto" to vary it by year)'
    master, dev = base.secret()
    config = replace(base, year=int(year), activation=chosen, secret_env="", secret_file="")
    return ReleasePlan(int(year), config, reason, dev, None if dev else derive_release_secret(master, year))


def bind_secret(plan: ReleasePlan, folder: Path) -> CourseConfig:
    """Write the release secret into ``folder/release.secret`` (0600) and return the config reading it.

    With the development secret nothing is written and the config falls back to it (and says so).
    """
    if plan.release_secret is None:
        return plan.config
    path = Path(folder) / SECRET_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(plan.release_secret + "\n")
    return replace(plan.config, secret_file=str(path.resolve()))


def shipped_config(plan: ReleasePlan) -> CourseConfig:
    """The config the release's graders read: this year's, with the secret taken from RELEASE_SECRET_ENV."""
    return replace(plan.config, year=plan.year, secret_env=RELEASE_SECRET_ENV, secret_file="")


def course_toml(plan: ReleasePlan) -> str:
    """The course.toml shipped inside the release's graders, written from CourseConfig by tomli-w.

    Every field (extensions, extension points and sandbox limits included) comes from
    :func:`autograder.config.config_to_toml`, so ``load_config`` of it equals :func:`shipped_config`.
    """
    head = (f"# course.toml of the {plan.year} release (generated by `backprop-lab release`); do not edit.\n"
            f"# activation: {plan.activation_reason}\n"
            f"# The release secret is read from {RELEASE_SECRET_ENV}; the wrappers set it from release.secret.\n\n")
    return head + tomli_w.dumps(config_to_toml(shipped_config(plan)))
