"""Train the latent diffusion prior of a QIREN functional model (stage 2). Thin wrapper: the logic lives in
``qiren_gen.training.prior_main``.

    accelerate launch --cpu --num_processes 1 --num_machines 1 --mixed_precision no --dynamo_backend no \\
        scripts/train_prior.py --stage1_model runs/stage1 --train_data_dir data/lfw --resolution 25 \\
        --output_dir runs/prior --pipeline_output pipelines/my-faces --resume_from_checkpoint latest
"""
import sys

from qiren_gen.training.prior_main import cli_main

if __name__ == "__main__":
    sys.exit(cli_main())
