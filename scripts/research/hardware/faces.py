"""The face pipelines on a simulated device: held-out reconstruction PSNR and sample sharpness under finite shots and
gate noise, for the bundled pipeline and for copies of it fine-tuned exactly, under shots and under noise.

Held-out faces are LFW 90-99. Their latents are fitted exactly for the shot rows (the circuits are measured only
when decoding) and under the same noise model for the noise rows of the fine-tuning table (a device would encode on
the noisy circuits; exact density matrices are differentiable). The feature circuits see coordinates only, so one
shot draw per grid is shared by every face of the call, as a device would run them.
"""
from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import torch
from skimage.data import lfw_subset

from qiren_gen.data.lfw import export_lfw_faces
from qiren_gen.evaluation.sample_quality import gradient_sharpness
from qiren_gen.functa import decode_latents, encode_images
from qiren_gen.metrics import psnr
from qiren_gen.pipelines.generation import QirenGenerationPipeline, bundled_pipeline_dir
from qiren_gen.quantum.noise import NoiseModel
from qiren_gen.quantum.shots import measurement
from train_pipeline import main as train_pipeline_main


def _face_psnr(pred: torch.Tensor, target: torch.Tensor) -> float:
    """Mean over images of the PSNR (dB) of ``[0, 1]`` images ``(B, ...)``."""
    return float(psnr(pred, target, data_range=1.0, dim=tuple(range(1, pred.ndim))))


def held_out_faces() -> torch.Tensor:
    """LFW faces 90-99 of scikit-image's ``lfw_subset()`` (the bundled pipeline's held-out split),
    ``(10, 1, 25, 25)``."""
    return torch.as_tensor(lfw_subset()[90:100], dtype=torch.float32)[:, None]


class FaceProbe:
    """Measures one generation pipeline on the held-out faces and on its own samples, exactly or on a device."""

    def __init__(self, pipe, faces: torch.Tensor, num_samples: int = 16, seed: int = 0) -> None:
        self.pipe, self.faces = pipe, faces
        self.latents = encode_images(pipe.decoder, pipe.modulator, faces * 2 - 1)  # exact encoding
        with torch.no_grad():  # the prior's latents of num_samples samples (seeded), decoded per setting below
            self.sample_latents = pipe(batch_size=num_samples, output_type="latent",
                                       generator=torch.Generator().manual_seed(seed)).images
        self.exact_samples = self._decode(self.sample_latents)

    def _decode(self, latents: torch.Tensor, shots=None, noise=None, seed: int = 0) -> torch.Tensor:
        size = self.faces.shape[-1]
        with torch.no_grad(), measurement(self.pipe.decoder, shots, noise, torch.Generator().manual_seed(seed)):
            out = decode_latents(self.pipe.decoder, self.pipe.modulator, latents, size, size)
        return (out.float().clamp(-1, 1) + 1) / 2

    def psnr(self, shots=None, noise=None, seed: int = 0, encode_under_noise: bool = False) -> float:
        """Held-out PSNR with the circuits measured under ``shots`` / ``noise`` (latents fitted exactly, or under
        ``noise`` itself with ``encode_under_noise``)."""
        latents = self.latents
        if encode_under_noise and noise is not None:
            with measurement(self.pipe.decoder, None, noise):
                latents = encode_images(self.pipe.decoder, self.pipe.modulator, self.faces * 2 - 1)
        return _face_psnr(self._decode(latents, shots, noise, seed), self.faces)

    def samples(self, shots=None, noise=None, seed: int = 0) -> dict[str, float]:
        """The seeded samples decoded under ``shots`` / ``noise``: sharpness, and PSNR against their exact decode."""
        images = self._decode(self.sample_latents, shots, noise, seed)
        same = bool(torch.equal(images, self.exact_samples))
        return {"sharpness": gradient_sharpness(images),
                "psnr_vs_exact": math.inf if same else _face_psnr(images, self.exact_samples)}


def _seed_mean(fn, seeds: int) -> float:
    return float(np.mean([fn(s) for s in range(seeds)]))


