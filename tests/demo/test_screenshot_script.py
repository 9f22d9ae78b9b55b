"""``scripts/screenshot_demo.py`` without its optional tool: one line naming the extra that installs it, exit 2,
before any demo starts."""
from __future__ import annotations

import runpy
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_without_selenium_the_script_names_the_extra(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "selenium", None)  # as if not installed
    script = runpy.run_path(str(REPO / "scripts" / "screenshot_demo.py"))
    assert script["main"](["--output", str(REPO / "never-written.png")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("screenshot_demo: error: needs selenium") and "[screenshots]" in err[0]
    assert not (REPO / "never-written.png").exists()


def test_the_screenshots_extra_installs_selenium():
    line = next(x for x in (REPO / "pyproject.toml").read_text().splitlines() if x.startswith("screenshots = "))
    assert '"selenium>=' in line and '"qiren-gen[demo]"' in line, line
