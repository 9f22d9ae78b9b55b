"""ModulatedWideQIREN: heads wired in as the hybrid layers, save/load, resolution independence, functa and pipelines."""
import pytest
import torch
import torch.nn.functional as F

from qiren_gen.data import image_grid
from qiren_gen.functa import decode_latents, encode_images, per_image_mse
from qiren_gen.metrics import psnr
from qiren_gen.models import LatentModulator, ModulatedWideQIREN
from qiren_gen.pipelines import QirenGenerationPipeline
from qiren_gen.quantum import DataReuploadingCircuit
from testing_utils import tiny_wide_pipeline


def _pair(mode: str = "shift", entangler: str = "cz_ring", channels: int = 1, latent_dim: int = 8, seed: int = 0):
    torch.manual_seed(seed)
    decoder = ModulatedWideQIREN(out_channels=channels, n_heads=3, n_qubits=2, hidden_layers=1, modulation=mode,
                                 entangler=entangler, reference_size=8)
    return decoder, LatentModulator.for_decoder(decoder, latent_dim)


def test_one_hybrid_layer_is_heads_of_single_circuits_side_by_side():
    """Layer l's features h * n .. h * n + n - 1 are exactly DataReuploadingCircuit(n) with head h's weights."""
    decoder, _ = _pair()
    decoder = decoder.double()
    x = torch.randn(5, 6, dtype=torch.float64)
    out = decoder.shared_circuit(0, x)
    for head in range(3):
        single = DataReuploadingCircuit(2).double()
        with torch.no_grad():
            single.weights.copy_(decoder.circuits[0].weights[head])
        torch.testing.assert_close(out[:, 2 * head : 2 * head + 2], single(x[:, 2 * head : 2 * head + 2]))


def test_widths_parameters_and_modulation_sizes():
    decoder = ModulatedWideQIREN(n_heads=32, n_qubits=4, hidden_width=128, hidden_layers=2)
    assert decoder.width == 128 and decoder.modulation_dim == 3 * 128
    assert [tuple(c.weights.shape) for c in decoder.circuits] == [(32, 3, 2, 4, 3)] * 3
    assert ModulatedWideQIREN(n_heads=32, n_qubits=4, modulation="film").modulation_dim == 3 * 256
    angles = ModulatedWideQIREN(n_heads=2, n_qubits=3, hidden_layers=0, modulation="angles")
    assert angles.modulation_dim == 2 * 3 * 2 * 3 * 3


@pytest.mark.parametrize("mode,entangler,channels", [("shift", "cz_ring", 1), ("film", "cnot_chain", 3),
                                                     ("angles", "cnot_chain", 1)])
def test_forward_and_save_load_roundtrip(tmp_path, mode, entangler, channels):
    decoder, modulator = _pair(mode, entangler, channels)
    coords = torch.rand(2, 5, 2) * 2 - 1
    latents = torch.randn(2, 8)
    out = decoder(coords, modulator(latents))
    assert out.shape == (2, 5, channels) and bool(torch.isfinite(out).all())
    decoder.save_pretrained(tmp_path / "decoder")
    loaded = ModulatedWideQIREN.from_pretrained(tmp_path / "decoder")
    assert loaded.config.entangler == entangler and loaded.config.modulation == mode
    torch.testing.assert_close(loaded(coords, modulator(latents)), out)


def test_angles_modulation_is_per_sample_weights():
    """Modulation m on the angles of sample b gives the decoder whose circuits hold weights + m, for that sample
    only."""
    decoder, _ = _pair("angles")
    decoder = decoder.double()
    coords = torch.rand(2, 4, 2, dtype=torch.float64) * 2 - 1
    mods = torch.randn(2, decoder.modulation_dim, dtype=torch.float64)
    out = decoder(coords, mods)
    stats = decoder.reference_statistics()
    for b in range(2):
        shifted, _ = _pair("angles")
        shifted = shifted.double()
        shifted.load_state_dict(decoder.state_dict())
        with torch.no_grad():
            for layer, circuit in enumerate(shifted.circuits):
                circuit.weights += mods[b].reshape(2, -1)[layer].reshape(circuit.weights.shape)
        ref = _forward_shift_zero(shifted, coords[b : b + 1], stats)
        torch.testing.assert_close(out[b : b + 1], ref)


