"""FID/KID evaluation of a pipeline, sharded across processes: each process samples its share, the main one scores.

    accelerate launch --num_processes 2 --num_machines 1 --mixed_precision no --dynamo_backend no --cpu \
        scripts/evaluate.py --pipeline pipelines/qiren-faces --reference FOLDER_OR_DATASET --num-samples 1000

Same options as ``qiren-gen evaluate`` (this is a thin wrapper around it).
"""
import sys

from qiren_gen.cli import main

if __name__ == "__main__":
    sys.exit(main(["evaluate", *sys.argv[1:]]))
