"""The qiren-gen command: real subprocess runs, one-line errors, exit codes."""
from __future__ import annotations

import json
import subprocess
import sys


def run_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "qiren_gen.cli", *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def test_params_json():
    proc = run_cli("params", "--json")
    assert proc.returncode == 0, proc.stderr
    table = json.loads(proc.stdout)
    assert table["qiren"] == 657


def test_bad_value_is_one_line_exit_2():
    proc = run_cli("params", "--in-features", "0")
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "error" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_unknown_subcommand_exit_2():
    proc = run_cli("no-such-command")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
