"""The checked readers of ``qiren_gen.io``: every refusal is one line naming the file (escaped) and an exit code of 2
on the command line; weights never run pickled code; JSON state is typed and bounded; audio is capped from its header
before a sample is read."""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from qiren_gen.io import (
    MAX_AUDIO_FRAMES,
    BadInputFile,
    Int,
    Str,
    check_digest,
    read_json_state,
    read_wav,
    read_wav_header,
    read_weights,
    shown,
)
from qiren_gen.runtime.errors import CLIError, run_reporting_errors
from testing_utils import wav_header


def one_line(exc: BaseException) -> str:
    text = str(exc)
    assert "\n" not in text and text, text
    return text


# -- weights -----------------------------------------------------------------------------------------------------
class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return exec, (f"open({self.marker!r}, 'w').close()",)


def test_weights_load_plain_state_dicts_from_torch_and_safetensors_files(tmp_path):
    from safetensors.torch import save_file

    state = {"a": torch.arange(6.0).reshape(2, 3), "b": torch.ones(2, dtype=torch.int64)}
    torch.save(state, tmp_path / "w.pt")
    save_file(state, str(tmp_path / "w.safetensors"))
    for name in ("w.pt", "w.safetensors"):
        loaded = read_weights(tmp_path / name)
        assert loaded.keys() == state.keys() and all(torch.equal(loaded[k], state[k]) for k in state)
    digest = hashlib.sha256((tmp_path / "w.pt").read_bytes()).hexdigest()
    assert read_weights(tmp_path / "w.pt", sha256=digest).keys() == state.keys()


@pytest.mark.parametrize("case", ["pickle payload", "truncated safetensors", "empty file", "NaN weights",
                                  "not a state dict", "digest differs after 8 digits", "missing"])
def test_damaged_or_hostile_weights_are_one_line_naming_the_file(tmp_path, case):
    from safetensors.torch import save_file

    marker = tmp_path / "ran"
    path = tmp_path / "bad\x1b[31m.pt"
    sha256 = None
    if case == "pickle payload":
        torch.save({"w": torch.zeros(1), "x": _Payload(marker)}, path)
    elif case == "truncated safetensors":
        path = tmp_path / "bad.safetensors"
        save_file({"w": torch.zeros(100)}, str(path))
        path.write_bytes(path.read_bytes()[:60])
    elif case == "empty file":
        path.write_bytes(b"")
    elif case == "NaN weights":
        torch.save({"w": torch.tensor([1.0, float("nan")])}, path)
    elif case == "not a state dict":
        torch.save([torch.zeros(1)], path)
    elif case == "digest differs after 8 digits":
        torch.save({"w": torch.zeros(1)}, path)
        real = hashlib.sha256(path.read_bytes()).hexdigest()
        sha256 = real[:8] + ("0" if real[8] != "0" else "1") + real[9:]
    with pytest.raises(BadInputFile) as info:
        read_weights(path, sha256=sha256)
    message = one_line(info.value)
    assert shown(path) in message and "\x1b" not in message
    assert "weights_only" not in message and not marker.exists()
    assert isinstance(info.value, ValueError) and isinstance(info.value, CLIError)


def test_plain_nested_state_loads_and_a_pickle_of_anything_else_does_not(tmp_path):
    from qiren_gen.io import read_torch_file

    state = {"state": {0: {"step": torch.tensor(3.0)}}, "param_groups": [{"lr": 0.1, "params": [0]}]}
    torch.save(state, tmp_path / "optimizer.bin")
    assert read_torch_file(tmp_path / "optimizer.bin")["param_groups"][0]["lr"] == 0.1
    marker = tmp_path / "ran"
    torch.save({"x": _Payload(marker)}, tmp_path / "custom_checkpoint_0.pkl")
    (tmp_path / "empty.bin").write_bytes(b"")
    for name, fragment in (("custom_checkpoint_0.pkl", "pickle that is not plain tensors"), ("empty.bin", "is empty")):
        with pytest.raises(BadInputFile, match=fragment) as info:
            read_torch_file(tmp_path / name)
        assert name in one_line(info.value)
    assert not marker.exists()


def test_a_refused_read_is_exit_code_2_on_the_command_line(tmp_path, capsys):
    (tmp_path / "w.pt").write_bytes(b"")
    code, _ = run_reporting_errors("qiren-gen", lambda: read_weights(tmp_path / "w.pt"))
    assert code == 2 and len(capsys.readouterr().err.strip().splitlines()) == 1


def test_a_digest_is_checked_whole_and_the_length_first(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"x" * 100)
    real = hashlib.sha256(b"x" * 100).hexdigest()
    check_digest(path, real, 100)
    with pytest.raises(BadInputFile, match="is 100 bytes, not the 99 bytes"):
        check_digest(path, real, 99)
    with pytest.raises(BadInputFile, match=f"its sha256 is {real}"):
        check_digest(path, real[:-1] + ("0" if real[-1] != "0" else "1"))
    with pytest.raises(ValueError, match="64 hex digits"):
        check_digest(path, real[:8])  # a prefix is never a digest


