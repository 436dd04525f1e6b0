"""The training check's rules as numbers (partial-credit scale, init, plateau, "too slow" and forged-run
factors) and the reference's CPU cost per SGD step on this machine, which the budget messages and the
forged-run test compare against. Shared by checks/training.py and checks/training_text.py."""
from __future__ import annotations

PARTIAL_SCALE = ((0.07, 0.6), (0.10, 0.4), (0.20, 0.2))  # (error below, fraction of the points)
N_IN, N_OUT = 784, 10
INIT_MIN_ERROR = 0.5      # an untrained network errs near chance (90%); below this it was trained already
PLATEAU_ERROR = 0.5       # a run whose best error is above this ...
PLATEAU_WINDOW = 3        # ... and whose last this-many checkpoints moved less than PLATEAU_SPREAD stops
PLATEAU_SPREAD = 0.02
SLOW_FACTOR = 3.0         # "too slow" only when a step costs this many times the reference's step
WALL_FACTOR = 4.0         # the outer wall-clock cap: this many times the CPU budget (+ 10 s)
FORGED_FACTOR = 0.25      # a run claiming its steps in under this fraction of the reference's CPU did not run them
INIT_ROWS = 2000          # test images that judge the untrained network
VALID_ROWS = 2000         # validation images per checkpoint (the curve's valid_error; grading uses test error)


_REF_STEP: dict[tuple, float] = {}
_STEP_TIMER = """
import importlib.util, sys, time
import numpy as np
path, batch, n_hidden, act = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
spec = importlib.util.spec_from_file_location("reference_timed", path)
ref = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ref)
ref.ACTIVATION = act
rng = np.random.default_rng(0)
params = ref.init_params(784, n_hidden, 10, rng)
X = rng.random((batch, 784))
Y = np.eye(10)[rng.integers(0, 10, batch)]
def step(params):
    probs, cache = ref.forward(params, X)
    return ref.sgd_step(params, ref.backward(params, cache, Y), 0.01)
for _ in range(3):
    params = step(params)
started, n = time.process_time(), 0
while n < 20 or (time.process_time() - started < 0.2 and n < 5000):
    params = step(params)
    n += 1
print((time.process_time() - started) / n)
"""


def reference_step_seconds(ref, batch: int, n_hidden: int, activation: str) -> float:
    """CPU seconds of one SGD step of the reference at this batch size and width on this machine,
    measured in a fresh interpreter with one BLAS thread, as the sandboxed worker runs (cached)."""
    import os
    import subprocess
    import sys
    key = (getattr(ref, "__file__", ""), batch, n_hidden, activation)
    if key not in _REF_STEP:
        from ..blas import one_thread_env
        env = {**os.environ, **one_thread_env()}
        out = subprocess.run([sys.executable, "-c", _STEP_TIMER, str(ref.__file__), str(batch), str(n_hidden),
                              activation], capture_output=True, text=True, env=env, timeout=120, check=True)
        _REF_STEP[key] = max(float(out.stdout.strip().splitlines()[-1]), 1e-6)
    return _REF_STEP[key]
