"""The one checked reader for WAV audio: the header is parsed first and the frame count capped before a sample is
read, so a 1-hour WAV costs a few hundred bytes of reading to refuse, and a header with 0 channels, 0 bits or a
sample rate of 0 is one line, never a division by zero or a fit at rate 0."""
from __future__ import annotations

import os
import struct
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..runtime.errors import one_line
from .errors import BadInputFile, quoted

MAX_AUDIO_FRAMES = 2**25
"""Largest WAV read: 33.5M frames (12.7 minutes at 44.1 kHz), the same count as the images' pixel cap. Decoded to
float64 that is 256 MiB; a 1-hour WAV (159M frames) passed 11.8 GB of memory in a one-step fit."""

MAX_SAMPLE_RATE = 1_000_000
"""Largest sample rate accepted: 1 MHz (audio files run to 384 kHz)."""

_MAX_CHUNKS = 256  # chunks walked before "data"; a header that never reaches its data is refused


@dataclass(frozen=True)
class WavHeader:
    """What a WAV file's header declares: channels, sample rate, bits per sample, frames (samples per channel)."""

    channels: int
    rate: int
    bits: int
    frames: int


def _chunks(handle, big_endian: bool, file_size: int):
    """``(chunk id, size, offset of its body)`` of the chunks after the RIFF header, skipped by seeking."""
    order = ">" if big_endian else "<"
    offset = 12
    for _ in range(_MAX_CHUNKS):
        handle.seek(offset)
        head = handle.read(8)
        if len(head) < 8:
            return
        chunk_id, size = head[:4], struct.unpack(order + "I", head[4:])[0]
        yield chunk_id, size, offset + 8
        offset += 8 + size + (size & 1)
        if offset >= file_size:
            return


def read_wav_header(path: str | os.PathLike) -> WavHeader:
    """The header of a WAV file (RIFF, RIFX or RF64), read without reading its samples; ``BadInputFile`` (one line
    naming the file) for a header that is not WAV, has no format or data chunk, or declares 0 channels, 0 bits
    per sample or a sample rate of 0."""
    path = Path(path)
    what = quoted(path)
    file_size = path.stat().st_size
    with open(path, "rb") as handle:
        riff = handle.read(12)
        if len(riff) < 12 or riff[:4] not in (b"RIFF", b"RIFX", b"RF64") or riff[8:12] != b"WAVE":
            raise BadInputFile(f"{what} is not a readable WAV file (no RIFF/WAVE header)")
        big_endian = riff[:4] == b"RIFX"
        order = ">" if big_endian else "<"
        fmt = data_size = ds64_data = None
        for chunk_id, size, body in _chunks(handle, big_endian, file_size):
            handle.seek(body)
            if chunk_id == b"ds64" and size >= 24:
                ds64_data = struct.unpack("<Q", handle.read(24)[8:16])[0]
            elif chunk_id == b"fmt ":
                raw = handle.read(16)
                if len(raw) < 16:
                    raise BadInputFile(f"{what} is not a readable WAV file (its format chunk is cut short)")
                fmt = struct.unpack(order + "HHIIHH", raw)
            elif chunk_id == b"data":
                data_size = ds64_data if (size == 0xFFFFFFFF and ds64_data is not None) else size
                data_size = min(data_size, file_size - body) if size == 0xFFFFFFFF else data_size
                break
    if fmt is None or data_size is None:
        raise BadInputFile(f"{what} is not a readable WAV file (no {'format' if fmt is None else 'data'} chunk)")
    _tag, channels, rate, _byte_rate, _align, bits = fmt
    for value, name in ((channels, "channels"), (bits, "bits per sample"), (rate, "sample rate")):
        if value == 0:
            raise BadInputFile(f"{what} declares {name} 0 in its header: not a playable WAV file")
    if rate > MAX_SAMPLE_RATE:
        raise BadInputFile(f"{what} declares a sample rate of {rate} Hz, over the cap of {MAX_SAMPLE_RATE:,} Hz")
    frame_bytes = channels * ((bits + 7) // 8)
    return WavHeader(channels=channels, rate=rate, bits=bits, frames=data_size // frame_bytes)


def check_wav(path: str | os.PathLike, max_frames: int = MAX_AUDIO_FRAMES) -> WavHeader:
    """The header of a WAV file once it is known to be playable and at most ``max_frames`` long; cheap (no torch,
    no samples read), so a command can call it before its heavy imports."""
    header = read_wav_header(path)
    if header.frames > max_frames:
        minutes = header.frames / header.rate / 60
        raise BadInputFile(f"{quoted(path)} declares {header.frames:,} frames ({minutes:.1f} minutes at "
                           f"{header.rate} Hz), over the cap of {max_frames:,} frames for audio (cut it first)")
    return header


def read_wav(path: str | os.PathLike, max_frames: int = MAX_AUDIO_FRAMES) -> tuple[int, np.ndarray]:
    """``(sample rate, samples)`` of a WAV file as ``scipy.io.wavfile.read`` gives them, after `check_wav`;
    every refusal one line naming the file."""
    from scipy.io import wavfile  # noqa: PLC0415 (heavy: WAV files only; qiren_gen.models imports this module)

    path = Path(path)
    what = quoted(path)
    check_wav(path, max_frames)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", wavfile.WavFileWarning)
            rate, data = wavfile.read(path)
    except (ValueError, EOFError, struct.error, ZeroDivisionError, MemoryError) as exc:
        reason = one_line(exc, 200) if str(exc).strip() else "bad header"
        raise BadInputFile(f"{what} is not a readable WAV file ({reason})") from None
    return int(rate), np.asarray(data)


__all__ = ["MAX_AUDIO_FRAMES", "MAX_SAMPLE_RATE", "WavHeader", "check_wav", "read_wav", "read_wav_header"]
