"""The package's shape: no import circles (in-function and TYPE_CHECKING imports count), layers point
downward as DESIGN.md draws them, nothing below plugin/ imports pytest, modules stay small, and inside
plugin/ the parts reach one another only through the session object or plugin/base.py."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "pytest_llenergy"
# What each top-level package may import of ours (DESIGN.md: dependencies point downward).
ALLOWED = {
    "config": set(),
    "energy": {"config"},
    "backends": {"config"},
    "results": {"config"},
    "dispatch": {"config"},
    "plugin": {"config", "energy", "backends", "results", "dispatch"},
    "cli": {"config", "energy", "backends", "results", "dispatch"},
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """Every module of ours that ``path`` imports, wherever the import statement stands."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("pytest_llenergy"))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if not mod.startswith("pytest_llenergy"):
                continue
            found.add(mod)
            found.update(f"{mod}.{a.name}" for a in node.names)
    return found


def graph() -> dict[str, set[str]]:
    files = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    edges: dict[str, set[str]] = {}
    for name, path in files.items():
        edges[name] = {t for t in imports(path) if t in files and t != name}
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def _strip_parents(edges: dict[str, set[str]]) -> dict[str, set[str]]:
    # importing pkg.sub.mod executes pkg/__init__; a package importing its own children is not a circle
    return {v: {w for w in ws if not v.startswith(w + ".") and not (w.startswith(v + "."))} for v, ws in edges.items()}


def test_no_import_circles() -> None:
    found = cycles(_strip_parents(graph()))
    assert not found, "import circles:\n" + "\n".join(" <-> ".join(c) for c in found)


def test_layers_point_downward() -> None:
    bad = []
    for source, targets in graph().items():
        top = source.split(".")[1] if source.count(".") else ""
        for target in targets:
            if target.count(".") == 0:
                continue  # the package itself (__version__)
            other = target.split(".")[1]
            if other != top and top in ALLOWED and other in ALLOWED and other not in ALLOWED[top]:
                bad.append(f"{source} -> {target}")
    assert not bad, "imports against the layering:\n" + "\n".join(sorted(bad))


@pytest.mark.parametrize("layer", ["config", "energy", "backends", "results", "dispatch"])
def test_nothing_below_plugin_imports_pytest(layer: str) -> None:
    offenders = []
    for path in (PACKAGE / layer).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            if any(n == "pytest" or n.startswith(("pytest.", "_pytest")) for n in names):
                offenders.append(str(path.relative_to(PACKAGE)))
    assert not offenders


def test_modules_stay_small() -> None:
    big = {str(p.relative_to(PACKAGE)): n for p in PACKAGE.rglob("*.py")
           if (n := len(p.read_text(encoding="utf-8").splitlines())) > 500}
    assert not big


def _imported_names(path: Path) -> set[str]:
    """Every module name ``path`` imports (absolute; a relative import counts as its own package)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            names.add(module_name(path).rsplit(".", 1)[0] if node.level else node.module or "")
    return names


# Plain data the always-loaded part of the plugin reads: in config/ it would import the pydantic
# schema (config/__init__) into every pytest run of the venv (tests/test_plugin_import.py).
PLUGIN_DATA = {"plugin/option_table.py"}


def test_plugin_holds_only_pytest_glue() -> None:
    """A module of plugin/ talks to pytest (pytest, _pytest, pluggy) or to another plugin module;
    one that does neither is pytest-free and belongs in a lower layer (backends/, energy/, config/...)."""
    pytest_side = ("pytest.", "_pytest", "pluggy", "pytest_llenergy.plugin")
    stray = sorted(str(p.relative_to(PACKAGE)) for p in (PACKAGE / "plugin").rglob("*.py")
                   if p.read_text(encoding="utf-8").strip() and p.name != "__init__.py"
                   and str(p.relative_to(PACKAGE)) not in PLUGIN_DATA
                   and not any(n == "pytest" or n.startswith(pytest_side) for n in _imported_names(p)))
    assert not stray, "pytest-free modules under plugin/ (move them down a layer):\n" + "\n".join(stray)


# Renames that are not an atomic file write: a whole folder staged and renamed into place.
FOLDER_RENAMES = {"backends/checkpoint.py", "backends/tensorrt/backend.py"}
# Modules still carrying their own copy (none: dispatch/envfile.py now calls config.files.write_atomically).
PENDING: set[str] = set()


def test_one_atomic_write() -> None:
    """Temp-file-and-rename writes go through config/files.py (fsync'd, one declaration), not a copy."""
    tools = {("os", "replace"), ("os", "rename"), ("os", "fsync")}
    copies = set()
    for path in PACKAGE.rglob("*.py"):
        rel = str(path.relative_to(PACKAGE))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and isinstance(node.func.value, ast.Name) and (node.func.value.id, node.func.attr) in tools):
                copies.add(rel)
    assert copies - FOLDER_RENAMES - PENDING == {"config/files.py"}


