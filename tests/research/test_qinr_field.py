"""The quantum-INR field study: every family sized within each budget, the setting choice and ratios, and the
report-only mode's one-line refusal without a cache."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "research" / "qinr_field" / "qinr_field.py"


@pytest.mark.parametrize("budget", [660, 2640])
def test_every_family_fits_its_budget_and_the_next_size_would_not(budget):
    from research.qinr_field.field import FAMILIES, parameter_count, sized

    for family in FAMILIES:
        options, count = sized(family, budget)
        assert count == parameter_count(family.model, options) <= budget
        assert count > 0.8 * budget, family.name  # close to the budget: no family is starved
    assert sized(next(f for f in FAMILIES if f.name == "qiren"), 660)[1] == 657  # the paper's QIREN


def _record(row, signal, seed, lr, mse, hp=None):
    return {"key": f"{row}{signal}{seed}{lr}", "row": row, "budget": 660, "signal": signal, "seed": seed, "lr": lr,
            "hp": hp or {}, "mse": mse, "params": 600, "losses": [1.0, mse]}


def test_setting_choice_and_ratios_use_common_seeds():
    from research.qinr_field.report import cells, chosen_settings, geo_ratio

    records = []
    for signal, (a, b) in {"astronaut": (4.0, 2.0), "camera": (1.0, 3.0), "coffee": (2.0, 2.0)}.items():
        records += [_record("m", signal, 0, 0.01, a), _record("m", signal, 0, 0.03, b)]
        records += [_record("ref", signal, s, 0.003, 1.0) for s in (0, 1)]
    # geometric means: lr 0.01 -> (4*1*2)^(1/3) = 2, lr 0.03 -> (2*3*2)^(1/3) ~ 2.29: 0.01 wins
    assert chosen_settings(records, 660)["m"] == (0.01, {})
    table = cells(records, 660)
    assert geo_ratio(table, "m", "ref") == pytest.approx(2.0)
    assert set(table["ref"]["camera"]) == {0, 1}


def test_report_only_without_a_cache_refuses_in_one_line(tmp_path):
    doc = tmp_path / "page.md"
    doc.write_text("kept\n")
    done = subprocess.run([sys.executable, str(SCRIPT), "--report-only", "--cache", str(tmp_path / "none.jsonl"),
                           "--doc", str(doc)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1 and "no finished fits" in done.stderr
    assert doc.read_text() == "kept\n"
    bad = subprocess.run([sys.executable, str(SCRIPT), "--bach", str(tmp_path / "missing.wav")],
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "no such file" in bad.stderr and "Traceback" not in bad.stderr
