"""Where things live: the project root, solutions/, assignment/, the MNIST cache."""
from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = PACKAGE_DIR.parent
SOLUTIONS_DIR = PROJECT_ROOT / "solutions"
ASSIGNMENT_DIR = PROJECT_ROOT / "assignment"
DATA_DIR = PROJECT_ROOT / "data"
COURSE_TOML = PROJECT_ROOT / "course.toml"


def cache_dir() -> Path:
    """The MNIST cache folder: ``BACKPROP_LAB_CACHE`` or ``data/cache`` in the project."""
    env = os.environ.get("BACKPROP_LAB_CACHE")
    return Path(env).expanduser().resolve() if env else DATA_DIR / "cache"
