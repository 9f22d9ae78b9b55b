"""The qiren-gen command: one-line errors and exit codes, in this process (fast) and as a real subprocess (slow)."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from qiren_gen.cli import main


def run_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "qiren_gen.cli", *args], capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.mark.slow
def test_params_json():
    proc = run_cli("params", "--json")
    assert proc.returncode == 0, proc.stderr
    table = json.loads(proc.stdout)
    assert table["qiren"] == 657


@pytest.mark.slow
def test_bad_value_is_one_line_exit_2():
    proc = run_cli("params", "--in-features", "0")
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "error" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.slow
def test_unknown_subcommand_exit_2():
    proc = run_cli("no-such-command")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr


# The same three checks in this process (fast tier): ``main`` returns the exit code, argparse's own errors exit.


def test_params_json_in_process(capsys):
    assert main(["params", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["qiren"] == 657


def test_bad_value_is_one_line_exit_2_in_process(capsys):
    assert main(["params", "--in-features", "0"]) == 2
    err = capsys.readouterr().err
    assert err.strip().count("\n") == 0 and "error" in err and "Traceback" not in err


def test_unknown_subcommand_exit_2_in_process(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["no-such-command"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.strip().count("\n") == 0 and "no-such-command" in err
