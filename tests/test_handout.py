"""The generated handout (assignment/): up to date, leak-free, importable, and written safely."""
from __future__ import annotations

import inspect
import os
import shutil
import textwrap
from pathlib import Path

import nbformat
import numpy as np
import pytest

from autograder.cli import main
from autograder.config import load_config
from autograder.errors import UserError
from autograder.handout.markers import parse
from autograder.handout.skeleton import build_skeleton
from autograder.handout.writer import GENERATED, IGNORED, render_assignment, same_content, stale_files, write_assignment
from autograder.paths import ASSIGNMENT_DIR, PACKAGE_DIR, SOLUTIONS_DIR
from autograder.reference import load_module, load_reference

API = ("init_params", "forward", "backward", "sgd_step")


@pytest.fixture(scope="module")
def config():
    return load_config()


@pytest.fixture(scope="module")
def skeleton():
    return load_module(ASSIGNMENT_DIR / "mlp.py", "handout_skeleton")


def assignment_files() -> list[Path]:
    return sorted(p for p in ASSIGNMENT_DIR.rglob("*")
                  if p.is_file() and not (set(p.relative_to(ASSIGNMENT_DIR).parts) & IGNORED))


# ---------------------------------------------------------------------------------------------
# assignment/ is what the generator makes today
# ---------------------------------------------------------------------------------------------
def test_assignment_is_up_to_date(config, tmp_path):
    """Does regenerating from solutions/ and course.toml give exactly the committed assignment/?"""
    fresh = tmp_path / "assignment"
    write_assignment(fresh, config)
    generated = sorted(p.name for p in fresh.iterdir())
    committed = [p.name for p in assignment_files()]
    out_of_date = sorted(set(generated) ^ set(committed))
    out_of_date += [n for n in generated if n in committed
                    and not same_content(n, (ASSIGNMENT_DIR / n).read_bytes(), (fresh / n).read_text(encoding="utf-8"))]
    assert not out_of_date, (f"assignment/ is out of date with solutions/ (files: {', '.join(out_of_date)}); "
                             "run `backprop-lab assign` and commit assignment/")
    assert stale_files(ASSIGNMENT_DIR, config) == []


def test_public_cases_may_differ_by_blas_rounding_only():
    """A CPU whose BLAS rounds the reference's products differently in the last bits still finds the
    handout up to date; a changed value, key or shape is out of date."""
    import json
    text = render_assignment(load_config())["public_cases.json"]
    data = json.loads(text)
    key = next(k for k, v in data["arrays"].items() if ".g32." in k and v["values"])
    def nudged(factor):
        changed = json.loads(text)
        values = np.asarray(changed["arrays"][key]["values"], dtype=np.float64)
        flat = values.reshape(-1)
        flat[0] = flat[0] * factor if flat[0] else factor - 1
        changed["arrays"][key]["values"] = values.tolist()
        return json.dumps(changed).encode()
    assert same_content("public_cases.json", text.encode(), text)
    assert same_content("public_cases.json", nudged(1 + 3e-7), text)          # a few float32 ulps
    assert not same_content("public_cases.json", nudged(1 + 1e-4), text)      # a real change
    assert not same_content("mlp.py", b"x = 1\n", "x = 2\n")


def test_rendering_is_deterministic(config):
    """Is the handout free of timestamps and random ids, so the staleness test is stable?"""
    assert render_assignment(config) == render_assignment(config)


def test_no_solution_line_leaks_into_assignment():
    """Does any non-trivial line of a solution region appear in any file under assignment/?"""
    parsed = parse((SOLUTIONS_DIR / "mlp.py").read_text(), "solutions/mlp.py")
    lines = {line.strip() for line in parsed.solution_lines()}
    lines = {line for line in lines if line and not line.startswith("#") and len(line) >= 15}
    assert len(lines) > 20, "the leak test lost its material: did the reference's markers change?"
    for path in assignment_files():
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".ipynb":
            nb = nbformat.reads(text, as_version=4)
            text = "\n".join(cell.source for cell in nb.cells)
        leaked = sorted(line for line in lines if line in text)
        assert not leaked, f"solution lines leaked into assignment/{path.name}: {leaked}"


def test_gradcheck_copy_is_identical_to_the_source():
    """Is assignment/gradcheck.py autograder/gradcheck.py verbatim, under one generated-file header?"""
    header, _, body = (ASSIGNMENT_DIR / "gradcheck.py").read_text(encoding="utf-8").partition("\n")
    assert header.startswith(f"# {GENERATED}")
    assert body == (PACKAGE_DIR / "gradcheck.py").read_text(encoding="utf-8")


