"""Finding the command of an ecosystem tool (otter-grader, nbgrader) the release runs."""
from __future__ import annotations

import importlib.util
import shutil
import sys

from ..errors import UserError


def tool_command(executable: str, module: str, missing: str) -> list[str]:
    """``[executable]`` when it is on PATH, else ``python -m module`` when the module is installed;
    otherwise a UserError with ``missing`` (what the release needs it for and how to install it)."""
    exe = shutil.which(executable)
    if exe:
        return [exe]
    if importlib.util.find_spec(module) is None:
        raise UserError(missing)
    return [sys.executable, "-m", module]
