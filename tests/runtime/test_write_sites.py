"""Every file the package writes goes through the atomic writer (``qiren_gen/io/atomic.py``): this test reads the
package's source and lists every write site (``open`` for writing, ``os.open`` with a write flag, ``.save(``,
``.savefig(``, ``json.dump(``, ``.write_text(``, ``.write_bytes(``, ``torch.save(``, ``save_file(``,
``wavfile.write(``, ``.save_pretrained(``, ``.to_parquet(``, ``np.save(``), and fails on one that is not the
writer's own and not listed below."""
from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

from testing_utils import parse_python

PACKAGE = Path(__file__).resolve().parents[2] / "qiren_gen"
WRITER = "io/atomic.py"

# Sites that write no file (in-memory buffers), a lock rather than an output, or call a method of the package that
# writes through the writer.
NOT_FILES = {
    "demo/live_fit.py: fig.savefig(buffer, format=\"png\")",
    "evaluation/fid.py: stats.save(files[\"reference_stats\"])",  # ReferenceStatistics.save: io.atomic.save_tensors
    # the run's advisory lock: flock needs the file itself; its text only names the holder, and is never a result
    "training/outputs.py: fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)",
    # QirenGenerationPipeline.save_pretrained -> DiffusersEntryMixin.save_pretrained: io.atomic.save_pipeline_with
    "pipelines/generation.py: super().save_pretrained(save_directory, safe_serialization=safe_serialization, **kwargs)",
    "pipelines/hub.py: pipeline.save_pretrained(tmp)",  # the pipeline's own save_pretrained (io.atomic, as above)
}

# Sites still to be moved onto the atomic writer: none are left, and a new write must use io.atomic's write_text /
# write_json / save_image / save_figure / save_tensors / write_file_with / append_text / save_folder_atomically /
# save_pipeline_with / save_entries_with (or be listed above with the reason it writes no output).
TO_CONVERT: set[str] = set()

_METHODS = {"save", "savefig", "write_text", "write_bytes", "save_pretrained", "to_parquet"}
_QUALIFIED = {("json", "dump"), ("torch", "save"), ("wavfile", "write"), ("np", "save"), ("numpy", "save")}
_WRITE_FLAGS = {"O_WRONLY", "O_RDWR", "O_CREAT", "O_APPEND", "O_TRUNC"}


def _is_write_open(node: ast.Call) -> bool:
    mode = node.args[1] if len(node.args) > 1 else next((k.value for k in node.keywords if k.arg == "mode"), None)
    if mode is None:
        return False
    if not isinstance(mode, ast.Constant) or not isinstance(mode.value, str):
        return True  # a computed mode: counted as a write
    return bool(set(mode.value) & set("wax+"))


def _is_write(node: ast.Call) -> bool:
    func = node.func
    if isinstance(func, ast.Name):
        return (func.id == "open" and _is_write_open(node)) or func.id == "save_file"
    if not isinstance(func, ast.Attribute):
        return False
    owner = func.value.id if isinstance(func.value, ast.Name) else None
    if owner == "os" and func.attr == "open":
        return any(isinstance(n, ast.Attribute) and n.attr in _WRITE_FLAGS for arg in node.args for n in ast.walk(arg))
    if (owner, func.attr) in _QUALIFIED or func.attr == "save_file":
        return True
    return func.attr in _METHODS


_WRITER_CALLS = {"write_file_with", "write_with", "save_pipeline_with", "save_entries_with"}  # a write inside their
# arguments is the writer's own step


def _inside_the_writer(tree: ast.AST) -> set[int]:
    nested = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", None)
            if name in _WRITER_CALLS:
                nested |= {id(n) for arg in (*node.args, *node.keywords) for n in ast.walk(arg)}
    return nested


def write_sites() -> list[str]:
    """``"<file>: <source line>"`` for every write call in the package (one entry per call)."""
    sites = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        if relative == WRITER:
            continue
        lines = path.read_text().splitlines()
        tree = parse_python("\n".join(lines), str(path))
        writers = _inside_the_writer(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and _is_write(node) and id(node) not in writers:
                sites.append(f"{relative}: {lines[node.lineno - 1].strip()}")
    return sites


def test_every_write_site_goes_through_the_atomic_writer():
    sites = Counter(write_sites())
    unlisted = sorted(site for site in sites if site not in NOT_FILES | TO_CONVERT)
    assert unlisted == [], ("writes that bypass qiren_gen/io/atomic.py (use its functions instead):\n"
                            + "\n".join(unlisted))


def test_the_list_of_sites_to_convert_has_no_stale_line():
    sites = set(write_sites())
    stale = sorted((NOT_FILES | TO_CONVERT) - sites)
    assert stale == [], "listed sites that are gone (delete their lines):\n" + "\n".join(stale)


def test_the_scan_sees_each_kind_of_write():
    source = ("open(p, 'w'); open(p, 'rb'); open(p, mode='ab'); os.open(p, os.O_WRONLY); os.open(p, os.O_RDONLY)\n"
              "img.save(p); fig.savefig(p); json.dump(v, f); json.dumps(v); p.write_text(t); p.write_bytes(b)\n"
              "torch.save(v, p); save_file(t, p); st.save_file(t, p); wavfile.write(p, r, d); m.save_pretrained(p)\n"
              "write_file_with(p, lambda tmp: wavfile.write(tmp, r, d))\n")
    tree = parse_python(source)
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and id(n) not in _inside_the_writer(tree)]
    found = sorted(ast.unparse(n) for n in calls if _is_write(n))
    assert len(found) == 13 and not any(s in found for s in ("open(p, 'rb')", "json.dumps(v)",
                                                             "os.open(p, os.O_RDONLY)")), found
