"""FID/KID evaluation of a pipeline, sharded across processes: each process samples its share, the main one scores.

    accelerate launch --multi_gpu --num_processes 2 --num_machines 1 --mixed_precision no --dynamo_backend no \
        scripts/evaluate.py --pipeline PIPELINE_DIR_OR_HUB_ID --reference FOLDER_OR_DATASET --num_samples 1000

``--multi_gpu`` starts the processes (torchrun); without CUDA they join over gloo on the CPU. (``accelerate launch
--cpu`` starts a single process whatever ``--num_processes`` says.) Same options as ``qiren-gen evaluate``: this
is a thin wrapper around it, taking them in the scripts' underscore style (``--num_samples``) or as spelled there.
"""
import sys

from qiren_gen.cli import main


def cli_flag(arg: str) -> str:
    """``--num_samples[=V]`` -> ``--num-samples[=V]`` (``qiren-gen``'s spelling); values and other words unchanged."""
    if not arg.startswith("--"):
        return arg
    name, sep, value = arg.partition("=")
    return name.replace("_", "-") + sep + value


if __name__ == "__main__":
    sys.exit(main(["evaluate", *map(cli_flag, sys.argv[1:])]))
