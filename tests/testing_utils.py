"""Small builders shared by the tests (diffusers' ``testing_utils`` shape): tiny pipelines that save, load and sample
in milliseconds, a pickle payload that proves whether a loader unpickled it, and a free loopback port."""
from __future__ import annotations

import ast
import gc
import io
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from diffusers import DDIMScheduler
from PIL import Image

from qiren_gen.models import LatentDenoiser, LatentModulator, ModulatedQIREN, ModulatedWideQIREN
from qiren_gen.pipelines import QirenGenerationPipeline, QirenSignalFittingPipeline, QirenSuperResolutionPipeline
from qiren_gen.training.prior import make_training_scheduler


def _assemble(decoder, modulator, latent_dim: int, sample_size: int) -> QirenGenerationPipeline:
    prior = LatentDenoiser(latent_dim=latent_dim, hidden_dim=16, num_blocks=1, time_embed_dim=8,
                           sample_size=sample_size)
    scheduler = DDIMScheduler.from_config(make_training_scheduler(100).config)
    pipe = QirenGenerationPipeline(decoder, modulator, prior, scheduler)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def tiny_pipeline(latent_dim: int = 6, sample_size: int = 8) -> QirenGenerationPipeline:
    """A generation pipeline around a 3-qubit ModulatedQIREN, seeded, with visible per-sample differences."""
    torch.manual_seed(0)
    decoder = ModulatedQIREN(out_channels=1, n_qubits=3, hidden_layers=1, reference_size=4)
    modulator = LatentModulator.for_decoder(decoder, latent_dim=latent_dim)
    modulator.net[-1].weight.data.mul_(20)  # visible per-sample differences in an untrained model
    return _assemble(decoder, modulator, latent_dim, sample_size)


def tiny_auto_decoded_pipeline(latent_dim: int = 4, sample_size: int = 8) -> QirenGenerationPipeline:
    """``tiny_pipeline``'s decoder with an auto-decoding modulator (one latent per training image, fitted by Adam),
    the encoding of the bundled recipe: what fine-tuning starts from in most runs."""
    torch.manual_seed(0)
    decoder = ModulatedQIREN(out_channels=1, n_qubits=3, hidden_layers=1, reference_size=4)
    modulator = LatentModulator.for_decoder(decoder, latent_dim=latent_dim, encoding="auto_decode", inner_steps=3,
                                            encode_lr=1e-2, latent_l2=1e-4)
    return _assemble(decoder, modulator, latent_dim, sample_size)


def tiny_wide_pipeline() -> QirenGenerationPipeline:
    """A generation pipeline whose decoder is a tiny ModulatedWideQIREN (3 heads of 2 qubits, CNOT chain)."""
    torch.manual_seed(0)
    decoder = ModulatedWideQIREN(out_channels=1, n_heads=3, n_qubits=2, hidden_layers=1, modulation="shift",
                                 entangler="cnot_chain", reference_size=8)
    return _assemble(decoder, LatentModulator.for_decoder(decoder, 6), 6, 8)


def save_every_pipeline_kind(root: Path) -> dict[str, Path]:
    """Save one folder of each pipeline kind under ``root``: generation, signal fitting, superresolution by fitting,
    and superresolution through a generation pipeline's prior."""
    tiny_pipeline().save_pretrained(root / "gen")
    QirenSignalFittingPipeline.from_model_name("qiren", 2, 1).save_pretrained(root / "fit")
    QirenSuperResolutionPipeline.from_model_name("siren").save_pretrained(root / "sr")
    QirenSuperResolutionPipeline.from_generation_pipeline(tiny_pipeline()).save_pretrained(root / "srprior")
    return {name: root / name for name in ("gen", "fit", "sr", "srprior")}


