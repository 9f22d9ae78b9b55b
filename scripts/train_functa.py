#!/usr/bin/env python
"""Meta-learn a functa model (stage 1: modulated decoder + latent modulator) on an image dataset.

    accelerate launch --num_processes 1 --num_machines 1 --mixed_precision no --dynamo_backend no --cpu \\
        scripts/train_functa.py --train_data_dir faces/ --resolution 16 --output_dir runs/functa

Thin wrapper: the options and the driver live in ``qiren_gen.experiments.train_functa``.
"""
import sys

from qiren_gen.experiments.train_functa import main

if __name__ == "__main__":
    sys.exit(main())
