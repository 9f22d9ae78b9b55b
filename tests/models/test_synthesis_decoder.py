"""FeatureSynthesisDecoder (coordinate features + modulated synthesis layers) and auto-decoded latents."""
import json
import shutil

import pytest
import torch
from diffusers import DDIMScheduler
from safetensors.torch import load_file
from torch.nn import functional as F

from qiren_gen.data import image_grid
from qiren_gen.functa import decode_latents, encode_images, per_image_mse
from qiren_gen.metrics import psnr_from_mse
from qiren_gen.models import FeatureSynthesisDecoder, LatentDenoiser, LatentModulator
from qiren_gen.pipelines import QirenGenerationPipeline
from qiren_gen.training.prior import make_training_scheduler


def _pair(modulation="shift", latent_dim=6, encoding="auto_decode", seed=0, **kwargs):
    torch.manual_seed(seed)
    decoder = FeatureSynthesisDecoder(features="fourier", n_fourier=8, hidden_features=16, hidden_layers=2,
                                      modulation=modulation, **kwargs)
    modulator = LatentModulator.for_decoder(decoder, latent_dim, encoding=encoding, inner_steps=60, encode_lr=0.05)
    return decoder, modulator


@pytest.mark.parametrize("modulation", ["shift", "film", "weight"])
def test_shapes_shared_grid_and_save_load_roundtrip(tmp_path, modulation):
    decoder, modulator = _pair(modulation)
    assert decoder.modulation_dim == {"shift": 32, "film": 64, "weight": 16 + 16}[modulation]
    coords = image_grid(3, 5)
    latents = torch.randn(3, 6)
    shared = decoder(coords, modulator(latents))
    batched = decoder(coords.expand(3, -1, -1), modulator(latents))
    assert shared.shape == (3, 15, 1)
    torch.testing.assert_close(shared, batched)
    assert (shared[0] - shared[1]).abs().max() > 1e-4  # the latent changes the image
    decoder.save_pretrained(tmp_path / "decoder")
    modulator.save_pretrained(tmp_path / "modulator")
    decoder2 = FeatureSynthesisDecoder.from_pretrained(tmp_path / "decoder")
    modulator2 = LatentModulator.from_pretrained(tmp_path / "modulator")
    assert modulator2.config.encoding == "auto_decode" and modulator2.config.inner_steps == 60
    torch.testing.assert_close(decoder2(coords, modulator2(latents)), shared)


def test_features_are_cached_at_inference_and_invalidated_by_training():
    decoder, modulator = _pair()
    calls = []
    compute = decoder._features
    decoder._features = lambda coords, stats: calls.append(1) or compute(coords, stats)
    z = torch.randn(4, 6)
    with torch.no_grad():
        first = decode_latents(decoder, modulator, z, 6, 6)
        again = decode_latents(decoder, modulator, z[:1], 6, 6)
    assert len(calls) == 1  # one grid: the features were computed once for both calls
    torch.testing.assert_close(again[0], first[0])
    with torch.no_grad():
        decoder.fourier_matrix.mul_(2)  # an in-place update (as an optimizer makes) must invalidate the cache
        changed = decode_latents(decoder, modulator, z[:1], 6, 6)
    assert len(calls) == 2 and (changed - first[:1]).abs().max() > 1e-4
    decode_latents(decoder, modulator, z[:1], 6, 6)  # gradients on, but Fourier features have no parameters
    assert len(calls) == 2
    coords = image_grid(6, 6).requires_grad_(True)
    decoder.coordinate_features(coords)  # a gradient must reach the coordinates: never served from the cache
    assert len(calls) == 3


def test_cleared_feature_cache_computes_the_features_again():
    decoder, modulator = _pair()
    calls = []
    compute = decoder._features
    decoder._features = lambda coords, stats: calls.append(1) or compute(coords, stats)
    z = torch.randn(2, 6)
    with torch.no_grad():
        first = decode_latents(decoder, modulator, z, 6, 6)
        decoder.clear_feature_cache()
        again = decode_latents(decoder, modulator, z, 6, 6)
    assert len(calls) == 2  # without the clear, the second render is served from the cache (the test above)
    torch.testing.assert_close(again, first, rtol=0, atol=0)


