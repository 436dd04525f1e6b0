"""Zoo submissions as text: the reference with asserted substitutions, the bare skeleton, hostile preludes.

Every variant is built from ``solutions/mlp.py`` at test time, so a change to the reference either
carries through or fails loudly here (each substitution must match exactly once).
"""
from __future__ import annotations

import functools
import re

from autograder.reference import reference_source

# Hooks: exact lines of the reference that the variants replace (asserted to occur once each).
FORWARD_FIRST = '    a = X @ params["W"].T + params["b"]\n'
BACKWARD_FIRST = "    X, a, h, probs = cache\n"
SGD_RETURN = "    return {key: params[key] - learning_rate * grads[key] for key in params}\n"
IMPORT = "import numpy as np\n"

#: Lines of the reference's solution that must never reach a student (leak detection).
SOLUTION_LINES = (
    "d_logits = (probs - Y) / n",
    "shifted = logits - logits.max(axis=1, keepdims=True)",
    "d_a = d_h * _activate_grad(a, h)",
    "BEGIN SOLUTION",
)


def ref(activation: str = "relu") -> str:
    return reference_source(activation)


def patch(src: str, *pairs: tuple[str, str]) -> str:
    """Apply each (old, new) substitution; AssertionError unless ``old`` occurs exactly once."""
    for old, new in pairs:
        count = src.count(old)
        assert count == 1, f"zoo: {old!r} occurs {count} times in the source (expected once); update tests/zoo"
        src = src.replace(old, new)
    return src


def strip_markers(src: str) -> str:
    """Drop the BEGIN/END SOLUTION comment lines (a student's file has none)."""
    return re.sub(r"^[ \t]*# (BEGIN|END) SOLUTION.*\n", "", src, flags=re.MULTILINE)


def prelude(src: str, code: str) -> str:
    """``code`` run at import time, right after ``import numpy as np``."""
    return patch(src, (IMPORT, IMPORT + code.strip("\n") + "\n"))


def at_start(src: str, hook: str, code: str) -> str:
    """``code`` (already indented for a function body) inserted before the line ``hook``."""
    return patch(src, (hook, code.rstrip("\n") + "\n" + hook))


def skeleton(activation: str = "relu") -> str:
    """The bare student skeleton: from the handout generator when present, else stubs written here."""
    try:
        from autograder.handout.markers import parse
        from autograder.handout.skeleton import build_skeleton
        text = build_skeleton(parse(ref(activation)), activation)
    except ImportError:
        text = _stub_everything(ref(activation))
    assert "NotImplementedError" in text and "BEGIN SOLUTION" not in text
    return text


def _stub_everything(src: str) -> str:
    out, skipping = [], False
    for line in src.splitlines():
        if "# BEGIN SOLUTION" in line:
            indent = line[: len(line) - len(line.lstrip())]
            if indent:
                out.append(f'{indent}raise NotImplementedError("not implemented yet")')
            skipping = True
            continue
        if "# END SOLUTION" in line:
            skipping = False
            continue
        if not skipping:
            out.append(line)
    return "\n".join(out) + "\n"


# ---- correct but different ----------------------------------------------------------------------
def column_major() -> str:
    s = ref()
    return patch(
        s,
        ('        "W": rng.standard_normal((n_hidden, n_in)) * scale_w,',
         '        "W": np.asfortranarray(rng.standard_normal((n_hidden, n_in)) * scale_w),'),
        ('        "V": rng.standard_normal((n_out, n_hidden)) * np.sqrt(1.0 / n_hidden),',
         '        "V": np.asfortranarray(rng.standard_normal((n_out, n_hidden)) * np.sqrt(1.0 / n_hidden)),'),
        (FORWARD_FIRST, '    X = np.asfortranarray(X)\n    a = np.asfortranarray(X @ params["W"].T + params["b"])\n'),
        ("    probs = e / e.sum(axis=1, keepdims=True)\n",
         "    probs = np.asfortranarray(e / e.sum(axis=1, keepdims=True))\n"),
        ('        "W": d_a.T @ X,', '        "W": np.asfortranarray(d_a.T @ X),'),
        ('        "V": d_logits.T @ h,', '        "V": np.asfortranarray(d_logits.T @ h),'),
        (SGD_RETURN, "    return {key: np.asfortranarray(params[key] - learning_rate * grads[key]) for key in params}\n"),
    )


