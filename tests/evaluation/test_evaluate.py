"""Reference sets and the evaluation loop (sharded sampling, report, grid), driven by a plain sampling callable.

The reference images are real LFW faces from scikit-image, written to tmp folders / saved datasets here.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from skimage.data import lfw_subset

from qiren_gen.evaluation import evaluate, generate_samples, save_grid, shard_size
from qiren_gen.metrics import PIXEL_POOL, ReferenceStatistics
from qiren_gen.metrics.reference import ReferenceImages, load_reference

FD = f"frechet_distance[{PIXEL_POOL}]"


@pytest.fixture(scope="module")
def faces() -> np.ndarray:
    return (lfw_subset()[:100] * 255).round().astype(np.uint8)  # (100, 25, 25)


def write_pngs(folder, images, size=None):
    folder.mkdir(parents=True, exist_ok=True)
    for i, im in enumerate(images):
        picture = Image.fromarray(im)
        if size is not None:
            picture = picture.resize((size, size), Image.BILINEAR)
        picture.save(folder / f"face_{i:03d}.png")
    return str(folder)


def face_sampler(faces: np.ndarray, noise: float = 0.0):
    """A stand-in generator: random LFW faces (plus noise), drawn with the caller's torch.Generator."""
    pool = torch.tensor(faces, dtype=torch.float32)[:, None] / 255

    def sample(batch_size: int, generator: torch.Generator) -> torch.Tensor:
        idx = torch.randint(len(pool), (batch_size,), generator=generator)
        return (pool[idx] + noise * torch.randn(batch_size, 1, 25, 25, generator=generator)).clamp(0, 1)

    return sample


# ---------------------------------------------------------------------------------------------------------------------
def test_folder_reference_resizes_like_torch_fidelity(faces, tmp_path):
    folder = write_pngs(tmp_path / "ref", faces[:8], size=40)
    ref = load_reference(folder, resolution=25)
    assert isinstance(ref, ReferenceImages) and len(ref) == 8 and ref.first_size() == (40, 40)
    item = ref[0]
    assert item.dtype == torch.uint8 and item.shape == (3, 25, 25)
    assert torch.equal(item[0], item[1])  # grayscale replicated to RGB
    assert len(load_reference(folder, max_images=3)) == 3


def test_saved_dataset_reference_and_missing_image_column(faces, tmp_path):
    import datasets

    feats = datasets.Features({"image": datasets.Image(), "label": datasets.Value("int64")})
    ds = datasets.Dataset.from_dict({"image": [Image.fromarray(f) for f in faces[:6]], "label": list(range(6))},
                                    features=feats)
    ds.save_to_disk(str(tmp_path / "with_images"))
    ref = load_reference(str(tmp_path / "with_images"), resolution=32)
    assert len(ref) == 6 and ref[5].shape == (3, 32, 32)
    with pytest.raises(ValueError, match="has no column 'pixels'"):
        load_reference(str(tmp_path / "with_images"), image_column="pixels")
    with pytest.raises(ValueError, match="'label' .* is not an image column"):
        load_reference(str(tmp_path / "with_images"), image_column="label")
    datasets.Dataset.from_dict({"text": ["a", "b"]}).save_to_disk(str(tmp_path / "no_images"))
    with pytest.raises(ValueError, match="has no image column \\(columns: text\\)"):
        load_reference(str(tmp_path / "no_images"))


def test_load_dataset_reference_from_parquet_files(faces, tmp_path):
    """The same ``datasets.load_dataset(spec, split=...)`` call a Hub id takes, on local parquet files."""
    import datasets

    feats = datasets.Features({"img": datasets.Image()})
    ds = datasets.Dataset.from_dict({"img": [Image.fromarray(f) for f in faces[:5]]}, features=feats)
    (tmp_path / "pq").mkdir()
    ds.to_parquet(str(tmp_path / "pq" / "train.parquet"))
    ref = load_reference(str(tmp_path / "pq"), resolution=20)
    assert len(ref) == 5 and ref.source.endswith("[img]") and ref[4].shape == (3, 20, 20)
    with pytest.raises(OSError, match="cannot load dataset .* Unknown split \"test\""):
        load_reference(str(tmp_path / "pq"), split="test")


def test_bad_references(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="is empty"):
        load_reference(str(tmp_path / "empty"))
    with pytest.raises(ValueError, match="does not exist"):
        load_reference(str(tmp_path / "nowhere" / "stats.pt"))
    with pytest.raises(ValueError, match="--max-reference"):
        load_reference(str(tmp_path / "empty"), max_images=1)