# -- inside plugin/: parts talk through the session object (issue 30) ------------------------------------------------
PLUGIN = PACKAGE / "plugin"
# The one module that wires the parts together: it registers every hook module and runs their configure steps.
WIRING = "pytest_llenergy.plugin.lifecycle"
# The light part every pytest run of the venv loads; it keeps its own state before any session exists.
LIGHT = {"pytest_llenergy.plugin.activation", "pytest_llenergy.plugin.markers",
         "pytest_llenergy.plugin.options", "pytest_llenergy.plugin.xdist"}


def _part(module: str) -> str | None:
    """The sub-package of plugin/ a module belongs to (``measurement``...), None for plugin's top level."""
    parts = module.split(".")
    return parts[2] if len(parts) > 3 and parts[1] == "plugin" else None


def _plugin_graph() -> dict[str, set[str]]:
    return {source: {t for t in targets if t.startswith("pytest_llenergy.plugin.")}
            for source, targets in graph().items() if source.startswith("pytest_llenergy.plugin")}


def test_plugin_parts_import_no_sibling_part() -> None:
    """collection/, measurement/, gates/, reporting/ and dispatch/ reach one another only through the
    session object (plugin/session.py) or plugin/base.py, never by importing another part's modules."""
    bad = sorted(f"{source} -> {target}" for source, targets in _plugin_graph().items() for target in targets
                 if _part(source) is not None and _part(target) is not None and _part(target) != _part(source))
    assert not bad, "a part of plugin/ imports a sibling part (go through LemSession or base.py):\n" + "\n".join(bad)


def test_plugin_top_level_imports_no_part() -> None:
    """The shared top level (base, session, state, recorder, options...) sits under the parts: only the
    wiring module (plugin/lifecycle.py) imports them."""
    bad = sorted(f"{source} -> {target}" for source, targets in _plugin_graph().items() for target in targets
                 if _part(source) is None and source not in (WIRING, "pytest_llenergy.plugin") and _part(target) is not None)
    assert not bad, "plugin's top level imports a part:\n" + "\n".join(bad)


def test_one_configure_hook_and_the_stash_keys_in_base() -> None:
    """The machinery's configure-time order lives in one place (lifecycle.PARTS, run from its one
    ``pytest_configure``); its state lives on the session, and the stash keys left (the session's own, per-item
    ones) in plugin/base.py. The light part keeps its own (before any session exists)."""
    configure, keys = set(), set()
    for path in PLUGIN.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        if any(isinstance(n, ast.FunctionDef) and n.name == "pytest_configure" for n in tree.body):
            configure.add(module_name(path))
        if any(isinstance(n, ast.Attribute) and n.attr == "StashKey" for n in ast.walk(tree)):
            keys.add(module_name(path))
    assert configure - LIGHT == {WIRING}, f"pytest_configure outside plugin/lifecycle.py: {sorted(configure - LIGHT - {WIRING})}"
    assert keys - LIGHT == {"pytest_llenergy.plugin.base"}, f"stash keys outside plugin/base.py: {sorted(keys - LIGHT)}"
