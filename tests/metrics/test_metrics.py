"""qiren_gen.metrics: reconstruction metrics against scikit-image, FID/KID plumbing through torch-fidelity.

FID/KID use the weight-free ``qiren-pixel-pool`` extractor registered with torch-fidelity's extension API, so the
real ``calculate_metrics`` path runs without the Inception download; the references here are independent NumPy/SciPy.
"""
from __future__ import annotations

import hashlib
from itertools import pairwise

import numpy as np
import pytest
import scipy.linalg
import torch
from skimage.data import lfw_subset
from skimage.metrics import structural_similarity

from qiren_gen import metrics
from qiren_gen.metrics import (
    PIXEL_POOL,
    ImageTensorDataset,
    ReferenceStatistics,
    compute_fid_kid,
    mse,
    psnr,
    psnr_from_mse,
    ssim,
    to_uint8_rgb,
)

FD = f"frechet_distance[{PIXEL_POOL}]"
KD = f"kernel_distance[{PIXEL_POOL}]_mean"


@pytest.fixture(scope="module")
def lfw() -> torch.Tensor:
    """200 real 25x25 grayscale images in [0, 1]: 100 faces then 100 non-faces, shape (200, 1, 25, 25)."""
    return torch.tensor(lfw_subset(), dtype=torch.float64)[:, None]


def pool_features_numpy(images: np.ndarray) -> np.ndarray:
    """4x4 adaptive average pooling of uint8 (N, 3, H, W) / 255, written out with NumPy (PyTorch's bin rule)."""
    x = images.astype(np.float64) / 255.0
    h, w = x.shape[-2:]
    out = np.empty(x.shape[:2] + (4, 4))
    for i in range(4):
        r0, r1 = (i * h) // 4, -((-(i + 1) * h) // 4)
        for j in range(4):
            c0, c1 = (j * w) // 4, -((-(j + 1) * w) // 4)
            out[:, :, i, j] = x[:, :, r0:r1, c0:c1].mean(axis=(-2, -1))
    return out.reshape(len(x), -1)


def frechet_numpy(f1: np.ndarray, f2: np.ndarray) -> float:
    mu1, mu2 = f1.mean(0), f2.mean(0)
    s1, s2 = np.cov(f1, rowvar=False), np.cov(f2, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def kid_numpy(f1: np.ndarray, f2: np.ndarray) -> float:
    """Unbiased MMD^2 with torch-fidelity's default cubic polynomial kernel, all samples in one subset."""

    def k(a, b):
        return (a @ b.T / a.shape[1] + 1.0) ** 3

    m = len(f1)
    kxx, kyy, kxy = k(f1, f1), k(f2, f2), k(f1, f2)
    return float((kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1)) - 2 * kxy.sum() / m**2)


