"""Bad input everywhere: every row of ``docs/bad_inputs.md`` is checked here.

CLI rows run as real subprocesses (a thread pool; offline Hub): exit code 2, stderr is exactly one line once progress
bars are removed, no traceback, no output written, and the planted ``blocker`` file (the "full disk": an output path
under a regular file) is unchanged. API rows run in-process and expect one exception type and message fragment.
``QIREN_GEN_BAD_INPUTS_TABLE=docs/bad_inputs.md`` rewrites the table from the observed results.
"""
from __future__ import annotations

import argparse
import json
import os
import pickle
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import datasets
import numpy as np
import pytest
import torch
from accelerate.state import AcceleratorState
from huggingface_hub import constants
from PIL import Image
from safetensors.torch import load_file, save_file
from scipy.io import wavfile

from qiren_gen.cli.evaluate import FEATURE_EXTRACTORS
from qiren_gen.data import image_grid, time_grid
from qiren_gen.demo import DemoLimits
from qiren_gen.demo.actions import any_resolution, interpolate, sample_grid
from qiren_gen.demo.live_fit import live_fit
from qiren_gen.demo.uploads import open_upload
from qiren_gen.functa import decode_latents, encode_images
from qiren_gen.io import BadInputFile
from qiren_gen.metrics.extractors import SUPPORTED_EXTRACTORS
from qiren_gen.models import QIREN, FeatureSynthesisDecoder, LatentModulator, ModulatedQIREN, ModulatedWideQIREN
from qiren_gen.pipelines import QirenGenerationPipeline, QirenSignalFittingPipeline, QirenSuperResolutionPipeline
from qiren_gen.quantum import DataReuploadingCircuit, MultiHeadReuploadingCircuit, simulate_reuploading_heads
from qiren_gen.quantum.shots import measurement
from qiren_gen.runtime import configure_allocator
from qiren_gen.training.arguments import add_stage1_arguments, config_from_args
from qiren_gen.training.checkpointing import check_checkpoint_files, read_training_state
from qiren_gen.training.functa_trainer import train_functa
from testing_utils import Payload as _Payload
from testing_utils import png_bomb, tiny_pipeline, tiny_wide_pipeline, wav_header

REPO = Path(__file__).resolve().parents[2]
BLOCKER_TEXT = "written before the run; must survive it\n"
QG = ["-m", "qiren_gen.cli"]
TF = [str(REPO / "scripts" / "train_functa.py")]
TP = [str(REPO / "scripts" / "train_prior.py")]
TPL = [str(REPO / "scripts" / "train_pipeline.py")]
FUNCTA = "--resolution 8 --n_qubits 3 --hidden_layers 1 --latent_dim 4 --train_batch_size 2 --max_train_steps 2"
PRIOR = "--resolution 8 --max_train_steps 2 --hidden_dim 8 --num_blocks 1 --time_embed_dim 8 --train_batch_size 4"
S = "sample --num-images 1 --steps 1 --output o.png --pipeline"
PIPE = "--max_train_steps 1 --prior_max_train_steps 1 --validation_images 0 --train_batch_size 2"
RESUME = f"{FUNCTA} --max_train_steps 4 --resume_from_checkpoint latest"
LONG = "x" * 500  # one name past the file systems' 255 bytes
DAMAGED_CHECKPOINTS = ("cktruncated", "ckemptyoptimizer", "ckpickle", "cknan", "cknegative", "ckstring")

