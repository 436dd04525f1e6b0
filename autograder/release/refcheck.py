"""Is the reference itself right? Checked before the gate grades anything with it.

Every expected value of a release comes from ``solutions/mlp.py``. A broken reference made every gate
row an "internal grader error"; this names the broken function instead, against truths that do not
come from the reference: forward against the grader's own MLP math (:mod:`autograder.nnmath`),
backward against central finite differences of the reference's own loss, sgd_step against
``p - lr * g``. Shapes are batch-major as everywhere (X (N, n_in), probs (N, n_out)).
"""
from __future__ import annotations

from types import ModuleType

import numpy as np

from .. import nnmath
from ..checks.cases import PARAM_KEYS, Case, hidden_cases, public_toy
from ..config import CourseConfig
from ..gradcheck import mean_nll, numerical_gradient, relative_error

FIX = "fix solutions/mlp.py"
FORWARD_RTOL = 1e-9
BACKWARD_LIMIT = 1e-5   # FD noise stays below 1e-7 on these cases; a real bug is far above


def _forward_truth(case: Case, activation: str) -> np.ndarray:
    p = case.params
    h = nnmath.activate(case.X @ p["W"].T + p["b"], activation)
    return nnmath.softmax(h @ p["V"].T + p["c"])


def reference_problems(config: CourseConfig, ref: ModuleType | None = None) -> list[str]:
    """Sentences naming what is wrong with the reference (empty when it is right)."""
    from ..reference import load_reference
    try:
        ref = ref or load_reference(config.activation)
    except Exception as exc:  # noqa: BLE001 - our own file; any failure is the instructor's to fix
        return [f"the reference cannot be loaded ({type(exc).__name__}: {exc}): {FIX}"]
    problems: list[str] = []
    cases = [public_toy(config.activation)] + hidden_cases(config, "gradients", count=2)
    for case in cases:
        params = {k: v.copy() for k, v in case.params.items()}
        try:
            probs, cache = ref.forward(params, case.X)
            grads = ref.backward(params, cache, case.Y)
        except Exception as exc:  # noqa: BLE001
            problems.append(f"the reference's forward/backward raised {type(exc).__name__}: {exc} on case "
                            f"{case.name}: {FIX}")
            break
        truth = _forward_truth(case, config.activation)
        if np.shape(probs) != truth.shape or not np.allclose(probs, truth, rtol=FORWARD_RTOL, atol=1e-12):
            problems.append(f"the reference's forward disagrees with the {config.activation} network's "
                            f"probabilities on case {case.name}: {FIX}")
            break

        def loss() -> float:
            return mean_nll(ref.forward(params, case.X)[0], case.Y)

        for key in PARAM_KEYS:
            fd = numerical_gradient(loss, params[key])
            err = relative_error(np.asarray(grads.get(key)), fd) if key in grads and np.shape(grads[key]) == fd.shape \
                else np.inf
            if err > BACKWARD_LIMIT:
                problems.append(f"the reference's backward disagrees with finite differences (dL/d{key}, relative "
                                f"error {err:.1e} on case {case.name}): {FIX}")
                break
        if problems:
            break
    rng = np.random.default_rng(7)
    params = {k: rng.standard_normal((3, 2)) for k in PARAM_KEYS}
    grads = {k: rng.standard_normal((3, 2)) for k in PARAM_KEYS}
    try:
        stepped = ref.sgd_step(params, grads, 0.25)
        if any(not np.allclose(stepped[k], params[k] - 0.25 * grads[k], rtol=1e-12, atol=0) for k in PARAM_KEYS):
            problems.append(f"the reference's sgd_step is not params - learning_rate * grads: {FIX}")
    except Exception as exc:  # noqa: BLE001
        problems.append(f"the reference's sgd_step raised {type(exc).__name__}: {exc}: {FIX}")
    return problems