# ---------------------------------------------------------------------------------------------------------------------
def test_ssim_matches_scikit_image(lfw):
    a, b = lfw[:6], lfw[6:12]
    ours = ssim(a, b, reduction="none")
    ref = [structural_similarity(x[0].numpy(), y[0].numpy(), gaussian_weights=True, sigma=1.5,
                                 use_sample_covariance=False, data_range=1.0) for x, y in zip(a, b, strict=True)]
    np.testing.assert_allclose(ours.numpy(), ref, rtol=0, atol=1e-10)
    assert float(ssim(a, a)) == pytest.approx(1.0, abs=1e-12)
    rgb = torch.rand(2, 3, 16, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    ref_rgb = structural_similarity(rgb[0].numpy(), rgb[1].numpy(), gaussian_weights=True, sigma=1.5,
                                    use_sample_covariance=False, data_range=1.0, channel_axis=0)
    assert float(ssim(rgb[:1], rgb[1:])) == pytest.approx(ref_rgb, abs=1e-10)


def test_mse_psnr_against_formula(lfw):
    a, b = lfw[:4], lfw[4:8]
    per = ((a - b) ** 2).flatten(1).mean(1)
    np.testing.assert_allclose(mse(a, b, reduction="none").numpy(), per.numpy())
    np.testing.assert_allclose(psnr(a, b, data_range=1.0, dim=(1, 2, 3), reduction="none").numpy(),
                               (10 * torch.log10(1 / per.double())).numpy(), rtol=1e-6)
    assert float(psnr(2 * a, 2 * b, data_range=2.0, dim=(1, 2, 3))) == pytest.approx(
        float(psnr(a, b, data_range=1.0, dim=(1, 2, 3))))
    assert torch.isinf(psnr(a, a, data_range=1.0))


# The one PSNR against each formula it replaced, on the same data (the figures the project printed must not move).
def _old_image_psnr(pred, target, data_range=1.0):  # metrics.psnr: mean over images of per-image PSNR, float32
    per_image = (pred - target).pow(2).flatten(1).mean(1)
    return (10.0 * torch.log10(data_range**2 / per_image)).mean()


def _old_signal_psnr(prediction, target):  # metrics.signals.psnr: one PSNR of the whole signal in [-1, 1], float64
    err = float(np.mean((np.asarray(prediction, dtype=np.float64) - np.asarray(target, dtype=np.float64)) ** 2))
    return 10 * np.log10(4 / err)


def _old_functa_psnr(mse):  # functa.psnr: from an MSE of images in [-1, 1]
    return 10 * torch.log10(4 / mse.clamp_min(1e-12))


def _old_psnr01(pred, target):  # evaluation.sample_quality.psnr01: per-image, images in [0, 1], float64
    mse = (pred.double() - target.double()).square().flatten(1).mean(1)
    return 10 * torch.log10(1 / mse.clamp_min(1e-12))


def test_one_psnr_gives_the_figures_of_the_ones_it_replaced(lfw):
    a, b = lfw[:6], lfw[6:12]  # real faces in [0, 1]
    assert float(psnr(a, b, data_range=1.0, dim=(1, 2, 3))) == pytest.approx(float(_old_image_psnr(a, b)), abs=1e-4)
    np.testing.assert_allclose(psnr(a, b, data_range=1.0, dim=(1, 2, 3), reduction="none").numpy(),
                               _old_psnr01(a, b).numpy(), rtol=0, atol=1e-12)
    signal_a, signal_b = (a[0, 0] * 2 - 1).numpy(), (b[0, 0] * 2 - 1).numpy()
    assert float(psnr(signal_a, signal_b, data_range=2.0)) == pytest.approx(_old_signal_psnr(signal_a, signal_b),
                                                                             abs=1e-9)
    per_image_mse = ((a * 2 - 1) - (b * 2 - 1)).square().mean(dim=(1, 2, 3))
    np.testing.assert_allclose(psnr_from_mse(per_image_mse, 2.0).numpy(), _old_functa_psnr(per_image_mse).numpy(),
                               rtol=1e-6)
    np.testing.assert_allclose(psnr(a * 2 - 1, b * 2 - 1, data_range=2.0, dim=(1, 2, 3), reduction="none").numpy(),
                               _old_functa_psnr(per_image_mse).double().numpy(), rtol=1e-5)
    # a [-1, 1] image scored as if it were [0, 1] reads 20 log10(2) = 6.02 dB low: why data_range is explicit
    gap = psnr(a * 2 - 1, b * 2 - 1, data_range=2.0) - psnr(a * 2 - 1, b * 2 - 1, data_range=1.0)
    assert float(gap) == pytest.approx(20 * np.log10(2))


def test_psnr_from_mse_numbers_and_edges():
    assert psnr_from_mse(0.04, data_range=2.0) == pytest.approx(20.0)
    assert psnr_from_mse(0.0, 1.0) == float("inf") and np.isnan(psnr_from_mse(float("nan"), 1.0))
    assert psnr_from_mse(float("inf"), 1.0) == float("-inf")
    assert torch.isinf(psnr_from_mse(torch.zeros(2), 1.0)).all()


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), float("inf"), True, "2"])
def test_psnr_refuses_a_bad_data_range(bad):
    with pytest.raises(ValueError, match="data_range must be a positive number"):
        psnr(torch.zeros(3), torch.ones(3), data_range=bad)


def test_psnr_needs_its_data_range_and_matching_shapes():
    with pytest.raises(TypeError):
        psnr(torch.zeros(3), torch.ones(3))  # no default: [0, 1] and [-1, 1] data are 6 dB apart
    with pytest.raises(ValueError, match="does not match"):
        psnr(torch.zeros(3), torch.ones(4), data_range=1.0)


