"""The boundary in one place: one checked reader per kind of file the package loads, one atomic writer for every
file and folder it writes. Entry points (the CLI, the scripts, the demo) call these and add no guards of their own;
each cap is stated once, next to the reader that enforces it. Imports no model.

* `.weights` ``read_weights``: safetensors or ``torch.load(weights_only=True)``, a full sha256 where known;
* `.json_state` ``read_json_state``: typed, bounded fields of a JSON state file;
* `.images` ``read_image`` and `.audio` ``read_wav``: pixel and frame caps checked from the header;
* `.atomic`: write beside, flush, rename; a failed write leaves the previous output whole.

Every refusal is one line naming the file (control characters escaped, `.errors.shown`), raised as
`.errors.BadInputFile` (a ``ValueError``) or `.errors.WriteFailed` (an ``OSError``), both exit code 2.
"""
from .atomic import (
    append_text,
    save_figure,
    save_folder_atomically,
    save_image,
    save_pipeline_atomically,
    save_tensors,
    write_bytes,
    write_file_with,
    write_json,
    write_text,
    write_with,
)
from .audio import MAX_AUDIO_FRAMES, check_wav, read_wav, read_wav_header
from .errors import BadInputFile, WriteFailed, quoted, shown
from .images import MAX_SOURCE_PIXELS, read_image
from .json_state import Bool, Float, Int, Str, read_json_state
from .weights import check_digest, file_sha256, read_torch_file, read_weights

__all__ = [
    "MAX_AUDIO_FRAMES", "MAX_SOURCE_PIXELS", "BadInputFile", "Bool", "Float", "Int", "Str", "WriteFailed",
    "append_text", "check_digest", "check_wav", "file_sha256", "quoted", "read_image", "read_json_state", "read_wav",
    "read_torch_file", "read_wav_header", "read_weights", "save_figure", "save_folder_atomically", "save_image",
    "save_pipeline_atomically", "save_tensors", "shown", "write_bytes", "write_file_with", "write_json", "write_text",
    "write_with",
]