def test_quantum_features_recomputed_for_training_and_cached_while_encoding():
    torch.manual_seed(0)
    decoder = FeatureSynthesisDecoder(features="quantum", n_heads=4, n_qubits=2, hidden_features=16, hidden_layers=1)
    modulator = LatentModulator.for_decoder(decoder, 4, encoding="auto_decode", inner_steps=5)
    calls = []
    compute = decoder._series_or_simulated_features  # the features' computation: the series (or the simulator)
    decoder._series_or_simulated_features = lambda coords, stats: calls.append(1) or compute(coords, stats)
    coords = image_grid(5, 5)
    decoder.coordinate_features(coords)
    decoder.coordinate_features(coords)
    assert len(calls) == 2  # training: the circuit weights need gradients, so the features are recomputed
    images = torch.rand(2, 1, 5, 5) * 2 - 1
    latents = encode_images(decoder, modulator, images)
    assert len(calls) == 3  # 5 encoding steps against the frozen decoder: the grid's features computed once
    assert all(p.requires_grad for p in [*decoder.parameters(), *modulator.parameters()])  # restored afterwards
    decoder._series_or_simulated_features = compute
    decoder._feature_cache = []
    recomputed = []

    def uncached(coords, stats):
        recomputed.append(1)
        return compute(coords, stats)

    decoder.coordinate_features = lambda c, stats=None: uncached(c, stats)
    torch.testing.assert_close(encode_images(decoder, modulator, images), latents, rtol=0, atol=0)
    assert len(recomputed) == 5  # the same latents as recomputing the features at every step


@pytest.mark.parametrize("kwargs,field", [({"features": "gabor"}, "features"), ({"modulation": "angles"}, "modulation"),
                                          ({"n_heads": 0}, "n_heads"), ({"hidden_layers": 0}, "hidden_layers"),
                                          ({"hidden_features": 1.5}, "hidden_features"),
                                          ({"fourier_scale": 0.0}, "fourier_scale")])
def test_bad_configs_name_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        FeatureSynthesisDecoder(features=kwargs.pop("features", "fourier"), **kwargs)


def test_bad_encoding_names_the_field():
    with pytest.raises(ValueError, match="encoding"):
        LatentModulator(encoding="vae")
    with pytest.raises(ValueError, match="encode_lr"):
        LatentModulator(encode_lr=0.0)


def test_auto_decode_encoding_fits_each_image_independently():
    decoder, modulator = _pair()
    truth = torch.randn(3, 6) * 0.5
    with torch.no_grad():
        images = decode_latents(decoder, modulator, truth, 6, 6)
    z = encode_images(decoder, modulator, images)
    alone = encode_images(decoder, modulator, images[1:2])
    torch.testing.assert_close(alone[0], z[1], rtol=1e-4, atol=1e-5)  # Adam is elementwise: no batch coupling
    coords, targets = image_grid(6, 6), images.permute(0, 2, 3, 1).reshape(3, 36, 1)
    with torch.no_grad():
        fitted = psnr_from_mse(per_image_mse(decoder, modulator, z, coords, targets), 2.0)
        zero = psnr_from_mse(per_image_mse(decoder, modulator, torch.zeros_like(z), coords, targets), 2.0)
    assert (fitted > zero + 3).all()
    assert all(p.grad is None for p in [*decoder.parameters(), *modulator.parameters()])
    assert encode_images(decoder, modulator, images, steps=0).abs().max() == 0  # zero steps: the zero latent


