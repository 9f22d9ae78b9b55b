"""The Space folder: ``app.py`` + ``requirements.txt`` + card beside a copy of the pipeline, and ``python app.py``
serves the same demo (on the port a Space gives it) without the field that loads other pipelines."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError
from PIL import Image

from qiren_gen.demo.space import write_space
from qiren_gen.pipelines import bundled_pipeline_dir
from testing_utils import free_port as _free_port
from testing_utils import sigint_stops_the_child

REPO = Path(__file__).resolve().parents[2]


def test_space_for_a_hub_id_names_it(tmp_path):
    out = write_space(tmp_path / "hub", hub_id="someone/qiren-faces")
    assert "PIPELINE = 'someone/qiren-faces'" in (out / "app.py").read_text()
    assert "models:\n- someone/qiren-faces" in (out / "README.md").read_text()
    assert not (out / "pipeline").exists()
    with pytest.raises(OSError, match="not an empty folder"):
        write_space(out, hub_id="someone/qiren-faces")
    with pytest.raises(OSError, match="no pipeline folder"):
        write_space(tmp_path / "bad", pipeline=tmp_path / "missing")
    assert not (tmp_path / "bad").exists()


def test_space_folder_holds_the_app_its_card_its_requirements_and_the_pipeline(tmp_path):
    out = write_space(tmp_path / "space")
    assert (out / "requirements.txt").read_text() == "qiren-gen[demo]\n"
    card = (out / "README.md").read_text()
    assert "sdk: gradio" in card and "app_file: app.py" in card
    compile((out / "app.py").read_text(), str(out / "app.py"), "exec")  # the app the Space runs is valid Python
    copied = sorted(str(p.relative_to(out / "pipeline")) for p in (out / "pipeline").rglob("*") if p.is_file())
    original = sorted(str(p.relative_to(bundled_pipeline_dir())) for p in bundled_pipeline_dir().rglob("*")
                      if p.is_file())
    assert copied == original


@pytest.mark.slow
def test_space_folder_runs_the_demo(tmp_path):
    out = write_space(tmp_path / "space")
    assert (out / "requirements.txt").read_text() == "qiren-gen[demo]\n"
    card = (out / "README.md").read_text()
    assert "sdk: gradio" in card and "app_file: app.py" in card
    copied = sorted(str(p.relative_to(out / "pipeline")) for p in (out / "pipeline").rglob("*") if p.is_file())
    original = sorted(str(p.relative_to(bundled_pipeline_dir())) for p in bundled_pipeline_dir().rglob("*")
                      if p.is_file())
    assert copied == original
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1",
           "GRADIO_SERVER_PORT": str(port), "TMPDIR": str(tmp_path)}
    env.pop("GRADIO_SERVER_NAME", None)
    proc = subprocess.Popen([sys.executable, "app.py"], cwd=out, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, preexec_fn=sigint_stops_the_child)
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True).start()
    try:
        deadline = time.monotonic() + 120
        while not any(line.startswith("serving http://127.0.0.1:") for line in lines):
            assert proc.poll() is None and time.monotonic() < deadline, "".join(lines[-5:])
            time.sleep(0.2)
        client = Client(f"http://127.0.0.1:{port}/", download_files=str(tmp_path / "dl"), verbose=False)
        assert Image.open(client.predict("", 0, 1, 8, 2, api_name="/sample")).size == (8, 8)
        with pytest.raises(AppError, match="serves only its own pipeline"):
            client.predict("someone/else", 0, 1, 8, 2, api_name="/sample")
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