def test_reconstruction_metrics_reject_bad_shapes():
    with pytest.raises(ValueError, match="does not match"):
        mse(torch.zeros(1, 1, 8, 8), torch.zeros(1, 1, 8, 9))
    with pytest.raises(ValueError, match="at least 11x11"):
        ssim(torch.zeros(1, 1, 8, 8), torch.zeros(1, 1, 8, 8))
    with pytest.raises(ValueError, match="reduction"):
        mse(torch.zeros(1, 1, 8, 8), torch.zeros(1, 1, 8, 8), reduction="sum")


def test_to_uint8_rgb_layouts():
    gray = torch.tensor([[[[0.0, 0.5], [1.0, 2.0]]]])  # (1, 1, 2, 2), out-of-range clamps
    out = to_uint8_rgb(gray)
    assert out.dtype == torch.uint8 and out.shape == (1, 3, 2, 2)
    assert out[0, :, 0, 1].tolist() == [128, 128, 128] and out[0, 0, 1, 1] == 255
    nhwc = np.zeros((2, 5, 7, 3), dtype=np.uint8)
    assert to_uint8_rgb(nhwc).shape == (2, 3, 5, 7)
    with pytest.raises(ValueError, match="1 or 3 channels"):
        to_uint8_rgb(torch.zeros(2, 2, 5, 5))


# ---------------------------------------------------------------------------------------------------------------------
def test_fid_of_a_set_against_itself_is_zero(lfw):
    faces = lfw[:100]
    out, _ = compute_fid_kid(faces, ImageTensorDataset(faces), feature_extractor=PIXEL_POOL)
    assert abs(out[FD]) < 1e-6
    assert abs(out[KD]) < 0.01  # unbiased KID of a set against itself: ~0 up to the cross-term diagonal


def test_fid_and_kid_grow_monotonically_with_a_controlled_shift(lfw):
    """Blend faces toward LFW's non-face images: t = 0 .. 1 moves the distribution away from the faces."""
    faces, others = lfw[:100], lfw[100:]
    reference = ImageTensorDataset(faces)
    fds, kds = [], []
    for t in (0.0, 0.25, 0.5, 0.75, 1.0):
        out, _ = compute_fid_kid((1 - t) * faces + t * others, reference, feature_extractor=PIXEL_POOL, kid_subsets=5)
        fds.append(out[FD])
        kds.append(out[KD])
    assert all(b > a for a, b in pairwise(fds)), fds
    assert all(b > a for a, b in pairwise(kds)), kds
    assert fds[0] < 1e-6 < fds[1]


def test_fid_and_kid_match_direct_numpy_scipy(lfw):
    gen, ref = lfw[:50], lfw[50:100]
    out, stats = compute_fid_kid(gen, ImageTensorDataset(ref), feature_extractor=PIXEL_POOL)
    f_gen = pool_features_numpy(to_uint8_rgb(gen).numpy())
    f_ref = pool_features_numpy(to_uint8_rgb(ref).numpy())
    assert out[FD] == pytest.approx(frechet_numpy(f_gen, f_ref), rel=1e-4)
    assert out[KD] == pytest.approx(kid_numpy(f_gen, f_ref), rel=1e-4)
    assert out["kid_subset_size"] == 50
    np.testing.assert_allclose(stats.mu, f_ref.mean(0), atol=1e-6)
    assert stats.num_images == 50 and stats.features.shape == (50, 48)


def test_cached_reference_statistics_round_trip(lfw, tmp_path):
    gen, ref = lfw[:40], lfw[50:100]
    direct, stats = compute_fid_kid(gen, ImageTensorDataset(ref), feature_extractor=PIXEL_POOL)
    stats.resolution = 25
    stats.save(tmp_path / "ref.pt")
    loaded = ReferenceStatistics.load(tmp_path / "ref.pt")
    again, _ = compute_fid_kid(gen, loaded, feature_extractor=PIXEL_POOL)
    assert again == pytest.approx(direct, rel=1e-9)
    loaded.features = None  # statistics only (what large references keep): FID, no KID
    fid_only, _ = compute_fid_kid(gen, loaded, feature_extractor=PIXEL_POOL)
    assert set(fid_only) == {FD} and fid_only[FD] == pytest.approx(direct[FD], rel=1e-9)
    with pytest.raises(ValueError, match="computed with qiren-pixel-pool"):
        compute_fid_kid(gen, loaded, feature_extractor="inception-v3-compat")
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match="not a readable reference statistics file"):
        ReferenceStatistics.load(tmp_path / "junk.pt")


