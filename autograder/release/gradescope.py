"""The instructor-side graders of a release: the grader copy, the local autograder/ and Gradescope's zip.

Both ship a copy of the grader package WITH the reference (``solutions/mlp.py``): the grader compares
against it and evaluates trained parameters through it. These are instructor-side artifacts only
(the handout never contains them); inside them the sandbox masks ``solutions/`` from student code,
and ``setup.sh`` removes every permission of other users on it.
"""
from __future__ import annotations

import json
import sys
from importlib import metadata
from pathlib import Path

import numpy as np

from ..paths import PACKAGE_DIR, PROJECT_ROOT
from ..reference import reference_source
from .yearly import RELEASE_SECRET_ENV, SECRET_FILE, ReleasePlan, course_toml
from .zipping import copy_tree, folder_files, write_zip

COPY = "backprop-lab"

SETUP_SH = r"""#!/usr/bin/env bash
# Gradescope runs this once, as root, while it builds the autograder image (Ubuntu 22.04 by default).
# It changes nothing of the image's own software: no apt upgrade, no system Python package. It uses
# the image's python3 (>= 3.10; 22.04 has 3.10) for a venv under $SRC/venv holding the grader's
# dependencies from PyPI wheels; bubblewrap is installed only when apt would install it alone (a
# simulated install that would upgrade any installed package is refused, and the grader then runs
# at the reported 'user' level). `backprop-lab sandbox setup` creates the sandbox users and the
# worker's venv (/opt/backprop-lab); MNIST is fetched; the reference and the release secret are
# closed to every user but root.
set -euxo pipefail
SRC="${BACKPROP_LAB_AUTOGRADER_ROOT:-/autograder}/source"
cd "$SRC"
PYBASE="${BACKPROP_LAB_SETUP_PYTHON:-}"   # default: the image's python3 (tests pick one)
for candidate in python3 python3.13 python3.12 python3.11 python3.10; do
  if [ -n "$PYBASE" ]; then break; fi
  if command -v "$candidate" >/dev/null 2>&1 \
     && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 10))'; then
    PYBASE="$(command -v "$candidate")"
    break
  fi
done
if [ -z "$PYBASE" ]; then
  echo "setup.sh: no Python >= 3.10 on this image; use Gradescope's Ubuntu 22.04 base image" >&2
  exit 1
fi
if [ ! -x "$SRC/venv/bin/python" ]; then
  if "$PYBASE" -c 'import ensurepip' >/dev/null 2>&1; then
    "$PYBASE" -m venv "$SRC/venv"
  else
    # Ubuntu without python3-venv: a venv without pip, then pip from its PyPI wheel (no apt package)
    "$PYBASE" -m venv --without-pip "$SRC/venv"
    mkdir -p "$SRC/.wheels"
    "$PYBASE" - "$SRC/.wheels" <<'PY'
import json, sys, urllib.request
release = json.load(urllib.request.urlopen("https://pypi.org/pypi/pip/json", timeout=60))
wheel = next(f for f in release["urls"] if f["filename"].endswith("-py3-none-any.whl"))
urllib.request.urlretrieve(wheel["url"], f"{sys.argv[1]}/{wheel['filename']}")
PY
    WHEEL="$(ls "$SRC"/.wheels/pip-*.whl | head -n 1)"
    "$SRC/venv/bin/python" "$WHEEL/pip" install -q --no-index "$WHEEL"
  fi
fi
"$SRC/venv/bin/python" -m pip install -q --upgrade pip
"$SRC/venv/bin/python" -m pip install -q -r "$SRC/requirements.txt"
"$SRC/venv/bin/python" -m pip install -q --no-deps -e "$SRC/__COPY__"
if [ "${BACKPROP_LAB_SETUP_ONLY_VENV:-}" = 1 ]; then exit 0; fi   # tests: the venv part alone
NOAPT=""
if ! command -v bwrap >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
  apt-get update -qq || true
  # "Inst pkg [installed version] (new version ...)": an upgrade of something the image has
  if apt-get install -s -y --no-install-recommends bubblewrap | grep -E '^Inst [^ ]+ \[' ; then
    echo "setup.sh: installing bubblewrap would upgrade the packages above; not installing it" >&2
    # ... nor may `sandbox setup` (it installs bubblewrap with apt when bwrap is missing)
    mkdir -p "$SRC/.noapt"
    printf '#!/bin/sh\necho "apt-get $* skipped by setup.sh: it would upgrade installed packages" >&2\n' \
      > "$SRC/.noapt/apt-get"
    chmod 755 "$SRC/.noapt/apt-get"
    NOAPT="$SRC/.noapt:"
  else
    apt-get install -y -qq --no-install-recommends bubblewrap || true
  fi
fi
# The worker's Python must be readable by the sandbox user and as new as the grader's (numpy pins).
mkdir -p /opt/backprop-lab
if [ ! -x /opt/backprop-lab/sandbox-venv/bin/python ]; then
  "$PYBASE" -m venv --without-pip /opt/backprop-lab/sandbox-venv
fi
PATH="$NOAPT$PATH" "$SRC/venv/bin/backprop-lab" sandbox setup
"$SRC/venv/bin/backprop-lab" data fetch
# Nothing of the grader's secrets is readable by other users (the sandbox user among them).
chmod -R go-rwx "$SRC/__COPY__/solutions"
if [ -f "$SRC/__SECRET__" ]; then chmod 600 "$SRC/__SECRET__"; fi
for split in test valid; do
  if [ -d "$SRC/__COPY__/data/cache/mnist/$split" ]; then chmod -R go-rwx "$SRC/__COPY__/data/cache/mnist/$split"; fi
done
"$SRC/venv/bin/backprop-lab" sandbox check
"""

