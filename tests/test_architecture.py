"""The house rules of docs/architecture.md, checked on the source: no import cycle, no import
of another module's private name, no module over 700 lines, one atomic rename, and each
package importing only what its row of the table allows."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("napari_vmm", "ffmpeg_filter")
MAX_LINES = 700


def _modules() -> dict[str, Path]:
    mods = {}
    for pkg in PACKAGES:
        for f in (ROOT / pkg).rglob("*.py"):
            parts = list(f.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            mods[".".join(parts)] = f
    return mods


MODULES = _modules()


def _owner(name: str) -> str | None:
    """The project module that ``name`` (a module or a name inside one) lives in."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports(mod: str, path: Path):
    """(target module, imported name or None, at module level?) for every import."""
    tree = ast.parse(path.read_text())
    top = {id(n) for n in tree.body}
    top |= {id(n) for stmt in tree.body if isinstance(stmt, (ast.If, ast.Try))
            for n in ast.walk(stmt)}
    for node in ast.walk(tree):
        level = id(node) in top
        if isinstance(node, ast.Import):
            for a in node.names:
                yield a.name, None, level
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = mod.split(".")
                if path.name != "__init__.py":
                    base = base[:-1]
                base = base[:len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for a in node.names:
                full = f"{target}.{a.name}"
                if full in MODULES:
                    yield full, None, level
                else:
                    yield target, a.name, level


def _graph() -> dict[str, set[str]]:
    graph = defaultdict(set)
    for mod, path in MODULES.items():
        for target, _, _ in _imports(mod, path):
            owner = _owner(target)
            if owner and owner != mod:
                graph[mod].add(owner)
    return graph


def test_no_import_cycles():
    graph, index, low, stack, on, cycles = _graph(), {}, {}, [], set(), []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
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
                cycles.append(sorted(comp))

    for v in list(MODULES):
        if v not in index:
            visit(v)
    assert not cycles


def test_no_private_names_from_other_modules():
    bad = [(mod, target, name) for mod, path in MODULES.items()
           for target, name, _ in _imports(mod, path)
           if name and name.startswith("_") and not name.startswith("__")
           and _owner(target) not in (None, mod)]
    assert not bad


def test_modules_stay_small():
    big = {m: n for m, p in MODULES.items() if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not big


def test_one_atomic_rename():
    uses = {m: p.read_text().count("os.replace(") for m, p in MODULES.items()}
    assert sum(uses.values()) <= 2 and set(m for m, n in uses.items() if n) <= {
        "napari_vmm.io.atomic"}


#: Packages a package must never import (third-party names: at module level only, since a
#: function may load them on demand).
FORBIDDEN = {
    "napari_vmm.core": ("napari_vmm.scale", "napari_vmm.training", "napari_vmm.cli",
                        "napari_vmm._napari", "napari_vmm.api", "ffmpeg_filter"),
    "napari_vmm.io": ("napari_vmm.training", "napari_vmm.cli", "napari_vmm._napari",
                      "ffmpeg_filter"),
    "napari_vmm.scale": ("napari_vmm.training", "napari_vmm.cli", "napari_vmm._napari",
                         "ffmpeg_filter"),
    "napari_vmm.training": ("napari_vmm.cli", "napari_vmm._napari", "ffmpeg_filter"),
    "napari_vmm.cli": ("napari_vmm._napari", "ffmpeg_filter"),
}
FORBIDDEN_AT_LOAD = {
    "napari_vmm.core": ("napari", "qtpy", "PyQt5", "PySide6", "magicgui", "dask",
                        "distributed", "napari_vmm.io"),
    "napari_vmm.io": ("napari", "qtpy", "magicgui", "napari_vmm.scale"),
    "napari_vmm.scale": ("napari", "qtpy", "magicgui"),
    "napari_vmm.training": ("napari", "qtpy", "magicgui"),
    "napari_vmm._napari": ("qtpy", "PyQt5", "PySide6"),  # Qt only in _napari._qt
}


def _violations(rules: dict[str, tuple[str, ...]], module_level_only: bool):
    for mod, path in MODULES.items():
        for pkg, banned in rules.items():
            if not (mod == pkg or mod.startswith(pkg + ".")):
                continue
            if pkg == "napari_vmm._napari" and mod.startswith("napari_vmm._napari._qt"):
                continue
            for target, _, level in _imports(mod, path):
                if module_level_only and not level:
                    continue
                if any(target == b or target.startswith(b + ".") for b in banned):
                    yield mod, target


def test_packages_import_only_what_their_row_allows():
    assert not list(_violations(FORBIDDEN, module_level_only=False))
    assert not list(_violations(FORBIDDEN_AT_LOAD, module_level_only=True))


def test_ffmpeg_filter_uses_public_names_only():
    bad = [(mod, target, name) for mod, path in MODULES.items()
           if mod.startswith("ffmpeg_filter")
           for target, name, _ in _imports(mod, path)
           if target.startswith("napari_vmm") and (
               (name or "").startswith("_") or any(p.startswith("_")
                                                   for p in target.split(".")[1:]))]
    assert not bad


@pytest.mark.parametrize("probe", ["napari_vmm.core.engine", "napari_vmm.core.learned.fd4mm"])
def test_the_check_sees_real_edges(probe):
    """The graph is not empty by accident: the engine imports the pipeline, fd4mm the models."""
    assert _graph()[probe]


def _tool_imports():
    """(file, line, module, name) of every ``from napari_vmm... import name`` in the
    benchmarks and scripts, which no unit test imports."""
    for folder in ("benchmarks", "scripts"):
        for f in sorted((ROOT / folder).glob("*.py")):
            for node in ast.walk(ast.parse(f.read_text())):
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                        "napari_vmm"):
                    for alias in node.names:
                        yield f.relative_to(ROOT), node.lineno, node.module, alias.name


def test_benchmarks_and_scripts_import_names_that_exist():
    import importlib

    missing = []
    for path, line, module, name in _tool_imports():
        mod = importlib.import_module(module)
        if not hasattr(mod, name):
            try:
                importlib.import_module(f"{module}.{name}")
            except ImportError:
                missing.append(f"{path}:{line}: {module}.{name}")
    assert not missing, "names the project no longer has:\n" + "\n".join(missing)
