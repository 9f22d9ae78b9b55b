"""Model surgery for fine-tuning: give a pretrained decoder another number of output channels."""
from __future__ import annotations

import torch


def adapt_output_channels(decoder, channels: int):
    """A copy of ``decoder`` (any modulated decoder class with an ``out_channels`` config) rendering ``channels``.

    Every weight whose shape does not depend on ``out_channels`` is copied. The output layer is carried over too:
    gray -> RGB repeats the gray output for R, G and B, RGB -> gray averages them, so the adapted decoder starts
    from the pretrained function (a gray image as RGB, or the luminance-like mean) instead of from random weights.
    """
    old = decoder.config.out_channels
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    if channels == old:
        return decoder
    config = {k: v for k, v in decoder.config.items() if not k.startswith("_")}
    adapted = type(decoder).from_config({**config, "out_channels": channels})
    source, target = decoder.state_dict(), adapted.state_dict()
    for name, value in target.items():
        src = source.get(name)
        if src is None:
            continue
        if src.shape == value.shape:
            target[name] = src.clone()
        elif src.ndim >= 1 and src.shape[0] == old and value.shape[0] == channels and src.shape[1:] == value.shape[1:]:
            target[name] = src.repeat(channels, *[1] * (src.ndim - 1)) if old == 1 else src.mean(0, keepdim=True)
        else:
            raise ValueError(f"cannot carry '{name}' from {tuple(src.shape)} to {tuple(value.shape)}")
    adapted.load_state_dict(target)
    return adapted.to(next(decoder.parameters()).device, torch.float32)


__all__ = ["adapt_output_channels"]
