"""The docs cannot go stale: the site builds with warnings as errors, every Python block of README.md and docs/ runs
as pasted (alone, offline, in a fresh process), every command block marked ``<!-- test-command -->`` runs, and no
page cites a file the repository lacks.

A Python block that cannot run here starts with a marker line, ``# requires: hub`` (network, a Hub account) or
``# requires: gpu``; it is compiled, not run, and a block that needs either without the marker fails this test.
Blocks run from a fresh temporary folder that holds links to the checkout's ``pipelines/`` and ``scripts/``, as the
docs say to run them from the checkout's root.
"""
from __future__ import annotations

import argparse
import os
import re
import runpy
import shlex
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
MARKERS = ("hub", "gpu")
TEST_COMMAND = "<!-- test-command -->"
CITED_PATH = re.compile(r"(?<![\w./-])((?:scripts|qiren_gen|tests|docs|pipelines)/[\w./-]*\.(?:py|md|json|png|yml))")
TIMEOUT_S = 300


@dataclass(frozen=True)
class Block:
    """A fenced code block of a page: its language, its text, where it starts, and whether it is marked to run."""

    page: Path
    line: int
    language: str
    code: str
    test_command: bool

    @property
    def name(self) -> str:
        return f"{self.page.relative_to(REPO)}:{self.line}"

    @property
    def marker(self) -> str | None:
        first = self.code.lstrip().splitlines()[0] if self.code.strip() else ""
        found = re.fullmatch(r"#\s*requires:\s*(\S+)\s*", first)
        return found.group(1) if found else None


def read_blocks(page: Path) -> list[Block]:
    """Every fenced block of ``page`` (```` ```lang ```` ... ```` ``` ````)."""
    blocks, lines = [], page.read_text().splitlines()
    i = 0
    while i < len(lines):
        opening = re.fullmatch(r"```([\w+-]*)\s*", lines[i])
        if opening is None:
            i += 1
            continue
        end = next(j for j in range(i + 1, len(lines)) if lines[j].strip() == "```")
        before = next((lines[j].strip() for j in range(i - 1, -1, -1) if lines[j].strip()), "")
        blocks.append(Block(page, i + 1, opening.group(1), "\n".join(lines[i + 1: end]) + "\n", before == TEST_COMMAND))
        i = end + 1
    return blocks


BLOCKS = [b for page in PAGES for b in read_blocks(page)]
PYTHON = [b for b in BLOCKS if b.language == "python"]
COMMANDS = [b for b in BLOCKS if b.test_command]


def needs(block: Block) -> set[str]:
    """What a block needs that this machine lacks: the Hub (an upload, or a Hub id that is not a local folder)."""
    found = set()
    hub_id = re.search(r"from_pretrained\(\s*[\"'](?!pipelines/|my-)[\w.-]+/[\w.-]+[\"']", block.code)
    if "push_to_hub" in block.code or hub_id:
        found.add("hub")
    if re.search(r"[\"']cuda", block.code):
        found.add("gpu")
    return found


def run_block(block: Block, workdir: Path) -> subprocess.CompletedProcess:
    """Run ``block`` alone in a fresh process from ``workdir`` (offline; the venv's programs first on PATH)."""
    workdir.mkdir(parents=True)
    for name in ("pipelines", "scripts"):
        (workdir / name).symlink_to(REPO / name, target_is_directory=True)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "OMP_NUM_THREADS": "1",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    if block.language == "python":
        (workdir / "block.py").write_text(block.code)
        argv = [sys.executable, "block.py"]
    else:
        (workdir / "block.sh").write_text("set -euo pipefail\n" + block.code)
        argv = ["bash", "block.sh"]
    try:
        return subprocess.run(argv, cwd=workdir, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        return subprocess.CompletedProcess(argv, 124, "", f"timed out after {TIMEOUT_S} s: {exc}")


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> dict[str, subprocess.CompletedProcess]:
    """Every runnable block's result, run side by side (a few processes at a time: each one imports torch)."""
    runnable = [b for b in PYTHON if b.marker is None] + COMMANDS
    root = tmp_path_factory.mktemp("docs-blocks")
    with ThreadPoolExecutor(max_workers=max(1, min(4, os.cpu_count() or 1))) as pool:
        done = pool.map(lambda ib: run_block(ib[1], root / f"block{ib[0]}"), enumerate(runnable))
        return {b.name: r for b, r in zip(runnable, done, strict=True)}


def test_pages_have_blocks_to_test():
    assert len(PYTHON) >= 10 and len(COMMANDS) >= 5, (len(PYTHON), len(COMMANDS))


@pytest.mark.parametrize("block", PYTHON, ids=[b.name for b in PYTHON])
def test_python_block_compiles_and_declares_what_it_needs(block):
    compile(block.code, block.name, "exec")  # every block, marked or not, is valid Python
    missing = needs(block) - ({block.marker} if block.marker else set())
    assert not missing, f"{block.name} needs {sorted(missing)}: start it with '# requires: {sorted(missing)[0]}'"
    assert block.marker in (None, *MARKERS), f"{block.name}: unknown marker {block.marker!r} (known: {MARKERS})"


@pytest.mark.slow
@pytest.mark.parametrize("block", PYTHON, ids=[b.name for b in PYTHON])
def test_python_block_runs_as_pasted(block, results):
    compile(block.code, block.name, "exec")  # every block, marked or not, is valid Python
    missing = needs(block) - ({block.marker} if block.marker else set())
    assert not missing, f"{block.name} needs {sorted(missing)}: start it with '# requires: {sorted(missing)[0]}'"
    if block.marker is not None:
        assert block.marker in MARKERS, f"{block.name}: unknown marker {block.marker!r} (known: {MARKERS})"
        return
    result = results[block.name]
    assert result.returncode == 0, f"{block.name} failed:\n{block.code}\n{result.stderr[-3000:]}"


def test_marked_commands_are_shell_blocks():
    assert [b.name for b in COMMANDS if b.language not in ("bash", "sh", "console")] == []


@pytest.mark.slow
@pytest.mark.parametrize("block", COMMANDS, ids=[b.name for b in COMMANDS])
def test_marked_commands_run(block, results):
    assert block.language in ("bash", "sh", "console"), f"{block.name}: a test-command must mark a shell block"
    result = results[block.name]
    assert result.returncode == 0, f"{block.name} failed:\n{block.code}\n{result.stderr[-3000:]}"


@pytest.mark.slow
def test_site_builds_with_warnings_as_errors(tmp_path):
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file",
                             str(REPO / "mkdocs.yml"), "--site-dir", str(tmp_path / "site")],
                            cwd=REPO, capture_output=True, text=True, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert result.returncode == 0, result.stderr[-5000:]
    for page in ("reference/pipelines", "reference/models", "reference/quantum", "reference/functa",
                 "reference/training"):  # the API pages hold docstrings, not only their headings
        html = (tmp_path / "site" / page / "index.html").read_text()
        assert html.count("doc-heading") >= 3, page


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(REPO)) for p in PAGES])
def test_pages_cite_only_files_the_repository_has(page):
    text = page.read_text()
    missing = sorted({p for p in CITED_PATH.findall(text) if not (REPO / p).exists()})
    assert not missing, f"{page.relative_to(REPO)} cites files the repository lacks: {missing}"
    links = [t for t in re.findall(r"\]\(([^)\s#]+)", text) if not re.match(r"[a-z]+:", t)]
    broken = sorted(t for t in links if not (page.parent / t).exists())
    assert not broken, f"{page.relative_to(REPO)} links to files the repository lacks: {broken}"
    for banned in ("DESIGN.md", "../shared", "load average"):
        assert banned not in text, f"{page.relative_to(REPO)} mentions {banned!r}"


