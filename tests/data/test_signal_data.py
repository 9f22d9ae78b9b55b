"""Loading the signals the paper fits: images (file or skimage name) and mono WAV audio."""
import numpy as np
import pytest
from PIL import Image
from scipy.io import wavfile

from qiren_gen.data.signals import load_image, load_wav, parse_slice, write_wav


def write_chirp(path, n: int = 200, rate: int = 8000, dtype=np.int16, channels: int = 1) -> np.ndarray:
    """A linear chirp with peak 0.5 (so normalisation is visible), written as a WAV; returns the float samples."""
    t = np.arange(n) / rate
    x = 0.5 * np.sin(2 * np.pi * (200 * t + 4000 * t**2))
    data = (x * 32767).astype(np.int16) if dtype == np.int16 else x.astype(dtype)
    if channels > 1:
        data = np.stack([data] * channels, axis=1)
    wavfile.write(path, rate, data)
    return x


def test_skimage_image_is_grayscale_square_in_range():
    img = load_image("astronaut", 16)
    assert img.shape == (16, 16)
    assert img.min() >= -1 and img.max() <= 1 and img.std() > 0.1


def test_file_image_is_centre_cropped(tmp_path):
    # 20 x 60 RGB: left and right thirds white, centre third black -> the centre crop is all black.
    arr = np.full((20, 60, 3), 255, np.uint8)
    arr[:, 20:40] = 0
    Image.fromarray(arr).save(tmp_path / "wide.png")
    img = load_image(tmp_path / "wide.png", 4)
    assert img.shape == (4, 4)
    np.testing.assert_allclose(img, -1.0)


@pytest.mark.parametrize(
    "source, size, error",
    [("no_such_image_name", 8, ValueError), ("missing/file.png", 8, OSError), ("camera", 1, ValueError)],
)
def test_bad_image_inputs(source, size, error):
    with pytest.raises(error):
        load_image(source, size)


def test_non_image_file(tmp_path):
    (tmp_path / "notes.png").write_text("not an image")
    with pytest.raises(ValueError, match="not an image"):
        load_image(tmp_path / "notes.png", 8)


def test_wav_is_normalised_and_sliced(tmp_path):
    x = write_chirp(tmp_path / "chirp.wav", n=300, rate=9000)
    audio = load_wav(tmp_path / "chirp.wav")
    assert audio.rate == 9000 and audio.samples.shape == (300,)
    assert np.abs(audio.samples).max() == pytest.approx(1.0)
    np.testing.assert_allclose(audio.samples, x / np.abs(x).max(), atol=1e-3)
    sliced = load_wav(tmp_path / "chirp.wav", "10:250:3")
    assert sliced.samples.size == len(range(10, 250, 3)) and sliced.rate == 3000


def test_float_wav_roundtrip(tmp_path):
    write_wav(tmp_path / "f.wav", np.linspace(-0.25, 0.5, 50), 100)
    audio = load_wav(tmp_path / "f.wav")
    assert audio.samples.max() == pytest.approx(1.0) and audio.samples.min() == pytest.approx(-0.5)


@pytest.mark.parametrize("kind", ["stereo", "empty", "silent", "not_wav", "missing", "empty_slice"])
def test_bad_wav_inputs(tmp_path, kind):
    from scipy.io import wavfile

    path = tmp_path / "bad.wav"
    sample_slice = None
    if kind == "stereo":
        write_chirp(path, channels=2)
    elif kind == "empty":
        wavfile.write(path, 8000, np.zeros(0, np.int16))
    elif kind == "silent":
        wavfile.write(path, 8000, np.zeros(100, np.int16))
    elif kind == "not_wav":
        path.write_bytes(b"RIFX nonsense that is not a wave file")
    elif kind == "empty_slice":
        write_chirp(path)
        sample_slice = "5000:6000"
    with pytest.raises(OSError if kind == "missing" else ValueError):
        load_wav(path, sample_slice)


def test_parse_slice():
    assert parse_slice("20000:25000:5") == slice(20000, 25000, 5)
    assert parse_slice(":10") == slice(None, 10)
    for bad in ("1", "a:b", "1:2:0"):
        with pytest.raises(ValueError):
            parse_slice(bad)
