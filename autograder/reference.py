"""Load the hidden reference (solutions/mlp.py) as a fresh module for a given activation."""
from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

from .config import ACTIVATIONS
from .errors import ConfigError
from .paths import SOLUTIONS_DIR

REFERENCE_PATH = SOLUTIONS_DIR / "mlp.py"


def load_module(path: Path | str, name: str = "mlp_module") -> ModuleType:
    """Import a Python file as a new module object (never cached in sys.modules)."""
    path = Path(path)
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ConfigError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_reference(activation: str, path: Path | str | None = None) -> ModuleType:
    """The reference MLP module with ``ACTIVATION`` and ``HYPERPARAMS`` set for ``activation``."""
    if activation not in ACTIVATIONS:
        raise ConfigError(f"unknown activation {activation!r}; choose one of {', '.join(ACTIVATIONS)}")
    path = Path(path) if path else REFERENCE_PATH
    if not path.is_file():
        raise ConfigError(f"the reference solution {path} is missing; the grader needs solutions/mlp.py "
                          "(or a release's expected-values file)")
    module = load_module(path, f"reference_mlp_{activation}")
    module.ACTIVATION = activation
    module.HYPERPARAMS = dict(module.SUGGESTED_HYPERPARAMS[activation])
    return module


ACTIVATION_LINE = re.compile(r'^ACTIVATION = .*$', re.MULTILINE)


def set_activation_line(source: str, activation: str) -> str:
    """``source`` with its top-level ``ACTIVATION = ...`` line set to ``activation`` (exactly one)."""
    new, count = ACTIVATION_LINE.subn(f'ACTIVATION = "{activation}"', source, count=1)
    if count != 1:
        raise ConfigError("the reference has no top-level `ACTIVATION = ...` line to set")
    return new


def reference_source(activation: str) -> str:
    """The reference's source text with this activation (for running it as a submission)."""
    return set_activation_line(REFERENCE_PATH.read_text(), activation)
