"""The paper-reproduction driver end to end on a tiny configuration: jobs, fits, report and figures."""
import numpy as np
import pytest
from scipy.io import wavfile

from research.paper.report import write_report
from research.paper.suite import make_jobs, run_suite


def test_tiny_suite_writes_report(tmp_path):
    t = np.arange(26000) / 44100
    wavfile.write(tmp_path / "clip.wav", 44100, (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32))
    jobs = make_jobs(str(tmp_path / "clip.wav"), seeds=[0, 1], steps=2, models=("qiren", "siren", "tanh"),
                     images=("camera",), size=6)
    assert len(jobs) == 3 * 2 * 2 and jobs[0].model == "qiren"
    sound = [j for j in jobs if j.kind == "sound"][0]
    assert sound.signal.shape == (1000,) and np.abs(sound.signal).max() == pytest.approx(1.0)
    results, wall = run_suite(jobs, workers=1, progress=False)
    assert len(results) == len(jobs) and wall > 0
    image_results = [r for r in results if r.kind == "image"]
    assert all(r.superres.shape == (12, 12) and r.superres_mse is not None for r in image_results)
    path = write_report(results, jobs, wall, tmp_path / "docs", [0, 1], 2, 1, "test")
    text = path.read_text()
    for heading in ("## Sound fitting", "## Image fitting", "## Superresolution", "## Time", "35.1%"):
        assert heading in text
    for fig in ("fig4_sound", "fig5_image_fitting", "fig7_relative_error", "fig8_superres"):
        png = tmp_path / "docs" / "figures" / f"{fig}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the SIREN-baselines section (written by scripts/research/qiren_search/search_qiren.py) survives a rewrite of the
    # main report
    path.write_text(text + "\n<!-- siren baselines: start -->\nkept section\n<!-- siren baselines: end -->\n")
    text = write_report(results, jobs, wall, tmp_path / "docs", [0, 1], 2, 1, "test").read_text()
    assert text.count("kept section") == 1 and "## Sound fitting" in text