RUN_AUTOGRADER = r"""#!/usr/bin/env bash
# Gradescope runs this for every submission: grade <root>/submission with the backprop-lab grader
# (sandboxed worker) into <root>/results/results.json, written once by the grader, never by stdout.
# <root> is $BACKPROP_LAB_AUTOGRADER_ROOT, default /autograder (tests run it in a fake tree).
set -u
ROOT="${BACKPROP_LAB_AUTOGRADER_ROOT:-/autograder}"
SRC="$ROOT/source"
PY="${BACKPROP_LAB_PYTHON:-}"
if [ -z "$PY" ]; then
  if [ -x "$SRC/venv/bin/python" ]; then PY="$SRC/venv/bin/python"; else PY="$(command -v python3)"; fi
fi
unset BACKPROP_LAB_COURSE __SECRET_ENV__
export BACKPROP_LAB_AUTOGRADER_ROOT="$ROOT"
export PYTHONPATH="$SRC/__COPY__"
cd "$ROOT"
if "$PY" -P -c "" >/dev/null 2>&1; then
  exec "$PY" -P -m autograder.release.gradescope_run
fi
# Python 3.10 (Ubuntu 22.04) has no -P: drop the current folder from sys.path by hand
exec "$PY" -c '__NO_CWD__; runpy.run_module("autograder.release.gradescope_run", run_name="__main__", alter_sys=True)'
"""

LOCAL_WRAPPER = r"""#!/usr/bin/env bash
# The backprop-lab grader of this release (its year, activation and hidden cases) on this machine:
#   ./backprop-lab.sh grade SUBMISSION --out DIR
#   ./backprop-lab.sh batch SUBMISSIONS --out RESULTS [--jobs N]
#   ./backprop-lab.sh data fetch        (or export BACKPROP_LAB_CACHE=<your MNIST cache>)
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
unset BACKPROP_LAB_COURSE
if [ -f "$HERE/__SECRET__" ]; then
  __SECRET_ENV__="$(cat "$HERE/__SECRET__")"
  export __SECRET_ENV__
else
  unset __SECRET_ENV__
fi
export PYTHONPATH="$HERE/__COPY__"
PY="${BACKPROP_LAB_PYTHON:-python3}"
if "$PY" -P -c "" >/dev/null 2>&1; then
  exec "$PY" -P -m autograder.cli "$@"
fi
# Python 3.10 has no -P: drop the current folder from sys.path by hand
exec "$PY" -c '__NO_CWD__; runpy.run_module("autograder.cli", run_name="__main__", alter_sys=True)' "$@"
"""


#: what ``python -P`` does, for Pythons before 3.11: sys.path[0] (the current folder under -c) removed
NO_CWD = 'import sys, runpy; del sys.path[0]; sys.argv[0] = "backprop-lab"'


def _fill(template: str) -> str:
    return (template.replace("__NO_CWD__", NO_CWD).replace("__COPY__", COPY).replace("__SECRET_ENV__", RELEASE_SECRET_ENV)
            .replace("__SECRET__", SECRET_FILE))