def float32() -> str:
    """float32 throughout: parameters, activations, probabilities, gradients and the update."""
    s = ref()
    return patch(
        s,
        ("    return {\n        \"W\": rng.standard_normal((n_hidden, n_in)) * scale_w,",
         "    return {k: v.astype(np.float32) for k, v in {\n        \"W\": rng.standard_normal((n_hidden, n_in)) * scale_w,"),
        ('        "c": np.zeros(n_out),\n    }\n',
         '        "c": np.zeros(n_out),\n    }.items()}\n'),
        (FORWARD_FIRST, "    params = {k: np.asarray(v, dtype=np.float32) for k, v in params.items()}\n"
                        "    X = np.asarray(X, dtype=np.float32)\n" + FORWARD_FIRST),
        (BACKWARD_FIRST, BACKWARD_FIRST + "    params = {k: np.asarray(v, dtype=np.float32) for k, v in params.items()}\n"
                                          "    Y = np.asarray(Y, dtype=np.float32)\n"),
        (SGD_RETURN, "    lr = np.float32(learning_rate)\n"
                     "    return {key: np.asarray(params[key], np.float32) - lr * np.asarray(grads[key], np.float32)"
                     " for key in params}\n"),
    )


def einsum() -> str:
    s = ref()
    return patch(
        s,
        (FORWARD_FIRST, '    a = np.einsum("ni,hi->nh", X, params["W"]) + params["b"]\n'),
        ('    logits = h @ params["V"].T + params["c"]', '    logits = np.einsum("nh,oh->no", h, params["V"]) + params["c"]'),
        ('    d_h = d_logits @ params["V"]', '    d_h = np.einsum("no,oh->nh", d_logits, params["V"])'),
        ('        "W": d_a.T @ X,', '        "W": np.einsum("nh,ni->hi", d_a, X),'),
        ('        "b": d_a.sum(axis=0),', '        "b": np.einsum("nh->h", d_a),'),
        ('        "V": d_logits.T @ h,', '        "V": np.einsum("no,nh->oh", d_logits, h),'),
    )


def inplace_sgd() -> str:
    return patch(ref(), (SGD_RETURN, "    for key in params:\n        params[key] -= learning_rate * grads[key]\n"
                                     "    return params\n"))


def hidden_unit_loops() -> str:
    """Explicit Python loops over hidden units (slow, correct)."""
    return patch(
        ref(),
        (FORWARD_FIRST, '    W, b = params["W"], params["b"]\n'
                        '    a = np.empty((X.shape[0], W.shape[0]))\n'
                        '    for j in range(W.shape[0]):\n'
                        '        a[:, j] = X @ W[j] + b[j]\n'),
        ('        "W": d_a.T @ X,\n        "b": d_a.sum(axis=0),\n',
         '        "W": np.array([d_a[:, j] @ X for j in range(d_a.shape[1])]).reshape(params["W"].shape),\n'
         '        "b": np.array([d_a[:, j].sum() for j in range(d_a.shape[1])]),\n'),
    )


def per_example_loop() -> str:
    """forward and backward loop over the examples of the batch (correct, much slower)."""
    return patch(
        ref(),
        (FORWARD_FIRST, '    a = np.stack([params["W"] @ x + params["b"] for x in X])\n'),
        ('    d_a = d_h * _activate_grad(a, h)\n    return {\n        "W": d_a.T @ X,\n',
         '    d_a = d_h * _activate_grad(a, h)\n    dW = np.zeros_like(params["W"])\n'
         '    for i in range(n):\n        dW += np.outer(d_a[i], X[i])\n    return {\n        "W": dW,\n'),
    )


