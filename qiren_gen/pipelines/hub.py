"""Upload a saved pipeline to the Hugging Face Hub: save it to a temporary folder, then upload that folder."""
from __future__ import annotations

import tempfile

from diffusers import DiffusionPipeline
from huggingface_hub import create_repo, upload_folder

from ..runtime.errors import hub_error_reason


def push_pipeline_to_hub(pipeline: DiffusionPipeline, repo_id: str, commit_message: str | None = None,
                         private: bool | None = None, token: str | None = None, create_pr: bool = False) -> str:
    """Save ``pipeline`` (weights, configs, model card naming ``repo_id``) and upload it; returns the commit URL.

    Raises ``OSError`` with one line when the Hub cannot be reached (offline, no token, no network).
    """
    try:
        repo_id = create_repo(repo_id, private=private, token=token, exist_ok=True).repo_id
        location, pipeline.model_card_location = pipeline.model_card_location, repo_id
        with tempfile.TemporaryDirectory() as tmp:
            try:
                pipeline.save_pretrained(tmp)
            finally:
                pipeline.model_card_location = location
            info = upload_folder(repo_id=repo_id, folder_path=tmp, token=token, create_pr=create_pr,
                                 commit_message=commit_message or f"Upload {type(pipeline).__name__}")
    except Exception as exc:  # noqa: BLE001 - requests / huggingface_hub errors: one line for all
        raise OSError(f"cannot push to the Hugging Face Hub repo '{repo_id}' ({hub_error_reason(exc)}).") from None
    return str(info)


__all__ = ["push_pipeline_to_hub"]
