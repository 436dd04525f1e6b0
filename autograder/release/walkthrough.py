"""The handout notebook's walkthrough ((a) derive ... (f) plot, :mod:`autograder.handout.notebook`) for the
otter-grader notebook, where the student's functions live in the notebook instead of ``mlp.py``.

The texts and code cells are the handout's own, with ``mlp.<name>`` read as the notebook's ``<name>``;
only what is about files differs: the implementation is the next cells instead of ``mlp.py``, and
MNIST is read by ``bplab_training.load_split`` (the ``.npy`` split the training test uses) instead of
the course repository's data layer. Every code cell of the walkthrough is tagged ``otter_ignore``:
students run it, grading does not (it trains and plots; the tests train on their own).
"""
from __future__ import annotations

import re

from ..config import CourseConfig
from ..notebook_kinds import WALKTHROUGH_MARK
from ..handout import notebook as handout
from .notebook import TRAINING_MODULE

IGNORE = {"tags": ["otter_ignore"], "backprop_lab": {"role": "walkthrough"}}

_IMPLEMENT = """\
## (b) Implement the network

Replace every `raise NotImplementedError(...)` in the next cell with your code; each message says what
that function must compute. Keep the names, signatures and shapes: the tests call them exactly as
documented. Use `ACTIVATION` for `f`, and draw every random number in `init_params` from the `rng`
argument. Run the cell again after every edit.
"""

_SETUP = """\
import numpy as np

import gradcheck  # next to this notebook: finite differences and relative errors

print("ACTIVATION  =", ACTIVATION)
print("HYPERPARAMS =", HYPERPARAMS)
TARGET = {target!r}  # test error to reach
"""

_DATA_TEXT = f"""\
**Data.** The cells below and the training test read MNIST as `.npy` files (`train/`, `valid/`,
`test/`, each with `X.npy` and `y.npy`) through `{TRAINING_MODULE}.load_split`: from the folder named
by the environment variable `BPLAB_MNIST`, or in a file `bplab_mnist.txt` next to this notebook, or
a folder `mnist/` next to it (ask the course staff where the course keeps it).
"""

_DATA_CODE = f"""\
import {TRAINING_MODULE}

(X_train, y_train), (X_valid, y_valid), (X_test, y_test) = (
    {TRAINING_MODULE}.load_split(split) for split in ("train", "valid", "test"))
print("train", X_train.shape, "valid", X_valid.shape, "test", X_test.shape)
"""


def _in_notebook(code: str) -> str:
    """The handout's code with ``mlp.forward`` read as ``forward`` (the functions are this notebook's)."""
    return re.sub(r"\bmlp\.", "", code)


def _marked(code: str) -> str:
    """The code with its first-line mark (``backprop-lab grade`` skips the cell even without metadata)."""
    return f"{WALKTHROUGH_MARK}: the tests do not use it; grading skips it)\n" + code


def walkthrough_cells(config: CourseConfig) -> tuple[list[tuple[str, str, str]], list[tuple[str, str, str]]]:
    """(cells before the implementation, cells after it): ``(kind, id, source)``, kind "markdown" or
    "code" (code cells are tagged ``otter_ignore`` by the builder)."""
    t = config.training
    fmt = dict(activation=config.activation, target=t.target_error, every=t.eval_every_epochs,
               floor=t.budget_floor_s, factor=t.budget_factor, max_epochs=t.max_epochs)
    train_text = handout._TRAIN_TEXT.format(**fmt).split("**Data.**", 1)[0] + _DATA_TEXT
    optional = handout._OPTIONAL.format(**fmt).replace("in a copy of `mlp.py`", "in a copy of this notebook")
    before = [("markdown", "derive", handout._DERIVE.lstrip("\n")), ("markdown", "implement", _IMPLEMENT)]
    after = [
        ("code", "setup", _SETUP.format(target=t.target_error)),
        ("markdown", "gradcheck-text", handout._FD_TEXT),
        ("code", "gradcheck", _in_notebook(handout._FD_CODE)),
        ("markdown", "minibatch-text", handout._BATCH_TEXT),
        ("code", "minibatch", _in_notebook(handout._BATCH_CODE)),
        ("markdown", "train-text", train_text),
        ("code", "data", _DATA_CODE),
        ("code", "train", _in_notebook(handout._TRAIN_CODE)),
        ("markdown", "plot-text", handout._PLOT_TEXT),
        ("code", "plot", _in_notebook(handout._PLOT_CODE)),
        ("markdown", "optional", optional),
    ]
    return before, [(kind, cell_id, _marked(src) if kind == "code" else src) for kind, cell_id, src in after]


def walkthrough_order() -> str:
    """The handout intro's paragraph on the order of the work."""
    text = handout._INTRO
    return text[text.index("The notebook walks you through"):].strip()