class Payload:
    """Unpickling this object creates the marker folder: proof that a loader unpickled it."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (os.makedirs, (self.marker,))


def png_bomb(side: int = 50_000) -> bytes:
    """A PNG of ``side`` x ``side`` 1-bit zeros: 0.3 MB for 50,000 (2.5 gigapixels declared), a decompression bomb."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")

    packer = zlib.compressobj(9)
    rows = b"\x00" * (side // 8 + 1) * 1000
    pixels = b"".join(packer.compress(rows) for _ in range(side // 1000)) + packer.flush()
    header = side.to_bytes(4, "big") * 2 + bytes([1, 0, 0, 0, 0])
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_parquet_shards(folder: Path, lengths: list[int], unreadable: tuple[int, ...] = (),
                         row_group_size: int | None = None) -> Path:
    """A parquet dataset of ``len(lengths)`` train shards holding ``lengths[s]`` smooth 8x8 grayscale PNGs each (in
    row groups of ``row_group_size`` rows; default one per file), in ``folder/data``; the image at stream position
    ``p`` has the path ``p.png`` (garbage bytes where ``p`` is in ``unreadable``). Returns ``folder``, loadable with
    ``load_image_dataset(dataset_name=str(folder))``."""
    (folder / "data").mkdir(parents=True)
    y, x = np.mgrid[0:8, 0:8]
    position = 0
    for shard, length in enumerate(lengths):
        images = []
        for _ in range(length):
            buffer = io.BytesIO()
            pixels = 127 + 100 * np.sin(x * (0.3 + 0.1 * position) + y * 0.2 * position)
            Image.fromarray(pixels.astype(np.uint8)).save(buffer, "PNG")
            data = b"not an image" if position in unreadable else buffer.getvalue()
            images.append({"bytes": data, "path": f"{position}.png"})
            position += 1
        image_type = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
        table = pa.table({"image": pa.array(images, type=image_type)},
                         metadata={"huggingface": '{"info": {"features": {"image": {"_type": "Image"}}}}'})
        pq.write_table(table, folder / "data" / f"train-{shard:05d}-of-{len(lengths):05d}.parquet",
                       row_group_size=row_group_size)
    return folder


def png_bytes(value: int = 90, side: int = 8) -> bytes:
    """A ``side`` x ``side`` grayscale PNG of one value, as bytes (a dataset row's ``bytes``)."""
    buffer = io.BytesIO()
    Image.fromarray(np.full((side, side), value, np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


class LoopbackListener:
    """A loopback TCP server that records every connection made to it (it must see none)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=5)
        self.sock.close()


def wav_header(path: Path, channels: int = 1, rate: int = 44100, bits: int = 16, frames: int = 10,
               write_data: bool = True) -> Path:
    """A PCM WAV whose header declares ``frames``; with ``write_data=False`` only the header is written (a file
    that claims an hour of audio costs 44 bytes)."""
    align = channels * ((bits + 7) // 8) if channels and bits else 1
    data_size = frames * align
    header = (b"RIFF" + struct.pack("<I", 36 + data_size) + b"WAVE" + b"fmt " +
              struct.pack("<IHHIIHH", 16, 1, channels, rate, rate * align, align, bits) +
              b"data" + struct.pack("<I", data_size))
    path.write_bytes(header + (bytes(data_size) if write_data else b""))
    return path


def parse_python(source: str, filename: str = "<unknown>") -> ast.Module:
    """``ast.parse`` with the garbage collector paused: on CPython 3.11 a collection during the parse can run a stray
    object's failing ``__del__`` (Gradio's patched tqdm), whose traceback is formatted with another ``ast.parse``,
    and the outer parse then fails with "AST constructor recursion depth mismatch"."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        return ast.parse(source, filename)
    finally:
        if enabled:
            gc.enable()


def sigint_stops_the_child() -> None:
    """``preexec_fn`` for a server the test stops with SIGINT: a shell's background job (``cmd &`` without job
    control) starts with SIGINT ignored, the child inherits that, and Python then installs no ``KeyboardInterrupt``
    handler, so Ctrl-C's signal would never reach the server's clean stop."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_demo_server(dirs: dict[str, Path],
                      stdout: int = subprocess.PIPE) -> tuple[subprocess.Popen, list[str], str, int]:
    """``qiren-gen demo`` in its own process on a free loopback port, isolated in ``dirs`` (``cwd``, ``tmp``, ``home``,
    ``hf``) and offline; waits until it serves. Returns ``(process, stderr lines so far, url, port)``."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]), "HF_HUB_OFFLINE": "1",
           "HF_HOME": str(dirs["hf"]), "TMPDIR": str(dirs["tmp"]), "HOME": str(dirs["home"]), "OMP_NUM_THREADS": "1"}
    for name in ("QIREN_GEN_DEBUG", "GRADIO_TEMP_DIR", "TORCHINDUCTOR_CACHE_DIR", "MPLCONFIGDIR", "XDG_CACHE_HOME",
                 "XDG_CONFIG_HOME"):
        env.pop(name, None)
    proc = subprocess.Popen([sys.executable, "-m", "qiren_gen.cli", "demo", "--port", str(port)], cwd=dirs["cwd"],
                            env=env, stdout=stdout, stderr=subprocess.PIPE, text=True,
                            preexec_fn=sigint_stops_the_child)
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(iter(proc.stderr.readline, "")), daemon=True).start()
    deadline = time.monotonic() + 120
    while not any("serving http" in line for line in lines):
        assert proc.poll() is None and time.monotonic() < deadline, "demo did not start: " + "".join(lines[-5:])
        time.sleep(0.2)
    url = next(line for line in lines if "serving http" in line).split("serving ")[1].split()[0]
    return proc, lines, url, port
