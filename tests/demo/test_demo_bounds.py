"""The demo's bounds against a real server (slow tier): uploads over the cap refused while they stream in, a flood of
fits that leaves the Sample tab answering, one answer for any pipeline name a visitor types, and SIGTERM that leaves
no temporary folder. Fast in-process siblings check the same rules on the objects the server uses."""
from __future__ import annotations

import json
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from types import SimpleNamespace

import gradio as gr
import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError
from huggingface_hub import constants

from qiren_gen.demo import DemoLimits, build_demo
from qiren_gen.demo.app import FIT_GROUP, MODEL_GROUP, make_handlers
from qiren_gen.demo.live_fit import FIT_BASELINES, PAPER_BASELINE
from qiren_gen.demo.serve import queue_size
from qiren_gen.demo.store import PipelineRefused, PipelineStore
from testing_utils import start_demo_server, tiny_pipeline

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo-bounds")
    dirs = {name: root / name for name in ("cwd", "tmp", "home", "hf", "downloads")}
    for d in dirs.values():
        d.mkdir()
    (dirs["cwd"] / "a-file.txt").write_text("not a pipeline\n")
    (dirs["cwd"] / "a-folder").mkdir()
    proc, lines, url, _ = start_demo_server(dirs, stdout=subprocess.DEVNULL)
    client = Client(url, download_files=str(dirs["downloads"]), verbose=False)
    yield SimpleNamespace(url=url.rstrip("/") + "/", proc=proc, lines=lines, client=client, **dirs)
    if proc.poll() is None:
        proc.kill()


def _post(url: str, body: bytes, content_type: str, timeout: float = 60) -> tuple[int, str]:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": content_type}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - loopback test server
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _folder_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def _upload_raw(url: str, size: int) -> tuple[bytes, int]:
    """POST ``size`` bytes to Gradio's upload route on a plain socket, 1 MiB at a time; returns the server's answer
    and how many bytes it took before it answered or closed the connection."""
    host, port = url.split("//")[1].split("/")[0].split(":")
    boundary = uuid.uuid4().hex
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"big.png\"\r\n"
            "Content-Type: image/png\r\n\r\n").encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    request = (f"POST /gradio_api/upload HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: multipart/form-data; "
               f"boundary={boundary}\r\nContent-Length: {len(head) + size + len(tail)}\r\nConnection: close\r\n"
               "\r\n").encode() + head
    sent, chunk = 0, b"\0" * 2**20
    with socket.create_connection((host, int(port)), timeout=60) as conn:
        conn.sendall(request)
        try:
            while sent < size:
                conn.sendall(chunk[: min(len(chunk), size - sent)])
                sent += min(len(chunk), size - sent)
            conn.sendall(tail)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server stopped reading: it refused the upload while it streamed in
        answer = b""
        try:
            while part := conn.recv(65536):
                answer += part
        except ConnectionResetError:
            pass
    return answer, sent


@pytest.mark.slow
def test_a_50_mb_upload_is_refused_before_it_is_stored(server):
    answer, _ = _upload_raw(server.url, 50 * 2**20)
    assert answer.startswith(b"HTTP/1.1 413") and b"maximum allowed size" in answer, answer[:300]
    time.sleep(0.5)
    assert _folder_bytes(server.tmp) < 2**20  # none of it kept, not even the first 10 MiB it read
    small, _ = _upload_raw(server.url, 1000)  # a small upload is still stored
    assert small.startswith(b"HTTP/1.1 200"), small[:300]


def _fn_index(client: Client, api_name: str) -> int:
    return next(i for i, d in enumerate(client.config["dependencies"]) if d.get("api_name") == api_name)


def _join(server, fn_index: int, data: list, session: str) -> int:
    body = json.dumps({"data": data, "fn_index": fn_index, "session_hash": session, "event_data": None,
                       "trigger_id": None}).encode()
    return _post(server.url + "gradio_api/queue/join", body, "application/json", timeout=30)[0]


@pytest.mark.slow
def test_65_queued_fits_leave_the_sample_tab_answering(server):
    limits = DemoLimits()
    fit = _fn_index(server.client, "fit")
    small_fit = ["camera", None, 8, 100, PAPER_BASELINE]
    answers = [_join(server, fit, small_fit, uuid.uuid4().hex) for _ in range(65)]
    accepted = answers.count(200)
    assert set(answers) <= {200, 422} and accepted <= limits.fit_waiting + 1, answers  # one may already run
    assert answers.count(422) >= 65 - limits.fit_waiting - 1
    start = time.monotonic()
    job = server.client.submit("", 3, 1, 16, 2, api_name="/sample")
    job.result(timeout=120)
    assert time.monotonic() - start < 120
    # one client may hold only its share of a line
    session = uuid.uuid4().hex
    time.sleep(0.5)
    mine = [_join(server, fit, small_fit, session) for _ in range(limits.waiting_per_client + 1)]
    assert mine[-1] == 422 or mine.count(200) <= limits.waiting_per_client + 1, mine
    refusals = [line for line in server.lines if "refused" in line and "waiting for this tab" in line]
    assert refusals and all(len(line.strip().splitlines()) == 1 for line in refusals)


