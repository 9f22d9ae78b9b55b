#!/usr/bin/env python
"""Fine-tune a pretrained QIREN generation pipeline (folder or Hub id) on your images, or train one from scratch:
stage 1 (decoder + modulator), stage 2 (latent diffusion prior), and OUTPUT_DIR ends as a complete pipeline folder.

    python scripts/train_pipeline.py --pretrained_model_name_or_path pipelines/qiren-lfw-faces \\
        --train_data_dir my_faces/ --output_dir my-pipeline --max_train_steps 30 --prior_max_train_steps 200

    accelerate launch --multi_gpu --num_processes 2 --num_machines 1 --mixed_precision no --dynamo_backend no \\
        scripts/train_pipeline.py ... --resume_from_checkpoint latest

Thin wrapper: the options and the driver live in ``qiren_gen.experiments.train_pipeline``.
"""
import sys

from qiren_gen.experiments.train_pipeline import main

if __name__ == "__main__":
    sys.exit(main())
