"""Per-re-upload encoding scales of the multi-head circuits (``encoding_scale``, e.g. ``"ternary"``): PennyLane parity
for both layouts, both engines and both entanglers, the shots / noise path against ``default.mixed``, and saving."""
from __future__ import annotations

import json

import pytest
import torch

from qiren_gen.quantum import DataReuploadingCircuit, MultiHeadReuploadingCircuit, fused, simulate_reuploading_heads
from qiren_gen.quantum.noise import NoiseModel
from qiren_gen.quantum.shots import measurement

NOISE = NoiseModel(depolarizing=0.03, amplitude_damping=0.02, dephasing=0.05, readout=0.04)
# (encoding_scale, re-uploads): the preset (1, 3, 9) and an arbitrary per-re-upload, per-qubit list.
SCALES = [("ternary", 3), ([[0.5, 1.7, 0.8], [2.5, 0.6, 1.3]], 2)]


def _pennylane_forward(layer, x):
    out = layer(x)
    return torch.stack(list(out), -1) if isinstance(out, (list, tuple)) else out


@pytest.mark.parametrize("scale,n_reuploads", SCALES, ids=["ternary", "list"])
@pytest.mark.parametrize("entangler", ["cz_ring", "cnot_chain"])
@pytest.mark.parametrize("engine", ["fused", "autograd"])
@pytest.mark.parametrize("layout", ["dense", "factored"])
def test_scaled_heads_match_pennylane(layout, engine, entangler, scale, n_reuploads):
    """Outputs, input gradients and weight gradients (float64) of every scaled head equal PennyLane default.qubit's."""
    torch.manual_seed(7)
    heads = MultiHeadReuploadingCircuit(2, 3, n_reuploads, 2, entangler=entangler, encoding_scale=scale).double()
    x = torch.randn(4, 2, 3, dtype=torch.float64, requires_grad=True)
    probe = torch.randn(4, 2, 3, dtype=torch.float64)
    out = simulate_reuploading_heads(x, heads.weights, entangler, layout=layout, engine=engine,
                                     encoding_scales=heads.encoding_scales)
    grad_x, grad_w = torch.autograd.grad((out * probe).sum(), (x, heads.weights))
    assert out.dtype == torch.float64 and out.shape == x.shape
    for head in range(2):
        layer = heads.to_pennylane(head, "default.qubit")
        xb = x[:, head].detach().clone().requires_grad_(True)
        ref = _pennylane_forward(layer, xb)
        (ref * probe[:, head]).sum().backward()
        assert (out[:, head] - ref).abs().max().item() < 1e-10
        assert (grad_x[:, head] - xb.grad).abs().max().item() < 1e-10
        assert (grad_w[head] - layer.weights.grad).abs().max().item() < 1e-10


@pytest.mark.parametrize("layout", ["dense", "factored"])
def test_scales_change_the_circuit_and_unit_scales_do_not(layout):
    """Ternary scales give another function; scales of 1 through the per-upload path equal the plain circuit."""
    torch.manual_seed(1)
    weights = torch.rand(3, 3, 2, 2, 3, dtype=torch.float64, requires_grad=True) * 6
    x = torch.randn(6, 3, 2, dtype=torch.float64, requires_grad=True)
    probe = torch.randn(6, 3, 2, dtype=torch.float64)
    plain = simulate_reuploading_heads(x, weights, "cnot_chain", layout=layout)
    ternary = MultiHeadReuploadingCircuit(3, 2, encoding_scale="ternary").encoding_scales
    assert torch.equal(ternary, torch.tensor([[1.0, 1.0], [3.0, 3.0]]))
    scaled = simulate_reuploading_heads(x, weights, "cnot_chain", layout=layout, encoding_scales=ternary)
    assert (scaled - plain).abs().max() > 1e-2
    ones = simulate_reuploading_heads(x, weights, "cnot_chain", layout=layout, encoding_scales=torch.ones(2, 2))
    assert torch.allclose(ones, plain, atol=1e-13)
    g_ones = torch.autograd.grad((ones * probe).sum(), (x, weights))
    g_plain = torch.autograd.grad((plain * probe).sum(), (x, weights))
    for a, b in zip(g_ones, g_plain, strict=True):
        assert torch.allclose(a, b, atol=1e-12)


