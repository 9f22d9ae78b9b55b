"""Every model checks its counts and scales through config_checks' two helpers: one message format for all."""
import math
import re

import pytest

from qiren_gen.models import (
    QFGN,
    QIREN,
    QVF,
    FeatureSynthesisDecoder,
    HybridLayer,
    LatentDenoiser,
    LatentModulator,
    ModulatedQIREN,
    ModulatedWideQIREN,
)
from qiren_gen.models.config_checks import check_positive_numbers, check_whole_numbers


def test_whole_numbers_take_ints_at_or_above_their_minimum_only():
    check_whole_numbers({"a": 1, "b": 0}, a=1, b=0)
    for value in (0, True, 1.0, "1", None):
        with pytest.raises(ValueError, match="^" + re.escape(f"a must be an int >= 1, got {value!r}") + "$"):
            check_whole_numbers({"a": value}, a=1)


def test_positive_numbers_are_finite_and_above_zero_or_at_it_when_allowed():
    check_positive_numbers({"a": 0.5, "b": 2}, "a", "b")
    check_positive_numbers({"a": 0.0}, "a", zero_allowed=True)
    for value in (0.0, -1.0, math.inf, math.nan, True, "1"):
        with pytest.raises(ValueError, match=r"^a must be finite and > 0, got "):
            check_positive_numbers({"a": value}, "a")
    with pytest.raises(ValueError, match=r"^a must be finite and >= 0, got -1e-09$"):
        check_positive_numbers({"a": -1e-9}, "a", zero_allowed=True)


@pytest.mark.parametrize("build,message", [
    (lambda: ModulatedQIREN(n_qubits=2, hidden_layers=-1), "hidden_layers must be an int >= 0, got -1"),
    (lambda: ModulatedQIREN(n_qubits=2, reference_size=1), "reference_size must be an int >= 2, got 1"),
    (lambda: ModulatedWideQIREN(n_heads=2, n_qubits=2, out_channels=0), "out_channels must be an int >= 1, got 0"),
    (lambda: ModulatedWideQIREN(n_heads=2, n_qubits=2, in_features=1.5), "in_features must be an int >= 1, got 1.5"),
    (lambda: FeatureSynthesisDecoder(hidden_layers=0), "hidden_layers must be an int >= 1, got 0"),
    (lambda: FeatureSynthesisDecoder(features="fourier", fourier_scale=math.inf),
     "fourier_scale must be finite and > 0, got inf"),
    (lambda: QIREN(fourier_features=-1), "fourier_features must be an int >= 0, got -1"),
    (lambda: QIREN(out_features=0), "out_features must be an int >= 1, got 0"),
    (lambda: HybridLayer(0), "in_features must be an int >= 1, got 0"),
    (lambda: HybridLayer(2, linear_scale=0.0), "linear_scale must be finite and > 0, got 0.0"),
    (lambda: QFGN(gaussian_features=True), "gaussian_features must be an int >= 1, got True"),
    (lambda: QFGN(low_frequency_penalty=-0.5), "low_frequency_penalty must be finite and >= 0, got -0.5"),
    (lambda: QVF(energy_hidden=0), "energy_hidden must be an int >= 1, got 0"),
    (lambda: QVF(energy_omega=math.nan), "energy_omega must be finite and > 0, got nan"),
    (lambda: LatentDenoiser(num_blocks=-1), "num_blocks must be an int >= 0, got -1"),
    (lambda: LatentDenoiser(time_embed_dim=7), "time_embed_dim must be even (half sines, half cosines), got 7"),
    (lambda: LatentModulator(inner_steps=-1), "inner_steps must be an int >= 0, got -1"),
    (lambda: LatentModulator(latent_l2=-1.0), "latent_l2 must be finite and >= 0, got -1.0"),
])
def test_each_model_names_the_bad_argument_in_the_shared_format(build, message):
    with pytest.raises(ValueError) as err:
        build()
    assert str(err.value) == message
