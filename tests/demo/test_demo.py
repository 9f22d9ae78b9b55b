"""The demo page over its real HTTP API: ``qiren-gen demo`` runs as a subprocess on a free loopback port and every tab
is driven through ``gradio_client``. Checks image sizes, determinism per seed, concurrent requests that keep their
own seeds, one-line refusals (page and server) after which the server keeps serving, and that nothing is written
outside the demo's temporary folder."""
from __future__ import annotations

import json
import signal
import socket
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from gradio_client import Client, handle_file  # gradio is in the test extra: never skipped
from gradio_client.exceptions import AppError
from huggingface_hub import constants
from PIL import Image
from skimage.data import lfw_subset

from qiren_gen.cli import main
from qiren_gen.demo import build_demo
from qiren_gen.demo.store import PipelineStore, is_public_bind, pipeline_allow_list
from qiren_gen.pipelines import bundled_pipeline_dir
from testing_utils import start_demo_server, tiny_pipeline

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    dirs = {name: root / name for name in ("cwd", "tmp", "home", "hf", "downloads")}
    for d in dirs.values():
        d.mkdir()
    proc, lines, url, port = start_demo_server(dirs)
    client = Client(url, download_files=str(dirs["downloads"]), verbose=False)
    yield SimpleNamespace(url=url, proc=proc, lines=lines, client=client, port=port, **dirs)
    if proc.poll() is None:
        proc.kill()


def _image(path) -> np.ndarray:
    return np.asarray(Image.open(path))


def _sample(client, seed, faces=4, resolution=32, steps=5):
    return _image(client.predict("", seed, faces, resolution, steps, api_name="/sample"))


