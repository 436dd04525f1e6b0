"""``backprop-lab sandbox setup`` (root: bubblewrap, the sandbox user, its Python) and ``sandbox check``."""
from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

from ..errors import UserError
from .level import SANDBOX_PREFIX, SANDBOX_USER, SANDBOX_VENV, detect, sandbox_python


def _run(cmd: list[str], what: str) -> None:
    print(f"  $ {' '.join(cmd)}")
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise UserError(f"sandbox setup: {what} failed ({' / '.join(tail)}); fix that and rerun "
                        "`backprop-lab sandbox setup`")


def _base_python() -> str:
    """An interpreter the sandbox user can read: the system python3, or this one if it is readable."""
    for candidate in ("/usr/bin/python3", "/usr/local/bin/python3"):
        if Path(candidate).exists():
            return candidate
    return sys.executable


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
    try:
        pwd.getpwnam(SANDBOX_USER)
        print(f"user {SANDBOX_USER} exists")
    except KeyError:
        _run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SANDBOX_USER],
             f"creating user {SANDBOX_USER}")
    py = sandbox_python()
    if not py.exists():
        SANDBOX_PREFIX.mkdir(parents=True, exist_ok=True)
        _run([_base_python(), "-m", "venv", "--without-pip", str(SANDBOX_VENV)], "creating the sandbox venv")
    check = subprocess.run([str(py), "-c", "import numpy; print(numpy.__version__)"], capture_output=True, text=True)
    if check.returncode != 0 or check.stdout.strip() != np.__version__:
        _run([sys.executable, "-m", "pip", "--python", str(py), "install", "-q", "--disable-pip-version-check",
              f"numpy=={np.__version__}"], "installing numpy into the sandbox venv")
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
    print(iso.description)
    print(f"worker python: {iso.python}")
    if iso.level != "full":
        print("for full isolation run `backprop-lab sandbox setup` as root (Debian/Ubuntu)")
    return 0


def cli_sandbox(args) -> int:
    return setup() if args.sandbox_command == "setup" else check()
