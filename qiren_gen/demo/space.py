"""A Hugging Face Space folder for a pipeline: ``app.py`` (the same demo), ``requirements.txt`` and a Space card.

The pipeline travels inside the Space (``pipeline/``, copied after the safe loader accepted it) or is named by its
Hub id. Pushing the folder as a Gradio Space runs ``python app.py``, which serves the demo on the address and port
the Space gives it (``GRADIO_SERVER_NAME`` / ``GRADIO_SERVER_PORT``), without the field that loads other pipelines.
"""
from __future__ import annotations

import os
import shutil
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from ..io.atomic import write_text
from ..pipelines import QirenGenerationPipeline, bundled_pipeline_dir

SPACE_PIPELINE_DIR = "pipeline"
_COPIED = (".json", ".safetensors", ".md")

APP_TEMPLATE = '''"""Hugging Face Space: the qiren-gen demo (Sample, Any resolution, Interpolate, Your image, Fit).

Run locally with `python app.py` (serves http://127.0.0.1:7860); a Space sets GRADIO_SERVER_NAME / _PORT.
"""
import os
from pathlib import Path

from qiren_gen.demo import serve_forever, start_demo

PIPELINE = {pipeline}


def main() -> None:
    running = start_demo(PIPELINE, host=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
                         port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")), allow_other_pipelines=False)
    print(f"serving {{running.url}}", flush=True)
    serve_forever(running)


if __name__ == "__main__":
    main()
'''

CARD_TEMPLATE = """---
title: {title}
emoji: ⚛️
colorFrom: indigo
colorTo: gray
sdk: gradio
sdk_version: {gradio_version}
app_file: app.py
pinned: false
license: apache-2.0
{models}---

# {title}

Interactive demo of a QIREN functional diffusion model (quantum implicit neural representation decoder + latent
diffusion prior), made with qiren-gen: sample faces, render one face at any resolution, walk between two faces,
encode your own image and superresolve it with the model's prior, and fit QIREN against a classical network live.
The pipeline is {where}.
"""


def _gradio_version() -> str:
    try:
        return version("gradio")
    except PackageNotFoundError:  # not installed here: the Space installs its own
        return "6.31.0"


def write_space(output: str | os.PathLike, pipeline: str | os.PathLike | None = None, hub_id: str | None = None,
                package: str = "qiren-gen[demo]", title: str = "QIREN faces") -> Path:
    """Write a Space folder at ``output`` (must not exist or be empty) for ``pipeline`` (a folder, copied; default:
    the bundled one) or ``hub_id`` (loaded from the Hub by the Space); returns ``output``."""
    out = Path(output)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise OSError(f"'{out}' already exists and is not an empty folder; pick a new --output")
    if hub_id is not None and pipeline is not None:
        raise ValueError("give a pipeline folder or a Hub id, not both")
    if hub_id is None:
        source = Path(pipeline) if pipeline is not None else bundled_pipeline_dir()
        QirenGenerationPipeline.from_pretrained(source)  # refuses unsafe or broken folders before anything is written
        where, literal, models = "in this Space's `pipeline/` folder", \
            f'str(Path(__file__).resolve().parent / "{SPACE_PIPELINE_DIR}")', ""
    else:
        where, literal, models = f"[{hub_id}](https://huggingface.co/{hub_id})", repr(hub_id), \
            f"models:\n- {hub_id}\n"
    out.mkdir(parents=True, exist_ok=True)
    if hub_id is None:
        for file in sorted(source.rglob("*")):
            if file.is_file() and (file.suffix in _COPIED or file.name == "qiren_pipeline.py"):
                target = out / SPACE_PIPELINE_DIR / file.relative_to(source)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(file, target)
    write_text(out / "app.py", APP_TEMPLATE.format(pipeline=literal))
    write_text(out / "requirements.txt", f"{package}\n")
    write_text(out / "README.md", CARD_TEMPLATE.format(title=title, gradio_version=_gradio_version(),
                                                    models=models, where=where))
    return out


__all__ = ["SPACE_PIPELINE_DIR", "write_space"]
