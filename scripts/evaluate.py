"""FID/KID evaluation of a pipeline, sharded across processes: each process samples its share, the main one scores.

    accelerate launch --multi_gpu --num_processes 2 --num_machines 1 --mixed_precision no --dynamo_backend no \
        scripts/evaluate.py --pipeline PIPELINE_DIR_OR_HUB_ID --reference FOLDER_OR_DATASET --num-samples 1000

``--multi_gpu`` starts the processes (torchrun); without CUDA they join over gloo on the CPU. (``accelerate launch
--cpu`` starts a single process whatever ``--num_processes`` says.) Same options as ``qiren-gen evaluate``: this
is a thin wrapper around it.
"""
import sys

from qiren_gen.cli import main

if __name__ == "__main__":
    sys.exit(main(["evaluate", *sys.argv[1:]]))