@pytest.mark.slow
def test_any_pipeline_name_gets_one_answer_and_control_characters_are_escaped(server):
    names = ["no/such/folder", "a-file.txt", "a-folder", "/etc", "qiren-gen-tests/not-cached", "evil\x1b[31m\x00x"]
    before = len(server.lines)
    answers = set()
    for name in names:
        with pytest.raises(AppError) as info:
            server.client.predict(name, 0, 1, 16, 2, api_name="/sample")
        message = str(info.value)
        assert "is not a pipeline folder this page can load" in message and "\x1b" not in message, message
        answers.add(message.replace(name, "NAME").replace("evil\\x1b[31m\\x00x", "NAME"))
    assert len(answers) == 1, answers  # the same answer whatever the name is: nothing learnt about the server's files
    time.sleep(0.3)
    logged = "".join(server.lines[before:])
    assert "\x1b" not in logged and "\x00" not in logged and "\\x1b" in logged
    assert not any((server.hf / sub).exists() for sub in ("hub", "models--qiren-gen-tests--not-cached"))


@pytest.mark.slow
def test_sizes_are_accepted_as_the_api_advertises_them(server):
    info = server.client.view_api(print_info=False, return_format="dict")
    sizes = next(p for p in info["named_endpoints"]["/any_resolution"]["parameters"] if p["label"] == "sizes")
    assert sizes["type"]["items"]["type"] == "string"
    gallery = server.client.predict("", 5, ["16", "32"], 2, api_name="/any_resolution")
    assert [item["caption"] for item in gallery] == ["16x16", "32x32"]


@pytest.mark.slow
def test_sigterm_stops_the_demo_and_leaves_no_temp_folder(server):
    assert list(server.tmp.iterdir())  # the demo's folder while it runs
    server.proc.send_signal(signal.SIGTERM)
    code = server.proc.wait(timeout=60)
    time.sleep(0.3)
    assert code == 0, server.lines[-8:]
    assert list(server.tmp.iterdir()) == []
    assert sorted(p.name for p in server.cwd.iterdir()) == ["a-file.txt", "a-folder"]  # nothing written there
    assert not any("Traceback" in line for line in server.lines), server.lines[-5:]


# fast siblings: the same rules on the objects the server uses


def test_the_store_answers_one_line_for_every_bad_name_and_never_downloads(tmp_path, monkeypatch):
    (tmp_path / "a-file.txt").write_text("x")
    (tmp_path / "a-folder").mkdir()
    store = PipelineStore(tiny_pipeline())
    messages = []
    with socket.socket() as listener:  # a Hub stand-in on loopback: a download attempt would connect here
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.settimeout(0.2)
        monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{listener.getsockname()[1]}")
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
        for name in (str(tmp_path / "missing"), str(tmp_path / "a-file.txt"), str(tmp_path / "a-folder"),
                     "someone/huge-repo", "evil\x1b\x00"):
            with pytest.raises(PipelineRefused) as info:
                with store.use(name):
                    pass
            messages.append(str(info.value).replace(name[:80], "NAME").replace("evil\\x1b\\x00", "NAME"))
            assert "\x1b" not in info.value.detail and "\x00" not in info.value.detail
        with pytest.raises(TimeoutError):
            listener.accept()
    assert len(set(messages)) == 1 and "is not a pipeline folder this page can load" in messages[0], messages


def test_the_page_puts_each_kind_of_work_in_its_own_bounded_line():
    limits = DemoLimits()
    blocks = build_demo(tiny_pipeline(), limits=limits)
    groups = {fn.api_name: fn.concurrency_id for fn in blocks.fns.values() if fn.api_name}
    assert {groups[n] for n in ("sample", "any_resolution", "interpolate", "encode")} == {MODEL_GROUP}
    assert groups["fit"] == groups["fit_tuned"] == FIT_GROUP
    assert all(fn.validator is not None for fn in blocks.fns.values() if fn.api_name)
    assert blocks.delete_cache == (limits.cache_every_s, limits.cache_max_age_s)
    assert queue_size(limits) == limits.model_waiting + limits.fit_waiting


def test_the_fit_tab_defaults_to_the_papers_comparison_with_the_tuned_one_a_click_away():
    blocks = build_demo(tiny_pipeline())
    dropdowns = [b for b in blocks.blocks.values() if getattr(b, "label", None) == "classical baseline"]
    assert dropdowns[0].value == PAPER_BASELINE and FIT_BASELINES[PAPER_BASELINE].kwargs["first_omega_0"] == 1.0
    accordions = [b for b in blocks.blocks.values() if isinstance(b, gr.Accordion)]
    assert [a.label for a in accordions] == ["Against a tuned SIREN"] and accordions[0].open is False
    tuned = [fn for fn in blocks.fns.values() if fn.api_name == "fit_tuned"][0]
    assert isinstance(tuned.inputs[-1], gr.State) and tuned.inputs[-1].value == "siren"


def test_fit_handler_refuses_sizes_over_the_stated_budget_in_one_line():
    limits = DemoLimits()
    handlers = make_handlers(PipelineStore(tiny_pipeline()), limits)
    with pytest.raises(gr.Error) as info:
        next(handlers.fit("camera", None, limits.max_fit_size + 1, 10, PAPER_BASELINE))
    assert "CPU-seconds" in str(info.value) and len(str(info.value).splitlines()) == 1
    frames = list(handlers.fit("camera", None, 8, 4))  # the paper's comparison by default
    assert "siren_paper" in frames[-1][-1] and frames[-1][-1].count("PSNR") == 2
    frames = list(handlers.fit("camera", None, 8, 2, "siren-paper"))  # the former spelling: old API calls still run
    assert "siren_paper" in frames[-1][-1] and frames[-1][-1].count("PSNR") == 2
