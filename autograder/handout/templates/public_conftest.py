"""pytest set-up for the public self-tests: import the mlp.py under test as a fresh module.

The module is this folder's mlp.py, or the file named by the environment variable MLP_PATH
(course staff use it to run these tests against the reference and known-bug variants).
"""
import importlib.util
import os
import sys
import traceback
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))  # gradcheck.py lives next to this file


def mlp_path() -> Path:
    """The mlp.py these tests import: $MLP_PATH if set, else the one in this folder."""
    env = os.environ.get("MLP_PATH")
    return Path(env).expanduser().resolve() if env else HERE / "mlp.py"


def pytest_report_header(config):
    return f"testing the MLP in {mlp_path()}"


@pytest.fixture(scope="session")
def mlp():
    """The student's module, imported once per test session."""
    path = mlp_path()
    if not path.is_file():
        pytest.fail(f"cannot find {path}: the self-tests need your mlp.py next to them "
                    "(or MLP_PATH naming it)", pytrace=False)
    spec = importlib.util.spec_from_file_location("mlp", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # a syntax error or a crash at import time
        detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        pytest.fail(f"importing {path.name} failed, so no test can run: {detail}", pytrace=False)
    return module