def test_meta_sgd_modulator_config_without_encoding_fields_loads_as_meta_sgd(tmp_path):
    """Old pipeline folders' modulators (no encoding fields) keep encoding with the meta-learned inner loop."""
    modulator = LatentModulator(latent_dim=4, modulation_dim=8)
    modulator.save_pretrained(tmp_path)
    cfg = json.loads((tmp_path / "config.json").read_text())
    for key in ("encoding", "encode_lr", "latent_l2"):
        cfg.pop(key)
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    assert LatentModulator.from_pretrained(tmp_path).config.encoding == "meta_sgd"


def _pipeline(modulation="weight"):
    decoder, modulator = _pair(modulation)
    prior = LatentDenoiser(latent_dim=6, hidden_dim=16, num_blocks=1, time_embed_dim=8, sample_size=8)
    scheduler = DDIMScheduler.from_config(make_training_scheduler(100).config)
    pipe = QirenGenerationPipeline(decoder, modulator, prior, scheduler)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def test_generation_pipeline_round_trip_and_superresolution(tmp_path):
    pipe = _pipeline()
    images = pipe(batch_size=2, height=12, width=9, num_inference_steps=3, output_type="pt",
                  generator=torch.Generator().manual_seed(0)).images
    assert images.shape == (2, 1, 12, 9)
    pipe.save_pretrained(tmp_path / "pipe")
    loaded = QirenGenerationPipeline.from_pretrained(tmp_path / "pipe")
    loaded.set_progress_bar_config(disable=True)
    assert type(loaded.decoder).__name__ == "FeatureSynthesisDecoder"
    again = loaded(batch_size=2, height=12, width=9, num_inference_steps=3, output_type="pt",
                   generator=torch.Generator().manual_seed(0)).images
    torch.testing.assert_close(again, images)
    big = loaded.superresolve(images[:1], 24, 18, steps=5, output_type="pt")
    assert big.shape == (1, 1, 24, 18)


def test_folder_with_unknown_decoder_class_or_mismatched_weights_is_one_clear_error(tmp_path):
    _pipeline().save_pretrained(tmp_path / "pipe")
    unknown = tmp_path / "unknown"
    shutil.copytree(tmp_path / "pipe", unknown)
    index = json.loads((unknown / "model_index.json").read_text())
    index["decoder"] = ["qiren_gen.models.synthesis", "HyperQuantumDecoder"]
    (unknown / "model_index.json").write_text(json.dumps(index))
    with pytest.raises(ValueError, match="decoder") as err:
        QirenGenerationPipeline.from_pretrained(unknown)
    assert "\n" not in str(err.value)
    mismatched = tmp_path / "mismatched"
    shutil.copytree(tmp_path / "pipe", mismatched)
    cfg = json.loads((mismatched / "decoder" / "config.json").read_text())
    cfg["hidden_features"] = 24  # the weights were saved for width 16
    (mismatched / "decoder" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="decoder") as err:
        QirenGenerationPipeline.from_pretrained(mismatched)
    assert "\n" not in str(err.value)