def as_program_argv(command: str) -> list[str] | None:
    """``qiren-gen ...`` or ``[accelerate launch ... | nice -n 10] python scripts/X.py ...`` as the program's argv
    (``scripts/X.py`` first); ``None`` for anything else, or for a command with a ``...`` in it."""
    try:
        argv = shlex.split(command, comments=True)
    except ValueError:
        return None
    script = next((i for i, a in enumerate(argv) if a.startswith("scripts/") and a.endswith(".py")), None)
    if script is not None and argv[0] in ("python", "accelerate", "nice"):
        argv = argv[script:]
    elif not argv or argv[0] != "qiren-gen":
        return None
    return None if "..." in argv else argv


def documented_commands() -> list[tuple[str, list[str]]]:
    """Every ``qiren-gen`` / ``python scripts/...`` command of the pages, as (where, argv): the lines of shell blocks
    (continuations joined), indented command lines (the research pages' "made by" lines) and inline code spans that
    are whole ``python scripts/...`` commands (one with a placeholder such as ``N`` or ``DIR`` is left out)."""
    found = []
    for block in BLOCKS:
        if block.language in ("bash", "sh"):
            for line in block.code.replace("\\\n", " ").splitlines():
                found += [(block.name, a) for a in map(as_program_argv, line.split("&&")) if a]
    for page in PAGES:
        if page.name == "bad_inputs.md":  # its commands are the bad inputs, refused on purpose
            continue
        text = page.read_text()
        where = str(page.relative_to(REPO))
        for line in re.findall(r"^    ((?:nice -n 10 )?python scripts/.*)$", text, flags=re.M):
            found += [(where, a) for a in [as_program_argv(line)] if a]
        for span in re.findall(r"(?<!`)`((?:nice -n 10 )?python scripts/[^`]+)`(?!`)", text):
            argv = as_program_argv(span.replace("\n", " "))
            if argv and not any(re.fullmatch(r"[A-Z][A-Z_]*", a) for a in argv):
                found.append((where, argv))
    unique = {(w, tuple(a)): a for w, a in found}
    return [(f"{w}: {' '.join(a)[:70]}", a) for (w, _), a in unique.items()]


DOCUMENTED = documented_commands()


class Parsed(Exception):
    """Raised in place of running a program once its command line has parsed."""


@pytest.mark.parametrize("argv", [a for _, a in DOCUMENTED], ids=[n for n, _ in DOCUMENTED])
def test_documented_command_lines_parse(argv, monkeypatch, capsys):
    """Every documented command's options exist and take the values shown (checked by the program's own argparse
    parser, stopped before it does any work), also for the commands too slow or too networked to run here."""
    parse_args = argparse.ArgumentParser.parse_args

    def parse_then_stop(self, args=None, namespace=None):
        raise Parsed(parse_args(self, args, namespace))

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", parse_then_stop)
    monkeypatch.setattr(sys, "argv", list(argv))
    monkeypatch.syspath_prepend(str(REPO / "scripts"))
    with pytest.raises(Parsed):
        try:
            if argv[0] == "qiren-gen":
                from qiren_gen.cli import main

                main(argv[1:])
            else:
                runpy.run_path(str(REPO / argv[0]), run_name="__main__")
        except SystemExit as exc:
            pytest.fail(f"{' '.join(argv)} does not parse: {capsys.readouterr().err.strip().splitlines()[-1:]} "
                        f"(exit {exc.code})")