def pipeline_study(cfg, progress) -> dict:
    """The bundled pipeline: held-out PSNR and sample sharpness, exact, vs shots and vs depolarizing p."""
    pipe = QirenGenerationPipeline.from_pretrained(bundled_pipeline_dir())
    pipe.set_progress_bar_config(disable=True)
    probe = FaceProbe(pipe, held_out_faces(), cfg.sample_count)
    shots, samples = {}, {}
    for n in cfg.shots:
        shots[n] = _seed_mean(lambda s, n=n: probe.psnr(shots=n, seed=s), cfg.seeds)
        draws = [probe.samples(shots=n, seed=s) for s in range(cfg.seeds)]
        samples[n] = {k: float(np.mean([d[k] for d in draws])) for k in draws[0]}
        progress(f"faces, {n} shots: {shots[n]:.2f} dB; samples sharpness {samples[n]['sharpness']:.4f}, "
                 f"{samples[n]['psnr_vs_exact']:.2f} dB from their exact decode")
    noise = {}
    for p in cfg.depolarizing:
        noise[p] = probe.psnr(noise=NoiseModel(depolarizing=p))
        progress(f"faces, depolarizing {p:g}: {noise[p]:.2f} dB")
    dec = pipe.decoder.config
    return {"exact": probe.psnr(), "shots": shots, "depolarizing": noise,
            "samples_exact_sharpness": gradient_sharpness(probe.exact_samples), "samples": samples,
            "held_out_sharpness": gradient_sharpness(probe.faces), "num_samples": cfg.sample_count,
            "shots1000_dep1e-3_readout1e-2": probe.psnr(shots=1000, noise=NoiseModel(depolarizing=1e-3, readout=1e-2)),
            "circuits": dec.n_heads, "qubits": dec.n_qubits, "entangler": dec.entangler}


FINETUNES = {"fine-tuned exactly": [], "fine-tuned under 100 shots": ["--train_shots", "100"],
             "fine-tuned under depolarizing 1e-2": ["--train_noise", "0.01"]}
"""The noise-aware fine-tunes of the bundled pipeline (``scripts/train_pipeline.py`` flags beyond the shared ones)."""


def finetune_arguments(cfg, data: Path, out: Path, extra: list[str]) -> list[str]:
    """``scripts/train_pipeline.py`` arguments of one fine-tune: the bundled pipeline on LFW faces 0-89 (+ mirrors),
    stage 1 for ``cfg.finetune_steps``, a short prior refit, no validation split (faces 90-99 are the test)."""
    return ["--pretrained_model_name_or_path", str(bundled_pipeline_dir()), "--train_data_dir", str(data),
            "--output_dir", str(out), "--max_train_steps", str(cfg.finetune_steps), "--train_batch_size", "16",
            "--learning_rate", str(cfg.finetune_learning_rate), "--flip_augment", "--latent_init", "encode",
            "--checkpointing_steps", str(cfg.finetune_steps), "--validation_images", "0", "--psnr_images", "4",
            "--validation_steps", str(10 * cfg.finetune_steps),
            "--prior_max_train_steps", str(cfg.finetune_prior_steps),
            "--prior_checkpointing_steps", str(cfg.finetune_prior_steps), "--seed", "0", *extra]


def finetune_study(cfg, progress) -> dict:
    """Fine-tune the bundled pipeline three ways (exactly, under shots, under noise) with the real trainer and
    measure each, with the bundled pipeline itself, at few shots and under depolarizing noise."""

    work = Path(cfg.finetune_workdir)
    data = export_lfw_faces(work / "lfw") / "train"
    faces = held_out_faces()
    folders = {"bundled (not fine-tuned)": Path(bundled_pipeline_dir())}
    seconds = {}
    for name, extra in FINETUNES.items():
        out = work / name.replace(" ", "-")
        if not (out / "model_index.json").is_file():  # finished runs are reused: rerun with a fresh --finetune_workdir
            start = time.perf_counter()
            if train_pipeline_main(finetune_arguments(cfg, data, out, extra)) != 0:
                raise RuntimeError(f"the fine-tune {name!r} failed (see the line above)")
            seconds[name] = time.perf_counter() - start
        folders[name] = out
    rows = {}
    for name, folder in folders.items():
        pipe = QirenGenerationPipeline.from_pretrained(folder)
        pipe.set_progress_bar_config(disable=True)
        probe = FaceProbe(pipe, faces, cfg.sample_count)
        row = {"exact": probe.psnr(), "sharpness_exact": probe.samples()["sharpness"]}
        for n in cfg.train_eval_shots:
            row[f"shots {n}"] = _seed_mean(lambda s, probe=probe, n=n: probe.psnr(shots=n, seed=s), cfg.seeds)
        for p in cfg.finetune_eval_noise:
            row[f"depolarizing {p:g}"] = probe.psnr(noise=NoiseModel(depolarizing=p), encode_under_noise=True)
        rows[name] = row
        progress(f"{name}: " + ", ".join(f"{k} {v:.2f}" for k, v in row.items() if not k.startswith("sharp")))
    return {"rows": rows, "train_seconds": seconds, "steps": cfg.finetune_steps,
            "learning_rate": cfg.finetune_learning_rate, "prior_steps": cfg.finetune_prior_steps,
            "command_flags": {k: " ".join(v) or "(none)" for k, v in FINETUNES.items()}}


__all__ = ["FINETUNES", "FaceProbe", "finetune_arguments", "finetune_study", "held_out_faces", "pipeline_study"]
