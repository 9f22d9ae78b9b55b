"""The README works as a newcomer pastes it: in a fresh copy of the repository, its blocks run top to bottom, in
order, in one shell after the first (set-up) command, and they leave no file behind outside ``outputs/``.

The set-up command's install part is the one step not repeated here (the tests run inside that install already);
what follows it in the command runs. A block that cannot run here starts with ``# requires: WHAT`` (network, the Hub,
a server that runs until Ctrl-C, the test suite itself) and is left out, as the docs tests leave out such blocks.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
OUTPUT_FOLDER = "outputs"
INSTALL = re.compile(r"^python3 -m venv \.venv && \.venv/bin/pip install -e [^&]+&& ")
RUNNABLE = ("bash", "sh", "python")
TIMEOUT_S = 1800


def readme_blocks(text: str) -> list[tuple[int, str, str]]:
    """Every fenced block of the README as ``(line, language, code)``, in order."""
    blocks, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        opening = re.fullmatch(r"```([\w+-]*)\s*", lines[i])
        if opening is None:
            i += 1
            continue
        end = next(j for j in range(i + 1, len(lines)) if lines[j].strip() == "```")
        blocks.append((i + 1, opening.group(1), "\n".join(lines[i + 1: end]) + "\n"))
        i = end + 1
    return blocks


def requirement(code: str) -> str | None:
    """What a block needs that a test cannot have (its ``# requires: ...`` first line), or None."""
    first = code.lstrip().splitlines()[0] if code.strip() else ""
    found = re.match(r"#\s*requires:\s*(.+)", first)
    return found.group(1).strip() if found else None


def setup_commands(code: str) -> list[str]:
    """The command lines (not comments) of the README's first block: install + sample, install + tests."""
    return [line for line in code.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def readme_script(text: str, scratch: Path) -> tuple[str, list[str]]:
    """The README as one bash script (python blocks run from files in ``scratch``, outside the copy), and the
    ``# requires:`` lines of the blocks it leaves out."""
    blocks = [b for b in readme_blocks(text) if b[1] in RUNNABLE]
    first = setup_commands(blocks[0][2])
    assert INSTALL.match(first[0]), f"the README's first command is not the install: {first[0]}"
    parts, left_out = ["set -euo pipefail", INSTALL.sub("", first[0])], []
    for line, language, code in blocks[1:]:
        if requirement(code):
            left_out.append(f"README.md:{line}: {requirement(code)}")
            continue
        if language == "python":
            path = scratch / f"readme_block_{line}.py"
            path.write_text(code)
            parts.append(f'echo "--- README.md:{line} (python)" >&2\npython {path}')
        else:
            parts.append(f'echo "--- README.md:{line}" >&2\n{code}')
    return "\n".join(parts) + "\n", left_out


def fresh_copy(target: Path) -> None:
    """The repository's files (tracked, and new ones git does not ignore) copied to ``target``, as a git repository
    whose one commit holds them all: ``git status`` there then shows what the README's commands left behind."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                            capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = REPO / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    git = ["git", "-c", "user.name=readme", "-c", "user.email=readme@example.invalid", "-c", "commit.gpgsign=false"]
    for command in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "fresh copy"]):
        subprocess.run(git + command, cwd=target, check=True, capture_output=True)


def link_environment(copy: Path) -> None:
    """``copy/.venv``: this test's own virtualenv (the set-up command's install), or, outside one, an ``activate``
    that puts this interpreter first on ``PATH``."""
    if (Path(sys.prefix) / "bin" / "activate").is_file():
        (copy / ".venv").symlink_to(sys.prefix, target_is_directory=True)
        return
    (copy / ".venv" / "bin").mkdir(parents=True)
    (copy / ".venv" / "bin" / "activate").write_text(f'export PATH="{Path(sys.executable).parent}:$PATH"\n')


def left_behind(copy: Path) -> list[str]:
    """Files the run added or changed outside ``outputs/`` (untracked, ignored or modified), byte-code caches and
    the linked virtualenv aside."""
    status = subprocess.run(["git", "status", "--porcelain", "--ignored", "--untracked-files=all"], cwd=copy,
                            capture_output=True, text=True, check=True).stdout.splitlines()
    paths = [line[3:] for line in status]
    return [p for p in paths if not p.startswith((f"{OUTPUT_FOLDER}/", ".venv"))
            and "__pycache__/" not in p and not p.endswith(".pyc")]


def test_readme_first_block_is_the_two_setup_commands_and_the_second_is_what_ci_runs():
    commands = setup_commands(readme_blocks(README.read_text())[0][2])
    assert len(commands) == 2 and all(INSTALL.match(c) for c in commands), commands
    ci = (REPO / ".ci" / "run").read_text()
    for step in INSTALL.sub("", commands[1]).split(" && "):
        assert step in ci, f"the README's test command runs {step!r}, which .ci/run does not"
    assert INSTALL.sub("", commands[1]).split(" && ") == [".venv/bin/ruff check .",
                                                          "RUN_SLOW=1 .venv/bin/python -m pytest -q"]


def test_readme_outputs_go_under_the_ignored_output_folder(tmp_path):
    ignored = (REPO / ".gitignore").read_text().split()
    assert f"{OUTPUT_FOLDER}/" in ignored
    script, _ = readme_script(README.read_text(), tmp_path)
    written = re.findall(r"--(?:output|output_dir|output-dir)[ =](\S+)", script)
    assert written and all(w.startswith(f"{OUTPUT_FOLDER}/") for w in written), written
    assert len(set(written)) == len(written), f"two blocks write the same output: {written}"


@pytest.mark.slow
def test_readme_runs_top_to_bottom_in_one_shell_in_a_fresh_copy(tmp_path):
    copy, scratch = tmp_path / "qiren-gen", tmp_path / "scratch"
    copy.mkdir()
    scratch.mkdir()
    fresh_copy(copy)
    link_environment(copy)
    script, left_out = readme_script((copy / "README.md").read_text(), scratch)
    (scratch / "readme.sh").write_text(script)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "OMP_NUM_THREADS": "1",
           "PYTHONPATH": str(copy)}  # the copy's package, not the checkout the virtualenv installed
    env.pop("RUN_SLOW", None)
    result = subprocess.run(["bash", str(scratch / "readme.sh")], cwd=copy, env=env, capture_output=True, text=True,
                            timeout=TIMEOUT_S)
    assert result.returncode == 0, f"the README stopped (left out: {left_out}):\n{result.stderr[-4000:]}"
    ran = result.stderr.count("--- README.md:")
    assert ran >= 8, f"only {ran} blocks ran; left out: {left_out}"
    assert (copy / OUTPUT_FOLDER / "faces.png").is_file()
    assert (copy / OUTPUT_FOLDER / "my-faces-pipeline" / "model_index.json").is_file()
    assert left_behind(copy) == [], f"the README left files outside {OUTPUT_FOLDER}/: {left_behind(copy)}"
