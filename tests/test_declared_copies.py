"""Declared copies stay copies: every ``# Copied from qiren_gen.x.y.Name`` line under qiren_gen/ and scripts/ sits
right above a whole ``def`` / ``class`` whose source is its original's (as diffusers' ``utils/check_copies.py`` does).

The comment may carry renames, ``# Copied from qiren_gen.a.b.func with Old->New, old->new``: they are applied to the
original's source before it is compared. Both sides are compared from their ``def`` / ``class`` line on, dedented,
so decorators (and the "Copied from" line itself) are not part of the comparison. A mismatch fails with the diff.
"""
from __future__ import annotations

import ast
import difflib
import importlib
import inspect
import re
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

from testing_utils import parse_python

ROOT = Path(__file__).resolve().parents[1]
SCANNED = ("qiren_gen", "scripts")
MARKER = "# Copied from"
COPIED_FROM = re.compile(r"^\s*# Copied from (?P<target>[A-Za-z_][\w.]*)"
                         r"(?: with (?P<renames>\S+->\S+(?:, \S+->\S+)*))?\s*$")
DEFINITIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


@dataclass(frozen=True)
class DeclaredCopy:
    path: Path
    line: int  # 1-based line of the "Copied from" comment
    target: str
    renames: tuple[tuple[str, str], ...]

    def where(self) -> str:
        return f"{self.path}:{self.line}"


def declared_copies(roots: list[Path]) -> list[DeclaredCopy]:
    """Every "Copied from" comment in the ``.py`` files under ``roots``; ``ValueError`` on one that does not parse."""
    found = []
    for root in roots:
        for path in sorted(root.rglob("*.py")):
            for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
                if MARKER not in text or not text.lstrip().startswith(MARKER):
                    continue
                match = COPIED_FROM.match(text)
                if match is None:
                    raise ValueError(f"{path}:{number}: unreadable declaration {text.strip()!r}; write "
                                     "'# Copied from package.module.Name' or '... with Old->New, old->new'")
                renames = tuple(tuple(pair.split("->", 1)) for pair in (match["renames"] or "").split(", ") if pair)
                found.append(DeclaredCopy(path, number, match["target"], renames))
    return found


def _definition_text(lines: list[str], node: ast.AST) -> str:
    """A definition's source from its ``def`` / ``class`` line to its end (decorators left out), dedented."""
    return textwrap.dedent("\n".join(lines[node.lineno - 1 : node.end_lineno])).rstrip() + "\n"


def copy_source(copy: DeclaredCopy) -> str:
    """The source of the definition declared by ``copy``: the ``def`` / ``class`` right below its comment (its
    decorators may stand above the comment or between the comment and the ``def``)."""
    text = copy.path.read_text(encoding="utf-8")
    lines = text.splitlines()
    for node in ast.walk(parse_python(text, str(copy.path))):
        if isinstance(node, DEFINITIONS):
            first = min([node.lineno] + [decorator.lineno for decorator in node.decorator_list])
            if copy.line + 1 in (node.lineno, first):  # above the def, or above its decorators
                return _definition_text(lines, node)
    raise ValueError(f"{copy.where()}: '{MARKER}' must stand right above a whole def or class (a copy that is not "
                     "a whole function, method or class cannot be declared: merge it instead)")


def resolve(target: str) -> object:
    """The object a dotted name names: the longest importable module prefix, then attributes."""
    parts = target.split(".")
    for split in range(len(parts), 0, -1):
        module = ".".join(parts[:split])
        try:
            obj = importlib.import_module(module)
        except ModuleNotFoundError as err:
            if err.name and not module.startswith(err.name):
                raise  # the module exists but one of its own imports is missing: say so, not "no such name"
            continue
        for attribute in parts[split:]:
            if not hasattr(obj, attribute):
                raise ValueError(f"{target}: {'.'.join(parts[:split])} has no {attribute!r}")
            obj = inspect.getattr_static(obj, attribute) if inspect.isclass(obj) else getattr(obj, attribute)
        return obj
    raise ValueError(f"{target}: no module of that name can be imported")


def original_source(target: str) -> str:
    """The named object's source from its ``def`` / ``class`` line on, dedented (decorators left out)."""
    obj = resolve(target)
    if isinstance(obj, property):
        obj = obj.fget
    if isinstance(obj, (staticmethod, classmethod)):
        obj = obj.__func__
    obj = inspect.unwrap(obj)
    try:
        lines, _ = inspect.getsourcelines(obj)
    except (OSError, TypeError) as err:
        raise ValueError(f"{target}: not a function, method or class with source ({err})") from None
    source = textwrap.dedent("".join(lines))
    node = parse_python(source).body[0]
    if not isinstance(node, DEFINITIONS):
        raise ValueError(f"{target}: not a function, method or class")
    return _definition_text(source.splitlines(), node)