# (entry point, bad input, argv (after the program), expected fragment of the one stderr line)
CLI_ROWS = [
    ("qiren-gen sample", "missing pipeline folder", f"{S} ./no/such/folder", "no pipeline folder"),
    ("qiren-gen sample", "unreachable Hub id (offline)", f"{S} qiren-gen-tests/no-such-pipeline",
     "(offline: HF_HUB_OFFLINE=1 is set) and there is no local folder 'qiren-gen-tests/no-such-pipeline'; pass a local "
     "folder, or go online with a Hub id that exists."),
    ("qiren-gen sample", "corrupt model_index.json", f"{S} badjson", "is not valid JSON"),
    ("qiren-gen sample", "mismatched component configs (prior latent_dim)", f"{S} mixed", "cannot load the pipeline"),
    ("qiren-gen sample", "truncated safetensors weights", f"{S} truncated", "cannot load the pipeline"),
    ("qiren-gen sample", "NaN weights", f"{S} nanweights", "NaN or infinite weights"),
    ("qiren-gen sample", "pickle-only weights (*.bin)", f"{S} pickled", "safetensors"),
    ("qiren-gen sample", "a file instead of a folder", f"{S} notes.txt", "is a file, not a pipeline folder"),
    ("qiren-gen sample", "decoder config does not match its weights (wide decoder n_heads)", f"{S} widemismatch",
     "cannot load the pipeline"),
    ("qiren-gen sample", "absurd size (--resolution 100000)", f"{S} pipe --resolution 100000", "documented bound"),
    ("qiren-gen sample", "absurd batch (--num-images 10^8)", f"{S} pipe --num-images 100000000",
     "over the 67,108,864 one run renders"),
    ("qiren-gen sample", "wrong output type (.jpg)", "sample --pipeline pipe --output o.jpg", "must be a .png file"),
    ("qiren-gen sample", "full disk: --output under a file", "sample --pipeline pipe --output blocker/o.png",
     "does not exist"),
    ("qiren-gen sample", "full disk: --save-individual under a file", f"{S} pipe --save-individual blocker/dir",
     "Not a directory"),
    ("qiren-gen sample", "wrong type (--steps abc)", f"{S} pipe --steps abc", "invalid int value"),
    ("qiren-gen sample", "Python code in the pipeline folder", f"{S} code", "contains Python code"),
    ("qiren-gen sample", "unknown device", f"{S} pipe --device banana", "cannot use device"),
    ("qiren-gen sample", "more steps than the schedule has", f"{S} pipe --steps 100000", "cannot be larger"),
    ("qiren-gen sample", "unknown decoder class in model_index.json", f"{S} unknowndecoder", "names an unknown class"),
    ("qiren-gen sample", "decoder config that does not match its weights", f"{S} decodermismatch",
     "component 'decoder'"),
    ("qiren-gen sample", "unknown --scheduler name", f"{S} pipe --scheduler karras-magic",
     "unknown scheduler 'karras-magic'; known: ddim, ddpm, dpm++"),
    ("qiren-gen sample", "scheduler class from outside diffusers in model_index.json", f"{S} foreignscheduler",
     "only diffusers and qiren_gen classes are loaded"),
    ("qiren-gen sample", "zero shots (--shots 0)", f"{S} pipe --shots 0", "shots must be >= 1"),
    ("qiren-gen sample", "absurd shots (--shots 2e9)", f"{S} pipe --shots 2000000000", "over the limit of 1e+09"),
    ("qiren-gen sample", "noise probability above 1 (--noise 1.5)", f"{S} pipe --noise 1.5",
     "noise probability depolarizing must be in [0, 1]"),
    ("qiren-gen sample", "noise that is not NAME=P (--noise depolarizing=abc)", f"{S} pipe --noise depolarizing=abc",
     "is not NAME=P with P a number"),
    ("qiren-gen fit", "negative shots (--shots -5)", "fit --image camera --size 8 --steps 1 --shots -5 --output fitout",
     "shots must be >= 1"),
    ("qiren-gen fit", "negative noise (--train-noise readout=-0.1)",
     "fit --image camera --size 8 --steps 1 --train-noise readout=-0.1 --output fitout",
     "noise probability readout must be in [0, 1]"),
    ("qiren-gen fit", "shots for a classical model (--model siren --shots 100)",
     "fit --image camera --size 8 --steps 1 --model siren --shots 100 --output fitout", "only for --model qiren"),
    ("qiren-gen fit", "missing image file", "fit --image missing.png --output fitout", "no such image file"),
    ("qiren-gen fit", "corrupt PNG (valid header, damaged data)", "fit --image corrupt.png --output fitout",
     "damaged image file"),
    ("qiren-gen fit", "wrong file type (text as --image)", "fit --image notes.txt --output fitout",
     "not an image file PIL can read"),
    ("qiren-gen fit", "wrong file type (text as --audio)", "fit --audio notes.txt --output fitout",
     "not a readable WAV file"),
    ("qiren-gen fit", "absurd learning rate (--lr 1e300)", "fit --image camera --lr 1e300 --output fitout",
     "--lr must be in"),
    ("qiren-gen fit", "unknown scikit-image name", "fit --image nosuchimage --output fitout",
     "neither an existing file nor a bundled"),
    ("qiren-gen fit", "absurd size (--size 100000)", "fit --image camera --size 100000 --output fitout",
     "over the limit of 4096"),
    ("qiren-gen fit", "full disk: --output under a file", "fit --image camera --size 8 --steps 1 --output blocker/f",
     "Not a directory"),
    ("qiren-gen fit", "NaN samples in a WAV", "fit --audio nan.wav --output fitout", "NaN or infinite samples"),
    ("qiren-gen fit", "wrong channel count (stereo WAV)", "fit --audio stereo.wav --output fitout", "2 channels"),
    ("qiren-gen fit", "the paper's Bach clip not fetched", "fit --audio gt_bach.wav --output fitout",
     "fetch it with: curl -L -o gt_bach.wav https://raw.githubusercontent.com/vsitzmann/siren/master/data/gt_bach.wav"),
    ("qiren-gen fit", "observable on more qubits than the circuit (--observables '[[0, 9]]')",
     "fit --image camera --size 8 --observables [[0,9]] --output fitout", "does not fit a circuit of 8 qubits"),
    ("qiren-gen fit", "pair observables on one qubit (--qubits 1 --observables zz)",
     "fit --image camera --size 8 --qubits 1 --observables zz --output fitout", "needs at least 2 qubits"),
    ("qiren-gen fit", "zero re-uploads (--reuploads 0)", "fit --image camera --size 8 --reuploads 0 --output fitout",
     "n_reuploads must be >= 1"),
    ("qiren-gen fit", "circuit option for a classical model (--model siren --encoding-scale 2)",
     "fit --image camera --size 8 --model siren --encoding-scale 2 --output fitout", "only for --model qiren"),
    ("qiren-gen superres", "non-positive encoding scale (--encoding-scale -1)",
     "superres --image camera --size 8 --model qiren_plus --encoding-scale -1 --output srout",
     "--encoding-scale must be finite and > 0"),
    ("qiren-gen fit", "per-re-upload scales that are not numbers (--encoding-scale 2,x)",
     "fit --image camera --size 8 --encoding-scale 2,x --output fitout", "--encoding-scale: expected a number"),
    ("qiren-gen superres", "absurd scale (--scale 100000)",
     "superres --image camera --size 8 --scale 100000 --steps 1 --output srout", "over the limit"),
    ("qiren-gen evaluate", "corrupt reference statistics file",
     "evaluate --pipeline pipe --reference corrupt.pt --num-samples 4 --output evout",
     "not a readable reference statistics file"),
    ("qiren-gen evaluate", "too few samples (--num-samples 1)",
     "evaluate --pipeline pipe --reference data --num-samples 1 --output evout", "--num-samples must be >= 2"),
    ("qiren-gen evaluate", "missing --fid-weights file",
     "evaluate --pipeline pipe --reference data --fid-weights missing.pth --output evout", "no such file"),
    ("qiren-gen evaluate", "unreachable Hub dataset (offline)",
     "evaluate --pipeline pipe --reference qiren-gen-tests/no-such-data --num-samples 4 --feature-extractor "
     "qiren-pixel-pool --output evout", "cannot load dataset"),
    ("qiren-gen evaluate", "full disk: --output under a file",
     "evaluate --pipeline pipe --reference data --num-samples 4 --feature-extractor qiren-pixel-pool "
     "--output blocker/ev", "Not a directory"),
    ("qiren-gen evaluate", "broken pipeline folder",
     "evaluate --pipeline badjson --reference data --num-samples 4 --feature-extractor qiren-pixel-pool "
     "--output evout", "is not valid JSON"),
    ("qiren-gen demo", "missing pipeline folder", "demo --pipeline ./no/such/folder", "no pipeline folder"),
    ("qiren-gen demo", "unreachable Hub id (offline)", "demo --pipeline qiren-gen-tests/no-such-pipeline",
     "cannot reach the Hugging Face Hub"),
    ("qiren-gen demo", "Python code in the pipeline folder", "demo --pipeline code", "contains Python code"),
    ("qiren-gen demo", "absurd port (--port 70000)", "demo --port 70000", "--port must be between"),
    ("qiren-gen demo", "zero request cap (--max-pixels 0)", "demo --max-pixels 0", "--max-pixels must be >= 1"),
    ("qiren-gen params", "absurd size (--in-features 10^8)", "params --in-features 100000000", "must be <= 4096"),
    ("qiren-gen params", "zero size (--out-features 0)", "params --out-features 0", "must be >= 1"),
    ("qiren-gen params", "unknown option", "params --bogus", "unrecognized arguments"),
    ("qiren-gen superres", "pickle-only --prior-pipeline", "superres --image camera --size 8 --prior-pipeline pickled "
     "--output srout", "safetensors"),
    ("qiren-gen superres", "corrupt image", "superres --image corrupt.png --output srout", "damaged image file"),
    ("qiren-gen superres", "full disk: --output under a file",
     "superres --image camera --size 8 --steps 1 --output blocker/sr", "Not a directory"),
    ("scripts/train_functa.py", "missing data folder", f"--train_data_dir missing --output_dir tfout {FUNCTA}",
     "image folder not found"),
    ("scripts/train_functa.py", "full disk: --output_dir under a file",
     f"--train_data_dir data --output_dir blocker/run {FUNCTA}", "'blocker' is a file, not a folder"),
    ("scripts/train_functa.py", "unreachable Hub dataset (offline)",
     f"--dataset_name qiren-gen-tests/no-such-data --output_dir tfout {FUNCTA}", "Couldn't reach"),
    ("scripts/train_functa.py", "absurd size (--resolution 100000)",
     f"--train_data_dir data --output_dir tfout {FUNCTA} --resolution 100000", "over the limit"),
    ("scripts/train_functa.py", "absurd size (--latent_dim 10^8)",
     f"--train_data_dir data --output_dir tfout {FUNCTA} --latent_dim 100000000", "--latent_dim must be in [1, 65536]"),
    ("scripts/train_functa.py", "auto-decoded latents on a stream of undeclared size",
     f"--dataset_name undeclared --output_dir tfout {FUNCTA} --encoding auto_decode --streaming",
     "declares no num_examples"),
    ("scripts/train_functa.py", "missing checkpoint to resume",
     f"--train_data_dir data --output_dir tfout {FUNCTA} --resume_from_checkpoint nowhere",
     "not a complete checkpoint"),
    ("scripts/train_functa.py", "a file where a checkpoint's folder must go (the write fails mid-run)",
     f"--train_data_dir data --output_dir ckblocked {FUNCTA}",
     "cannot write checkpoint 2 to ckblocked: Not a directory"),
    ("scripts/train_functa.py", "NaN learning rate", f"--train_data_dir data --output_dir tfout {FUNCTA} "
     "--learning_rate nan", "--learning_rate must be a finite number"),
    ("scripts/train_prior.py", "missing stage-1 folder",
     f"--stage1_model missing --train_data_dir data --output_dir tpout {PRIOR}", "no stage-1 decoder"),
    ("scripts/train_prior.py", "corrupt stage-1 config.json",
     f"--stage1_model stage1badjson --train_data_dir data --output_dir tpout {PRIOR}", "not a valid model config"),
    ("scripts/train_prior.py", "wrong file type (text as --train_data_dir)",
     f"--stage1_model stage1 --train_data_dir notes.txt --output_dir tpout {PRIOR}", "image folder not found"),
    ("scripts/train_prior.py", "full disk: --output_dir under a file",
     f"--stage1_model stage1 --train_data_dir data --output_dir blocker/p {PRIOR}",
     "'blocker' is a file, not a folder"),
    ("scripts/train_prior.py", "stage-1 folder with pickle-only weights",
     f"--stage1_model stage1bin --train_data_dir data --output_dir tpout {PRIOR}", "only as safetensors"),
    ("scripts/train_prior.py", "--stage1_latents from a meta-SGD stage 1 (no latents file)",
     f"--stage1_model stage1 --train_data_dir data --output_dir tpout {PRIOR} --stage1_latents",
     "no latents.safetensors"),
    ("scripts/train_prior.py", "corrupt latents cache",
     f"--stage1_model stage1 --train_data_dir data --output_dir tpout {PRIOR} --latents_cache corrupt.pt",
     "not a readable latents cache"),
    ("scripts/train_pipeline.py", "not a pipeline (a stage-1 folder)",
     f"--pretrained_model_name_or_path stage1 --train_data_dir data --output_dir tplout {PIPE}",
     "is not a pipeline folder"),
    ("scripts/train_pipeline.py", "unreachable Hub id (offline)",
     f"--pretrained_model_name_or_path qiren-gen-tests/no-such-pipeline --train_data_dir data --output_dir tplout "
     f"{PIPE}", "cannot reach the Hugging Face Hub"),
    ("scripts/train_pipeline.py", "dataset without the image column",
     f"--pretrained_model_name_or_path pipe --train_data_dir data --image_column picture --output_dir tplout {PIPE}",
     "image column 'picture' not found"),
    ("scripts/train_pipeline.py", "zero images (empty folder)",
     f"--pretrained_model_name_or_path pipe --train_data_dir emptydata --output_dir tplout {PIPE}",
     "zero images: the folder 'emptydata' holds no files"),
    ("scripts/train_pipeline.py", "corrupt parquet shard (Hub layout)",
     f"--pretrained_model_name_or_path pipe --dataset_name badshard --output_dir tplout {PIPE}",
     "corrupt parquet shard"),
    ("scripts/train_pipeline.py", "Hub-layout dataset with no image-typed column",
     f"--pretrained_model_name_or_path pipe --dataset_name labelsonly --output_dir tplout {PIPE}",
     "no image-typed column"),
    ("scripts/train_pipeline.py", "unknown split",
     f"--pretrained_model_name_or_path pipe --train_data_dir data --split validation --output_dir tplout {PIPE}",
     "Unknown split"),
    ("scripts/train_pipeline.py", "only corrupt images",
     f"--pretrained_model_name_or_path pipe --train_data_dir corruptdata --output_dir tplout {PIPE}",
     "no readable image"),
    ("scripts/train_pipeline.py", "channel mismatch (gray pipeline, RGB data)",
     f"--pretrained_model_name_or_path pipe --train_data_dir rgbdata --output_dir tplout {PIPE}",
     "pass --channels 1 to convert the data, or --adapt_output_channels"),
    ("scripts/train_pipeline.py", "zero training shots (--train_shots 0)",
     f"--pretrained_model_name_or_path pipe --train_data_dir data --output_dir tplout {PIPE} --train_shots 0",
     "shots must be >= 1"),
    ("scripts/train_pipeline.py", "unknown noise channel (--train_noise loud)",
     f"--pretrained_model_name_or_path pipe --train_data_dir data --output_dir tplout {PIPE} --train_noise loud",
     "noise must be a float or NAME=P"),
    ("scripts/train_pipeline.py", "full disk: --output_dir under a file",
     f"--pretrained_model_name_or_path pipe --train_data_dir data --output_dir blocker/tpl {PIPE}",
     "is a file, not a folder"),
    ("scripts/train_pipeline.py", "--output_dir holding a different pipeline",
     f"--pretrained_model_name_or_path pipe --train_data_dir data --output_dir pipe {PIPE}",
     "holds a different pipeline"),
    ("qiren-gen sample", "a CLI module named as a component in model_index.json", f"{S} climodule",
     "names an unknown class qiren_gen.cli.__main__.main"),
    ("qiren-gen sample", "entry module importing something else (from qiren_gen.cli import __main__)",
     f"{S} entryimport", "is not the plain qiren-gen import"),
    ("qiren-gen sample", "model_index.json nested 100,000 deep", f"{S} deepjson", "nested 100000 levels deep"),
    ("qiren-gen sample", "config.json over 1 MiB (a 2 MB string)", f"{S} hugeconfig", "over the cap of 1048576 bytes"),
    ("qiren-gen sample", "config.json holding a JSON list", f"{S} listconfig", "must hold a JSON object"),
    ("qiren-gen sample", "scheduler num_train_timesteps 1e9", f"{S} timesteps",
     "num_train_timesteps=1000000000 is outside [1, 100000]"),
    ("qiren-gen sample", "scheduler steps_offset 1e9", f"{S} offset", "steps_offset=1000000000 is outside"),
    ("qiren-gen sample", "scheduler trained_betas of length 3", f"{S} betas", "trained_betas has 3 values"),
    ("qiren-gen sample", "scheduler prediction_type unknown", f"{S} prediction",
     "prediction_type='noise' is not one of"),
    ("qiren-gen sample", "prior num_blocks 1e7", f"{S} blocks", "num_blocks=10000000 is outside [0, 256]"),
    ("qiren-gen sample", "prior dropout NaN", f"{S} dropoutnan", "dropout is NaN"),
    ("qiren-gen sample", "prior num_blocks true (a bool for an int)", f"{S} blockstrue",
     "num_blocks is true (a boolean)"),
    ("qiren-gen sample", "int64 weights of the right shapes", f"{S} intweights", "is stored as I64"),
    ("qiren-gen sample", "an extra tensor in the weights", f"{S} extraweights", "the weights hold 'extra'"),
    ("qiren-gen sample", "a missing weight key", f"{S} missingweights", "the weights lack"),
    ("qiren-gen sample", "seed 2**70", f"{S} pipe --seed 1180591620717411303424", "--seed must be a whole number"),
    ("qiren-gen sample", "absurd rows (--rows 10^9)", f"{S} pipe --rows 1000000000", "--rows must be between 1 and 1"),
    ("qiren-gen fit", "decompression bomb (50000x50000 PNG)", "fit --image bomb.png --output fitout",
     "declares too many pixels"),
    ("qiren-gen fit", "36-megapixel image (over the pixel cap)", "fit --image big.png --output fitout",
     "over the cap of 33,554,432 pixels"),
    ("qiren-gen fit", "absurd re-uploads (--reuploads 10^9)", "fit --image camera --reuploads 1000000000 "
     "--output fitout", "--reuploads must be at most 64"),
    ("qiren-gen fit", "absurd blocks (--blocks 10^9)", "fit --image camera --blocks 1000000000 --output fitout",
     "--blocks must be at most 64"),
    ("qiren-gen fit", "absurd Fourier features (--fourier-features 10^9)",
     "fit --image camera --fourier-features 1000000000 --output fitout", "--fourier-features must be at most 64"),
    ("qiren-gen fit", "absurd steps (--steps 10^9)", "fit --image camera --steps 1000000000 --output fitout",
     "--steps must be between 1 and 100000"),
    ("scripts/train_pipeline.py", "infinite learning rate (no folder created)",
     f"--pretrained_model_name_or_path pipe --train_data_dir data --output_dir tplout {PIPE} --learning_rate inf",
     "--learning_rate must be a finite number"),
    ("scripts/train_pipeline.py", "NaN --max_grad_norm (no folder created)",
     f"--pretrained_model_name_or_path pipe --train_data_dir data --output_dir tplout {PIPE} --max_grad_norm nan",
     "--max_grad_norm must be a finite number"),
    ("scripts/train_prior.py", "stage-1 decoder weights stored as bool",
     f"--stage1_model stage1bool --train_data_dir data --output_dir tpout {PRIOR}", "is stored as BOOL"),
    # every file read through one checked reader, every source bounded before it is read
    ("qiren-gen fit", "a 1-hour WAV (a header over the frame cap)", "fit --audio hour.wav --output fitout",
     "declares 158,760,000 frames (60.0 minutes at 44100 Hz), over the cap of 33,554,432 frames"),
    ("qiren-gen fit", "a WAV header declaring 0 channels", "fit --audio nochannels.wav --output fitout",
     "declares channels 0"),
    ("qiren-gen fit", "a WAV header declaring 0 bits per sample", "fit --audio nobits.wav --output fitout",
     "declares bits per sample 0"),
    ("qiren-gen fit", "a WAV header declaring a sample rate of 0", "fit --audio norate.wav --output fitout",
     "declares sample rate 0"),
    ("qiren-gen fit", "a 500-character --output name", f"fit --image camera --size 8 --steps 1 --output {LONG}",
     "File name too long"),
    ("qiren-gen superres", "a 500-character --output name",
     f"superres --image camera --size 8 --steps 1 --output {LONG}", "File name too long"),
    ("qiren-gen sample", "a 500-character --output name", f"{S} pipe --output {LONG}.png", "File name too long"),
    ("qiren-gen sample", "a folder named snapshots (not a Hub cache) linking its weights outside itself",
     f"{S} fakecache/snapshots/rev", "links outside the folder"),
    ("qiren-gen evaluate", "a feature extractor qiren-gen does not build (--feature-extractor clip-vit-b-32)",
     "evaluate --pipeline pipe --reference data --feature-extractor clip-vit-b-32 --output evout",
     "invalid choice: 'clip-vit-b-32'"),
    ("scripts/train_functa.py", "a 500-character --output_dir name",
     f"--train_data_dir data --output_dir {LONG} {FUNCTA}", "File name too long"),
    ("scripts/train_functa.py", "zero readable images (only corrupt images)",
     f"--train_data_dir corruptdata --output_dir tfout {FUNCTA}", "no readable image in the dataset"),
    ("scripts/train_functa.py", "a truncated checkpoint weights file (decoder.safetensors)",
     f"--train_data_dir data --output_dir cktruncated {RESUME}",
     "decoder.safetensors' is not a readable safetensors file"),
    ("scripts/train_functa.py", "an empty optimizer.bin in the checkpoint",
     f"--train_data_dir data --output_dir ckemptyoptimizer {RESUME}", "optimizer.bin' is empty (0 bytes)"),
    ("scripts/train_functa.py", "a pickle planted as custom_checkpoint_0.pkl",
     f"--train_data_dir data --output_dir ckpickle {RESUME}",
     "custom_checkpoint_0.pkl' is not part of this run's checkpoints"),
    ("scripts/train_functa.py", "NaN weights in the checkpoint",
     f"--train_data_dir data --output_dir cknan {RESUME}", "holds NaN or infinite values"),
    ("scripts/train_functa.py", "training_state.json step -100",
     f"--train_data_dir data --output_dir cknegative {RESUME}", "'step' must be between 0 and 4, got -100"),
    ("scripts/train_functa.py", "training_state.json step \"x\"",
     f"--train_data_dir data --output_dir ckstring {RESUME}", "'step' must be a whole number, got a string"),
]