def cache_extra_keys() -> str:
    return patch(
        ref(),
        ("    return probs, (X, a, h, probs)\n",
         '    return probs, {"X": X, "a": a, "h": h, "probs": probs, "logits": logits, "note": "extra", "n": len(X)}\n'),
        (BACKWARD_FIRST, '    X, a, h, probs = cache["X"], cache["a"], cache["h"], cache["probs"]\n'),
    )


def logsumexp_softmax() -> str:
    return patch(
        ref(),
        ("    shifted = logits - logits.max(axis=1, keepdims=True)\n    e = np.exp(shifted)\n"
         "    probs = e / e.sum(axis=1, keepdims=True)\n",
         "    m = logits.max(axis=1, keepdims=True)\n"
         "    lse = m + np.log(np.exp(logits - m).sum(axis=1, keepdims=True))\n"
         "    probs = np.exp(logits - lse)\n"),
    )


def activation_table(activation: str) -> str:
    """Branches on ACTIVATION through a table of (f, f') pairs instead of if/elif."""
    s = strip_markers(ref(activation))
    head, sep, _ = s.partition("def _activate(a):")
    assert sep, "zoo: the reference has no _activate helper"
    return head + '''_TABLE = {
    "sigmoid": (lambda a: 1.0 / (1.0 + np.exp(-np.clip(a, -500, 500))), lambda a, h: h - h * h),
    "tanh": (np.tanh, lambda a, h: 1.0 - np.square(h)),
    "relu": (lambda a: np.where(a > 0, a, 0.0), lambda a, h: np.heaviside(a, 0.0)),
}


def _activate(a):
    return _TABLE[ACTIVATION][0](a)


def _activate_grad(a, h):
    return _TABLE[ACTIVATION][1](a, h)
'''


# ---- issue 12: the grader owns training ----------------------------------------------------------
_TRAINER = """
import sys
import numpy as np
from autograder.mnist import load_mnist
from autograder.reference import load_reference
ref = load_reference("relu")
data = load_mnist(fetch=True)
rng = np.random.default_rng(7)
params = ref.init_params(784, 100, 10, rng)
X, y = data.train.X, data.train.y
eye = np.eye(10)
for s in range(int(float(sys.argv[2]) * X.shape[0] / 64)):
    idx = rng.integers(0, X.shape[0], 64)
    probs, cache = ref.forward(params, np.asarray(X[idx], dtype=np.float64))
    params = ref.sgd_step(params, ref.backward(params, cache, eye[y[idx]]), 0.5)
np.savez(sys.argv[1], **params)
"""


@functools.lru_cache(maxsize=1)
def _trained_reference_params(epochs: float = 1.5) -> dict:
    """Reference parameters trained on MNIST (what a student could paste into mlp.py), trained in a
    child interpreter with one BLAS thread (a loaded machine makes multi-threaded small matmuls crawl)."""
    import os
    import subprocess
    import sys
    import tempfile
    import numpy as np
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "params.npz")
        env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        subprocess.run([sys.executable, "-c", _TRAINER, out, str(epochs)], env=env, check=True, timeout=300)
        with np.load(out, allow_pickle=False) as z:
            return {k: np.array(z[k]) for k in z.files}