@pytest.mark.parametrize("entangler", ["cz_ring", "cnot_chain"])
@pytest.mark.parametrize("n_qubits", [1, 2, 3, 6])
def test_scaled_layouts_and_engines_agree_in_many_chunks(monkeypatch, n_qubits, entangler):
    """Dense / factored, fused / autograd with per-upload scales: same values and gradients (inputs, weights,
    scales), with 2 rows per chunk."""
    torch.manual_seed(n_qubits)
    weights = torch.rand(3, 4, 2, n_qubits, 3, dtype=torch.float64, requires_grad=True) * 6
    scales = (torch.rand(3, n_qubits, dtype=torch.float64) * 3 + 0.2).requires_grad_(True)
    x = torch.randn(9, 3, n_qubits, dtype=torch.float64, requires_grad=True)
    probe = torch.randn(9, 3, n_qubits, dtype=torch.float64)
    monkeypatch.setattr(fused, "CPU_CHUNK_AMPLITUDES", 2 * 3 * 2**n_qubits)
    results = []
    for layout in ("dense", "factored"):
        for engine in ("fused", "autograd"):
            out = simulate_reuploading_heads(x, weights, entangler, layout=layout, engine=engine,
                                             encoding_scales=scales)
            results.append((out, *torch.autograd.grad((out * probe).sum(), (x, weights, scales))))
    for other in results[1:]:
        for a, b in zip(results[0], other, strict=True):
            assert torch.allclose(a, b, atol=1e-12)


@pytest.mark.parametrize("layout", ["dense", "factored"])
def test_scaled_fused_gradcheck(layout):
    torch.manual_seed(0)
    weights = torch.rand(2, 3, 1, 3, 3, dtype=torch.float64, requires_grad=True)
    scales = torch.tensor([[1.0], [3.0]], dtype=torch.float64, requires_grad=True)
    x = torch.randn(3, 2, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda a, w, s: simulate_reuploading_heads(a, w, "cnot_chain", layout=layout, encoding_scales=s),
        (x, weights, scales))


def test_scaled_heads_equal_scaled_single_circuits():
    """CZ-ring heads with ternary scales are DataReuploadingCircuit(encoding_scale="ternary") with the same weights."""
    torch.manual_seed(2)
    heads = MultiHeadReuploadingCircuit(3, 4, n_reuploads=3, encoding_scale="ternary:0.5").double()
    singles = [DataReuploadingCircuit(4, n_reuploads=3, encoding_scale="ternary:0.5").double() for _ in range(3)]
    with torch.no_grad():
        for h, single in enumerate(singles):
            single.weights.copy_(heads.weights[h])
    x = torch.randn(5, 3, 4, dtype=torch.float64)
    ref = torch.stack([single(x[:, h]) for h, single in enumerate(singles)], 1)
    assert torch.allclose(heads(x), ref, atol=1e-12)


def test_scaled_heads_with_noise_and_shots_match_default_mixed():
    """The density-matrix path and its PennyLane export honour the scales; many shots estimate the scaled circuit."""
    torch.manual_seed(3)
    heads = MultiHeadReuploadingCircuit(3, 2, entangler="cnot_chain", encoding_scale="ternary").double()
    plain = MultiHeadReuploadingCircuit(3, 2, entangler="cnot_chain").double()
    plain.load_state_dict({"weights": heads.weights.detach()})
    x = torch.randn(4, 3, 2, dtype=torch.float64)
    with measurement(heads, noise=NOISE):
        ours = heads(x)
    with measurement(plain, noise=NOISE):
        unscaled = plain(x)
    assert (ours - unscaled).abs().max() > 1e-2
    for h in range(3):
        layer = heads.to_pennylane(h, "default.mixed", noise=NOISE)
        ref = torch.stack([torch.as_tensor(layer(xi)) for xi in x[:, h]])
        assert (ours[:, h] - ref).abs().max() < 1e-6
    exact = heads(x).detach()
    with torch.no_grad(), measurement(heads, shots=10**6, generator=torch.Generator().manual_seed(0)):
        sampled = heads(x)
    assert (sampled - exact).abs().max() < 6e-3  # SE <= 1e-3
    assert (exact - plain(x)).abs().max() > 5e-2


def test_scaled_shots_export_and_straight_through_gradient():
    """to_pennylane(head, shots=N) samples the scaled circuit; train_shots gradients are the exact scaled ones."""
    torch.manual_seed(4)
    heads = MultiHeadReuploadingCircuit(2, 2, entangler="cnot_chain", encoding_scale=[[0.7], [2.1]]).double()
    x = torch.randn(3, 2, 2, dtype=torch.float64, requires_grad=True)
    exact = heads(x)
    layer = heads.to_pennylane(1, "default.qubit", shots=200000)
    est = torch.stack([torch.as_tensor(layer(xi)) for xi in x[:, 1].detach()])
    assert (est - exact[:, 1].detach()).abs().max() < 0.02
    (g_exact,) = torch.autograd.grad(exact.sum(), x)
    with measurement(heads, shots=100, train_shots=True, generator=torch.Generator().manual_seed(1)):
        (g_shots,) = torch.autograd.grad(heads(x).sum(), x)
    assert torch.allclose(g_shots, g_exact, atol=1e-12)