def copy_mismatch(copy: DeclaredCopy) -> str:
    """Empty when ``copy``'s source is its original's (renames applied), else a message with the unified diff."""
    expected = original_source(copy.target)
    for old, new in copy.renames:
        expected = expected.replace(old, new)
    actual = copy_source(copy)
    if actual == expected:
        return ""
    diff = difflib.unified_diff(expected.splitlines(), actual.splitlines(), f"{copy.target} (renames applied)",
                                copy.where(), lineterm="")
    return f"{copy.where()} is declared a copy of {copy.target} but differs:\n" + "\n".join(diff)


# ----------------------------------------------------------------------------------------------- the checker itself
TWICE = '''def twice(x):
    """Double."""
    return 2 * x  # the factor
'''
SCALER_METHODS = '''    @property
    {factor_declared}def factor(self):
        return 2

    {apply_declared}@functools.lru_cache(maxsize=None)
    def apply(self, x):
        return self.factor * x
'''
ORIGINAL = ("import functools\n\n\n" + TWICE + "\n\nclass Scaler:\n"
            + SCALER_METHODS.format(factor_declared="", apply_declared=""))
COPIES = ("import functools\n\n\n# Copied from copied_pkg.original.twice\n" + TWICE
          + "\n\n# Copied from copied_pkg.original.twice with twice->thrice, 2->3, Double->Triple\n"
          + 'def thrice(x):\n    """Triple."""\n    return 3 * x  # the factor\n'
          + "\n\nclass Other:\n"
          + SCALER_METHODS.format(factor_declared="# Copied from copied_pkg.original.Scaler.factor\n    ",
                                  apply_declared="# Copied from copied_pkg.original.Scaler.apply\n    ")
          + "\n\n# Copied from copied_pkg.original.twice\n"
          + 'def drifted(x):\n    """Double."""\n    return x + x  # the factor\n')


@pytest.fixture
def copied_pkg(tmp_path, monkeypatch):
    package = tmp_path / "copied_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "original.py").write_text(ORIGINAL)
    (package / "copies.py").write_text(COPIES)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield package
    for name in [name for name in sys.modules if name.startswith("copied_pkg")]:
        del sys.modules[name]


def test_the_checker_passes_faithful_copies_and_catches_a_diverged_one(copied_pkg):
    copies = declared_copies([copied_pkg])
    comment_lines = [n for n, text in enumerate(COPIES.splitlines(), start=1) if "# Copied from" in text]
    assert [(c.line, c.target) for c in copies] == list(zip(comment_lines, [
        "copied_pkg.original.twice", "copied_pkg.original.twice", "copied_pkg.original.Scaler.factor",
        "copied_pkg.original.Scaler.apply", "copied_pkg.original.twice"], strict=True))
    assert copies[1].renames == (("twice", "thrice"), ("2", "3"), ("Double", "Triple"))
    assert [copy_mismatch(c) for c in copies[:4]] == ["", "", "", ""]
    drift = copy_mismatch(copies[4])
    assert f"copies.py:{comment_lines[4]} is declared a copy of copied_pkg.original.twice but differs" in drift
    assert "-def twice(x):" in drift and "+def drifted(x):" in drift and "+    return x + x  # the factor" in drift


def test_the_checker_catches_a_changed_original_and_misplaced_or_broken_declarations(copied_pkg):
    (copied_pkg / "original.py").write_text(ORIGINAL.replace("return 2 * x", "return 2.0 * x"))
    assert "+    return 2 * x" in copy_mismatch(declared_copies([copied_pkg])[0])

    (copied_pkg / "loose.py").write_text("x = 1\n# Copied from copied_pkg.original.twice\ny = 2 * x\n")
    loose = next(c for c in declared_copies([copied_pkg]) if c.path.name == "loose.py")
    with pytest.raises(ValueError, match="right above a whole def or class"):
        copy_mismatch(loose)

    (copied_pkg / "loose.py").write_text("# Copied from copied_pkg.original.nothing_here\ndef f():\n    pass\n")
    missing = next(c for c in declared_copies([copied_pkg]) if c.path.name == "loose.py")
    with pytest.raises(ValueError, match="has no 'nothing_here'"):
        copy_mismatch(missing)

    (copied_pkg / "loose.py").write_text("# Copied from copied_pkg.original.twice with twice=>thrice\ndef f():\n"
                                         "    pass\n")
    with pytest.raises(ValueError, match="unreadable declaration"):
        declared_copies([copied_pkg])


# ----------------------------------------------------------------------------------------------- the project
def test_every_declared_copy_in_the_project_matches_its_original():
    copies = declared_copies([ROOT / name for name in SCANNED])
    problems = []
    for copy in copies:
        try:
            problems.append(copy_mismatch(copy))
        except ValueError as err:
            problems.append(str(err))
    problems = [problem for problem in problems if problem]
    assert not problems, "\n\n".join(problems)