# -- JSON state --------------------------------------------------------------------------------------------------
SCHEMA = {"step": Int(0, 1000), "note": Str(max_chars=8, required=False)}


@pytest.mark.parametrize("text, fragment", [
    ('{"step": -100}', "'step' must be between 0 and 1000, got -100"),
    ('{"step": "x"}', "'step' must be a whole number, got a string 'x'"),
    ('{"step": true}', "'step' must be a whole number, got a boolean True"),
    ('{"step": 2.0}', "'step' must be a whole number"),
    ('{"note": "n"}', "has no 'step'"),
    ('{"step": 1, "note": "123456789"}', "'note' must be at most 8 characters"),
    ("[1]", "must hold a JSON object"),
    ("{", "not valid JSON"),
    ("[" * 100 + "]" * 100, "nested 100 levels deep"),
])
def test_json_state_is_typed_and_bounded(tmp_path, text, fragment):
    path = tmp_path / "training_state.json"
    path.write_text(text)
    with pytest.raises(BadInputFile) as info:
        read_json_state(path, SCHEMA)
    assert fragment in one_line(info.value) and "training_state.json" in str(info.value)


def test_json_state_passes_good_values_and_keeps_other_keys(tmp_path):
    path = tmp_path / "s.json"
    path.write_text('{"step": 12, "extra": [1, 2]}')
    assert read_json_state(path, SCHEMA) == {"step": 12, "extra": [1, 2]}


# -- audio -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, fragment", [
    (dict(channels=0), "declares channels 0"),
    (dict(bits=0), "declares bits per sample 0"),
    (dict(rate=0), "declares sample rate 0"),
    (dict(rate=10**9), "over the cap of 1,000,000 Hz"),
])
def test_impossible_wav_headers_are_one_line(tmp_path, kwargs, fragment):
    path = wav_header(tmp_path / "x.wav", **kwargs)
    with pytest.raises(BadInputFile) as info:
        read_wav(path)
    assert fragment in one_line(info.value) and "x.wav" in str(info.value)


def test_a_wav_within_the_cap_reads_like_scipy(tmp_path):
    from scipy.io import wavfile

    samples = (np.sin(np.arange(1000) / 10) * 20000).astype(np.int16)
    wavfile.write(tmp_path / "s.wav", 8000, samples)
    rate, data = read_wav(tmp_path / "s.wav")
    assert rate == 8000 and np.array_equal(data, samples)
    assert read_wav_header(tmp_path / "s.wav").frames == 1000


@pytest.mark.slow
def test_a_one_hour_wav_is_refused_from_its_header_unread_and_in_little_memory(tmp_path):
    """A 1-hour 44.1 kHz header over a sparse file of the size it claims (no disk is filled), refused in a fresh
    process that imports the reader alone (``qiren_gen.data.load_wav`` calls it; torch's import would dominate the
    memory figure): the bytes it reads (``/proc/self/io``) are the header's, and its peak memory stays small. (How
    long the refusal takes is measured by ``scripts/benchmarks/audio_cap.py``, not here.)"""
    frames = 3600 * 44100
    assert frames > MAX_AUDIO_FRAMES
    path = wav_header(tmp_path / "hour.wav", frames=frames, write_data=False)
    with open(path, "r+b") as handle:
        handle.truncate(44 + frames * 2)  # sparse: the size the header claims, no blocks written
    # peak memory from VmHWM (this process's own high-water mark): ru_maxrss would carry the pytest parent's over exec
    code = ("import sys\n"
            "from qiren_gen.io.audio import read_wav as load_wav\n"
            "import scipy.io.wavfile  # its import reads files too\n"
            "def rchar():\n    return int(open('/proc/self/io').read().split('rchar:')[1].split()[0])\n"
            "try:\n    load_wav(sys.argv[1])  # warm-up: modules the reader imports lazily are read once\n"
            "except ValueError:\n    pass\n"
            "before = rchar()\n"
            "try:\n    load_wav(sys.argv[1])\nexcept ValueError as e:\n    print(e)\n"
            "print(rchar() - before, int(open('/proc/self/status').read().split('VmHWM:')[1].split()[0]))")
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "OMP_NUM_THREADS": "1"})
    message, numbers = out.stdout.strip().splitlines()
    read_bytes, peak_kib = (int(v) for v in numbers.split())
    assert "declares 158,760,000 frames (60.0 minutes at 44100 Hz), over the cap of 33,554,432" in message
    assert read_bytes < 64 * 1024 and peak_kib < 1024 * 1024, (read_bytes, peak_kib)


def test_fit_reads_audio_through_the_capped_reader(tmp_path):
    from qiren_gen.data import load_wav

    path = wav_header(tmp_path / "long.wav", frames=MAX_AUDIO_FRAMES + 1, write_data=False)
    with pytest.raises(BadInputFile, match="over the cap of 33,554,432 frames"):
        load_wav(path)
    with pytest.raises(BadInputFile, match="declares channels 0"):
        load_wav(wav_header(tmp_path / "zero.wav", channels=0))
