"""The LFW functa sweep end to end on a tiny budget (SIREN runs: the QIREN path is covered by the other tests)."""
import json

import pytest
from PIL import Image

from research.functa_lfw.sweep import Run, parse_run, run_lfw_sweep


@pytest.fixture(autouse=True)
def _fresh_accelerate_state():
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(True)
    yield
    AcceleratorState._reset_state(True)


def test_sweep_writes_report_tables_and_figures(tmp_path):
    runs = [Run("siren", "shift", 4), Run("siren", "film", 8)]
    results = run_lfw_sweep(tmp_path / "work", tmp_path / "docs", runs, steps=3, resolution=8, batch_size=4,
                            command="python scripts/research/functa_lfw/functa_lfw_sweep.py --steps 3")
    assert [r["run"] for r in results] == ["siren-shift-z4-fo", "siren-film-z8-fo"]
    assert all(r["steps"] == 3 and 0 < r["psnr_25"] < 60 for r in results)
    report = (tmp_path / "docs" / "functa_lfw.md").read_text()
    assert "siren-film-z8-fo" in report and "--steps 3" in report
    figure = tmp_path / "docs" / "figures" / "functa_lfw_siren.png"
    assert figure.stat().st_size < 1_000_000 and Image.open(figure).size[0] > 100
    saved = json.loads((tmp_path / "docs" / "functa_lfw_results.json").read_text())
    assert saved[1]["latent_dim"] == 8


def test_parse_run():
    assert parse_run("qiren:angles:16:so") == Run("qiren", "angles", 16, first_order=False)
    assert parse_run("siren:shift:64").first_order
    with pytest.raises(ValueError, match="decoder:modulation:latent_dim"):
        parse_run("qiren-shift-16")


def test_parse_run_with_steps():
    run = parse_run("siren:shift:16:fo:3000")
    assert run.steps == 3000 and run.name == "siren-shift-z16-fo-s3000"
