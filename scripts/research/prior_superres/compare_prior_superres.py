"""Compare prior-based 4x superresolution with bicubic and single-image QIREN fits on held-out LFW faces.

    python scripts/research/prior_superres/compare_prior_superres.py [--pipeline pipelines/qiren-lfw-faces] [--factor 4]

Writes docs/research/prior_superres.md, docs/research/figures/prior_superres.png and docs/research/prior_superres.json.
"""
import argparse
import json
import shlex
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # scripts/: the research and benchmark packages

from qiren_gen.data.lfw import export_lfw_faces
from qiren_gen.pipelines.generation import QirenGenerationPipeline, bundled_pipeline_dir
from qiren_gen.runtime.errors import one_line
from research.bundled.build import load_split
from research.prior_superres.study import compare_superres, superres_figure, superres_markdown


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pipeline", default=None, help="pipeline folder or Hub id (default: the bundled one)")
    p.add_argument("--factor", type=int, default=4)
    p.add_argument("--fit_steps", type=int, default=300, help="Adam steps of each single-image QIREN fit")
    p.add_argument("--docs_dir", default="docs/research")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    try:
        source = args.pipeline or str(bundled_pipeline_dir())
        shown = args.pipeline or f"pipelines/{bundled_pipeline_dir().name} (bundled)"
        pipe = QirenGenerationPipeline.from_pretrained(source)
        with tempfile.TemporaryDirectory() as tmp:
            faces = load_split(export_lfw_faces(tmp) / "test")
        result = compare_superres(pipe.decoder, pipe.modulator, faces, args.factor, args.fit_steps)
    except (ValueError, OSError) as exc:
        print(f"compare_prior_superres: error: {one_line(exc)}", file=sys.stderr)
        return 2
    docs = Path(args.docs_dir)
    (docs / "figures").mkdir(parents=True, exist_ok=True)
    command = ("python scripts/research/prior_superres/compare_prior_superres.py "
               + shlex.join(sys.argv[1:] if argv is None else argv))
    (docs / "prior_superres.md").write_text(superres_markdown(result, command.strip(), shown))
    superres_figure(result, docs / "figures" / "prior_superres.png")
    summary = {k: v for k, v in result.items() if k != "images"}
    (docs / "prior_superres.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary["psnr"], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
