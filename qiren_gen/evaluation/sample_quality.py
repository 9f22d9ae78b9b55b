"""Honest sample-quality figures for a generative model on a small dataset: diversity, memorisation, reconstruction.

All distances are per-pixel RMS on images in [0, 1] (``(N, C, H, W)``), so numbers read as "typical pixel error".
Memorisation is judged against two references: how far held-out real images are from the training set, and how far
the model's own reconstructions of training images are from them (a sample that copies a training latent sits at the
reconstruction distance).
"""
from __future__ import annotations

import torch

from ..functa import encode_images
from ..metrics import psnr


def _flat(images: torch.Tensor) -> torch.Tensor:
    if images.ndim != 4 or images.shape[0] < 1:
        raise ValueError(f"expected images (N, C, H, W), got {tuple(images.shape)}")
    return images.reshape(images.shape[0], -1).double()


def pairwise_rms(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``(N, M)`` per-pixel RMS distances between two image sets of the same shape."""
    fa, fb = _flat(a), _flat(b)
    if fa.shape[1] != fb.shape[1]:
        raise ValueError(f"image sets differ in size: {tuple(a.shape[1:])} vs {tuple(b.shape[1:])}")
    return torch.cdist(fa, fb) / fa.shape[1] ** 0.5


def mean_pairwise_distance(images: torch.Tensor) -> float:
    """Mean RMS distance over all distinct pairs: the spread (diversity) of a set of images."""
    n = images.shape[0]
    if n < 2:
        raise ValueError("need at least 2 images for a pairwise distance")
    d = pairwise_rms(images, images)
    return float(d.sum() / (n * (n - 1)))


def nearest_neighbour_distances(queries: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """RMS distance from each query image to its nearest reference image: ``(N,)``."""
    return pairwise_rms(queries, reference).min(dim=1).values


def gradient_sharpness(images: torch.Tensor) -> float:
    """Mean absolute difference between neighbouring pixels (both axes) of images in [0, 1] ``(N, C, H, W)``: blur
    lowers it, pixel noise (e.g. finite-shot readout) raises it, so read it beside a fidelity figure."""
    if images.ndim != 4 or min(images.shape[2:]) < 2:
        raise ValueError(f"expected images (N, C, H, W) with H, W >= 2, got {tuple(images.shape)}")
    x = images.double()
    return float(((x[..., 1:, :] - x[..., :-1, :]).abs().mean() + (x[..., :, 1:] - x[..., :, :-1]).abs().mean()) / 2)


@torch.no_grad()
def generation_report(pipe, train: torch.Tensor, test: torch.Tensor, num_samples: int = 256,
                      num_inference_steps: int = 50, seed: int = 0) -> dict[str, float]:
    """Sample ``num_samples`` images at the training size and measure diversity, memorisation and reconstruction.

    ``train`` / ``test`` are real images in [0, 1], ``(N, C, H, W)`` at the pipeline's training resolution.
    Memorisation is checked in pixel space and in the prior's normalised latent space, each against held-out faces.
    """
    size = (train.shape[2], train.shape[3])
    z_samples = pipe(batch_size=num_samples, num_inference_steps=num_inference_steps, output_type="latent",
                     generator=torch.Generator().manual_seed(seed)).images

    def render(z):
        return ((pipe.render(z, *size).float().clamp(-1, 1) + 1) / 2).cpu()

    samples = render(z_samples)
    z_train = encode_images(pipe.decoder, pipe.modulator, train * 2 - 1)
    z_test = encode_images(pipe.decoder, pipe.modulator, test * 2 - 1)
    recon_train, recon_test = render(z_train), render(z_test)
    nn_samples = nearest_neighbour_distances(samples, train)
    nn_recon_train = nearest_neighbour_distances(recon_train, train)
    nn_recon_test = nearest_neighbour_distances(recon_test, train)

    def latent_nn(z):
        a, b = pipe.prior.normalize(z).double(), pipe.prior.normalize(z_train).double()
        return torch.cdist(a, b).min(1).values / a.shape[1] ** 0.5

    return {
        "num_samples": num_samples,
        "diversity_samples": mean_pairwise_distance(samples),
        "diversity_train": mean_pairwise_distance(train),
        "diversity_train_reconstructions": mean_pairwise_distance(recon_train),
        "nn_dist_samples_median": float(nn_samples.median()),
        "nn_dist_samples_min": float(nn_samples.min()),
        "nn_dist_heldout_median": float(nearest_neighbour_distances(test, train).median()),
        "nn_dist_train_reconstructions_median": float(nn_recon_train.median()),
        "nn_dist_heldout_reconstructions_median": float(nn_recon_test.median()),
        "frac_samples_closer_than_reconstruction": float(
            (nn_samples < float(nn_recon_train.median())).double().mean()),
        "latent_nn_samples_median": float(latent_nn(z_samples).median()),
        "latent_nn_heldout_median": float(latent_nn(z_test).median()),
        "psnr_train_reconstruction": float(psnr(recon_train, train, data_range=1.0, dim=(1, 2, 3))),
        "psnr_heldout_reconstruction": float(psnr(recon_test, test, data_range=1.0, dim=(1, 2, 3))),
    }