def _listening_addresses(port: int) -> set[str]:
    """Local addresses with a socket listening on ``port`` (Linux ``/proc/net/tcp*``; hex as the kernel writes it)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for row in Path(table).read_text().splitlines()[1:]:
            local, state = row.split()[1], row.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:
                found.add(address)
    return found


@pytest.mark.slow
def test_serves_on_loopback_only(server):
    assert server.url.startswith("http://127.0.0.1:")
    assert _listening_addresses(server.port) == {"0100007F"}  # 127.0.0.1 only: not 0.0.0.0, not another interface


@pytest.mark.slow
def test_sample_tab_sizes_and_same_seed_same_grid(server):
    a = _sample(server.client, 3)
    assert a.shape[:2] == (64, 64)  # 4 faces at 32x32 in a 2x2 grid
    assert np.array_equal(a, _sample(server.client, 3))
    assert not np.array_equal(a, _sample(server.client, 4))
    wide = _sample(server.client, 3, faces=3, resolution=20)
    assert wide.shape[:2] == (20, 60)  # 3 faces: one row


@pytest.mark.slow
def test_sample_tab_sampler_choice(server):
    ddim = _sample(server.client, 3)
    assert np.array_equal(ddim, _image(server.client.predict("", 3, 4, 32, 5, "ddim", api_name="/sample")))
    dpm = _image(server.client.predict("", 3, 4, 32, 20, "dpm++", api_name="/sample"))
    assert dpm.shape == ddim.shape and np.array_equal(dpm, _image(
        server.client.predict("", 3, 4, 32, 20, "dpm++", api_name="/sample")))
    ddim50 = _image(server.client.predict("", 3, 4, 32, 50, "ddim", api_name="/sample"))
    assert np.abs(dpm.astype(float) - ddim50).mean() < 0.01 * 255  # the same faces in 20 steps
    assert np.array_equal(ddim, _sample(server.client, 3))  # the default sampler is back afterwards


@pytest.mark.slow
def test_sample_tab_shots_control(server):
    exact = _sample(server.client, 3)
    assert np.array_equal(exact, _image(server.client.predict("", 3, 4, 32, 5, "ddim", 0, api_name="/sample")))
    few = _image(server.client.predict("", 3, 4, 32, 5, "ddim", 10, api_name="/sample"))
    assert np.array_equal(few, _image(server.client.predict("", 3, 4, 32, 5, "ddim", 10, api_name="/sample")))
    many = _image(server.client.predict("", 3, 4, 32, 5, "ddim", 100000, api_name="/sample"))
    err_few, err_many = (np.abs(im.astype(float) - exact).mean() for im in (few, many))
    assert err_many < 0.25 * err_few and err_few > 2  # 10 shots is visibly noisy; 1e5 shots is close to exact
    assert np.array_equal(exact, _sample(server.client, 3))  # exact again afterwards


@pytest.mark.slow
def test_concurrent_requests_keep_their_own_seeds(server):
    solo = {seed: _sample(server.client, seed) for seed in (11, 12)}
    visitors = [Client(server.url, download_files=str(server.downloads), verbose=False) for _ in range(2)]
    jobs = [c.submit("", seed, 4, 32, 5, api_name="/sample") for c, seed in zip(visitors, (11, 12), strict=True)]
    together = {seed: _image(job.result(timeout=180)) for seed, job in zip((11, 12), jobs, strict=True)}
    assert not np.array_equal(together[11], together[12])
    for seed in (11, 12):
        assert np.array_equal(together[seed], solo[seed])


@pytest.mark.slow
def test_any_resolution_tab_renders_one_face_at_each_size(server):
    gallery = server.client.predict("", 5, ["16", "32", "64"], 5, api_name="/any_resolution")
    images = [Image.open(item["image"]) for item in gallery]
    assert [im.size for im in images] == [(16, 16), (32, 32), (64, 64)]
    assert [item["caption"] for item in gallery] == ["16x16", "32x32", "64x64"]
    # one face, not three: the 64x64 render area-averaged to 16x16 is close to the 16x16 render
    big = np.asarray(images[2].convert("L").resize((16, 16), Image.Resampling.BOX), dtype=float)
    assert np.abs(big - np.asarray(images[0].convert("L"), dtype=float)).mean() < 20


@pytest.mark.slow
def test_interpolate_tab_ends_at_the_two_seeds_samples(server):
    strip = _image(server.client.predict("", 7, 8, 4, 16, 5, api_name="/interpolate"))
    assert strip.shape[:2] == (16, 64)
    assert np.array_equal(strip[:, :16], _sample(server.client, 7, faces=1, resolution=16))
    assert np.array_equal(strip[:, -16:], _sample(server.client, 8, faces=1, resolution=16))
    assert not np.array_equal(strip[:, 16:32], strip[:, :16])


@pytest.mark.slow
def test_your_image_tab_encodes_decodes_and_superresolves(server, tmp_path):
    side = json.loads((bundled_pipeline_dir() / "prior" / "config.json").read_text())["sample_size"]
    face = Image.fromarray((lfw_subset()[95] * 255).astype(np.uint8)).resize((120, 100))  # not square, not 25
    face.save(tmp_path / "face.png")
    model_in, recon, prior4x, bicubic4x, note = server.client.predict("", handle_file(tmp_path / "face.png"),
                                                                      api_name="/encode")
    assert Image.open(model_in).size == Image.open(recon).size == (side, side)
    assert Image.open(prior4x).size == Image.open(bicubic4x).size == (4 * side, 4 * side)
    psnr = float(note.split("PSNR **")[1].split(" dB")[0])
    assert psnr > 14, note  # a real reconstruction, not noise (the mean face alone gives ~15 dB on LFW)


@pytest.mark.slow
def test_fit_tab_streams_both_fits(server):
    job = server.client.submit("camera", None, 8, 20, "siren", api_name="/fit")
    target, qiren, base, curve, note = job.result(timeout=180)
    assert len(job.outputs()) >= 3  # frames arrived while it trained
    assert Image.open(target).size == Image.open(qiren).size == Image.open(base).size == (8, 8)
    assert "step 20/20" in note and note.count("PSNR") == 2 and "qiren" in note and "siren" in note


BAD_REQUESTS = [
    ("/sample", ("", 0, 17, 32, 5), "number of faces must be between 1 and 16"),
    ("/sample", ("", 0, 16, 256, 5), "over the cap"),
    ("/sample", ("", 0, 1, 100000, 5), "resolution must be between 1 and 512"),
    ("/sample", ("", -1, 1, 16, 5), "seed must be between 0"),
    ("/sample", ("", 0, 1, 16, 500), "steps must be between 1 and 100"),
    ("/sample", ("no/such/folder/x", 0, 1, 16, 5), "is not a pipeline folder this page can load"),
    ("/sample", ("qiren-gen-tests/not-cached", 0, 1, 16, 5), "is not a pipeline folder this page can load"),
    ("/sample", ("", 0, 1, 16, 5, "karras-magic"), "unknown scheduler 'karras-magic'; known: ddim, ddpm, dpm++"),
    ("/sample", ("", 0, 1, 16, 5, "ddim", -5), "shots must be between 0 and 1000000000"),
    ("/sample", ("", 0, 1, 16, 5, "ddim", 10**10), "shots must be between 0 and 1000000000"),
    ("/any_resolution", ("", 0, [], 5), "pick at least one size"),
    ("/any_resolution", ("", 0, ["16", "32", "64", "128", "256", "512"], 5), "over the cap"),
    ("/interpolate", ("", 0, 1, 40, 16, 5), "number of faces must be between 2 and 16"),
    ("/fit", ("camera", None, 4096, 10, "siren"), "fit size must be between 8 and 32"),
    ("/fit", ("nosuchpicture", None, 8, 10, "siren"), "picture must be one of"),
    ("/fit", ("camera", None, 8, 10, "resnet"), "baseline must be one of"),
]


@pytest.mark.slow
def test_bad_requests_are_one_clear_line_and_the_server_keeps_serving(server, tmp_path):
    (tmp_path / "notes.png").write_text("not an image\n")
    (tmp_path / "empty.png").write_bytes(b"")
    Image.new("L", (5000, 5000)).save(tmp_path / "huge.png")  # a few kB on disk, 25M pixels declared
    uploads = [(tmp_path / "notes.png", "not an image"), (tmp_path / "empty.png", "empty"),
               (tmp_path / "huge.png", "over the cap")]
    requests = BAD_REQUESTS + [("/encode", ("", handle_file(path)), fragment) for path, fragment in uploads]
    requests += [("/fit", ("camera", handle_file(tmp_path / "notes.png"), 8, 10, "siren"), "not an image")]
    before = len(server.lines)
    for api, args, fragment in requests:
        with pytest.raises(AppError) as info:
            server.client.predict(*args, api_name=api)
        assert fragment in str(info.value) and len(str(info.value).splitlines()) == 1, (api, str(info.value))
    time.sleep(0.5)
    new = [line for line in server.lines[before:] if line.strip()]
    assert len([line for line in new if ": refused: " in line]) == len(requests), new
    assert not any("Traceback" in line for line in new), new
    assert _sample(server.client, 3).shape[:2] == (64, 64)  # still serving


@pytest.mark.slow
def test_stops_cleanly_and_wrote_nothing_outside_its_temp_folder(server):
    server.proc.send_signal(signal.SIGINT)
    assert server.proc.wait(timeout=60) == 0
    assert list(server.cwd.iterdir()) == []  # nothing in the working directory
    assert list(server.home.iterdir()) == []  # nothing in the home folder (no caches, no config)
    assert list(server.tmp.iterdir()) == []  # its temporary folder (under TMPDIR) is gone
    assert not any("Traceback" in line for line in server.lines), server.lines


def test_without_gradio_the_command_says_how_to_install_it(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "gradio", None)
    assert main(["demo"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ['qiren-gen demo: error: the demo needs Gradio: pip install "qiren-gen[demo]"']


def test_a_busy_port_is_one_line_before_anything_loads(capsys):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        start = time.perf_counter()
        assert main(["demo", "--port", str(port)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"cannot serve on 127.0.0.1:{port}" in err[0] and "pick another --port" in err[0]
    assert time.perf_counter() - start < 5  # refused before the pipeline was loaded


def test_a_public_bind_serves_only_the_allow_list(monkeypatch):
    monkeypatch.delenv("SPACE_ID", raising=False)
    assert not is_public_bind("127.0.0.1") and not is_public_bind("localhost")
    assert is_public_bind("0.0.0.0") and is_public_bind("127.0.0.1", share=True)
    monkeypatch.setenv("SPACE_ID", "someone/space")
    assert is_public_bind("127.0.0.1")
    assert pipeline_allow_list(False, None, "started/pipe") is None  # loopback: any folder or Hub id
    assert pipeline_allow_list(True, None, "started/pipe") == ("started/pipe",)  # public default: the started one
    assert pipeline_allow_list(True, ["a/b", "c/d", "a/b"], "started/pipe") == ("a/b", "c/d", "started/pipe")
    assert pipeline_allow_list(True, None, None) == ()
    store = PipelineStore(tiny_pipeline(), allowed=pipeline_allow_list(True, None, "started/pipe"),
                          default_name="started/pipe")
    assert not store.others_allowed
    for source in ("", "started/pipe"):
        with store.use(source) as pipe:
            assert pipe is store.default
    for source in ("attacker/huge-repo", "/etc"):
        with pytest.raises(ValueError, match="serves only its own pipeline"):
            with store.use(source):
                pass
    listed = PipelineStore(tiny_pipeline(), allowed=("qiren-gen-tests/other", "started/pipe"),
                           default_name="started/pipe")
    assert listed.others_allowed
    with pytest.raises(ValueError, match="serves only qiren-gen-tests/other, started/pipe \\(not 'attacker/x'\\)"):
        with listed.use("attacker/x"):
            pass
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    # a listed Hub id is loaded (the operator chose it); offline, that is its own clear line
    with pytest.raises(OSError, match="cannot reach the Hugging Face Hub for 'qiren-gen-tests/other'"):
        with listed.use("qiren-gen-tests/other"):
            pass


def test_the_page_shows_a_pipeline_list_on_a_public_bind():
    blocks = build_demo(tiny_pipeline(), allowed_pipelines=("qiren-gen-tests/other", "started/pipe"),
                        pipeline_name="started/pipe")
    boxes = [b for b in blocks.blocks.values() if getattr(b, "label", "") and str(b.label).startswith("pipeline")]
    assert len(boxes) == 1 and type(boxes[0]).__name__ == "Dropdown" and boxes[0].visible
    assert [c[0] for c in boxes[0].choices] == ["", "qiren-gen-tests/other"]
    hidden = build_demo(tiny_pipeline(), allowed_pipelines=("started/pipe",), pipeline_name="started/pipe")
    assert not [b for b in hidden.blocks.values() if str(getattr(b, "label", "")).startswith("pipeline")][0].visible