def test_fid_bad_inputs(lfw):
    with pytest.raises(ValueError, match="at least 2 generated samples"):
        compute_fid_kid(lfw[:1], ImageTensorDataset(lfw[:10]), feature_extractor=PIXEL_POOL)
    with pytest.raises(ValueError, match="reference set needs at least 2"):
        compute_fid_kid(lfw[:10], ImageTensorDataset(lfw[:1]), feature_extractor=PIXEL_POOL)
    with pytest.raises(ValueError, match="unknown feature extractor"):
        compute_fid_kid(lfw[:10], ImageTensorDataset(lfw[:10]), feature_extractor="no-such-extractor")


# ---------------------------------------------------------------------------------------------------------------------
def test_missing_weights_file_names_the_option(tmp_path):
    with pytest.raises(OSError, match="--fid-weights .*no such file"):
        metrics.resolve_inception_weights(tmp_path / "missing.pth")


def test_weights_must_be_exactly_torch_fidelitys_file(tmp_path, monkeypatch):
    """FID is only comparable with torch-fidelity's exact Inception weights: a file of another length or sha256 is
    refused; the file whose whole digest is the recorded one is accepted as it is."""
    from qiren_gen.metrics import extractors

    torch.save({"Conv2d_1a_3x3.conv.weight": torch.zeros(1), "fc.weight": torch.zeros(1)}, tmp_path / "other.pth")
    with pytest.raises(ValueError, match=r"Inception-v3 weights .* is \d+ bytes, not the 95628359 bytes"):
        metrics.resolve_inception_weights(tmp_path / "other.pth")
    data = (tmp_path / "other.pth").read_bytes()
    monkeypatch.setattr(extractors, "INCEPTION_BYTES", len(data))
    with pytest.raises(ValueError, match=f"its sha256 is {hashlib.sha256(data).hexdigest()}, expected 6726825d0af5"):
        metrics.resolve_inception_weights(tmp_path / "other.pth")
    monkeypatch.setattr(extractors, "INCEPTION_SHA256", hashlib.sha256(data).hexdigest())
    assert metrics.resolve_inception_weights(tmp_path / "other.pth") == str(tmp_path / "other.pth")


def test_offline_inception_download_fails_in_one_line(tmp_path, monkeypatch):
    """The real torch.hub download path, pointed at a closed local port so it fails at once (and cannot hang)."""
    from torch_fidelity import feature_extractor_inceptionv3 as fe

    monkeypatch.setattr(fe, "URL_INCEPTION_V3", "http://127.0.0.1:9/" + metrics.INCEPTION_WEIGHTS_FILE)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    with pytest.raises(OSError) as info:
        metrics.resolve_inception_weights(None, timeout=5)
    message = str(info.value)
    assert "--fid-weights PATH" in message and "\n" not in message
    assert not (tmp_path / "hub" / "checkpoints" / metrics.INCEPTION_WEIGHTS_FILE).exists()


def test_cached_inception_weights_are_used_without_download_and_checked(tmp_path, monkeypatch):
    from torch_fidelity import feature_extractor_inceptionv3 as fe

    from qiren_gen.metrics import extractors

    monkeypatch.setattr(fe, "URL_INCEPTION_V3", "http://127.0.0.1:9/" + metrics.INCEPTION_WEIGHTS_FILE)  # no network
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    (tmp_path / "checkpoints").mkdir()
    target = tmp_path / "checkpoints" / metrics.INCEPTION_WEIGHTS_FILE
    target.write_bytes(b"a truncated download")
    with pytest.raises(ValueError, match="delete the file to download it again"):
        metrics.resolve_inception_weights(None)
    monkeypatch.setattr(extractors, "INCEPTION_SHA256", hashlib.sha256(target.read_bytes()).hexdigest())
    monkeypatch.setattr(extractors, "INCEPTION_BYTES", target.stat().st_size)
    assert metrics.resolve_inception_weights(None) == str(target)
