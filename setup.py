"""Build hook: copy the bundled pretrained pipeline into the wheel.

``pipelines/qiren-lfw-faces`` stays the one source of truth at the top of the repository (it is what
``push_to_hub`` uploads); ``build_py`` copies it to ``qiren_gen/bundled/`` inside the built package, where
``qiren_gen.pipelines.bundled_pipeline_dir`` finds it in an installed wheel. Everything else is in pyproject.toml.
"""
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
BUNDLED = ("qiren-lfw-faces",)


class BuildPyWithPipelines(build_py):
    """``build_py`` that also ships the bundled pipeline folder(s) as package data."""

    def run(self) -> None:
        super().run()
        for name in BUNDLED:
            source = ROOT / "pipelines" / name
            if not (source / "model_index.json").is_file():
                raise FileNotFoundError(f"the bundled pipeline {source} is missing; build from a full checkout")
            target = Path(self.build_lib) / "qiren_gen" / "bundled" / name
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(source, target)


setup(cmdclass={"build_py": BuildPyWithPipelines})
