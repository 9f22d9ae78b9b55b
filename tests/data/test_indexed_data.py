"""The O(batch) data path: stream positions as stable indices (epochs, shuffle buffer, workers, mirrors), streamed
auto-decoding with a resume that continues bit-identically, latents started on first visit, and the CUDA-only
choices (bf16 synthesis layers with fp32 circuits, pinned memory) selected without needing CUDA."""
from __future__ import annotations

import dataclasses
import json

import datasets
import numpy as np
import pytest
import torch

from qiren_gen.data.indexed import IndexedStream, loader_options
from qiren_gen.training.launch import synthesis_dtype


def _stream(n: int):
    return datasets.Dataset.from_dict({"image": list(range(n))}).to_iterable_dataset(num_shards=2)


def _positions(dataset, workers: int = 0) -> list[tuple[int, int, bool]]:
    loader = torch.utils.data.DataLoader(dataset, batch_size=4, num_workers=workers,
                                         collate_fn=lambda items: items)
    return [(item["index"], item["example"]["image"], item["flip"]) for batch in loader for item in batch]


def test_stream_index_is_the_stream_position_in_every_epoch_and_worker_count():
    stream = IndexedStream(_stream(10), capacity=8, flip=True, buffer_size=5, seed=1)
    first = _positions(stream)
    assert sorted(i for i, _, _ in first) == list(range(16))  # 8 images + their mirrors at 8 + position
    assert all(index == (value if not flip else 8 + value) for index, value, flip in first)
    assert [i for i, _, _ in first] != sorted(i for i, _, _ in first)  # the buffer shuffled them
    stream.set_epoch(1)
    second = _positions(stream)
    assert second != first and sorted(second) == sorted(first)  # another order, the same index for each image
    two_workers = _positions(IndexedStream(_stream(10), capacity=8, buffer_size=3), workers=2)
    assert sorted(two_workers) == [(i, i, False) for i in range(8)]  # each position once, still its own index



def test_ranks_and_their_workers_read_disjoint_positions_that_cover_the_stream():
    """Data parallel without Accelerate's dispatching: rank r of 2 reads shard r of the 2 (positions 0-5 and 6-10),
    its 2 workers split that shard's examples; together every position once, each with its own index, mirrors
    included."""
    seen = []
    for rank in (0, 1):
        stream = IndexedStream(_stream(11), capacity=11, flip=True, buffer_size=3, seed=2, rank=rank, num_ranks=2)
        items = _positions(stream, workers=2)
        assert {value for _, value, _ in items} == set(range(6) if rank == 0 else range(6, 11))  # its shard only
        seen += items
    assert sorted(seen) == sorted([(i, i, False) for i in range(11)] + [(11 + i, i, True) for i in range(11)])
    with pytest.raises(ValueError, match="rank"):
        IndexedStream(_stream(4), rank=2, num_ranks=2)

@pytest.fixture()
def streamed_faces(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)) for _ in range(9)]
    ds = datasets.Dataset.from_dict({"image": images}).cast_column("image", datasets.Image())
    ds.to_parquet(str(tmp_path / "faces" / "data" / "train-00000-of-00001.parquet"))
    return tmp_path / "faces"


def _config(data, out, steps, **kw):
    from qiren_gen.training.functa_trainer import FunctaTrainingConfig

    return FunctaTrainingConfig(
        output_dir=str(out), dataset_name=str(data), streaming=True, max_train_samples=7, resolution=4, channels=3,
        n_qubits=2, hidden_layers=1, latent_dim=3, encoding="auto_decode", flip_augment=True, train_batch_size=3,
        max_train_steps=steps, checkpointing_steps=3, learning_rate=0.02, shuffle_buffer_size=4, seed=4,
        cache_dir=str(out.parent / "cache"), **kw)


def test_streamed_auto_decoding_resumes_bit_identically(streamed_faces, tmp_path):
    from accelerate.state import AcceleratorState
    from safetensors.torch import load_file

    from qiren_gen.training.functa_trainer import train_functa

    def run(out, steps, **kw):
        AcceleratorState._reset_state(True)
        return train_functa(_config(streamed_faces, out, steps, **kw))

    full = run(tmp_path / "full", 8)
    assert full["steps"] == 8 and full["visited_latents"] == 14  # 7 streamed images + mirrors, 2 epochs of 14
    run(tmp_path / "part", 3)
    run(tmp_path / "part", 8, resume_from_checkpoint="latest")
    for name in ("decoder/diffusion_pytorch_model.safetensors", "latents.safetensors"):
        a, b = load_file(tmp_path / "part" / name), load_file(tmp_path / "full" / name)
        assert all(torch.equal(a[k], b[k]) for k in a), name
    assert json.loads((tmp_path / "part" / "train_summary.json").read_text())["steps"] == 8