# ---------------------------------------------------------------------------------------------
# the skeleton
# ---------------------------------------------------------------------------------------------
def test_skeleton_defines_the_api_and_every_function_raises_with_a_hint(skeleton, config):
    """Does the skeleton import, and does each API function say 'not implemented yet' and what to do?"""
    parsed = parse((SOLUTIONS_DIR / "mlp.py").read_text())
    hints = [seg.hint for seg in parsed.solutions if getattr(seg, "indent", "")]
    rng = np.random.default_rng(0)
    params = {"W": np.zeros((5, 10)), "b": np.zeros(5), "V": np.zeros((2, 5)), "c": np.zeros(2)}
    calls = {"init_params": (10, 5, 2, rng), "forward": (params, np.zeros((3, 10))),
             "backward": (params, None, np.zeros((3, 2))), "sgd_step": (params, params, 0.1)}
    for name, hint in zip(API, hints):
        with pytest.raises(NotImplementedError) as info:
            getattr(skeleton, name)(*calls[name])
        assert str(info.value) == f"{name}: not implemented yet — {hint}"
    assert skeleton.ACTIVATION == config.activation
    assert skeleton.HYPERPARAMS == skeleton.SUGGESTED_HYPERPARAMS[config.activation]


def test_skeleton_keeps_signatures_and_docstrings_and_drops_helpers(skeleton):
    reference = load_reference("relu")
    for name in API:
        ours, theirs = getattr(skeleton, name), getattr(reference, name)
        assert inspect.signature(ours) == inspect.signature(theirs), name
        assert ours.__doc__ == theirs.__doc__, name
    assert not hasattr(skeleton, "_activate") and not hasattr(skeleton, "_activate_grad")
    text = (ASSIGNMENT_DIR / "mlp.py").read_text()
    assert text.startswith("# ---") and GENERATED in text.splitlines()[1]
    assert skeleton.__doc__.startswith("A one-hidden-layer MLP")


def _skeleton_of(source: str, activation: str = "tanh") -> str:
    return build_skeleton(parse(textwrap.dedent(source).lstrip("\n"), "x.py"), activation)


def test_stub_rules_on_a_small_source():
    """Block in a function → hinted raise at its indentation; top-level block → gone; line markers."""
    out = _skeleton_of('''
        """Doc."""
        ACTIVATION = "relu"
        LIMIT = 3  # SOLUTION


        def f(x):
            """Shape doc."""
            if x:
                # BEGIN SOLUTION: add one
                return x + 1
                # END SOLUTION
            y = 2 * x  # SOLUTION
            return y


        # BEGIN SOLUTION
        def _helper():
            return 42
        # END SOLUTION
        ''')
    assert 'ACTIVATION = "tanh"' in out
    assert "LIMIT = ...  # YOUR CODE HERE" in out
    assert '        raise NotImplementedError("f: not implemented yet — add one")' in out
    assert '    raise NotImplementedError("f: not implemented yet — compute y")' in out
    assert "_helper" not in out and "return 42" not in out and "x + 1" not in out
    assert not out.endswith("\n\n") and "\n\n\n\n" not in out
    namespace: dict = {}
    exec(compile(out, "skeleton", "exec"), namespace)
    with pytest.raises(NotImplementedError, match="add one"):
        namespace["f"](1)


def test_hint_with_quotes_is_a_valid_string_literal():
    out = _skeleton_of('''
        ACTIVATION = "relu"
        def f():
            # BEGIN SOLUTION: use "probs - Y", not \\'Y - probs\\'
            pass
            # END SOLUTION
        ''')
    namespace: dict = {}
    exec(compile(out, "skeleton", "exec"), namespace)
    with pytest.raises(NotImplementedError, match='use "probs - Y"'):
        namespace["f"]()


def test_missing_activation_line_is_an_error():
    with pytest.raises(UserError, match="ACTIVATION"):
        _skeleton_of("def f():\n    pass\n")


def test_activation_override(config):
    """Does --activation change the skeleton, the notebook and the README together?"""
    files = render_assignment(config.with_activation("sigmoid"))
    assert 'ACTIVATION = "sigmoid"' in files["mlp.py"]
    assert "`sigmoid`" in files["backprop_lab.ipynb"] and "**`sigmoid`**" in files["README.md"]


# ---------------------------------------------------------------------------------------------
# notebook and README
# ---------------------------------------------------------------------------------------------
def test_notebook_is_valid_and_covers_the_walkthrough():
    nb = nbformat.read(ASSIGNMENT_DIR / "backprop_lab.ipynb", as_version=4)
    nbformat.validate(nb)
    text = "\n".join(cell.source for cell in nb.cells)
    for needle in ("(a) Derive", "(b) Implement", "(c) Check", "(d) From one example", "(e) Train",
                   "(f) Learning curves", "import mlp", "importlib.reload(mlp)", "gradcheck.numerical_gradient",
                   "toy_problem", "n_in=10, n_hidden=5, n_out=2", "from autograder.mnist import load_mnist",
                   "BACKPROP_LAB_MNIST", "matplotlib", "backprop-lab experiments --quick --out DIR"):
        assert needle in text, needle
    assert all(not cell.get("outputs") for cell in nb.cells if cell.cell_type == "code")


