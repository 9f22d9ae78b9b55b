"""Rebuild the bundled pipeline ``pipelines/qiren-lfw-faces`` end to end on the CPU (thin wrapper around
``qiren_gen.training.bundled``): export LFW faces -> train stage 1 -> encode latents -> train the prior -> measure
quality -> save the folder with its model card and ``docs/figures/lfw_samples.png``. Resumes if interrupted.

    python scripts/build_pretrained_pipeline.py [--workdir runs/bundled] [--output pipelines/qiren-lfw-faces]
"""
import argparse
import dataclasses
import json
import sys

from qiren_gen.training.bundled import BundleConfig, build_bundled_pipeline


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for field in dataclasses.fields(BundleConfig):
        kind = {"int": int, "float": float}.get(str(field.type), str)
        p.add_argument(f"--{field.name.replace('_', '-')}", type=kind, default=field.default)
    cfg = BundleConfig(**vars(p.parse_args(argv)))
    try:
        result = build_bundled_pipeline(cfg)
    except (ValueError, OSError) as exc:
        print(f"build_pretrained_pipeline: error: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 2
    print(json.dumps({"report": result["report"], "timings": result["timings"]}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