def test_first_visit_encoding_fills_only_new_rows():
    from accelerate import Accelerator

    from qiren_gen.functa import encode_images
    from qiren_gen.models import LatentModulator, ModulatedQIREN
    from qiren_gen.training.functa_trainer import LatentTable, first_visit_encode

    torch.manual_seed(0)
    decoder = ModulatedQIREN(out_channels=1, n_qubits=2, hidden_layers=1, reference_size=4)
    modulator = LatentModulator.for_decoder(decoder, latent_dim=3, encoding="auto_decode", encode_lr=0.05)
    table, accelerator = LatentTable(5, 3), Accelerator(cpu=True)
    images, rows = torch.rand(2, 1, 4, 4) * 2 - 1, torch.tensor([1, 3])
    table.visited[3] = True  # row 3 trained in an earlier step (the training step marks the rows it updates)
    before = table.latents.detach().clone()
    first_visit_encode(decoder, modulator, table, images, rows, 4, accelerator)
    torch.testing.assert_close(table.latents[1], encode_images(decoder, modulator, images[:1], steps=4)[0])
    unchanged = [0, 2, 3, 4]
    assert torch.equal(table.latents[unchanged], before[unchanged])


def test_cuda_choices_are_selected_without_cuda():
    from qiren_gen.models.synthesis import FeatureSynthesisDecoder

    assert synthesis_dtype("cuda", "auto", bf16_supported=True) is torch.bfloat16
    assert synthesis_dtype("cuda", "auto", bf16_supported=False) is None
    assert synthesis_dtype("cpu", "auto") is None and synthesis_dtype("cuda:0", "fp32") is None
    assert loader_options("cuda:0", 2) == {"num_workers": 2, "pin_memory": True}
    assert loader_options("cpu", 0)["pin_memory"] is False

    torch.manual_seed(0)
    decoder = FeatureSynthesisDecoder(out_channels=3, n_heads=2, n_qubits=2, hidden_features=8, hidden_layers=1,
                                      modulation="weight")
    seen = {}
    original = decoder.coordinate_features
    decoder.coordinate_features = lambda *a: seen.setdefault("features", original(*a))
    hook = decoder.output.register_forward_hook(lambda m, i, o: seen.__setitem__("synthesis", o.dtype))
    coords, mods = torch.rand(5, 2) * 2 - 1, torch.randn(2, decoder.modulation_dim) * 0.1
    with torch.no_grad():
        reference = decoder(coords, mods)
        decoder.synthesis_dtype = torch.bfloat16  # what training sets on CUDA; autocast runs on the CPU too
        mixed = decoder(coords, mods)
    hook.remove()
    assert seen["features"].dtype == torch.float32 and mixed.dtype == torch.float32
    assert seen["synthesis"] == torch.bfloat16  # the synthesis layers ran in bf16 under autocast
    torch.testing.assert_close(mixed, reference, atol=0.05, rtol=0.05)


def test_a_stream_sizes_its_latent_table_from_the_declared_num_examples(streamed_faces, tmp_path):
    """No --max_train_samples: the card's ``dataset_info.splits[train].num_examples`` sizes the table; a card that
    declares none gives the one-line refusal."""
    from accelerate.state import AcceleratorState

    from qiren_gen.training.functa_trainer import train_functa

    def run(out):
        AcceleratorState._reset_state(True)
        try:
            return train_functa(dataclasses.replace(_config(streamed_faces, out, 2), max_train_samples=None))
        finally:
            AcceleratorState._reset_state(True)

    with pytest.raises(ValueError, match="declares no num_examples"):
        run(tmp_path / "undeclared")
    (streamed_faces / "README.md").write_text(
        "---\ndataset_info:\n  features:\n  - name: image\n    dtype: image\n  splits:\n  - name: train\n"
        "    num_examples: 9\nconfigs:\n- config_name: default\n  data_files:\n  - split: train\n"
        "    path: data/train-*\n---\n")
    summary = run(tmp_path / "declared")
    assert summary["trained_latents"].shape[1] == 3
    from safetensors.torch import load_file

    assert load_file(tmp_path / "declared" / "latents.safetensors")["latents"].shape == (18, 3)  # 9 + 9 mirrors