# ---------------------------------------------------------------------------------------------------------------------
def test_sharded_sampling_is_complete_and_rank_dependent(faces):
    assert [shard_size(10, r, 3) for r in range(3)] == [4, 3, 3]
    sample = face_sampler(faces, noise=0.1)
    a0 = generate_samples(sample, 10, batch_size=3, seed=7, rank=0, world_size=2, progress=False)
    a1 = generate_samples(sample, 10, batch_size=3, seed=7, rank=1, world_size=2, progress=False)
    assert a0.shape == (5, 3, 25, 25) and a1.shape == (5, 3, 25, 25) and a0.dtype == torch.uint8
    assert not torch.equal(a0, a1)  # each process has its own seed
    assert torch.equal(a0, generate_samples(sample, 10, batch_size=3, seed=7, world_size=2, progress=False))

    def wrong(batch_size, generator):
        return torch.zeros(batch_size + 1, 1, 4, 4)

    with pytest.raises(ValueError, match="returned 4 images for a batch of 3"):
        generate_samples(wrong, 3, batch_size=3, progress=False)


def test_evaluate_writes_report_grid_and_reusable_statistics(faces, tmp_path):
    folder = write_pngs(tmp_path / "ref", faces[90:100], size=50)  # held-out faces, stored at another size
    out = tmp_path / "eval"
    report = evaluate(face_sampler(faces[:90], noise=0.05), lambda: load_reference(folder), num_samples=12,
                      output=str(out), feature_extractor=PIXEL_POOL, batch_size=5, progress=False)
    saved = json.loads((out / "metrics.json").read_text())
    assert saved == json.loads(json.dumps(report))
    assert saved["standard_fid"] is False and "fid" not in saved["metrics"]  # never reported as FID
    assert saved["metrics"][FD] > 0 and saved["metrics"]["kid_subset_size"] == 10
    assert saved["num_samples"] == 12 and saved["num_reference"] == 10 and saved["resolution"] == [25, 25]
    grid = Image.open(out / "samples.png")
    assert grid.mode == "RGB" and max(grid.size) >= 512
    # the statistics file reproduces the metrics without touching the images again
    stats = ReferenceStatistics.load(out / "reference_stats.pt")
    assert stats.resolution == 25 and stats.num_images == 10
    again = evaluate(face_sampler(faces[:90], noise=0.05), lambda: load_reference(str(out / "reference_stats.pt")),
                     num_samples=12, feature_extractor=PIXEL_POOL, batch_size=5, progress=False)
    assert again["metrics"] == pytest.approx(saved["metrics"], rel=1e-9)  # same seed, same samples, same numbers
    with pytest.raises(ValueError, match="statistics of 25x25 images, not 32x32"):
        load_reference(str(out / "reference_stats.pt"), resolution=32)
    small = lambda b, g: torch.zeros(b, 1, 8, 8)  # noqa: E731 - samples of another size than the statistics
    with pytest.raises(ValueError, match="statistics are for 25px images, samples are 8px"):
        evaluate(small, stats, num_samples=4, feature_extractor=PIXEL_POOL, progress=False)


def test_evaluate_rejects_bad_input_before_sampling(faces, tmp_path):
    calls = []

    def counting(batch_size, generator):
        calls.append(batch_size)
        return torch.zeros(batch_size, 1, 25, 25)

    with pytest.raises(ValueError, match="--num-samples must be >= 2"):
        evaluate(counting, lambda: None, num_samples=1, feature_extractor=PIXEL_POOL, progress=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="is empty"):
        evaluate(counting, lambda: load_reference(str(tmp_path / "empty")), num_samples=4,
                 feature_extractor=PIXEL_POOL, progress=False)
    with pytest.raises(OSError, match="--fid-weights"):
        evaluate(counting, lambda: None, num_samples=4, weights_path=str(tmp_path / "nope.pth"), progress=False)
    assert calls == []  # no sample drawn: no work lost


def test_save_grid_layout(tmp_path):
    images = torch.arange(5 * 3 * 4 * 4, dtype=torch.float32).reshape(5, 3, 4, 4) % 256 / 255
    path = save_grid(images, str(tmp_path / "g.png"), min_size=10)
    assert Image.open(path).size == (3 * 6 + 2, 2 * 6 + 2)  # 3 columns x 2 rows of 4 px tiles, 2 px gaps


def test_imagefolder_dataset_and_plain_folder_give_the_same_metrics(faces, tmp_path):
    """export_lfw_faces's layout (train/ and test/): as a datasets imagefolder split, or the test/ folder itself."""
    from qiren_gen.data.lfw import export_lfw_faces

    root = export_lfw_faces(tmp_path / "lfw")
    as_dataset = load_reference(str(root), split="test")
    as_folder = load_reference(str(root / "test"))
    assert len(as_dataset) == len(as_folder) == 10
    kw = dict(num_samples=10, feature_extractor=PIXEL_POOL, batch_size=5, progress=False)
    a = evaluate(face_sampler(faces[:90], noise=0.05), as_dataset, **kw)
    b = evaluate(face_sampler(faces[:90], noise=0.05), as_folder, **kw)
    assert a["metrics"] == pytest.approx(b["metrics"], rel=1e-12) and a["metrics"][FD] > 0