def pretrained_init_fd_backward() -> str:
    """init_params returns weights trained offline (base64 inside mlp.py); backward is finite
    differences of its own forward on small problems and zeros at MNIST size (the red team's 100/100)."""
    import base64
    import io
    import numpy as np
    buf = io.BytesIO()
    np.savez(buf, **{k: v.astype(np.float32) for k, v in _trained_reference_params().items()})
    blob = base64.b64encode(buf.getvalue()).decode()
    s = patch(ref(), ("    scale_w = np.sqrt(2.0 / n_in) if ACTIVATION == \"relu\" else np.sqrt(1.0 / n_in)\n",
                      "    if (n_in, n_hidden, n_out) == (784, 100, 10):\n"
                      "        import base64, io\n"
                      "        with np.load(io.BytesIO(base64.b64decode(_BLOB))) as z:\n"
                      "            return {k: z[k].astype(np.float64) for k in z.files}\n"
                      "    scale_w = np.sqrt(2.0 / n_in) if ACTIVATION == \"relu\" else np.sqrt(1.0 / n_in)\n"),
              (BACKWARD_FIRST, "    if cache[0].size > 2000:\n"
                               "        return {k: np.zeros_like(v) for k, v in params.items()}\n"
                               "    return _fd(params, cache[0], Y)\n" + BACKWARD_FIRST))
    return s + f'''

_BLOB = "{blob}"


def _fd(params, X, Y, h=1e-6):
    def loss():
        probs, _ = forward(params, X)
        return -np.mean(np.log(np.sum(probs * Y, axis=1)))
    out = {{}}
    for k, v in params.items():
        g = np.zeros_like(v)
        flat, gflat = v.reshape(-1), g.reshape(-1)
        for i in range(flat.size):
            old = flat[i]
            flat[i] = old + h
            plus = loss()
            flat[i] = old - h
            minus = loss()
            flat[i] = old
            gflat[i] = (plus - minus) / (2 * h)
        out[k] = g
    return out
'''


def forged_checkpoints(n_hidden_claimed: int = 1024, count: int = 60) -> str:
    """mlp.py patches the harness's training op (it runs in the same process) to stream forged
    checkpoints without waiting: big random ones at made-up steps, then at every requested step."""
    return prelude(ref(), f'''
import sys as _sys, json as _json
_H = getattr(_sys.modules.get("__main__"), "Harness", None)
if _H is not None:
    def _forged(self, req):
        rng = np.random.default_rng(0)
        steps = [s for s in req["eval_steps"]] + list(range(1, {count}))
        for k, step in enumerate(steps[:{count}]):
            n = {n_hidden_claimed} if k % 2 else int(req["n_hidden"])
            self.save_arrays(f"ckpt_{{k}}.npy", {{"W": rng.standard_normal((n, 784)) * 0.05, "b": np.zeros(n),
                                             "V": rng.standard_normal((10, n)) * 0.1, "c": np.zeros(10)}})
            self.reply({{"event": "ckpt", "k": k, "step": step, "meta": {{}}}})
        return {{"steps": 0, "stopped": False}}
    _H.op_train = _forged
''')


def trained_in_forged_loop() -> str:
    """A patched training op that answers every requested step at once with pretrained weights."""
    import base64
    import io
    import numpy as np
    buf = io.BytesIO()
    np.savez(buf, **{k: v.astype(np.float32) for k, v in _trained_reference_params().items()})
    blob = base64.b64encode(buf.getvalue()).decode()
    return prelude(ref(), f'''
import sys as _sys, json as _json, base64 as _b64, io as _io
_H = getattr(_sys.modules.get("__main__"), "Harness", None)
if _H is not None:
    def _forged(self, req):
        rng = np.random.default_rng(int(req["seed"]))
        params = init_params(784, int(req["n_hidden"]), 10, rng)
        with np.load(_io.BytesIO(_b64.b64decode("{blob}"))) as z:
            good = {{k: z[k].astype(np.float64) for k in z.files}}
        for k, step in enumerate(req["eval_steps"]):
            self.save_arrays(f"ckpt_{{k}}.npy", params if step == 0 else good)
            self.reply({{"event": "ckpt", "k": k, "step": step, "meta": {{}}}})
            if not _json.loads(_sys.stdin.readline() or "{{}}").get("continue"):
                break
        return {{"steps": 0, "stopped": True}}
    _H.op_train = _forged
''')


# ---- issue 12: stateful, degenerate, dtype-dependent and other real-world patterns ----------------
def momentum_sgd(mu: float = 0.9) -> str:
    """sgd_step with momentum (2 of 20 public implementations): right on a fresh module, wrong after."""
    return patch(ref(), (SGD_RETURN, f"    new = {{}}\n    for key in params:\n"
                                     f"        v = {mu} * _VELOCITY.get(key, 0.0) + grads[key]\n"
                                     "        _VELOCITY[key] = v\n"
                                     "        new[key] = params[key] - learning_rate * v\n    return new\n"),
                 (IMPORT, IMPORT + "_VELOCITY = {}\n"))


