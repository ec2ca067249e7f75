"""The package's own source keeps its shape: no import cycle, no private name borrowed, small
modules. Checked on the source files (their syntax trees), so it holds for code never run."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

import sphinx_nbcache
from sphinx_nbcache.plan.ordering import cycles

PACKAGE = Path(sphinx_nbcache.__file__).parent
ROOT = "sphinx_nbcache"
MAX_LINES = 400


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


MODULES = _modules()


def _is_package(name: str) -> bool:
    return MODULES[name].name == "__init__.py"


def _imports(name: str) -> Iterator[tuple[str, str, int]]:
    """(module imported, name imported or "", line) for every import in module ``name``,
    at any depth (inside functions too), except under ``if TYPE_CHECKING:``."""
    tree = ast.parse(MODULES[name].read_text(encoding="utf-8"))
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(inner) for inner in ast.walk(node))
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, "", node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if _is_package(name) else name.split(".")[:-1]
                base = base[: len(base) - node.level + 1]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            for alias in node.names:
                yield module, alias.name, node.lineno


def _target(module: str, imported: str) -> str | None:
    """The module of the package an import loads (None: not one of ours)."""
    if f"{module}.{imported}" in MODULES:
        return f"{module}.{imported}"
    return module if module in MODULES else None


def _edges() -> dict[str, set[str]]:
    """Module -> the package's modules it imports. Importing ``a.b.c`` from outside ``a.b``
    runs ``a/b/__init__.py`` too, so that package counts as imported; the root package does
    not (every module runs it, and it imports nothing of the package)."""
    edges: dict[str, set[str]] = {name: set() for name in MODULES}
    for name in MODULES:
        own = name if _is_package(name) else name.rpartition(".")[0]
        for module, imported, _line in _imports(name):
            target = _target(module, imported)
            if target is None or target == name:
                continue
            edges[name].add(target)
            parent = target.rpartition(".")[0]
            while parent and parent != ROOT:
                if not (own == parent or own.startswith(parent + ".")):
                    edges[name].add(parent)
                parent = parent.rpartition(".")[0]
    return edges


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected parts of more than one module (the package's own Tarjan, which
    orders pages that read each other; self-imports are not edges here)."""
    return cycles(edges)


def test_the_checks_find_what_they_look_for() -> None:
    """The cycle finder and the import reader on known shapes (so the checks below can fail)."""
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []
    edges = _edges()
    assert "sphinx_nbcache.engine.core" in edges["sphinx_nbcache.engine.runner"] or any(
        "sphinx_nbcache.engine" in target for target in edges["sphinx_nbcache.sphinxext._state"]
    )
    assert len(MODULES) > 50


def test_no_import_cycle_among_the_package_modules() -> None:
    cycles = _cycles(_edges())
    assert cycles == [], "import cycles (imports inside functions count):\n" + "\n".join(
        " <-> ".join(cycle) for cycle in cycles
    )


def test_no_private_name_is_taken_from_another_module() -> None:
    """``_name`` stays in its module; a ``_module`` is imported only inside its package."""
    found = []
    for name in MODULES:
        own = name if _is_package(name) else name.rpartition(".")[0]
        for module, imported, line in _imports(name):
            if not module.startswith(ROOT):
                continue
            target = _target(module, imported) or module
            parts = target.split(".")
            for depth, part in enumerate(parts):
                if part.startswith("_") and not part.startswith("__"):
                    package = ".".join(parts[:depth])
                    if not (own == package or own.startswith(package + ".")):
                        found.append(f"{name}:{line} imports {target} from outside {package}")
            is_module = f"{module}.{imported}" in MODULES
            if imported.startswith("_") and not imported.startswith("__") and not is_module:
                found.append(f"{name}:{line} takes the private name {imported} from {module}")
    assert found == []


@pytest.mark.parametrize("name", sorted(MODULES))
def test_every_module_is_small(name: str) -> None:
    lines = MODULES[name].read_text(encoding="utf-8").count("\n")
    assert lines <= MAX_LINES, f"{name} has {lines} lines: split it by job"


#: the stages of a build, each of which may import only what is listed (and itself)
LAYERS = {
    "notebooks": {"notebooks"},
    "store": {"notebooks", "store"},
    "plan": {"notebooks", "store", "plan"},
    "execute": {"notebooks", "plan", "execute"},
    "engine": {"notebooks", "store", "plan", "execute", "engine"},
}
#: modules every layer may use: the vocabulary of the package
BASICS = {"errors", "config", "options", "records", "dependencies", "_json", "_atomic"}


def test_no_stage_imports_a_feature_or_a_front_door() -> None:
    """The stages (notebooks, store, plan, execute, engine) import the stages below them and
    the package's vocabulary, never a feature (workflows) nor a front door (api, cli, rest,
    sphinxext): features register into the stages' tables instead."""
    found = []
    edges = _edges()
    for name in MODULES:
        parts = name.split(".")
        if len(parts) < 2 or parts[1] not in LAYERS:
            continue
        allowed = LAYERS[parts[1]] | BASICS
        for target in edges[name]:
            top = target.split(".")[1] if target != ROOT else ""
            if top and top not in allowed:
                found.append(f"{name} imports {target}")
    assert found == []