def test_readme_states_rubric_bounds_and_budget(config):
    readme = (ASSIGNMENT_DIR / "README.md").read_text()
    assert "python -m pytest -q" in readme
    for check, points in config.rubric.items():
        assert f"| `{check}` | {points:g} |" in readme
    assert f"max({config.training.budget_floor_s:g} s, {config.training.budget_factor:g} ×" in readme
    lo, hi = config.bounds.learning_rate
    assert f"| `learning_rate` | {lo:g} | {hi:g} |" in readme


# ---------------------------------------------------------------------------------------------
# the writer and the CLI
# ---------------------------------------------------------------------------------------------
def test_cli_check_reports_out_of_date_files(tmp_path, capsys):
    out = tmp_path / "assignment"
    assert main(["assign", "--out", str(out)]) == 0
    assert main(["assign", "--check", "--out", str(out)]) == 0
    (out / "mlp.py").write_text((out / "mlp.py").read_text() + "# edited by hand\n")
    (out / "README.md").unlink()
    (out / "notes.txt").write_text("x")
    (out / "__pycache__").mkdir()
    capsys.readouterr()
    assert main(["assign", "--check", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "out of date" in err and "mlp.py (differs)" in err and "README.md (missing)" in err
    assert "notes.txt (not generated)" in err and "__pycache__" not in err
    assert "backprop-lab assign" in err


def test_write_replaces_a_generated_folder_whole(config, tmp_path):
    out = tmp_path / "assignment"
    first = write_assignment(out, config)
    (out / "stale.txt").write_text("left over")
    second = write_assignment(out, config)
    assert first == second and not (out / "stale.txt").exists()
    assert not [p for p in tmp_path.iterdir() if p.name != "assignment"], "temporary folders left behind"


def test_write_refuses_a_folder_it_did_not_generate(config, tmp_path):
    (tmp_path / "precious.py").write_text("my work")
    with pytest.raises(UserError, match="refusing to replace"):
        write_assignment(tmp_path, config)
    assert (tmp_path / "precious.py").read_text() == "my work"


def test_writer_refuses_a_leaking_reference(config, tmp_path):
    """Would a solution line that also sits outside the markers stop the writer?"""
    source = (SOLUTIONS_DIR / "mlp.py").read_text()
    leaky = source.replace("import numpy as np\n", "import numpy as np\n# shifted = logits - logits.max(axis=1, "
                           "keepdims=True)\n", 1)
    (tmp_path / "mlp.py").write_text(leaky)
    with pytest.raises(UserError, match="leak"):
        render_assignment(config, tmp_path)


# ---------------------------------------------------------------------------------------------
# the notebook runs top to bottom against the reference (real MNIST)
# ---------------------------------------------------------------------------------------------
def _mnist_available() -> str | None:
    """None when the notebook can load MNIST here, else the reason it cannot."""
    if os.environ.get("BACKPROP_LAB_MNIST"):
        return None
    try:
        from autograder.mnist import load_mnist
        load_mnist()
    except Exception as exc:  # no data layer, no cache, no network
        return f"MNIST unavailable ({exc}); run `backprop-lab data fetch` or set BACKPROP_LAB_MNIST"
    return None


HP_LINE = "HYPERPARAMS = dict(SUGGESTED_HYPERPARAMS[ACTIVATION])"


@pytest.mark.slow
def test_notebook_runs_top_to_bottom_against_the_reference(config, tmp_path, monkeypatch):
    from nbclient import NotebookClient

    reason = _mnist_available()
    if reason:
        pytest.skip(reason)
    monkeypatch.delenv("MPLBACKEND", raising=False)
    for name in ("backprop_lab.ipynb", "gradcheck.py"):
        shutil.copy(ASSIGNMENT_DIR / name, tmp_path / name)
    reference = (SOLUTIONS_DIR / "mlp.py").read_text()
    # One epoch instead of the suggested three: the reference is under the target within its first
    # epoch (its time to target is well under a second), and every cell still runs.
    one_epoch = reference.replace('ACTIVATION = "relu"', f'ACTIVATION = "{config.activation}"').replace(
        HP_LINE, HP_LINE + '\nHYPERPARAMS["epochs"] = 1')
    assert one_epoch.count('HYPERPARAMS["epochs"] = 1') == 1
    (tmp_path / "mlp.py").write_text(one_epoch)
    nb = nbformat.read(tmp_path / "backprop_lab.ipynb", as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell("assert final_test_error < TARGET, final_test_error"))
    NotebookClient(nb, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert text.count("  ok") == 4 and "WRONG" not in text, text
    assert "test error of the checkpoint" in text
    assert any("image/png" in o.get("data", {}) for o in outputs), "the learning-curve plot is missing"
