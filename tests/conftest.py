"""Shared test fixtures, and the two test tiers.

The fast tier (``python -m pytest -q``) skips the tests marked ``slow``: those that start a process (an interpreter, a
console script, ``accelerate launch``), a server (the Gradio demo), or a build (a wheel, the docs site).
``RUN_SLOW=1 python -m pytest -q`` runs them too, as diffusers keeps its ``@slow`` tests behind ``RUN_SLOW``.
"""
from __future__ import annotations

import math
import os

import pytest
import torch
from hypothesis import settings

_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"", "0", "false", "no", "off"}


def run_slow() -> bool:
    """Whether ``RUN_SLOW`` asks for the slow tier (1/true/yes/on; unset, 0/false/no/off: no)."""
    value = os.environ.get("RUN_SLOW", "").strip().lower()
    if value not in _TRUE | _FALSE:
        raise pytest.UsageError(f"RUN_SLOW must be 1 or 0 (or true/false, yes/no, on/off), got {value!r}")
    return value in _TRUE


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip the slow tier unless ``RUN_SLOW=1``, with a reason that says how to run it."""
    if run_slow():
        return
    skip = pytest.mark.skip(reason="slow tier (starts a process, a server or a build): run it with RUN_SLOW=1")
    for item in items:
        if item.get_closest_marker("slow") is not None:
            item.add_marker(skip)


# CI replays a fixed example set (derandomize) so a run's verdict is reproducible; locally, fuzzing explores anew.
settings.register_profile("ci", derandomize=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture(scope="module")
def one_thread():
    """Tiny fits: one torch thread is faster and avoids over-subscribing a shared 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _plain_synthesis(decoder, features: torch.Tensor, modulations: torch.Tensor) -> torch.Tensor:
    """A ``FeatureSynthesisDecoder``'s synthesis and output layers from the plain formulas (StyleGAN2 weight
    modulation: ``w_bij = w_ij s_bj / ||w_i * s_b||``, ``s_b = 1 + m_b``, einsum, times sqrt(2), plus bias, ReLU),
    independent of the decoder's fused code."""
    batch = modulations.shape[0]
    h = features if features.ndim == 3 else features.expand(batch, -1, -1)
    offset = 0
    for linear in decoder.linears:
        mode = decoder.config.modulation
        size = {"weight": linear.in_features, "shift": linear.out_features, "film": 2 * linear.out_features}[mode]
        m = modulations[:, offset : offset + size]
        offset += size
        if mode == "weight":
            w = linear.weight[None] * (1 + m)[:, None, :]
            w = w / torch.sqrt(w.square().sum(-1, keepdim=True) + 1e-8)
            pre = torch.einsum("bpi,boi->bpo", h, w) * math.sqrt(2) + linear.bias
        elif mode == "shift":
            pre = h @ linear.weight.T + linear.bias + m[:, None, :]
        else:
            width = linear.out_features
            pre = (h @ linear.weight.T + linear.bias) * (1 + m[:, None, :width]) + m[:, None, width:]
        h = torch.relu(pre)
    return h @ decoder.output.weight.T + decoder.output.bias


@pytest.fixture
def plain_synthesis():
    """``plain_synthesis(decoder, features, modulations) -> (B, P, C)``: the reference math of the synthesis layers."""
    return _plain_synthesis