def _forward_shift_zero(decoder, coords, stats):
    """``decoder``'s forward with no modulation and the given normalisation statistics."""
    h = coords
    for layer in range(decoder.n_layers):
        pre = (decoder.linears[layer](h) - stats[layer][0]) / stats[layer][1]
        h = decoder.shared_circuit(layer, pre * decoder.norm_weight[layer] + decoder.norm_bias[layer])
    return decoder.output(h)


@pytest.mark.parametrize("mode", ["shift", "film"])
def test_render_is_resolution_and_batch_independent(mode):
    decoder, modulator = _pair(mode)
    with torch.no_grad():  # give the untrained decoder some structure to resolve
        for linear in decoder.linears:
            linear.weight.mul_(3)
    latents = torch.randn(3, 8) * 2
    with torch.no_grad():
        base = decode_latents(decoder, modulator, latents, 8, 8)
        big = decode_latents(decoder, modulator, latents, 32, 32, chunk_size=37)
        alone = decode_latents(decoder, modulator, latents[1:2], 8, 8)
    assert base.shape == (3, 1, 8, 8) and big.shape == (3, 1, 32, 32)
    assert base.std() > 0.05
    assert psnr(F.avg_pool2d(big, 4), base, data_range=2.0) > 30
    torch.testing.assert_close(alone[0], base[1])


def test_encode_images_reduces_error():
    decoder, modulator = _pair("shift")
    with torch.no_grad():
        modulator.inner_lr.fill_(0.1)
    torch.manual_seed(1)
    images = torch.rand(2, 1, 6, 6) * 2 - 1
    latents = encode_images(decoder, modulator, images, steps=3)
    coords = image_grid(6, 6)
    targets = images.permute(0, 2, 3, 1).reshape(2, 36, 1)
    with torch.no_grad():
        before = per_image_mse(decoder, modulator, torch.zeros(2, 8), coords, targets)
        after = per_image_mse(decoder, modulator, latents, coords, targets)
    assert bool((after < before).all())


def test_a_pipeline_folder_holding_it_loads_and_samples(tmp_path):
    pipe = tiny_wide_pipeline()
    pipe.save_pretrained(tmp_path / "pipe")
    loaded = QirenGenerationPipeline.from_pretrained(tmp_path / "pipe")
    loaded.set_progress_bar_config(disable=True)
    assert isinstance(loaded.decoder, ModulatedWideQIREN)
    run = dict(batch_size=2, height=12, width=10, num_inference_steps=2, output_type="np")
    a = pipe(generator=torch.Generator().manual_seed(0), **run).images
    b = loaded(generator=torch.Generator().manual_seed(0), **run).images
    assert a.shape == (2, 12, 10, 1)
    torch.testing.assert_close(torch.as_tensor(b), torch.as_tensor(a))


@pytest.mark.parametrize("kwargs,field", [
    (dict(n_heads=4, n_qubits=2, hidden_width=7), "hidden_width"),
    (dict(n_heads=0, n_qubits=2), "n_heads"),
    (dict(n_heads=2.5, n_qubits=2), "n_heads"),
    (dict(n_heads=2, n_qubits=21), "n_qubits"),
    (dict(n_heads=2, n_qubits=0), "n_qubits"),
    (dict(entangler="cnot_ring"), "entangler"),
    (dict(modulation="scale"), "modulation"),
])
def test_bad_configs_name_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        ModulatedWideQIREN(**kwargs)


def test_stage1_loader_of_the_prior_trainer_accepts_it(tmp_path):
    from qiren_gen.pipelines.loading import load_stage1

    decoder, modulator = _pair("film")
    decoder.save_pretrained(tmp_path / "decoder")
    modulator.save_pretrained(tmp_path / "modulator")
    loaded, _ = load_stage1(tmp_path)
    assert isinstance(loaded, ModulatedWideQIREN) and loaded.config.modulation == "film"
