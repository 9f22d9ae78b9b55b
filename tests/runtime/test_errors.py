"""One-line errors are whole: the helper that turns an exception into the line a user reads, and the Hub summary."""
from __future__ import annotations

import pytest

from qiren_gen.runtime import hub_error_reason, one_line, run_reporting_errors


def test_one_line_keeps_every_line_of_the_message():
    assert one_line(ValueError("  bad value\n  in row 3.\n")) == "bad value in row 3."
    assert one_line(KeyError()) == "KeyError"


def test_a_very_long_message_keeps_whole_sentences_and_says_it_was_shortened():
    exc = RuntimeError("Error(s) in loading state_dict. " + "Missing key(s): "
                       + ", ".join(f"layer{i}" for i in range(400)))
    line = one_line(exc, limit=100)
    assert line.startswith("Error(s) in loading state_dict. (") and "more characters" in line and "\n" not in line


def test_the_offline_hub_error_reads_to_its_end(monkeypatch, capsys):
    from huggingface_hub import constants, snapshot_download

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(Exception) as info:  # the real error huggingface_hub raises offline
        snapshot_download("qiren-gen-tests/none")
    assert "\n" not in one_line(info.value) and one_line(info.value).endswith(str(info.value).split()[-1])
    assert hub_error_reason(info.value) == "offline: HF_HUB_OFFLINE=1 is set"
    code, _ = run_reporting_errors("prog", lambda: snapshot_download("qiren-gen-tests/none"))
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "To enable repo look-ups and downloads online" in err


def test_hub_reasons_for_a_missing_cache_entry_and_other_failures(monkeypatch):
    from huggingface_hub import constants, snapshot_download

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    with pytest.raises(Exception) as info:
        snapshot_download("qiren-gen-tests/none", local_files_only=True)
    assert hub_error_reason(info.value) == ("it is not in the local cache, and the Hub was not asked "
                                            "(local_files_only=True)")
    assert hub_error_reason(ConnectionError("Max retries exceeded")) == "no network connection"
    assert hub_error_reason(RuntimeError("boom\nsecond line")) == "RuntimeError: boom second line"
