"""The package's architecture as tested properties: the book layer sits on top, and no function is a maze."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "r3gan_core"
MAX_FUNCTION_LINES = 100


def _modules():
    return sorted(PACKAGE.rglob("*.py"))


def _imported(tree: ast.AST, module_path: Path) -> set[str]:
    """Absolute names of the r3gan_core modules a file imports (relative imports resolved)."""
    package_parts = ["r3gan_core", *module_path.relative_to(PACKAGE).parent.parts]
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package_parts[: len(package_parts) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            names.add(target)
            names.update(f"{target}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return {n for n in names if n.startswith("r3gan_core")}


def test_nothing_outside_the_book_layer_imports_it():
    offenders = []
    for path in _modules():
        if path.relative_to(PACKAGE).parts[0] == "book":
            continue
        imported = _imported(ast.parse(path.read_text()), path)
        offenders += [f"{path.relative_to(PACKAGE)} imports {n}" for n in imported if n.startswith("r3gan_core.book")]
    assert not offenders, offenders


def test_no_function_is_longer_than_a_hundred_lines():
    long = []
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {node.name} ({lines} lines)")
    assert not long, long


def test_the_tree_shows_the_three_layers():
    folders = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert {"book", "convergence", "training", "networks", "metrics"} <= folders
