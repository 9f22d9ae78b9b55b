#!/usr/bin/env python
"""Train the latent diffusion prior of a QIREN functional model (stage 2).

    accelerate launch --cpu --num_processes 1 --num_machines 1 --mixed_precision no --dynamo_backend no \\
        scripts/train_prior.py --stage1_model runs/stage1 --train_data_dir data/lfw --resolution 25 \\
        --output_dir runs/prior --pipeline_output pipelines/my-faces --resume_from_checkpoint latest

Thin wrapper: the options and the driver live in ``qiren_gen.experiments.train_prior``.
"""
import sys

from qiren_gen.experiments.train_prior import main

if __name__ == "__main__":
    sys.exit(main())
