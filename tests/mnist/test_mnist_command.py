"""The data command (autograder.mnist.command): `backprop-lab data fetch | verify` and data/fetch.py."""
from __future__ import annotations

from pathlib import Path

import pytest

from autograder import mnist
from autograder.cli import main


def test_cli_fetch_and_verify(pkl_source, capsys):
    assert main(["data", "fetch"]) == 0
    out = capsys.readouterr().out
    assert str(mnist.mnist_dir()) in out
    assert "train     50 examples" in out and "valid     10" in out and "test      10" in out
    assert main(["data", "verify"]) == 0
    out = capsys.readouterr().out
    assert out.count("OK  ") == 6 and "MNIST cache OK" in out


@pytest.mark.parametrize("argv, setup, words", [
    (["data", "verify"], None, "no MNIST cache"),
    (["data", "fetch"], None, "no network"),
    (["data", "fetch"], "nowhere", "does not exist"),
])
def test_cli_errors_exit_2_with_one_line(monkeypatch, tmp_path, capsys, argv, setup, words):
    if setup == "nowhere":
        monkeypatch.setenv("BACKPROP_LAB_MNIST", str(tmp_path / "missing.pkl.gz"))
    assert main(argv) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("backprop-lab: error: ") and words in lines[0]


def test_cli_verify_names_the_bad_file(pkl_source, capsys):
    main(["data", "fetch"])
    X_path, _ = mnist.split_paths("test")
    X_path.write_bytes(X_path.read_bytes()[:-8])
    capsys.readouterr()
    assert main(["data", "verify"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "test/X.npy" in err and "backprop-lab data fetch" in err


def test_data_fetch_script(pkl_source, capsys):
    import runpy
    script = Path(__file__).resolve().parents[2] / "data" / "fetch.py"
    with pytest.raises(SystemExit) as exit_:
        runpy.run_path(str(script), run_name="__main__")
    assert exit_.value.code == 0
    assert str(mnist.mnist_dir()) in capsys.readouterr().out
