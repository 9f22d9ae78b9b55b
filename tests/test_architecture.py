"""The package's layering, read from the source: no loose modules, no import circles, no import upward.

``docs/architecture.md`` draws the same layers. A module may import from its own package and from packages of lower
layers; packages that share a layer do not import each other.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from testing_utils import parse_python

PACKAGE = Path(__file__).resolve().parents[1] / "qiren_gen"

LAYERS = (
    ("runtime", "quantum"),
    ("io",),
    ("data", "metrics", "figures"),
    ("models",),
    ("functa",),
    ("evaluation",),
    ("training",),
    ("pipelines",),
    ("demo",),
    ("cli",),
)
LAYER_OF = {name: level for level, names in enumerate(LAYERS) for name in names}


def module_files() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package (``bundled/`` holds no code)."""
    files = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        files[name] = path
    return files


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Modules of the package that ``name`` imports (at any depth of its body, lazy imports included)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(parse_python(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            candidates = [[alias.name] for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            # ``from pkg import submodule`` depends on the submodule; ``from pkg import name`` on pkg itself.
            candidates = [[f"{source}.{alias.name}"] if f"{source}.{alias.name}" in modules else [source]
                          for alias in node.names]
        else:
            continue
        for (target,) in candidates:
            while target not in modules and "." in target:
                target = target.rpartition(".")[0]
            if target in modules and target != name:
                found.add(target)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = module_files()
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def top_package(name: str) -> str | None:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else None


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm: every group of modules that import each other in a circle (size > 1)."""
    index, low, stack, on_stack, groups = {}, {}, [], set(), []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups


def test_every_package_has_a_layer_and_no_module_is_loose():
    loose = sorted(p.name for p in PACKAGE.glob("*.py") if p.name != "__init__.py")
    assert loose == [], f"modules at the top of qiren_gen/: {loose}; give each a package"
    packages = sorted(p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file())
    unplaced = [p for p in packages if p not in LAYER_OF]
    assert unplaced == [], f"packages without a layer (add them here and to docs/architecture.md): {unplaced}"


def test_the_package_holds_no_study_or_benchmark():
    # Studies and benchmarks live in scripts/research and scripts/benchmarks, which are not installed.
    names = {p.name for p in PACKAGE.iterdir()}
    assert not names & {"experiments", "benchmarks", "research", "studies"}, sorted(names)
    outside = []
    for name, path in module_files().items():
        for node in ast.walk(parse_python(path.read_text(), str(path))):
            modules = ([alias.name for alias in node.names] if isinstance(node, ast.Import) else
                       [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
            outside += [f"{name} -> {m}" for m in modules
                        if m.split(".")[0] in {"research", "benchmarks", "train_pipeline", "train_functa",
                                               "train_prior"}]
    assert outside == [], "the package imports a study, a benchmark or a script:\n" + "\n".join(outside)


def test_there_are_no_import_circles():
    assert strongly_connected(import_graph()) == []


def test_imports_go_only_downward():
    upward = []
    for source, targets in import_graph().items():
        src = top_package(source)
        for target in targets:
            dst = top_package(target)
            if src is None or dst is None or src == dst:
                continue
            if LAYER_OF[dst] >= LAYER_OF[src]:
                upward.append(f"{source} -> {target}")
    assert upward == [], "imports upward or sideways between layers:\n" + "\n".join(sorted(upward))


def test_the_checker_sees_circles_and_upward_imports():
    # The checks above would pass vacuously if the graph were empty or the algorithms blind.
    graph = import_graph()
    assert "qiren_gen.quantum.simulator" in graph["qiren_gen.quantum.circuit"]
    assert "qiren_gen.functa" in graph["qiren_gen.pipelines.generation"]
    assert strongly_connected({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert LAYER_OF["quantum"] < LAYER_OF["models"] < LAYER_OF["functa"] < LAYER_OF["training"] < LAYER_OF["pipelines"]


@pytest.mark.parametrize("name", ["encode_images", "decode_latents", "prior_superresolve"])
def test_the_public_functa_imports_keep_working(name):
    import qiren_gen.functa as functa

    assert callable(getattr(functa, name))
