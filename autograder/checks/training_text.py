"""Why a training run missed the target, in a TA's words, charged to its root cause.

Order of causes: an init that is already trained; a crash or a bad checkpoint; the budget (CPU seconds)
running out, called "too slow" only when the student's SGD step costs several times the reference's
step at the same batch size and width on this machine, else "did not converge"; a plateau far above
every credit level; the epochs running out. When an earlier check already found a bug that explains
the failure, the message says so instead of suggesting HYPERPARAMS.
"""
from __future__ import annotations

from .common import Context, explain_failure, failure_tag


def _diagnosis_sentence(text: str, most: int = 240) -> str:
    """The sentence of another check's message that names the bug (not the case or the error size)."""
    head = text.split("\n", 1)[0]
    head = head.split(": ", 1)[1] if ": " in head[:60] else head  # drop "<case name>: "
    sentences = [x.strip() for x in head.replace("; ", ". ").split(". ") if x.strip()]
    named = [x for x in sentences if "relative error" not in x] or sentences or [head]
    return named[0].rstrip(".")[:most]


def _explained(ctx: Context) -> str:
    cause = ctx.root_cause()
    if cause is None:
        return ""
    return (f"; the {cause.check_id} check already found a bug that explains this ({cause.name}: "
            f"{_diagnosis_sentence(cause.message)}): fix that first")


def failure_text(ctx: Context, run_, reply, hp: dict[str, float], epochs: int, budget: float,
                 wall_cap: float) -> tuple[str, list[str]]:
    """(message without the trailing period, diagnosis ids) for a run that did not reach the target."""
    from .training_rules import INIT_MIN_ERROR, PLATEAU_WINDOW, SLOW_FACTOR, reference_step_seconds
    target = ctx.config.training.target_error
    explained = _explained(ctx)
    if run_.init_error is not None and run_.init_error < INIT_MIN_ERROR:
        return (f"init_params must return random weights: the untrained network already has test error "
                f"{run_.init_error:.2%} (chance is about 90%). The grader trains your network itself; "
                "parameters trained beforehand score 0 here"), ["untrained_init"]
    if run_.problem:
        return run_.problem + explained, [run_.problem_tag or "wrong_shape"]
    if not reply.ok and reply.kind != "timeout":
        return explain_failure("training (init_params/forward/backward/sgd_step)", reply), failure_tag(reply)
    ran_out = (not reply.ok) or (run_.curve and run_.curve[-1]["seconds"] > budget)
    if ran_out:
        ref_step = reference_step_seconds(ctx.ref, int(hp["batch_size"]), int(hp["n_hidden"]), ctx.config.activation)
        used = run_.last_used if run_.curve else budget
        steps = run_.last_step
        per_step = used / steps if steps else None
        spent = reply.meta if reply.kind == "timeout" and reply.meta.get("wall_cap_hit") else {}
        idle = 0.0
        if spent:  # wall time neither computing nor waiting for a CPU, less the parent's evaluations
            idle = (float(spent.get("wall_seconds", 0)) - float(spent.get("cpu_seconds", 0))
                    - float(spent.get("run_delay_seconds", 0)))
            if idle > 0.5 * float(spent.get("wall_seconds", 1)):
                return (f"training used the whole budget of {budget:.0f} s while computing for only "
                        f"{float(spent.get('cpu_seconds', 0)):.1f} CPU seconds: your code spent about {idle:.0f} s "
                        "neither computing nor waiting for the CPU (sleeping or blocked): it is too slow; "
                        "remove sleeps and waits from forward/backward/sgd_step" + explained), ["too_slow"]
        wall = spent.get("cap") == "wall"
        if per_step is None or per_step > SLOW_FACTOR * ref_step:
            cost = (f"one SGD step costs {per_step * 1e3:.1f} ms of CPU, the reference's "
                    f"{ref_step * 1e3:.1f} ms at the same batch size and width" if per_step else
                    f"the first checkpoint ({run_.steps_per_epoch // 4 or 1} steps) was not reached; the "
                    f"reference needs about {ref_step * max(1, run_.steps_per_epoch // 4):.1f} CPU seconds for it")
            return (f"training used the whole budget of {budget:.0f} CPU seconds before reaching {target:.0%} test "
                    f"error: it is too slow ({cost}): vectorize over the batch (no Python loop over "
                    "examples or units)" + explained), ["too_slow"]
        if wall:
            return (f"training was stopped at the wall-clock cap of {wall_cap:.0f} s (the machine was overloaded); "
                    "this is not your fault: ask the course staff to regrade"), ["timeout"]
        return (f"training did not converge within the budget of {budget:.0f} CPU seconds: your steps cost "
                f"about what the reference's do ({per_step * 1e3:.1f} ms vs {ref_step * 1e3:.1f} ms), but the test "
                f"error went {run_.curve_text()}" + (explained or
                "; check the learning rate and the initialisation")), (["did_not_converge"])
    if run_.plateaued():
        return (f"the test error stayed at {run_.best_error:.1%} or above for {PLATEAU_WINDOW} checkpoints in a "
                f"row ({run_.curve_text()}), so training was stopped early: the network is not learning"
                + (explained or "; check HYPERPARAMS (the learning rate: too large or too small) and the initialisation")), \
            ["not_learning", "plateaued"]
    if not run_.curve:
        return "training stopped before the first checkpoint" + explained, ["not_learning"]
    tags = ["bad_hyperparameters" if run_.best_error < 0.5 and not explained else "not_learning"]
    advice = explained or "; check HYPERPARAMS (learning rate, epochs) and your initialisation"
    return (f"after {epochs} epoch(s) the test error is still {run_.curve[-1]['test_error']:.2%} (target "
            f"{target:.0%}); it went {run_.curve_text()}" + advice), tags

