"""The students' README.md for assignment/: what to do, how to self-test, what is graded and how."""
from __future__ import annotations

from ..checks.registry import CORE, EXTENSIONS
from ..config import CourseConfig

_CHECKS = {s.check_id: s.readme for s in CORE}            # the words of autograder/checks/registry.py
_EXTENSIONS = {s.check_id: s.readme for s in EXTENSIONS}


def _num(x: float) -> str:
    return f"{x:g}"


def build_readme(config: CourseConfig) -> str:
    """README.md text for the student folder; deterministic for a given config."""
    t, b = config.training, config.bounds
    # the points table from the rubric (and the enabled extensions), so the total is what is graded
    parts = [(check, points, _CHECKS.get(check, "")) for check, points in config.rubric.items()]
    parts += [(ext, config.extension_points[ext], f"optional extension, enabled this year: {_EXTENSIONS.get(ext, ext)}")
              for ext, on in config.extensions.items() if on]
    rows = "\n".join(f"| `{check}` | {_num(points)} | {text} |" for check, points, text in parts)
    total = sum(points for _, points, _ in parts)
    bounds = "\n".join(f"| `{name}` | {_num(lo)} | {_num(hi)} |" for name, (lo, hi) in (
        ("n_hidden", b.n_hidden), ("learning_rate", b.learning_rate),
        ("batch_size", b.batch_size), ("epochs", b.epochs)))
    return f"""\
# {config.assignment} {config.year}: a one-hidden-layer MLP for MNIST

{config.name}. You implement, in numpy, the forward pass, the backward pass and stochastic gradient
descent of a network with one hidden layer, then train it to recognise handwritten digits.

This year's hidden activation is **`{config.activation}`**.

## What is in this folder

| file | what it is |
|---|---|
| `mlp.py` | **your work**: fill in `init_params`, `forward`, `backward` and `sgd_step` |
| `backprop_lab.ipynb` | the walkthrough: derive the gradients, check them, train on MNIST, plot |
| `test_mlp.py`, `selftest_helpers.py`, `conftest.py`, `pytest.ini` | public self-tests |
| `bplab_judges.py`, `public_cases.json` | the grader's own judges and the public cases' expected values: the self-tests judge the public cases exactly as the grader does |
| `gradcheck.py` | finite-difference helpers used by the notebook and the self-tests |

Every function in `mlp.py` raises `NotImplementedError` with a hint until you replace that line with
your code. Keep the names, the signatures and the array shapes of the docstrings (batch-major: one
row per example). Use numpy and the standard library only: the grader runs your file in an isolated
process without network access.

## Self-test

```
cd assignment
python -m pytest -q
```

Every failure says what is wrong and where to look (a shape, a factor N, a flipped sign, an
overflowing softmax, ...). The self-tests use finite differences and invariants only; the grader
runs the same kinds of checks on hidden sizes and seeds, and also trains your network.

## What is graded ({_num(total)} points)

| check | points | what it checks |
|---|---|---|
{rows}

Submit `mlp.py`. The notebook is for you: the grader only imports the four functions and
`HYPERPARAMS` from your module.

## Hyperparameters

`HYPERPARAMS` in `mlp.py` starts with suggested values for `{config.activation}`; you may change them
within these bounds (the grader rejects values outside them):

| key | min | max |
|---|---|---|
{bounds}

## Training budget

The grader trains with your functions and your `HYPERPARAMS`, evaluates the test error every
{_num(t.eval_every_epochs)} epoch and stops at the first evaluation under **{t.target_error:.0%}**, never
training longer than {t.max_epochs} epochs. Training time is limited to

    budget = max({_num(t.budget_floor_s)} s, {_num(t.budget_factor)} × the reference solution's time to the same target)

both measured on the grading machine (the budget is printed in your report). A correct solution
with the suggested hyperparameters needs a fraction of it.
"""