def test_trainer_learns_auto_decoded_latents_and_resumes_exactly(tmp_path):
    from accelerate.state import AcceleratorState
    from PIL import Image

    from qiren_gen.training.functa_trainer import LATENTS_FILE, FunctaTrainingConfig, train_functa

    folder = tmp_path / "data" / "train"
    folder.mkdir(parents=True)
    for i in range(6):
        x = torch.linspace(0, 1, 8)
        img = (127 + 100 * torch.sin(6 * x[None, :] * (1 + i / 3) + 3 * x[:, None])).to(torch.uint8).numpy()
        Image.fromarray(img).save(folder / f"{i}.png")

    def run(out, steps, resume=None):
        AcceleratorState._reset_state(True)
        return train_functa(FunctaTrainingConfig(
            output_dir=str(out), train_data_dir=str(tmp_path / "data"), resolution=8, decoder="fourier_features",
            hidden_features=16, hidden_layers=2, n_fourier=8, latent_dim=4, modulation="film",
            encoding="auto_decode", flip_augment=True, encode_steps=20, train_batch_size=4, max_train_steps=steps,
            learning_rate=1e-2, latent_learning_rate=5e-2, checkpointing_steps=3, seed=1,
            resume_from_checkpoint=resume))

    summary = run(tmp_path / "full", 6)
    assert summary["last_loss"] < summary["first_loss"]
    assert "train_psnr_all" in summary and "train_psnr_all_mirrors" in summary
    full = load_file(str(tmp_path / "full" / LATENTS_FILE))["latents"]
    assert full.shape == (12, 4)  # 6 images + their mirrors, one latent each
    run(tmp_path / "part", 3)
    run(tmp_path / "part", 6, resume="latest")
    torch.testing.assert_close(load_file(str(tmp_path / "part" / LATENTS_FILE))["latents"], full, rtol=0, atol=0)
    a = load_file(str(tmp_path / "full" / "decoder" / "diffusion_pytorch_model.safetensors"))
    b = load_file(str(tmp_path / "part" / "decoder" / "diffusion_pytorch_model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    modulator = LatentModulator.from_pretrained(tmp_path / "full" / "modulator")
    assert (modulator.config.encoding, modulator.config.inner_steps, modulator.config.encode_lr) == (
        "auto_decode", 20, 5e-2)
    AcceleratorState._reset_state(True)


def test_area_consistent_superresolution_with_auto_decoded_latents():
    from qiren_gen.functa import encode_area_consistent

    decoder, modulator = _pair("film")
    with torch.no_grad():
        high = decode_latents(decoder, modulator, torch.randn(2, 6) * 0.5, 12, 12)
    low = F.avg_pool2d(high, 3)
    z = encode_area_consistent(decoder, modulator, low, 3)
    with torch.no_grad():
        render = F.avg_pool2d(decode_latents(decoder, modulator, z, 12, 12), 3)
        zero = F.avg_pool2d(decode_latents(decoder, modulator, torch.zeros_like(z), 12, 12), 3)
    assert ((render - low).square().mean() * 10 < (zero - low).square().mean())


@pytest.mark.parametrize("modulation", ["shift", "weight"])
def test_circuit_features_decoder_trains_its_circuits_and_round_trips(tmp_path, modulation):
    torch.manual_seed(0)
    decoder = FeatureSynthesisDecoder(features="quantum", n_heads=3, n_qubits=2, hidden_features=8, hidden_layers=2,
                                      modulation=modulation, reference_size=4)
    modulator = LatentModulator.for_decoder(decoder, 4)
    coords, latents = image_grid(5, 4), torch.randn(3, 4)
    out = decoder(coords, modulator(latents))
    assert out.shape == (3, 20, 1)
    out.square().sum().backward()
    for p in (decoder.circuits.weights, decoder.frequencies.weight, decoder.norm_weight):
        assert p.grad is not None and p.grad.abs().sum() > 0
    alone = decoder(coords, modulator(latents[2:]))
    torch.testing.assert_close(alone[0], out[2].detach())  # per-sample: the batch does not leak into a render
    features = decoder.coordinate_features(coords)
    assert features.shape == (20, 6) and features.abs().max() <= 1 + 1e-6  # <Z> of 3 heads x 2 qubits
    decoder.save_pretrained(tmp_path)
    loaded = FeatureSynthesisDecoder.from_pretrained(tmp_path)
    assert loaded.config.entangler == "cnot_chain"
    with torch.no_grad():
        torch.testing.assert_close(loaded(coords, modulator(latents)), out.detach())


def test_capacity_sweep_pca_floor_reproduces_the_measured_floors():
    from research.decoder_capacity.capacity import load_faces, pca_psnr

    train, test = load_faces()
    assert train.shape == (90, 1, 25, 25) and test.shape == (10, 1, 25, 25)
    # The PCA floors measured before the sweep (faces 0-89 + mirrors, held-out faces 90-99): 18.5 / 20.5 / 21.6 dB.
    for k, expected in ((8, 18.5), (32, 20.5), (64, 21.6)):
        assert abs(pca_psnr(train, test, k)["heldout_psnr"] - expected) < 0.1
