"""A study's report-only mode never shrinks its page: without its cache it refuses in one line with exit code 2 and
leaves the page, byte for byte, as it was; a page's hand-written notes survive a rewrite."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from research.decoder_capacity.capacity import main

REPO = Path(__file__).resolve().parents[2]
CAPACITY = REPO / "scripts" / "research" / "decoder_capacity" / "decoder_capacity.py"


def run_capacity(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(CAPACITY), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600)


@pytest.fixture
def page(tmp_path) -> Path:
    """A copy of the committed decoder-capacity page and its JSON in a scratch docs folder."""
    docs = tmp_path / "docs"
    docs.mkdir()
    for name in ("decoder_capacity.md", "decoder_capacity.json"):
        shutil.copy(REPO / "docs" / "research" / name, docs / name)
    return docs / "decoder_capacity.md"


@pytest.mark.slow
def test_report_only_without_runs_refuses_in_one_line(tmp_path, page):
    before = page.read_bytes()
    result = run_capacity("--work_dir", str(tmp_path / "runs"), "--docs_dir", str(page.parent), "--report_only",
                          cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "no finished runs" in result.stderr
    assert page.read_bytes() == before
    assert not (tmp_path / "runs").exists()  # nothing created either


@pytest.mark.slow
def test_report_only_with_fewer_runs_than_the_page_refuses(tmp_path, page):
    runs = tmp_path / "runs"
    (runs / "siren-z32-s1500").mkdir(parents=True)  # a run killed early: its summary is not of 1500 steps
    (runs / "siren-z32-s1500" / "train_summary.json").write_text(json.dumps({"steps": 7}))
    before = page.read_bytes(), (page.parent / "decoder_capacity.json").read_bytes()
    result = run_capacity("--work_dir", str(runs), "--docs_dir", str(page.parent), "--families", "siren",
                          "--latents", "32", "--report_only", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "with less than it has" in result.stderr
    assert (page.read_bytes(), (page.parent / "decoder_capacity.json").read_bytes()) == before


def test_report_only_refusals_in_process(tmp_path, page, capsys):
    """The two refusals above through the script's ``main`` in this process (fast tier)."""
    common = ["--docs_dir", str(page.parent), "--report_only", "--threads", str(torch.get_num_threads())]
    before = page.read_bytes(), (page.parent / "decoder_capacity.json").read_bytes()
    assert main(["--work_dir", str(tmp_path / "empty"), *common]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "no finished runs" in err
    assert not (tmp_path / "empty").exists()
    runs = tmp_path / "runs"
    (runs / "siren-z32-s1500").mkdir(parents=True)
    (runs / "siren-z32-s1500" / "train_summary.json").write_text(json.dumps({"steps": 7}))
    assert main(["--work_dir", str(runs), "--families", "siren", "--latents", "32", *common]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "with less than it has" in err
    assert (page.read_bytes(), (page.parent / "decoder_capacity.json").read_bytes()) == before


def test_notes_block_survives_a_rewrite(tmp_path):
    from research.decoder_capacity.capacity import report_text
    from research.pages import NOTES_END, NOTES_START

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "decoder_capacity.md").write_text(f"old\n\n{NOTES_START}\nA hand-written finding.\n{NOTES_END}\n")
    rows = [{"family": "PCA-32", "latent_dim": 32, "quantum": False, "decoder_parameters": None, "steps": None,
             "median_step_seconds": None, "train_psnr": 22.1, "heldout_psnr": 20.5}]
    text = report_text(docs, rows, "python scripts/research/decoder_capacity/decoder_capacity.py")
    assert f"{NOTES_START}\nA hand-written finding.\n{NOTES_END}" in text
    assert "| PCA-32 | 32 |" in text