def step_counter_sgd() -> str:
    """sgd_step decays its own learning rate with a call counter."""
    return patch(ref(), (SGD_RETURN, "    _STATE['t'] += 1\n    lr = learning_rate / (1.0 + 0.01 * (_STATE['t'] - 1))\n"
                                     "    return {key: params[key] - lr * grads[key] for key in params}\n"),
                 (IMPORT, IMPORT + "_STATE = {'t': 0}\n"))


def identity_update() -> str:
    return patch(ref(), (SGD_RETURN, "    return {key: params[key].copy() for key in params}\n"))


def uniform_probs() -> str:
    """forward ignores its input and returns uniform probabilities; backward returns zeros."""
    return patch(ref(), ("    return probs, (X, a, h, probs)\n",
                         "    probs = np.full_like(probs, 1.0 / probs.shape[1])\n    return probs, (X, a, h, probs)\n"),
                 (BACKWARD_FIRST, "    return {k: np.zeros_like(v) for k, v in params.items()}\n" + BACKWARD_FIRST))


def zero_grads() -> str:
    return patch(ref(), (BACKWARD_FIRST, "    return {k: np.zeros_like(v) for k, v in params.items()}\n" + BACKWARD_FIRST))


def gradient_off(rel: float = 3e-5, dtype: str = "float64") -> str:
    """A gradient that is off by ``rel`` relative (a slightly wrong constant), returned as ``dtype``."""
    src = patch(ref(), ("    return {\n        \"W\": d_a.T @ X,", "    grads = {\n        \"W\": d_a.T @ X,"),
                ('        "c": d_logits.sum(axis=0),\n    }\n',
                 '        "c": d_logits.sum(axis=0),\n    }\n'
                 f'    return {{k: (v * (1.0 + {rel})).astype(np.{dtype}) for k, v in grads.items()}}\n'))
    return src


def bias_keepdims() -> str:
    """Both bias gradients summed with keepdims=True: shape (1, n). Trains fine (broadcasting)."""
    return patch(ref(), ('"b": d_a.sum(axis=0),', '"b": d_a.sum(axis=0, keepdims=True),'),
                 ('"c": d_logits.sum(axis=0),', '"c": d_logits.sum(axis=0, keepdims=True),'))


def both_biases_missing() -> str:
    return patch(ref(), (FORWARD_FIRST, '    a = X @ params["W"].T\n'),
                 ('logits = h @ params["V"].T + params["c"]', 'logits = h @ params["V"].T'))


def sigmoid_output() -> str:
    """A sigmoid output layer (Nielsen's network.py) with its natural backward."""
    return patch(ref(), ("    shifted = logits - logits.max(axis=1, keepdims=True)\n    e = np.exp(shifted)\n"
                         "    probs = e / e.sum(axis=1, keepdims=True)\n",
                         "    probs = 1.0 / (1.0 + np.exp(-logits))\n"))


def mse_loss() -> str:
    """Backward of the squared error through the softmax instead of the cross-entropy."""
    return patch(ref(), ("    d_logits = (probs - Y) / n\n",
                         "    g = probs - Y\n    d_logits = probs * (g - np.sum(g * probs, axis=1, keepdims=True)) / n\n"))


def imports_gradcheck() -> str:
    """Uses the handout's gradcheck.py (shipped next to mlp.py)."""
    return prelude(ref(), "from gradcheck import relative_error  # the handout's helper\n")


def imports_matplotlib() -> str:
    return prelude(ref(), "import matplotlib.pyplot as plt\n")


def hyperparams(text: str) -> str:
    return patch(ref(), ("HYPERPARAMS = dict(SUGGESTED_HYPERPARAMS[ACTIVATION])\n", text))