_PROGRESS = re.compile(r"\d+%\||it/s\]|s/it\]|examples/s\]|\[\d\d:\d\d<")


def _program(entry: str) -> list[str]:
    programs = {"scripts/train_functa.py": TF, "scripts/train_prior.py": TP, "scripts/train_pipeline.py": TPL}
    return programs.get(entry, QG)


def _error_lines(stderr: str) -> list[str]:
    """stderr without tqdm progress-bar frames (they are written with \\r, interleaved with the error line)."""
    lines = []
    for line in stderr.replace("\r", "\n").splitlines():
        line = line.strip()
        if not line:
            continue
        match = _PROGRESS.search(line)
        if match:  # a bar frame; an error printed right after a bar without a newline keeps its text
            tail = re.split(r"(?:it/s|s/it|examples/s|\?it/s)[^\]]*\]", line)[-1].strip()
            if not tail or _PROGRESS.search(tail):
                continue
            line = tail
        lines.append(line)
    return lines


def _png(path: Path, array: np.ndarray) -> None:
    Image.fromarray(array).save(path)


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    """A folder of good and damaged inputs: pipelines, images, WAVs, datasets, stage-1 models, a blocker file."""


    w = tmp_path_factory.mktemp("bad-inputs")
    tiny_pipeline().save_pretrained(w / "pipe")
    tiny_wide_pipeline().save_pretrained(w / "widemismatch")
    cfg = json.loads((w / "widemismatch" / "decoder" / "config.json").read_text())
    (w / "widemismatch" / "decoder" / "config.json").write_text(json.dumps({**cfg, "n_heads": 4}))
    for name in ("badjson", "mixed", "truncated", "nanweights", "pickled", "code", "unknowndecoder", "decodermismatch",
                 "foreignscheduler"):
        shutil.copytree(w / "pipe", w / name)
    index = json.loads((w / "foreignscheduler" / "model_index.json").read_text())
    (w / "foreignscheduler" / "model_index.json").write_text(json.dumps({**index, "scheduler": [
        "k_diffusion.sampling", "KarrasScheduler"]}))
    index = json.loads((w / "unknowndecoder" / "model_index.json").read_text())
    (w / "unknowndecoder" / "model_index.json").write_text(json.dumps({**index, "decoder": [
        "qiren_gen.models.modulated", "NoSuchDecoder"]}))
    cfg = json.loads((w / "decodermismatch" / "decoder" / "config.json").read_text())
    (w / "decodermismatch" / "decoder" / "config.json").write_text(json.dumps({**cfg, "n_qubits": cfg["n_qubits"] + 1}))
    (w / "code" / "pipeline.py").write_text(f"import os\nos.makedirs({str(w / 'PWNED')!r})\n")
    (w / "badjson" / "model_index.json").write_text("{not json")
    cfg = json.loads((w / "mixed" / "prior" / "config.json").read_text())
    (w / "mixed" / "prior" / "config.json").write_text(json.dumps({**cfg, "latent_dim": 5}))
    weights = w / "truncated" / "prior" / "diffusion_pytorch_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    weights = w / "nanweights" / "prior" / "diffusion_pytorch_model.safetensors"
    save_file({k: torch.full_like(v, float("nan")) for k, v in load_file(weights).items()}, weights)
    (w / "pickled" / "prior" / "diffusion_pytorch_model.safetensors").unlink()
    with open(w / "pickled" / "prior" / "diffusion_pytorch_model.bin", "wb") as handle:
        pickle.dump(_Payload(w / "PWNED"), handle)
    (w / "blocker").write_text(BLOCKER_TEXT)
    (w / "ckblocked").mkdir()
    (w / "ckblocked" / "checkpoint-2").write_text(BLOCKER_TEXT)  # where train_functa's last checkpoint must go
    (w / "notes.txt").write_text("hello")
    (w / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    (w / "corrupt.pt").write_bytes(b"junk junk junk")
    wavfile.write(w / "nan.wav", 8000, np.array([0.1, np.nan, 0.3] * 50, dtype=np.float32))
    wavfile.write(w / "stereo.wav", 8000, np.random.default_rng(0).uniform(-1, 1, (150, 2)).astype(np.float32))
    (w / "data" / "train").mkdir(parents=True)
    y, x = np.mgrid[0:8, 0:8]
    for i in range(4):
        _png(w / "data" / "train" / f"{i}.png", (127 + 100 * np.sin(x * 0.3 * (i + 1) + y * 0.2)).astype(np.uint8))
    (w / "emptydata" / "train").mkdir(parents=True)
    (w / "corruptdata" / "train").mkdir(parents=True)
    shutil.copy(w / "corrupt.png", w / "corruptdata" / "train" / "0.png")
    (w / "rgbdata" / "train").mkdir(parents=True)

    datasets.Dataset.from_dict({"label": [0, 1]}).to_parquet(str(w / "labelsonly" / "data" / "train-0.parquet"))
    datasets.Dataset.from_dict({"label": [0, 1]}).to_parquet(
        str(w / "badshard" / "data" / "train-00000-of-00002.parquet"))
    (w / "badshard" / "data" / "train-00001-of-00002.parquet").write_bytes(b"PAR1 truncated")
    images = datasets.Dataset.from_dict({"image": [str(w / "data" / "train" / f"{i}.png") for i in range(4)]})
    images.cast_column("image", datasets.Image()).to_parquet(  # Hub layout without a card: no declared size
        str(w / "undeclared" / "data" / "train-00000-of-00001.parquet"))
    for i in range(4):
        _png(w / "rgbdata" / "train" / f"{i}.png", np.random.default_rng(i).integers(0, 255, (8, 8, 3), dtype=np.uint8))
    torch.manual_seed(0)
    decoder = ModulatedQIREN(out_channels=1, n_qubits=3, hidden_layers=1, reference_size=4)
    decoder.save_pretrained(w / "stage1" / "decoder")
    LatentModulator.for_decoder(decoder, latent_dim=4, inner_steps=1).save_pretrained(w / "stage1" / "modulator")
    shutil.copytree(w / "stage1", w / "stage1badjson")
    (w / "stage1badjson" / "decoder" / "config.json").write_text("{oops")
    shutil.copytree(w / "stage1", w / "stage1bin")
    (w / "stage1bin" / "decoder" / "diffusion_pytorch_model.safetensors").unlink()
    with open(w / "stage1bin" / "decoder" / "diffusion_pytorch_model.bin", "wb") as handle:
        pickle.dump(_Payload(w / "PWNED"), handle)
    _hostile_folders(w)
    _bounded_sources(w)
    _damaged_checkpoints(w)
    return w


def _bounded_sources(w: Path) -> None:
    """WAV headers declaring an hour of audio or impossible formats; a folder named ``snapshots`` outside any Hub
    cache whose weights link out of it."""

    hour = wav_header(w / "hour.wav", frames=3600 * 44100, write_data=False)
    with open(hour, "r+b") as handle:
        handle.truncate(44 + 3600 * 44100 * 2)  # sparse: the size the header claims, no blocks written
    wav_header(w / "nochannels.wav", channels=0)
    wav_header(w / "nobits.wav", bits=0)
    wav_header(w / "norate.wav", rate=0)
    snapshot = w / "fakecache" / "snapshots" / "rev"
    shutil.copytree(w / "pipe", snapshot)
    weights = snapshot / "prior" / "diffusion_pytorch_model.safetensors"
    (w / "fakecache" / "elsewhere").mkdir()
    shutil.move(weights, w / "fakecache" / "elsewhere" / "weights.safetensors")
    weights.symlink_to(w / "fakecache" / "elsewhere" / "weights.safetensors")


def _damaged_checkpoints(w: Path) -> None:
    """A stage-1 run of 2 steps, then copies of its output folder with one file of ``checkpoint-2`` damaged."""


    parser = argparse.ArgumentParser()
    add_stage1_arguments(parser)
    cfg = config_from_args(parser.parse_args(["--train_data_dir", str(w / "data"), "--output_dir", str(w / "ckgood"),
                                              *FUNCTA.split()]))
    with torch.random.fork_rng():
        train_functa(cfg)
    AcceleratorState._reset_state(True)  # the in-process rows that follow make their own
    for name in DAMAGED_CHECKPOINTS:
        shutil.copytree(w / "ckgood", w / name)
    ck = "checkpoint-2"
    decoder = w / "cktruncated" / ck / "decoder.safetensors"
    decoder.write_bytes(decoder.read_bytes()[:100])
    (w / "ckemptyoptimizer" / ck / "optimizer.bin").write_bytes(b"")
    with open(w / "ckpickle" / ck / "custom_checkpoint_0.pkl", "wb") as handle:
        pickle.dump(_Payload(w / "PWNED"), handle)
    decoder = w / "cknan" / ck / "decoder.safetensors"
    save_file({k: torch.full_like(v, float("nan")) for k, v in load_file(decoder).items()}, decoder)
    for name, step in (("cknegative", -100), ("ckstring", "x")):
        state = w / name / ck / "training_state.json"
        state.write_text(json.dumps({**json.loads(state.read_text()), "step": step}))


def _hostile_folders(w: Path) -> None:
    """Pipeline folders naming modules, with too-deep or too-large JSON, unbounded configs, mismatched weights; a
    decompression bomb and an image over the fitting pixel cap; a stage-1 folder with bool weights."""


    def edit_json(name: str, rel: str, change) -> None:
        path = w / name / rel
        path.write_text(json.dumps(change(json.loads(path.read_text()))))

    def edit_weights(name: str, rel: str, change) -> None:
        path = w / name / rel / "diffusion_pytorch_model.safetensors"
        tensors = load_file(path)
        first = sorted(tensors)[0]
        save_file(change(tensors, first), path)

    for name in ("climodule", "entryimport", "deepjson", "hugeconfig", "listconfig", "timesteps", "offset", "betas",
                 "prediction", "blocks", "dropoutnan", "blockstrue", "intweights", "extraweights", "missingweights"):
        shutil.copytree(w / "pipe", w / name)
    edit_json("climodule", "model_index.json", lambda d: {**d, "decoder": ["qiren_gen.cli.__main__", "main"]})
    (w / "entryimport" / "qiren_pipeline.py").write_text("from qiren_gen.cli import __main__\n")
    (w / "deepjson" / "model_index.json").write_text("[" * 100_000 + "]" * 100_000)
    edit_json("hugeconfig", "prior/config.json", lambda d: {**d, "note": "x" * 2_000_000})
    (w / "listconfig" / "prior" / "config.json").write_text("[1, 2]")
    scheduler = "scheduler/scheduler_config.json"
    edit_json("timesteps", scheduler, lambda d: {**d, "num_train_timesteps": 10**9})
    edit_json("offset", scheduler, lambda d: {**d, "steps_offset": 10**9})
    edit_json("betas", scheduler, lambda d: {**d, "trained_betas": [0.1, 0.2, 0.3]})
    edit_json("prediction", scheduler, lambda d: {**d, "prediction_type": "noise"})
    edit_json("blocks", "prior/config.json", lambda d: {**d, "num_blocks": 10**7})
    edit_json("dropoutnan", "prior/config.json", lambda d: {**d, "dropout": float("nan")})
    edit_json("blockstrue", "prior/config.json", lambda d: {**d, "num_blocks": True})
    edit_weights("intweights", "prior", lambda t, k: {**t, k: t[k].long()})
    edit_weights("extraweights", "prior", lambda t, k: {**t, "extra": torch.zeros(2)})
    edit_weights("missingweights", "prior", lambda t, k: {n: v for n, v in t.items() if n != k})
    shutil.copytree(w / "stage1", w / "stage1bool")
    edit_weights("stage1bool", "decoder", lambda t, k: {**t, k: t[k] > 0})
    Image.new("L", (6000, 6000)).save(w / "big.png")
    (w / "bomb.png").write_bytes(png_bomb())


# Several rows run in one "runner" process (torch imported once, the suite stays fast); the first row of every entry
# point also runs alone as ``python -m qiren_gen.cli ...`` / ``python scripts/...``. The runner calls exactly what the
# console script calls (``qiren_gen.cli.main`` / the script's ``main``) with fd 2 redirected to a file per row, so
# progress bars, warnings and any uncaught traceback land in that row's stderr just as in a separate process.
RUNNER = r"""
import json, os, runpy, sys, traceback
rows = json.loads(open(sys.argv[1]).read())
codes = []
for i, (program, argv) in enumerate(rows):
    fd = os.open(f"{sys.argv[1]}.{i}.err", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    saved = os.dup(2)
    sys.stderr.flush()
    os.dup2(fd, 2)
    try:
        if program == "qiren-gen":
            from qiren_gen.cli import main
            code = main(argv)
        else:
            namespace = runpy.run_path(program, run_name="bad_inputs_runner")
            code = namespace["main"](argv)
    except SystemExit as exc:
        code = exc.code
    except BaseException:
        traceback.print_exc()
        code = "uncaught"
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(fd)
        os.close(saved)
    try:
        from accelerate.state import AcceleratorState
        AcceleratorState._reset_state(True)
    except Exception:
        pass
    codes.append(code)
open(sys.argv[1] + ".codes", "w").write(json.dumps(codes))
"""


def _env() -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    env.pop("QIREN_GEN_DEBUG", None)  # the debug switch would show tracebacks
    return env


SHARED_OUTPUT_DIRS = ("tfout", "tpout", "tplout")
"""Output folders many rows name; each row runs with its own copy (``tfout-<row>``), since rows run concurrently and
a run that gets past its checks holds its output folder's lock, which would refuse a concurrent row."""


def _arguments(index: int) -> list[str]:
    """Row ``index``'s command line, with a shared output folder made the row's own."""
    args = CLI_ROWS[index][2].split()
    for k in range(len(args) - 1):
        if args[k] == "--output_dir" and args[k + 1] in SHARED_OUTPUT_DIRS:
            args[k + 1] = f"{args[k + 1]}-{index}"
    return args


def _run_alone(world: Path, index: int) -> list[dict]:
    row = CLI_ROWS[index]
    proc = subprocess.run([sys.executable, *_program(row[0]), *_arguments(index)], cwd=world, env=_env(),
                          capture_output=True, text=True, timeout=300)
    return [{"returncode": proc.returncode, "stderr": proc.stderr, "lines": _error_lines(proc.stderr)}]


def _run_batch(world: Path, indices: list[int], name: str) -> list[dict]:
    spec = world / f"{name}.json"
    programs = {"scripts/train_functa.py": TF[0], "scripts/train_prior.py": TP[0], "scripts/train_pipeline.py": TPL[0]}
    spec.write_text(json.dumps([(programs.get(CLI_ROWS[i][0], "qiren-gen"), _arguments(i)) for i in indices]))
    proc = subprocess.run([sys.executable, "-c", RUNNER, str(spec)], cwd=world, env=_env(), capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    codes = json.loads(Path(f"{spec}.codes").read_text())
    out = []
    for i, code in enumerate(codes):
        err = Path(f"{spec}.{i}.err").read_text()
        out.append({"returncode": code, "stderr": err, "lines": _error_lines(err)})
    return out


def _run_all(world: Path) -> list[dict]:
    """Results in CLI_ROWS order; the first row of each entry point runs as its own process."""
    alone, batched, seen = [], [], set()
    for i, row in enumerate(CLI_ROWS):
        (batched if row[0] in seen else alone).append(i)
        seen.add(row[0])
    halves = [batched[0::2], batched[1::2]]
    jobs = [(lambda i=i: _run_alone(world, i)) for i in alone]
    jobs += [(lambda h=h, k=k: _run_batch(world, h, f"batch{k}")) for k, h in enumerate(halves)]
    with ThreadPoolExecutor(max_workers=3) as pool:
        outputs = list(pool.map(lambda job: job(), jobs))
    results: dict[int, dict] = {}
    for indices, output in zip([[i] for i in alone] + halves, outputs, strict=True):
        results.update(zip(indices, output, strict=True))
    return [results[i] for i in range(len(CLI_ROWS))]


@pytest.mark.slow
def test_cli_bad_inputs_one_line_nonzero_exit_nothing_corrupted(world, api_rows):
    results = _run_all(world)
    failures = []
    for row, res in zip(CLI_ROWS, results, strict=True):
        ok = (res["returncode"] == 2 and len(res["lines"]) == 1 and row[3] in res["lines"][0]
              and "Traceback" not in res["stderr"] and "error" in res["lines"][0]
              and "weights_only=False" not in res["stderr"] and "[Errno" not in res["lines"][0])
        if not ok:
            failures.append(f"{row[0]} / {row[1]}: rc={res['returncode']} lines={res['lines'][-3:]}")
    assert not failures, "\n".join(failures)
    assert (world / "blocker").read_text() == BLOCKER_TEXT  # the "full disk" rows corrupted nothing
    assert (world / "ckblocked" / "checkpoint-2").read_text() == BLOCKER_TEXT
    assert not [p.name for p in (world / "ckblocked").iterdir() if p.name.startswith(".tmp")]  # nothing half-written
    assert not {"train_pipeline.json", "stage1"} & {p.name for p in (world / "pipe").iterdir()}  # pipeline untouched
    for made in ("o.png", "o.jpg", "fitout", "srout", "evout", "tfout", "tpout", "tplout", "PWNED", "xxxxx"):
        assert not list(world.glob(f"{made}*")), f"{made} was written by a failing run"
    for name in DAMAGED_CHECKPOINTS:  # a refused resume trains nothing: no checkpoint past the damaged one
        assert [p.name for p in (world / name).glob("checkpoint-*")] == ["checkpoint-2"], name
    table = os.environ.get("QIREN_GEN_BAD_INPUTS_TABLE")
    if table:
        _write_table(Path(table), results, world, api_rows)


# ---------------------------------------------------------------------------------------------------------------
# API rows: (entry point, bad input, call, exception type, message fragment)


def _shot_backward(circuit) -> None:
    """A training step through a circuit measured with finite shots but without train_shots."""

    x = torch.randn(3, circuit.n_qubits, requires_grad=True)
    with measurement(circuit, shots=100):
        circuit(x).sum().backward()


def _api_rows():

    torch.manual_seed(0)
    dec = ModulatedQIREN(out_channels=1, n_qubits=3, hidden_layers=1, reference_size=4)
    mod = LatentModulator.for_decoder(dec, latent_dim=4)
    gen = tiny_pipeline()
    fit = QirenSignalFittingPipeline.from_model_name("qiren", 2, 1)
    fit.set_progress_bar_config(disable=True)
    sr = QirenSuperResolutionPipeline.from_model_name("qiren")
    sr.set_progress_bar_config(disable=True)
    img = np.zeros((4, 4))
    limits = DemoLimits()
    G, F, R = "QirenGenerationPipeline", "QirenSignalFittingPipeline", "QirenSuperResolutionPipeline"
    return [
        (f"{G}.from_pretrained", "missing folder", lambda w: QirenGenerationPipeline.from_pretrained(w / "no" / "x"),
         OSError, "no pipeline folder"),
        (f"{G}.from_pretrained", "unreachable Hub id (offline)",
         lambda w: QirenGenerationPipeline.from_pretrained("qiren-gen-tests/none", local_files_only=True), OSError,
         "cannot reach the Hugging Face Hub"),
        (f"{G}.from_pretrained", "a signal-fitting folder (wrong pipeline class)",
         lambda w: QirenGenerationPipeline.from_pretrained(w / "fitpipe"), ValueError, "not a QirenGenerationPipeline"),
        (f"{G}.from_pretrained", "mismatched component configs", lambda w: QirenGenerationPipeline.from_pretrained(
            w / "mixed"), ValueError, "cannot load the pipeline"),
        (f"{G}.from_pretrained", "unknown decoder class", lambda w: QirenGenerationPipeline.from_pretrained(
            w / "unknowndecoder"), ValueError, "names an unknown class"),
        (f"{G}.from_pretrained", "decoder config that does not match its weights",
         lambda w: QirenGenerationPipeline.from_pretrained(w / "decodermismatch"), ValueError, "component 'decoder'"),
        (f"{G}.from_pretrained", "NaN weights", lambda w: QirenGenerationPipeline.from_pretrained(w / "nanweights"),
         ValueError, "NaN or infinite weights"),
        (f"{G}.from_pretrained", "use_safetensors=False", lambda w: QirenGenerationPipeline.from_pretrained(
            w / "pipe", use_safetensors=False), ValueError, "only as safetensors"),
        (f"{G}.__call__", "absurd size 10^5 x 10^5", lambda w: gen(height=100000, width=100000), ValueError,
         "documented bound"),
        (f"{G}.__call__", "height 0", lambda w: gen(height=0), ValueError, "height must be >= 1"),
        (f"{G}.__call__", "float height", lambda w: gen(height=8.5), ValueError, "height must be an int"),
        (f"{G}.__call__", "wrong latents shape", lambda w: gen(latents=torch.zeros(1, 3), num_inference_steps=1),
         ValueError, "latents must have shape"),
        (f"{G}.__call__", "bad output_type", lambda w: gen(output_type="jpeg"), ValueError, "output_type"),
        (f"{G}.__call__", "shots=0", lambda w: gen(num_inference_steps=1, shots=0), ValueError, "shots must be >= 1"),
        (f"{G}.__call__", "fractional shots", lambda w: gen(num_inference_steps=1, shots=2.5), ValueError,
         "shots must be None (exact) or an int"),
        (f"{G}.__call__", "noise probability -0.1", lambda w: gen(num_inference_steps=1, noise={"depolarizing": -0.1}),
         ValueError, "noise probability depolarizing must be in [0, 1]"),
        (f"{G}.__call__", "callback tensor name not in _callback_tensor_inputs", lambda w: gen(
            num_inference_steps=1, callback_on_step_end=lambda p, i, t, kw: kw,
            callback_on_step_end_tensor_inputs=["prompt_embeds"]), ValueError, "not in _callback_tensor_inputs"),
        (f"{G}.__call__", "callback returning a wrong shape", lambda w: gen(
            num_inference_steps=1, callback_on_step_end=lambda p, i, t, kw: {"latents": kw["latents"][:, :2]}),
         ValueError, "returned 'latents' of shape"),
        (f"{G}.from_pretrained", "torch_dtype dict naming no component", lambda w: QirenGenerationPipeline
         .from_pretrained(w / "pipe", torch_dtype={"unet": torch.float16}), ValueError, "not a component"),
        (f"{G}.from_pretrained", "device_map diffusers does not support", lambda w: QirenGenerationPipeline
         .from_pretrained(w / "pipe", device_map="auto"), ValueError, "is not supported; use one of"),
        (f"{G}.save_pretrained", "safe_serialization=False (pickle)", lambda w: gen.save_pretrained(
            w / "pickle-save", safe_serialization=False), ValueError, "can run code when it is loaded"),
        (f"{G}.__init__", "mismatched components (latent_dim)", lambda w: QirenGenerationPipeline(
            gen.decoder, LatentModulator.for_decoder(gen.decoder, latent_dim=5), gen.prior, gen.scheduler),
         ValueError, "latent_dim"),
        (f"{G}.superresolve", "NaN pixels", lambda w: gen.superresolve(torch.full((1, 1, 4, 4), float("nan")), 8, 8),
         ValueError, "finite"),
        (f"{G}.superresolve", "wrong channel count", lambda w: gen.superresolve(torch.zeros(1, 3, 4, 4), 8, 8),
         ValueError, "channel"),
        (f"{G}.superresolve", "empty image list", lambda w: gen.superresolve([], 8, 8), ValueError, "non-empty"),
        (F, "NaN in the signal", lambda w: fit(np.full((4, 4), np.nan), num_steps=1), ValueError, "NaN"),
        (F, "wrong channel count (H, W, 3)", lambda w: fit(np.zeros((4, 4, 3)), num_steps=1), ValueError,
         "needs a signal of shape"),
        (F, "wrong type (str)", lambda w: fit("hello", num_steps=1), ValueError, "array of numbers"),
        (F, "absurd learning rate 1e300", lambda w: fit(img, num_steps=1, learning_rate=1e300), ValueError,
         "learning rate must be in"),
        (F, "steps 0", lambda w: fit(img, num_steps=0), ValueError, "num_steps must be"),
        (F + ".render", "absurd size", lambda w: fit.render((10**6, 10**6)), ValueError, "over the limit"),
        (R, "absurd scale", lambda w: sr(img, scale=100000, num_steps=1), ValueError, "over the limit"),
        (R, "1-D signal", lambda w: sr(np.zeros(16), num_steps=1), ValueError, "needs a signal of shape"),
        (R + ".from_pretrained", "pickle-only weights", lambda w: QirenSuperResolutionPipeline.from_pretrained(
            w / "srpickled"), ValueError, "safetensors"),
        ("encode_images", "wrong channel count", lambda w: encode_images(dec, mod, torch.zeros(1, 3, 4, 4)),
         ValueError, "channel"),
        ("encode_images", "NaN pixels", lambda w: encode_images(dec, mod, torch.full((1, 1, 4, 4), float("nan"))),
         ValueError, "finite"),
        ("encode_images", "uint8 pixels", lambda w: encode_images(dec, mod, torch.zeros(1, 1, 4, 4, dtype=torch.uint8)),
         ValueError, "floating-point"),
        ("encode_images", "3-D tensor", lambda w: encode_images(dec, mod, torch.zeros(1, 4, 4)), ValueError,
         "(B, C, H, W)"),
        ("decode_latents", "wrong latent size", lambda w: decode_latents(dec, mod, torch.zeros(2, 5), 4, 4),
         ValueError, "latents must have shape"),
        ("decode_latents", "empty batch", lambda w: decode_latents(dec, mod, torch.zeros(0, 4), 4, 4), ValueError,
         "at least one row"),
        ("decode_latents", "NaN latents", lambda w: decode_latents(dec, mod, torch.full((1, 4), float("nan")), 4, 4),
         ValueError, "NaN or inf"),
        ("decode_latents", "absurd size", lambda w: decode_latents(dec, mod, torch.zeros(1, 4), 10**6, 10**6),
         ValueError, "over the limit"),
        ("decode_latents", "numpy latents", lambda w: decode_latents(dec, mod, np.zeros((1, 4)), 4, 4), ValueError,
         "tensor"),
        ("configure_allocator", "unknown QIREN_GEN_MALLOC value",
         lambda w: configure_allocator({"QIREN_GEN_MALLOC": "jemalloc"}), ValueError,
         "QIREN_GEN_MALLOC must be one of"),
        ("FeatureSynthesisDecoder", "no circuits (n_heads=0)", lambda w: FeatureSynthesisDecoder(n_heads=0),
         ValueError, "n_heads must be an int >= 1"),
        ("FeatureSynthesisDecoder", "23 qubits per circuit", lambda w: FeatureSynthesisDecoder(n_qubits=23),
         ValueError, "too large"),
        ("FeatureSynthesisDecoder", "encoding scales on Fourier features",
         lambda w: FeatureSynthesisDecoder(features="fourier", encoding_scale="ternary"), ValueError,
         "features='circuit' only"),
        ("FeatureSynthesisDecoder", "angles modulation (no per-sample circuits here)",
         lambda w: FeatureSynthesisDecoder(modulation="angles"), ValueError, "modulation must be one of"),
        ("LatentModulator", "unknown encoding", lambda w: LatentModulator(encoding="vae"), ValueError,
         "encoding must be one of"),
        ("DataReuploadingCircuit", "40 qubits", lambda w: DataReuploadingCircuit(40), ValueError, "too large"),
        ("DataReuploadingCircuit", "a backward pass through finite shots without train_shots",
         lambda w: _shot_backward(DataReuploadingCircuit(2)), ValueError, "finite-shot gradients need train_shots"),
        ("DataReuploadingCircuit", "n_qubits as str", lambda w: DataReuploadingCircuit("8"), ValueError,
         "must be an int"),
        ("DataReuploadingCircuit", "NaN input", lambda w: DataReuploadingCircuit(3)(torch.full((2, 3), float("nan"))),
         ValueError, "NaN or inf"),
        ("DataReuploadingCircuit", "wrong last dimension", lambda w: DataReuploadingCircuit(3)(torch.zeros(2, 4)),
         ValueError, "inputs must have shape"),
        ("DataReuploadingCircuit", "int32 input", lambda w: DataReuploadingCircuit(3)(torch.zeros(2, 3,
                                                                                                    dtype=torch.int32)),
         ValueError, "floating"),
        ("DataReuploadingCircuit", "observable on more qubits than the circuit",
         lambda w: DataReuploadingCircuit(3, observables=[[0, 5]]), ValueError, "does not fit a circuit of 3 qubits"),
        ("DataReuploadingCircuit", "non-positive encoding scale", lambda w: DataReuploadingCircuit(3, encoding_scale=0),
         ValueError, "encoding_scale must be finite and > 0"),
        ("DataReuploadingCircuit", "zero re-uploads", lambda w: DataReuploadingCircuit(3, n_reuploads=0), ValueError,
         "n_reuploads must be >= 1"),
        ("QIREN", "pair observables on one qubit", lambda w: QIREN(n_qubits=1, observables="zz"), ValueError,
         "needs at least 2 qubits"),
        (F, "unknown schedule", lambda w: fit(img, num_steps=1, schedule="linear"), ValueError,
         "schedule must be one of"),
        ("MultiHeadReuploadingCircuit", "0 heads", lambda w: MultiHeadReuploadingCircuit(0, 2), ValueError,
         "n_heads must be >= 1"),
        ("MultiHeadReuploadingCircuit", "21 qubits", lambda w: MultiHeadReuploadingCircuit(2, 21), ValueError,
         "too large"),
        ("MultiHeadReuploadingCircuit", "unknown entangler",
         lambda w: MultiHeadReuploadingCircuit(2, 2, entangler="cx"), ValueError, "entangler must be one of"),
        ("MultiHeadReuploadingCircuit", "input with the wrong head count",
         lambda w: MultiHeadReuploadingCircuit(3, 2)(torch.zeros(5, 4, 2)), ValueError, "inputs must have shape"),
        ("MultiHeadReuploadingCircuit", "NaN input",
         lambda w: MultiHeadReuploadingCircuit(3, 2)(torch.full((5, 3, 2), float("nan"))), ValueError, "NaN or inf"),
        ("MultiHeadReuploadingCircuit.to_pennylane", "head out of range",
         lambda w: MultiHeadReuploadingCircuit(3, 2).to_pennylane(3), ValueError, "head must be an int in 0..2"),
        ("MultiHeadReuploadingCircuit", "unknown encoding preset",
         lambda w: MultiHeadReuploadingCircuit(2, 2, encoding_scale="quaternary"), ValueError, "unknown preset"),
        ("MultiHeadReuploadingCircuit", "non-positive encoding scale",
         lambda w: MultiHeadReuploadingCircuit(2, 2, encoding_scale=[[1.0], [0.0]]), ValueError,
         "encoding_scale must be finite and > 0"),
        ("simulate_reuploading_heads", "encoding scales of the wrong shape",
         lambda w: simulate_reuploading_heads(torch.zeros(1, 2, 2), torch.zeros(2, 3, 1, 2, 3),
                                              encoding_scales=torch.ones(3, 2)), ValueError,
         "encoding_scales must broadcast to (R, n)"),
        ("simulate_reuploading_heads", "weights without a head axis",
         lambda w: simulate_reuploading_heads(torch.zeros(5, 1, 2), torch.zeros(3, 2, 2, 3)), ValueError,
         "weights must have shape (H, R+1, K, n, 3)"),
        ("ModulatedWideQIREN", "hidden_width != n_heads * n_qubits",
         lambda w: ModulatedWideQIREN(n_heads=32, n_qubits=4, hidden_width=100), ValueError, "hidden_width must equal"),
        ("ModulatedWideQIREN", "0 heads", lambda w: ModulatedWideQIREN(n_heads=0), ValueError, "n_heads must be >= 1"),
        ("ModulatedWideQIREN", "25 qubits per head", lambda w: ModulatedWideQIREN(n_heads=2, n_qubits=25), ValueError,
         "too large"),
        (f"{G}.from_pretrained", "decoder config does not match its weights (wide decoder n_heads)",
         lambda w: QirenGenerationPipeline.from_pretrained(w / "widemismatch"), ValueError, "cannot load the pipeline"),
        ("image_grid", "negative height", lambda w: image_grid(-1, 4), ValueError, "must be"),
        ("time_grid", "absurd length", lambda w: time_grid(2**40), ValueError, "over the limit"),
        ("demo sample_grid", "16 faces at 256x256 (over the pixel cap)",
         lambda w: sample_grid(gen, 0, 16, 256, 5, limits), ValueError, "over the cap"),
        ("demo sample_grid", "shots -5", lambda w: sample_grid(gen, 0, 1, 8, 5, limits, "ddim", -5), ValueError,
         "shots must be between 0 and 1000000000"),
        ("demo sample_grid", "17 faces", lambda w: sample_grid(gen, 0, 17, 8, 5, limits), ValueError,
         "number of faces must be between 1 and 16"),
        ("demo sample_grid", "seed -1", lambda w: sample_grid(gen, -1, 1, 8, 5, limits), ValueError,
         "seed must be between 0"),
        ("demo sample_grid", "fractional resolution 12.5", lambda w: sample_grid(gen, 0, 1, 12.5, 5, limits),
         ValueError, "resolution must be a whole number"),
        ("demo any_resolution", "no sizes", lambda w: any_resolution(gen, 0, [], 5, limits), ValueError,
         "pick at least one size"),
        ("demo interpolate", "one face", lambda w: interpolate(gen, 0, 1, 1, 8, 5, limits), ValueError,
         "number of faces must be between 2"),
        ("demo open_upload", "a text file", lambda w: open_upload(w / "notes.txt", limits), ValueError,
         "not an image"),
        ("demo open_upload", "an empty file", lambda w: open_upload(w / "empty.png", limits), ValueError,
         "the uploaded file is empty"),
        ("demo open_upload", "5000x5000 image (small file, huge pixel count)",
         lambda w: open_upload(w / "huge.png", limits), ValueError, "over the cap"),
        ("demo open_upload", "no upload", lambda w: open_upload(None, limits), ValueError, "upload an image first"),
        ("demo live_fit", "unknown baseline", lambda w: next(live_fit(np.zeros((4, 4)), "resnet", 1)), ValueError,
         "baseline must be one of"),
        ("read_training_state", "step -100 (a run of 4 steps)",
         lambda w: read_training_state(w / "cknegative" / "checkpoint-2", 4), BadInputFile,
         "'step' must be between 0 and 4, got -100"),
        ("read_training_state", "step \"x\"", lambda w: read_training_state(w / "ckstring" / "checkpoint-2", 4),
         BadInputFile, "'step' must be a whole number, got a string"),
        ("check_checkpoint_files", "truncated decoder.safetensors",
         lambda w: check_checkpoint_files(w / "cktruncated" / "checkpoint-2"), BadInputFile,
         "decoder.safetensors' is not a readable safetensors file"),
        ("check_checkpoint_files", "empty optimizer.bin",
         lambda w: check_checkpoint_files(w / "ckemptyoptimizer" / "checkpoint-2"), BadInputFile,
         "optimizer.bin' is empty (0 bytes)"),
        ("check_checkpoint_files", "a pickle planted as custom_checkpoint_0.pkl",
         lambda w: check_checkpoint_files(w / "ckpickle" / "checkpoint-2"), BadInputFile,
         "custom_checkpoint_0.pkl' is not part of this run's checkpoints"),
        ("check_checkpoint_files", "the same pickle where the run registers one object (read, never run)",
         lambda w: check_checkpoint_files(w / "ckpickle" / "checkpoint-2", registered_objects=1), BadInputFile,
         "holds a pickle that is not plain tensors"),
        ("check_checkpoint_files", "NaN weights", lambda w: check_checkpoint_files(w / "cknan" / "checkpoint-2"),
         BadInputFile, "holds NaN or infinite values"),
        ("ReferenceStatistics.load", "a pickle file", lambda w: __import__("qiren_gen.metrics").metrics
         .ReferenceStatistics.load(w / "pickled" / "prior" / "diffusion_pytorch_model.bin"), ValueError,
         "not a readable reference statistics file"),
    ]


def _api_ids():
    return [f"{i:02d}" for i in range(96)]


@pytest.fixture(scope="module")
def api_rows(world):

    QirenSignalFittingPipeline.from_model_name("qiren", 2, 1).save_pretrained(world / "fitpipe")
    QirenSuperResolutionPipeline.from_model_name("siren").save_pretrained(world / "srpickled")
    (world / "empty.png").write_bytes(b"")
    Image.new("L", (5000, 5000)).save(world / "huge.png")
    (world / "srpickled" / "model" / "diffusion_pytorch_model.safetensors").unlink()
    with open(world / "srpickled" / "model" / "diffusion_pytorch_model.bin", "wb") as handle:
        pickle.dump(_Payload(world / "PWNED"), handle)
    return _api_rows()


@pytest.mark.parametrize("index", _api_ids())
def test_api_bad_inputs_raise_documented_errors(world, api_rows, index, monkeypatch):

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    entry, bad, call, exc_type, fragment = api_rows[int(index)]
    with pytest.raises(exc_type) as info:
        call(world)
    assert type(info.value) is exc_type, f"{entry} / {bad}: {type(info.value).__name__}"
    assert fragment in str(info.value) and len(str(info.value).strip().splitlines()) == 1, str(info.value)
    assert not (world / "PWNED").exists()


def test_api_table_is_complete(api_rows):
    assert len(api_rows) == len(_api_ids())


def _write_table(path: Path, cli_results: list[dict], world: Path, api_rows: list) -> None:
    """Regenerate ``docs/bad_inputs.md`` from what the runs printed (observed, not hand-written)."""
    rows = ["| Entry point | Bad input | Observed result |", "|---|---|---|"]
    for (entry, bad, _, _), res in zip(CLI_ROWS, cli_results, strict=True):
        line = (res["lines"][0] if res["lines"] else "(no output)").replace(str(world), "<tmp>")
        line = line.replace("`", "'").replace("|", "/")
        rows.append(f"| `{entry}` | {bad} | exit {res['returncode']}: `{line}` |")  # whole: never cut
    observed = []
    for entry, bad, call, _, _ in api_rows:
        try:
            call(world)
            observed.append(f"| `{entry}` | {bad} | (no error) |")
        except Exception as exc:  # noqa: BLE001 - recorded as observed
            message = str(exc).strip().replace(str(world), "<tmp>").replace("`", "'").replace("|", "/")
            observed.append(f"| `{entry}` | {bad} | `{type(exc).__name__}: {message}` |")
    head = path.read_text().split("<!-- table -->")[0] if path.exists() else ""
    path.write_text(head + "<!-- table -->\n\n### Command line\n\n" + "\n".join(rows) + "\n\n### Python API\n\n"
                    + "| Entry point | Bad input | Observed result |\n|---|---|---|\n" + "\n".join(observed) + "\n")


@pytest.mark.slow
def test_train_functa_with_an_unwritable_home_names_the_cache_flags(tmp_path):
    """The datasets cache defaults to ``~/.cache/huggingface``; a home where nothing can be created (``/sys``: EPERM,
    EROFS or EACCES, as a read-only home gives) is one line naming ``--cache_dir`` and ``HF_HOME``."""
    (tmp_path / "data" / "train").mkdir(parents=True)
    y, x = np.mgrid[0:8, 0:8]
    for i in range(4):
        _png(tmp_path / "data" / "train" / f"{i}.png", (127 + 100 * np.sin(x * 0.3 + y * 0.2 * i)).astype(np.uint8))
    caches = ("HF_HOME", "HF_DATASETS_CACHE", "HF_HUB_CACHE", "XDG_CACHE_HOME")
    env = {k: v for k, v in _env().items() if k not in caches}
    env["HOME"] = "/sys"
    proc = subprocess.run([sys.executable, *TF, "--train_data_dir", "data", "--output_dir", "run", *FUNCTA.split()],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    lines = _error_lines(proc.stderr)
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr[-2000:]
    assert "--cache_dir DIR, or set HF_HOME to a writable folder" in lines[0] and "[Errno" not in lines[0], lines
    assert not (tmp_path / "run").exists()


def test_evaluate_offers_exactly_the_extractors_it_builds():
    assert FEATURE_EXTRACTORS == SUPPORTED_EXTRACTORS
