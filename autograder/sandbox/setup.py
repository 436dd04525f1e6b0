"""``backprop-lab sandbox setup`` (root: bubblewrap, the sandbox user, its Python) and ``sandbox check``."""
from __future__ import annotations

import ctypes.util
import os
import pwd
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

from ..errors import UserError
from .level import SANDBOX_PREFIX, SANDBOX_USER, SANDBOX_VENV, detect, sandbox_python, slot_user
from .stage import reachable_by_others


def _run(cmd: list[str], what: str) -> None:
    print(f"  $ {' '.join(cmd)}")
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise UserError(f"sandbox setup: {what} failed ({' / '.join(tail)}); fix that and rerun "
                        "`backprop-lab sandbox setup`")


def _same_version(python: str) -> bool:
    want = f"{sys.version_info.major}.{sys.version_info.minor}"
    proc = subprocess.run([python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                          capture_output=True, text=True)
    return proc.returncode == 0 and proc.stdout.strip() == want


def _base_python() -> str:
    """An interpreter of THIS Python version that the sandbox user can read (numpy is pinned to ours).

    This interpreter if its folders are open to other users; else a system one of the same version;
    else a copy of this installation under the sandbox prefix (pyenv puts it under /root, closed to
    the sandbox user; Ubuntu 22.04's /usr/bin/python3 is 3.10, too old for a current numpy).
    """
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    if reachable_by_others(Path(sys.executable)):
        return sys.executable
    for candidate in (f"/usr/bin/python{version}", f"/usr/local/bin/python{version}", "/usr/bin/python3"):
        if Path(candidate).exists() and _same_version(candidate):
            return candidate
    copy = SANDBOX_PREFIX / f"python{version}"
    if not (copy / "bin").exists():
        print(f"copying Python {version} from {sys.base_prefix} to {copy} (readable by the sandbox user)")
        shutil.copytree(sys.base_prefix, copy, symlinks=True, ignore=shutil.ignore_patterns("site-packages"))
        (copy / "lib" / f"python{version}" / "site-packages").mkdir(parents=True, exist_ok=True)
    return str(copy / "bin" / f"python{version}")


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version(package)
    except PackageNotFoundError:
        return "0.1.2"


def setup() -> int:
    if os.geteuid() != 0:
        iso = detect()
        print(f"sandbox setup: not root, so nothing was installed (bubblewrap, user {SANDBOX_USER} and its "
              "Python need root: rerun with sudo for full isolation)", file=sys.stderr)
        print(f"isolation level: {iso.description}")
        return 0
    if not shutil.which("bwrap"):
        if shutil.which("apt-get"):
            print("installing bubblewrap")
            _run(["apt-get", "update", "-qq"], "apt-get update")
            _run(["apt-get", "install", "-y", "-qq", "bubblewrap"], "installing bubblewrap")
        else:
            print("no apt-get: bubblewrap not installed; the grader will run at the 'user' level")
    # One user per parallel grading slot (one per core): workers graded side by side never share a uid.
    users = [slot_user(k) for k in range(max(os.cpu_count() or 1, 2))]
    for user in users:
        try:
            pwd.getpwnam(user)
        except KeyError:
            _run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", user],
                 f"creating user {user}")
    print(f"sandbox users: {', '.join(users)}")
    py = sandbox_python()
    if py.exists() and not _same_version(str(py)):
        print(f"the sandbox venv {SANDBOX_VENV} has another Python version: recreating it")
        shutil.rmtree(SANDBOX_VENV)
    if not py.exists():
        SANDBOX_PREFIX.mkdir(parents=True, exist_ok=True)
        _run([_base_python(), "-m", "venv", "--without-pip", str(SANDBOX_VENV)], "creating the sandbox venv")
    check = subprocess.run([str(py), "-c", "import numpy; print(numpy.__version__)"], capture_output=True, text=True)
    if check.returncode != 0 or check.stdout.strip() != np.__version__:
        _run([sys.executable, "-m", "pip", "--python", str(py), "install", "-q", "--disable-pip-version-check",
              f"numpy=={np.__version__}"], "installing numpy into the sandbox venv")
    # pyseccomp (pure ctypes over the system libseccomp): the worker loads its syscall filter with it
    seccomp = subprocess.run([str(py), "-c", "import pyseccomp"], capture_output=True)
    if seccomp.returncode != 0:
        if not ctypes.util.find_library("seccomp") and shutil.which("apt-get"):
            _run(["apt-get", "install", "-y", "-qq", "libseccomp2"], "installing libseccomp2")
        _run([sys.executable, "-m", "pip", "--python", str(py), "install", "-q", "--disable-pip-version-check",
              f"pyseccomp=={_version('pyseccomp')}"], "installing pyseccomp into the sandbox venv")
    for root, dirs, files in os.walk(SANDBOX_PREFIX):
        for name in dirs:
            os.chmod(os.path.join(root, name), 0o755)
    os.chmod(SANDBOX_PREFIX, 0o755)
    detect.cache_clear()
    iso = detect()
    print(f"isolation level: {iso.description}")
    return 0


def check() -> int:
    iso = detect()
    print(f"isolation level: {iso.level}")
    print("layers in force:")
    for layer in iso.layers:
        print(f"  - {layer}")
    print(iso.description.split(". Not protected", 1)[-1].strip(". ").replace("at this level:", "not protected at this level:"))
    print(f"worker python: {iso.python}")
    if iso.level != "full":
        print("for full isolation run `backprop-lab sandbox setup` as root (Debian/Ubuntu)")
    return 0


def cli_sandbox(args) -> int:
    return setup() if args.sandbox_command == "setup" else check()
