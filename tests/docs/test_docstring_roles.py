"""The API reference renders docstrings with mkdocstrings, which shows Sphinx roles (``:class:`X` ``) as literal text:
the package and the scripts write cross-references as mkdocstrings links or plain code instead."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ROLE = re.compile(r":(?:class|func|meth|mod|attr|data|obj|exc):`")


def test_no_sphinx_role_in_the_package_or_the_scripts():
    found = [f"{path.relative_to(ROOT)}:{number}"
             for folder in ("qiren_gen", "scripts") for path in sorted((ROOT / folder).rglob("*.py"))
             for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if ROLE.search(line)]
    assert not found, "Sphinx roles show as literal text in the API reference: " + ", ".join(found)
