"""The layers of docs/architecture.md import one way: each package imports only the packages below it.

Read from the source with :mod:`ast` (every ``import`` and ``from ... import`` anywhere in a module, lazy ones
inside functions included), so a new upward import fails here whether or not a test happens to execute it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PROJECT = {"int_model", "pipeline", "analysis", "viz", "training", "cli", "studio", "app", "scripts", "benchmarks"}
#: package -> the project packages (and outside libraries) it must not import.
FORBIDDEN = {
    "int_model": PROJECT - {"int_model"},
    "pipeline": PROJECT - {"int_model", "pipeline"},
    "analysis": {"viz", "studio", "training", "cli", "app", "scripts", "benchmarks", "gradio"},
    "viz": {"studio", "training", "cli", "app", "scripts", "benchmarks", "gradio"},
    "training": {"studio", "cli", "app", "scripts", "benchmarks", "gradio"},
    "studio": {"cli", "app", "scripts", "benchmarks"},
}


def imported_roots(path: Path) -> set[str]:
    """The top-level names of every absolute import in ``path`` (relative imports stay inside the package)."""
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_only_the_layers_below(package):
    folder = REPO / package
    if not folder.is_dir():
        pytest.skip(f"{package}/ does not exist yet")
    wrong = {}
    for path in sorted(folder.rglob("*.py")):
        bad = imported_roots(path) & FORBIDDEN[package]
        if bad:
            wrong[str(path.relative_to(REPO))] = sorted(bad)
    assert not wrong, f"{package} imports layers above it: {wrong}"


def test_the_checker_sees_lazy_imports(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("import os\n\ndef f():\n    from viz.overlay import X\n    import studio.common\n")
    assert imported_roots(module) == {"os", "viz", "studio"}


@pytest.mark.parametrize("package", ["int_model", "pipeline", "analysis", "viz", "training", "studio"])
def test_entry_points_live_in_cli(package):
    """Programs are started from cli/ (and app.py, scripts/, benchmarks/); the library packages hold none."""
    programs = [str(p.relative_to(REPO)) for p in sorted((REPO / package).rglob("*.py"))
                if p.name == "__main__.py" or '__name__ == "__main__"' in p.read_text()]
    assert not programs, f"entry points inside a library package: {programs}"