def test_draw_repr_buffer_and_bad_scales():
    heads = MultiHeadReuploadingCircuit(2, 2, entangler="cnot_chain", encoding_scale="ternary")
    assert "encoding_scales=[[1.0, 1.0], [3.0, 3.0]]" in repr(heads)
    assert [name for name, _ in heads.named_buffers()] == ["encoding_scales"]
    assert not any("scale" in name for name, _ in heads.named_parameters())  # fixed, not trained
    assert heads.draw(0).count("RZ") == 2 * 2
    plain = MultiHeadReuploadingCircuit(2, 2)
    assert plain.encoding_scales is None and list(plain.state_dict()) == ["weights"]
    for bad, match in (("quaternary", "unknown preset"), (-1.0, "finite and > 0"), ([[1.0], [2.0], [3.0]], "one per")):
        with pytest.raises(ValueError, match=match):
            MultiHeadReuploadingCircuit(2, 2, encoding_scale=bad)
    with pytest.raises(ValueError, match="encoding_scales must broadcast to"):
        simulate_reuploading_heads(torch.zeros(1, 2, 2), heads.weights, encoding_scales=torch.ones(3, 2))


def test_synthesis_decoder_with_scales_round_trips_and_default_config_is_unchanged(tmp_path):
    """save_pretrained / from_pretrained keep the scales; the default records encoding_scale=None, stores no buffer,
    and a folder saved before the option existed (no key in config.json) still loads."""
    from qiren_gen.models.synthesis import FeatureSynthesisDecoder

    torch.manual_seed(0)
    kw = dict(n_heads=4, n_qubits=2, hidden_features=16, hidden_layers=2, modulation="weight")
    scaled = FeatureSynthesisDecoder(**kw, encoding_scale="ternary")
    coords = torch.rand(10, 2) * 2 - 1
    mods = torch.randn(2, scaled.modulation_dim)
    scaled.save_pretrained(tmp_path / "scaled")
    loaded = FeatureSynthesisDecoder.from_pretrained(tmp_path / "scaled")
    assert loaded.config.encoding_scale == "ternary"
    assert torch.equal(loaded.circuits.encoding_scales, torch.tensor([[1.0, 1.0], [3.0, 3.0]]))
    with torch.no_grad():
        assert torch.equal(loaded.coordinate_features(coords), scaled.coordinate_features(coords))
        # Outputs to rounding: the loaded weights sit at other alignments, where the CPU GEMM may sum in another order.
        torch.testing.assert_close(loaded(coords, mods), scaled(coords, mods), rtol=0, atol=1e-6)

    torch.manual_seed(0)
    plain = FeatureSynthesisDecoder(**kw)
    assert plain.config.encoding_scale is None and plain.circuits.encoding_scales is None
    assert not any("encoding_scales" in key for key in plain.state_dict())
    with torch.no_grad():
        assert (plain(coords, mods) - scaled(coords, mods)).abs().max() > 1e-4  # same init, other circuits
    plain.save_pretrained(tmp_path / "old")
    config_file = tmp_path / "old" / "config.json"
    config = json.loads(config_file.read_text())
    del config["encoding_scale"]
    config_file.write_text(json.dumps(config))
    old = FeatureSynthesisDecoder.from_pretrained(tmp_path / "old")
    assert old.circuits.encoding_scales is None
    with torch.no_grad():
        assert torch.equal(old(coords, mods), plain(coords, mods))
    with pytest.raises(ValueError, match="features='circuit' only"):
        FeatureSynthesisDecoder(features="fourier", encoding_scale="ternary")


def test_trainer_passes_the_scales_and_old_checkpoints_keep_their_signature():
    from qiren_gen.training.functa_trainer import build_models, model_signature
    from train_functa import parse_args

    cfg = parse_args(["--decoder", "circuit_features", "--n_heads", "4", "--n_qubits", "2", "--hidden_features", "8",
                      "--encoding_scale", "1,3"])
    assert cfg.encoding_scale == [[1.0], [3.0]]
    decoder, modulator = build_models(cfg)
    assert torch.equal(decoder.circuits.encoding_scales, torch.tensor([[1.0, 1.0], [3.0, 3.0]]))
    assert model_signature(decoder, modulator)["decoder"]["encoding_scale"] == [[1.0], [3.0]]
    default = build_models(parse_args(["--decoder", "circuit_features", "--n_heads", "4", "--n_qubits", "2",
                                       "--hidden_features", "8"]))
    assert "encoding_scale" not in model_signature(*default)["decoder"]  # as in checkpoints made before the option


def test_decoder_step_benchmark_times_the_ternary_decoders():
    from benchmarks.decoders import decoder_step_times

    result = decoder_step_times(width=8, steps=2, batch=2, size=5, latent_dim=4,
                                decoders=("circuit_features", "circuit_features_ternary"))
    assert set(result["median_step_seconds"]) == {"circuit_features", "circuit_features_ternary"}
    assert result["circuit_features_ternary_over_circuit"] > 0 and "circuit_over_siren" not in result
    with pytest.raises(ValueError, match="decoders must be names from"):
        decoder_step_times(width=8, steps=2, decoders=("ternary",))
