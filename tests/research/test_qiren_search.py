"""The QIREN variant search end to end on tiny fits: resumable cache, ranking, report and figures."""
import json

import numpy as np
import pytest

from research.commands import portable_command
from research.qiren_search.report import final_variants, write_search_report
from research.qiren_search.search import ALL_VARIANTS, band_errors, load_records, parameter_count, run_search

pytestmark = pytest.mark.usefixtures("one_thread")


def test_search_resumes_ranks_and_reports(tmp_path):
    cache = tmp_path / "cache"
    tiny = dict(steps=2, progress=False, size=6)
    new = run_search(["qiren", "siren"], ["camera", "astronaut", "coffee"], [0, 1, 2], cache, **tiny)
    new += run_search(["s3"], ["camera"], [0], cache, **tiny)  # screened only
    assert len(new) == 19 and len(list(cache.glob("*.json"))) == 19
    assert run_search(["qiren", "siren"], ["camera"], [0], cache, **tiny) == []  # all cached
    (cache / "qiren__camera__s2__t2.json").unlink()  # a fit lost to a kill: only it runs again
    assert [r["variant"] for r in run_search(["qiren"], ["camera"], [2], cache, **tiny)] == ["qiren"]
    record = json.loads((cache / "qiren__coffee__s1__t2.json").read_text())
    assert record["params"] == 657 and len(record["band_errors"]) == 4 and record["superres_mse"] > 0

    carried = final_variants(cache, 1)
    assert carried[0] in ("s3", "qiren") and {"qiren", "siren", "siren-omega1", "relu-rff"} <= set(carried)
    path = write_search_report(cache, tmp_path / "docs",
                               "python scripts/research/qiren_search/search_qiren.py final --top 1")
    text = path.read_text()
    for heading in ("## Summary", "## Every variant with all tasks", "### Where the gap is", "## Screening",
                    "## Spectrum coverage", "## Variants"):
        assert heading in text
    assert "Best QIREN variant" in text and "| siren |" in text
    for fig in ("qiren_search_error_vs_params", "qiren_search_spectrum"):
        assert (tmp_path / "docs" / "figures" / f"{fig}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(load_records(cache)) == 19


def test_baselines_sizes_and_long_fits_report(tmp_path):
    """The authors'-SIREN section, the rate-distortion figure and longer fits cached apart, on tiny fits."""
    from research.paper.baselines import NEEDED, carried_section, write_baselines_section
    from research.qiren_search.rate_distortion import params_for_psnr, task_psnr
    from research.qiren_search.search import SIZE_FAMILIES

    cache = tmp_path / "cache"
    tiny = dict(progress=False, size=6)
    images = ["astronaut", "camera", "coffee"]
    run_search(list(NEEDED), images, [0], cache, steps=2, **tiny)
    run_search([n for f in SIZE_FAMILIES.values() for n in f][:2] + ["t1.5-r3-q4", "t1.5-r3"], images, [0], cache,
               steps=2, **tiny)
    run_search(["siren", "t1.5-r3-q4"], ["camera"], [0], cache, steps=3, **tiny)
    assert (cache / "siren__camera__s0__t3.json").exists() and (cache / "siren__camera__s0__t2.json").exists()
    doc = tmp_path / "docs" / "paper_reproduction.md"
    doc.parent.mkdir()
    doc.write_text("# head\n\nbody\n")
    records = load_records(cache)
    for _ in range(2):  # replaces its own section, never duplicates it
        write_baselines_section(records, doc, "python scripts/research/qiren_search/search_qiren.py baselines")
    text = doc.read_text()
    assert text.count("## The paper's SIREN baseline") == 1 and text.startswith("# head")
    assert "siren-authors" in text and "reproduce" in text and carried_section(doc).startswith("<!-- siren")
    report = write_search_report(cache, tmp_path / "docs",
                                 "python scripts/research/qiren_search/search_qiren.py report").read_text()
    assert "## Rate-distortion" in report and "## At 3 steps" in report
    assert (tmp_path / "docs" / "figures" / "qiren_search_rate_distortion.png").read_bytes()[:4] == b"\x89PNG"
    assert task_psnr(4e-2) == pytest.approx(20.0)
    points = [(100, 20.0), (1000, 30.0)]
    assert params_for_psnr(points, 25.0) == pytest.approx(np.sqrt(100 * 1000))
    assert params_for_psnr(points, 31.0) is None and params_for_psnr(points, 10.0) == 100


def test_search_needs_the_clip_for_bach_and_known_variants(tmp_path):
    with pytest.raises(ValueError, match="needs --bach"):
        run_search(["qiren"], ["bach"], [0], tmp_path, progress=False)
    with pytest.raises(ValueError, match="unknown variant 'nope'"):
        run_search(["nope"], ["camera"], [0], tmp_path, progress=False)


def test_every_searched_qiren_fits_the_parameter_budget():
    siren = parameter_count(ALL_VARIANTS["siren"], 2), parameter_count(ALL_VARIANTS["siren"], 1)
    for v in ALL_VARIANTS.values():
        if v.name == "siren-w28":  # the rate-distortion sweep's one point past the budget
            continue
        assert parameter_count(v, 2) <= siren[0] and parameter_count(v, 1) <= siren[1], v.name


def test_band_errors_measure_spectrum_coverage():
    rng = np.random.default_rng(0)
    target = rng.standard_normal((16, 16))
    assert band_errors(target, target) == [0.0] * 4
    assert band_errors(np.zeros_like(target) + target.mean(), target) == pytest.approx([1.0] * 4)
    low_pass = np.hypot(*np.meshgrid(np.fft.fftfreq(16), np.fft.fftfreq(16))) < 0.2
    smooth = np.fft.ifft2(np.fft.fft2(target) * low_pass).real
    low, *_, high = band_errors(smooth, target)
    assert low < 0.05 and high == pytest.approx(1.0)


def test_portable_command_names_files_not_folders():
    assert portable_command("scripts/x.py", ["--bach", "/work/data/gt_bach.wav", "--seeds", "0"]) == \
        "python scripts/x.py --bach gt_bach.wav --seeds 0"
