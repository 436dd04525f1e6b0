"""The worker side of the grading boundary: imports the student's mlp.py and answers requests.

Runs inside the sandbox as its own script (stdlib + numpy only, never imports the grader).
Protocol: the parent writes one JSON request per line on stdin; this script answers one JSON line
on its private copy of stdout. Arrays travel as array files in the scratch folder (arrayfile.py: one
``.npy`` per message, no pickles). Student prints go to ``student_output.log``, never to the protocol.

Nothing this process says is trusted: the parent validates every array and computes every verdict.
"""
import json
import os
import sys
import time
import traceback

import numpy as np

PARAM_KEYS = ("W", "b", "V", "c")
MAX_TEXT = 4000
MAX_RETURN_ELEMENTS = 1_000_000   # per returned array (MNIST params are < 1M); larger ones are described, not sent


def _short(text):
    text = str(text)
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT] + "\n... (cut)"


class Harness:
    def __init__(self, proto, scratch):
        self.proto = proto
        self.scratch = scratch
        self.module = None

    # ---- plumbing -------------------------------------------------------------------------
    def reply(self, message):
        self.proto.write(json.dumps(message) + "\n")
        self.proto.flush()

    def load_arrays(self, name):
        return arrayfile.read_trusted(os.path.join(self.scratch, name))

    def save_arrays(self, name, arrays):
        arrayfile.write_atomic(os.path.join(self.scratch, name), arrays)

    @staticmethod
    def describe(value):
        """Type facts about a returned value, for the parent's feedback."""
        info = {"type": type(value).__module__ + "." + type(value).__qualname__}
        if isinstance(value, np.ndarray):
            info.update(exact_ndarray=type(value) is np.ndarray, shape=list(value.shape), dtype=str(value.dtype))
        return info

    @staticmethod
    def plain(value):
        """A plain ndarray copy of a numeric array or scalar; None for objects and oversized arrays."""
        try:
            if not (isinstance(value, np.ndarray) or np.isscalar(value)) or np.size(value) > MAX_RETURN_ELEMENTS:
                return None
            arr = np.array(value, copy=True, subok=False)
        except Exception:  # noqa: BLE001 - a value that cannot be copied is simply not sent
            return None
        return arr if type(arr) is np.ndarray and not arr.dtype.hasobject else None

    def after_copies(self, inputs):
        """The inputs as they are after the student's call, for the parent's own mutation check."""
        out = {}
        for name, obj in inputs.items():
            arr = self.plain(obj)
            if arr is not None:
                out["after_" + name] = arr
        return out

    def arrays_from(self, value, prefix, meta, what):
        """Plain copies of the arrays in ``value`` (a dict of arrays) keyed ``prefix + key``."""
        out = {}
        if not isinstance(value, dict):
            meta.setdefault("problems", []).append(f"{what} returned {type(value).__name__}, not a dict")
            return out
        meta[what + "_keys"] = sorted(str(k) for k in value.keys())[:20]
        for key, arr in value.items():
            if key not in PARAM_KEYS:
                continue
            meta.setdefault(what + "_types", {})[key] = self.describe(arr)
            copy = self.plain(arr)
            if copy is not None:
                out[prefix + key] = copy
        return out

    def probs_from(self, value, meta):
        """Split forward's return into probs (an array) and cache; records what it was."""
        if not (isinstance(value, tuple) and len(value) == 2):
            meta.setdefault("problems", []).append(
                f"forward returned {type(value).__name__}"
                + (f" of length {len(value)}" if isinstance(value, (tuple, list)) else "")
                + ", not the pair (probs, cache)")
            copy = self.plain(value) if isinstance(value, np.ndarray) else None
            return ({"probs": copy} if copy is not None else {}), None
        probs, cache = value
        meta["probs_type"] = self.describe(probs)
        copy = self.plain(probs) if isinstance(probs, np.ndarray) else None
        return ({"probs": copy} if copy is not None else {}), cache

    @staticmethod
    def mutated(before, after_objects):
        """Names of inputs whose values changed during a student call."""
        changed = []
        for name, copy in before.items():
            obj = after_objects[name]
            try:
                same = np.array_equal(np.asarray(obj).view(np.ndarray), copy, equal_nan=True)
            except Exception:  # the object itself became something else
                same = False
            if not same:
                changed.append(name)
        return changed

    # ---- operations -----------------------------------------------------------------------
    def op_load(self, req):
        import importlib.util
        path = os.path.join(self.scratch, "submission", "mlp.py")
        spec = importlib.util.spec_from_file_location("mlp", path)
        module = importlib.util.module_from_spec(spec)
        sys.modules["mlp"] = module
        sys.path.insert(0, os.path.dirname(path))
        spec.loader.exec_module(module)
        self.module = module
        self.extension_functions = frozenset(str(f) for f in req.get("extension_functions") or ())
        activation = req.get("activation")
        if activation and isinstance(getattr(module, "ACTIVATION", None), str):
            module.ACTIVATION = activation
        missing = [n for n in ("init_params", "forward", "backward", "sgd_step")
                   if not callable(getattr(module, n, None))]
        hp = getattr(module, "HYPERPARAMS", None)
        clean_hp, hp_types = None, {}
        if isinstance(hp, dict):
            clean_hp = {}
            for k, v in list(hp.items())[:20]:
                if not isinstance(k, str):
                    continue
                if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool):
                    v = float(v)
                    clean_hp[k[:40]] = v if v == v and abs(v) != float("inf") else repr(v)  # nan/inf as text
                else:
                    hp_types[k[:40]] = (type(v).__name__[:30], repr(v)[:40])
        return {"missing": missing, "hyperparams": clean_hp, "hyperparams_types": hp_types,
                "hyperparams_type": type(hp).__name__,
                "activation": str(getattr(module, "ACTIVATION", ""))[:20]}

    def op_forward(self, req):
        data = self.load_arrays(req["in"])
        params = {k: data[k] for k in PARAM_KEYS if k in data}
        X = data["X"]
        before = {"X": X.copy(), **{"params." + k: v.copy() for k, v in params.items()}}
        result = self.module.forward(params, X)
        meta = {}
        arrays, _ = self.probs_from(result, meta)
        meta["mutated"] = self.mutated(before, {"X": X, **{"params." + k: params[k] for k in params}})
        arrays.update(self.after_copies({"X": X, **params}))
        self.save_arrays(req["out"], arrays)
        return meta

    def op_forward_backward(self, req):
        data = self.load_arrays(req["in"])
        params = {k: data[k] for k in PARAM_KEYS}
        X, Y = data["X"], data["Y"]
        before = {"X": X.copy(), "Y": Y.copy(), **{"params." + k: v.copy() for k, v in params.items()}}
        meta = {}
        arrays, cache = self.probs_from(self.module.forward(params, X), meta)
        grads = self.module.backward(params, cache, Y)
        arrays.update(self.arrays_from(grads, "grad_", meta, "backward"))
        meta["mutated"] = self.mutated(before, {"X": X, "Y": Y, **{"params." + k: params[k] for k in params}})
        arrays.update(self.after_copies({"X": X, "Y": Y, **params}))
        self.save_arrays(req["out"], arrays)
        return meta

    def op_fd_student(self, req):
        """Finite differences of the student's OWN loss (for diagnosis only)."""
        data = self.load_arrays(req["in"])
        params = {k: np.array(data[k], dtype=np.float64) for k in PARAM_KEYS}
        X, Y = data["X"], data["Y"]
        h = float(req.get("h", 1e-5))

        def loss():
            probs, _ = self.module.forward(params, X)
            picked = np.sum(np.asarray(probs, dtype=np.float64) * Y, axis=1)
            return float(-np.mean(np.log(np.maximum(picked, 1e-300))))

        out = {}
        for key in PARAM_KEYS:
            flat = params[key].reshape(-1)
            grad = np.zeros(flat.size)
            for i in range(flat.size):
                old = flat[i]
                flat[i] = old + h
                plus = loss()
                flat[i] = old - h
                minus = loss()
                flat[i] = old
                grad[i] = (plus - minus) / (2 * h)
            out["fd_" + key] = grad.reshape(params[key].shape)
        self.save_arrays(req["out"], out)
        return {}

    def op_sgd_step(self, req):
        data = self.load_arrays(req["in"])
        params = {k: data["p_" + k] for k in PARAM_KEYS}
        grads = {k: data["g_" + k] for k in PARAM_KEYS}
        lr = float(req["learning_rate"])
        before = {"grads." + k: v.copy() for k, v in grads.items()}
        meta = {}
        new = self.module.sgd_step(params, grads, lr)
        arrays = self.arrays_from(new, "new_", meta, "sgd_step")
        meta["returned_same_dict"] = new is params
        meta["mutated"] = self.mutated(before, {"grads." + k: grads[k] for k in grads})
        arrays.update(self.after_copies({"g_" + k: grads[k] for k in grads}))
        self.save_arrays(req["out"], arrays)
        return meta

    def op_init_params(self, req):
        rng = np.random.default_rng(int(req["seed"]))
        meta = {}
        params = self.module.init_params(int(req["n_in"]), int(req["n_hidden"]), int(req["n_out"]), rng)
        self.save_arrays(req["out"], self.arrays_from(params, "", meta, "init_params"))
        return meta

    def op_train(self, req):
        """The grader's own SGD loop over the student's functions. A checkpoint (the params, then one
        ``ckpt`` event, then the parent's answer) at every step of ``eval_steps``; step 0 is the
        untrained network straight from init_params."""
        X = np.load(req["train_X"], mmap_mode="r", allow_pickle=False)
        y = np.load(req["train_y"], mmap_mode="r", allow_pickle=False)
        n_hidden, lr, batch = int(req["n_hidden"]), float(req["learning_rate"]), int(req["batch_size"])
        rng = np.random.default_rng(int(req["seed"]))
        eye = np.eye(10)
        params = self.module.init_params(X.shape[1], n_hidden, 10, rng)
        steps_per_epoch = X.shape[0] // batch
        eval_steps = set(int(s) for s in req["eval_steps"])
        last = max(eval_steps)
        state = {"k": 0}

        def checkpoint(step):
            meta = {}
            self.save_arrays(f"ckpt_{state['k']}.npy", self.arrays_from(params, "", meta, "params"))
            self.reply({"event": "ckpt", "k": state["k"], "step": step, "meta": meta})
            answer = json.loads(sys.stdin.readline() or "{}")
            state["k"] += 1
            return bool(answer.get("continue"))

        step = 0
        if 0 in eval_steps and not checkpoint(0):
            return {"steps": 0, "stopped": True}
        while step < last:
            order = rng.permutation(X.shape[0])
            for s in range(steps_per_epoch):
                idx = np.sort(order[s * batch:(s + 1) * batch])
                xb = np.asarray(X[idx], dtype=np.float64)
                probs, cache = self.module.forward(params, xb)
                grads = self.module.backward(params, cache, eye[y[idx]])
                params = self.module.sgd_step(params, grads, lr)
                step += 1
                if step in eval_steps and not checkpoint(step):
                    return {"steps": step, "stopped": True}
                if step >= last:
                    break
        return {"steps": step, "stopped": False}

    # ---- optional extensions (autograder/checks/extension_*.py) -------------------------------
    #: the extension functions the parent may call, from its load request (checks/registry.py)
    extension_functions = frozenset()

    @staticmethod
    def extension_array(value):
        """A plain numeric ndarray copy of a returned array or number (at most 1M elements), else None."""
        try:
            if not isinstance(value, (np.ndarray, int, float, np.integer, np.floating)) or np.size(value) > 1_000_000:
                return None
            arr = np.array(value, copy=True, subok=False)
        except Exception:  # noqa: BLE001 - a value that cannot be copied is simply not sent
            return None
        return arr if type(arr) is np.ndarray and arr.dtype.kind in "biuf" else None

    def op_call_extension(self, req):
        """Call one allow-listed extension function of the submission: arrays in, arrays out.

        array keys ``p_K``/``g_K`` become the dicts ``params``/``grads``, other keys are passed as they are;
        ``req["scalars"]`` adds numbers; ``"rng"`` in ``req["order"]`` is a Generator seeded with
        ``req["seed"]``, shared by the ``req["repeat"]`` calls; arrays named in ``req["as_list"]`` are passed
        as Python lists. The function is called positionally in
        ``req["order"]``. Results: a dict -> ``out_<key>``, a tuple/list -> ``out_0, out_1, ...``,
        anything else -> ``out_0``; with repeat > 1 each is stacked along a new first axis.
        """
        name = str(req.get("function"))
        if name not in self.extension_functions:
            raise ValueError(f"{name!r} is not an extension function the grader calls")
        fn = getattr(self.module, name, None)
        if not callable(fn):
            raise NotImplementedError(f"{name}: not implemented yet (mlp.py does not define {name})")
        data = self.load_arrays(req["in"]) if req.get("in") else {}
        named = {}
        for key, value in data.items():
            if key[:2] in ("p_", "g_"):
                named.setdefault("params" if key[0] == "p" else "grads", {})[key[2:]] = value
            else:
                named[key] = value
        for key, value in (req.get("scalars") or {}).items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                named[str(key)] = value
        for key in req.get("as_list") or []:  # e.g. valid_errors: a plain list of floats, as a loop builds it
            if isinstance(named.get(key), np.ndarray):
                named[key] = named[key].tolist()
        rng = np.random.default_rng(int(req.get("seed", 0)))
        before = {}
        for key, value in named.items():
            if isinstance(value, dict):
                before.update({f"{key}.{k}": v.copy() for k, v in value.items()})
            elif isinstance(value, np.ndarray):
                before[key] = value.copy()
        meta = {"types": {}}
        outs = []
        for _ in range(max(1, min(int(req.get("repeat", 1)), 10000))):
            result = fn(*[rng if a == "rng" else named[a] for a in req["order"]])
            if isinstance(result, dict):
                items = [(str(k)[:20], v) for k, v in list(result.items())[:20]]
            elif isinstance(result, (tuple, list)):
                items = [(str(i), v) for i, v in enumerate(result[:20])]
            else:
                items = [("0", result)]
            out = {}
            for key, value in items:
                meta["types"][key] = self.describe(value)
                arr = self.extension_array(value)
                if arr is not None:
                    out["out_" + key] = arr
            outs.append(out)
        meta["returned"] = sorted(meta["types"])
        arrays = outs[0]
        if len(outs) > 1:
            arrays = {}
            for key in outs[0]:
                parts = [o.get(key) for o in outs]
                if all(p is not None and p.shape == parts[0].shape for p in parts):
                    arrays[key] = np.stack(parts)
        flat = {}
        for key, value in named.items():
            if isinstance(value, dict):
                flat.update({f"{key}.{k}": v for k, v in value.items()})
            elif isinstance(value, np.ndarray):
                flat[key] = value
        meta["mutated"] = self.mutated(before, flat)
        self.save_arrays(req["out"], arrays)
        return meta

    # ---- loop -----------------------------------------------------------------------------
    def serve(self):
        for line in sys.stdin:
            try:
                req = json.loads(line)
            except ValueError:
                continue
            rid = req.get("id")
            op = getattr(self, "op_" + str(req.get("op")), None)
            if op is None:
                self.reply({"id": rid, "ok": False, "kind": "protocol", "error": f"unknown op {req.get('op')}"})
                continue
            started = time.perf_counter()
            try:
                meta = op(req)
                self.reply({"id": rid, "ok": True, "meta": meta, "seconds": time.perf_counter() - started})
            except NotImplementedError as exc:
                self.reply({"id": rid, "ok": False, "kind": "not_implemented", "error": _short(exc),
                            "traceback": _short(traceback.format_exc(limit=-3))})
            except SyntaxError as exc:
                self.reply({"id": rid, "ok": False, "kind": "syntax", "error": _short(f"{exc.msg} (line {exc.lineno})"),
                            "traceback": _short(traceback.format_exc(limit=0))})
            except ModuleNotFoundError as exc:  # an import the sandbox does not offer: one clear line
                self.reply({"id": rid, "ok": False, "kind": "missing_module",
                            "error": _short(exc.name or exc)[:100], "traceback": ""})
            except MemoryError:
                self.reply({"id": rid, "ok": False, "kind": "memory", "error": "MemoryError: out of the memory limit"})
            except BaseException as exc:  # noqa: BLE001 - student code may raise anything, even SystemExit
                self.reply({"id": rid, "ok": False, "kind": "exception",
                            "error": _short(f"{type(exc).__name__}: {exc}"),
                            "traceback": _short(traceback.format_exc(limit=-4))})


def _sibling(name):
    """A module of this folder loaded by path (-I keeps this folder off sys.path, so the student's
    folder can never shadow it)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("_bplab_" + name, os.path.join(os.path.dirname(__file__), name + ".py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


arrayfile = _sibling("arrayfile")


def _confine():
    """Apply the parent's ``--confine JSON`` before any student code; the layers in force."""
    if "--confine" not in sys.argv:
        return []
    spec = json.loads(sys.argv[sys.argv.index("--confine") + 1])
    del sys.argv[1:]  # the submission sees a plain argv
    return _sibling("confine").apply(spec)


def main():
    scratch = os.getcwd()
    layers = _confine()
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    _sibling("studentlog").redirect(os.path.join(scratch, "student_output.log"))
    harness = Harness(proto, scratch)
    # before any student code: a worker that dies earlier is the grader's fault, and the layers are true
    harness.reply({"event": "ready", "layers": layers})
    harness.serve()


if __name__ == "__main__":
    main()