def write_grader_copy(plan: ReleasePlan, dst: Path) -> None:
    """``dst``: the grader package, the reference for this year's activation, and the year's course.toml."""
    dst = Path(dst)
    copy_tree(PACKAGE_DIR, dst / "autograder")
    (dst / "solutions").mkdir(parents=True)
    (dst / "solutions" / "mlp.py").write_text(reference_source(plan.config.activation), encoding="utf-8")
    (dst / "course.toml").write_text(course_toml(plan), encoding="utf-8")
    (dst / "pyproject.toml").write_text((PROJECT_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    (dst / "README.md").write_text(
        f"# backprop-lab grader, release {plan.year} ({plan.config.activation})\n\n"
        "A copy of the grader package with the reference solution and this release's course.toml.\n"
        "INSTRUCTOR-SIDE ONLY: it contains the solution. Never give it to students.\n", encoding="utf-8")


#: the newest numpy that still supports Python 3.10 (Ubuntu 22.04's python3) is a 2.2.x
NUMPY_FOR_310 = "numpy>=2.0,<2.3"


def requirements() -> str:
    """The grader's runtime packages pinned to the versions the gate ran with, for the gate's Python
    and newer; on an older Python (3.10: Gradescope's default image) the newest release that supports it."""
    here = f"{sys.version_info.major}.{sys.version_info.minor}"
    newer = f'; python_version >= "{here}"'
    older = f'; python_version < "{here}"'
    pins = [f"numpy=={np.__version__}{newer}", f"{NUMPY_FOR_310}{older}"]
    for name in ("jinja2", "rich", "nbformat", "pyyaml", "matplotlib", "tomli-w"):
        try:
            pins += [f"{name}=={metadata.version(name)}{newer}", f"{name}{older}"]
        except metadata.PackageNotFoundError:
            pins.append(name)
    pins.append('tomli>=2; python_version < "3.11"')
    return "\n".join(pins) + "\n"


def _secret_files(plan: ReleasePlan) -> dict[str, bytes]:
    return {SECRET_FILE: (plan.release_secret + "\n").encode()} if plan.release_secret else {}


def build_gradescope(plan: ReleasePlan, copy_dir: Path, manifest: dict, out_zip: Path) -> list[str]:
    """Gradescope's autograder.zip: setup.sh and run_autograder at the root, the grader copy beside them."""
    files = {f"{COPY}/{name}": data for name, data in folder_files(copy_dir).items()}
    files.update(_secret_files(plan))
    files["setup.sh"] = _fill(SETUP_SH).encode()
    files["run_autograder"] = _fill(RUN_AUTOGRADER).encode()
    files["requirements.txt"] = requirements().encode()
    files["release.json"] = (json.dumps(manifest, indent=2) + "\n").encode()
    write_zip(out_zip, files)
    return sorted(files)


LOCAL_README = """# Local autograder of the {year} release ({activation})

INSTRUCTOR-SIDE ONLY: `backprop-lab/solutions/` holds the reference solution{secret_note}.

Grade with exactly the hidden cases, activation and rubric that Gradescope uses for this release:

```bash
./backprop-lab.sh grade path/to/submission --out results/alice     # one .py, .ipynb, .zip or folder
./backprop-lab.sh batch path/to/submissions --out results            # a whole class, resumable
```

Keep this folder outside `/tmp`: with bubblewrap the sandboxed worker gets a private `/tmp` and would not
see the grader copy's harness there.

MNIST: `export BACKPROP_LAB_CACHE=<your course's MNIST cache>` to reuse one, or run
`./backprop-lab.sh data fetch` once. `BACKPROP_LAB_PYTHON` picks the interpreter (default `python3`,
which needs numpy, rich and jinja2: the course repository's environment has them).

Files:
- `backprop-lab/`: the grader package, the reference for {activation} and this year's `course.toml`.
- `expected.npz`: every otter/nbgrader test's inputs and the reference's outputs on this year's cases
  (`allow_pickle=False`; keys `<test id>/<array>`), computed at release time.
- `tests.json`: those tests (check, label, points, hidden) in rubric order.
- `release.json`: year, activation and why, secret fingerprint, the gate's verdicts.
"""


def build_local(plan: ReleasePlan, copy_dir: Path, dst: Path, manifest: dict) -> None:
    """``autograder/`` for TAs: the grader copy, a wrapper script, this README and the release files."""
    dst = Path(dst)
    copy_tree(copy_dir, dst / COPY)
    for name, data in _secret_files(plan).items():
        (dst / name).write_bytes(data)
        (dst / name).chmod(0o600)
    wrapper = dst / "backprop-lab.sh"
    wrapper.write_text(_fill(LOCAL_WRAPPER), encoding="utf-8")
    wrapper.chmod(0o755)
    note = (" and `release.secret` the secret that seeds this year's hidden cases" if plan.release_secret
            else "; the public development secret is in force, so anyone can derive the hidden cases")
    (dst / "README.md").write_text(LOCAL_README.format(year=plan.year, activation=plan.config.activation,
                                                       secret_note=note), encoding="utf-8")
    (dst / "release.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
