"""The import graph of the top-level packages points one way: down.

Every import in every module (read with ``ast``, so imports inside functions
and under ``TYPE_CHECKING`` count too) may only reach a package at its own
level or below in ``LAYERS``; two packages never import each other. A new
top-level package must be given its place here.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

#: bottom to top; ``config`` is installed as ``teleicu.defaults`` (data only)
LAYERS: tuple[str, ...] = ("wire", "alerts", "edge_agent", "simulators", "console", "ingest", "records_bridge", "teleicu")
PACKAGE_OF_FOLDER = {"config": "teleicu"}
NOT_PACKAGES = {"tests", "bench", "docs", "scripts", "build", "dist"}

Edge = tuple[str, str, str]  # (importing package, imported package, "file:line")


def top_level_folders() -> list[str]:
    return sorted(
        p.name for p in REPO.iterdir()
        if p.is_dir() and (p / "__init__.py").exists() and p.name not in NOT_PACKAGES and not p.name.startswith(".")
    )  # fmt: skip


def imported_modules(path: Path, package: str, root: Path = REPO) -> list[tuple[str, int]]:
    """Absolute names of every module ``path`` (of ``package``, in the tree at ``root``) imports, with the line."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    parent = [package, *path.relative_to(root).parent.parts[1:]]  # the package the module belongs to
    out: list[tuple[str, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: ``.`` is the module's own package, each further dot one up
                base = parent[: len(parent) - node.level + 1]
                out.append((".".join([*base, *([node.module] if node.module else [])]), node.lineno))
            elif node.module:
                out.append((node.module, node.lineno))
    return out


def import_edges() -> list[Edge]:
    edges: list[Edge] = []
    for folder in top_level_folders():
        package = PACKAGE_OF_FOLDER.get(folder, folder)
        for path in sorted((REPO / folder).rglob("*.py")):
            for module, line in imported_modules(path, package):
                target = module.split(".")[0]
                if target in LAYERS and target != package:
                    edges.append((package, target, f"{path.relative_to(REPO)}:{line}"))
    return edges


def test_every_top_level_package_has_a_layer() -> None:
    folders = top_level_folders()
    assert {"wire", "alerts", "edge_agent", "ingest", "teleicu"} <= set(folders)  # the scan sees the tree
    unplaced = [f for f in folders if PACKAGE_OF_FOLDER.get(f, f) not in LAYERS]
    assert not unplaced, f"give these packages a place in LAYERS: {unplaced}"


def test_no_package_imports_one_above_it() -> None:
    rank = {name: i for i, name in enumerate(LAYERS)}
    upward = [f"{where}: {src} imports {dst}" for src, dst, where in import_edges() if rank[dst] > rank[src]]
    assert not upward, "imports against the layering (" + " < ".join(LAYERS) + "):\n" + "\n".join(upward)


def test_no_two_packages_import_each_other() -> None:
    pairs = {(src, dst) for src, dst, _ in import_edges()}
    mutual = sorted({tuple(sorted(p)) for p in pairs if (p[1], p[0]) in pairs})
    assert not mutual, f"packages importing each other: {mutual}"


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import alerts.news2\n", ["alerts.news2"]),
        ("def f():\n    from ingest.hub import Hub\n", ["ingest.hub"]),
        ("if TYPE_CHECKING:\n    from teleicu import config_files\n", ["teleicu"]),
        ("from . import base\n", ["edge_agent.drivers"]),
        ("from .base import X\n", ["edge_agent.drivers.base"]),
        ("from ..events import X\n", ["edge_agent.events"]),
        ("from .. import events\n", ["edge_agent"]),
    ],
)
def test_imports_are_found_wherever_they_are(tmp_path: Path, source: str, expected: list[str]) -> None:
    folder = tmp_path / "edge_agent" / "drivers"
    folder.mkdir(parents=True)
    module = folder / "x.py"
    module.write_text(source)
    assert [m for m, _ in imported_modules(module, "edge_agent", root=tmp_path)] == expected
