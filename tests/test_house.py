"""The layout promises of the package, read from its code (issue 21).

A newcomer finds the layers from the folders; these checks keep the folders honest: imports run
one way (no cycle, not even under ``TYPE_CHECKING`` or inside a function), no module or class grows
past a size a reader can hold, and the jobs and the command line use only the public face.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "leat_async"
ROOT = "leat_async"

MAX_MODULE_LINES = 400
MAX_CLASS_LINES = 250
# the public modules the jobs may use besides their own package
PUBLIC = {
    "leat_async",
    "leat_async.export",
    "leat_async.export.csv_cells",
    "leat_async.reconcile",
    "leat_async.files",
    "leat_async.signals",
    "leat_async.testing",
}
JOBS = ("leat_async.export", "leat_async.reconcile", "leat_async.cli")
INTERNAL = ("leat_async._api", "leat_async._http", "leat_async._paging")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


MODULES = _modules()


def _imports(name: str, path: Path) -> Iterator[str]:
    """Every module of ours that ``name`` imports, wherever the import statement stands."""
    is_package = path.name == "__init__.py"
    package = name if is_package else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == ROOT:
                    yield alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            if target.split(".")[0] != ROOT:
                continue
            yielded = False
            for alias in node.names:
                # "from . import module" imports the submodule
                if f"{target}.{alias.name}" in MODULES:
                    yield f"{target}.{alias.name}"
                    yielded = True
            if not yielded or target in MODULES:
                yield target


GRAPH = {
    name: sorted({target for target in _imports(name, path) if target != name})
    for name, path in MODULES.items()
}


def _cycles() -> list[list[str]]:
    """The strongly connected groups of two or more modules (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in GRAPH.get(node, []):
            if target not in MODULES:
                continue
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for name in MODULES:
        if name not in index:
            visit(name)
    return found


def test_no_module_imports_itself_back_through_others() -> None:
    assert _cycles() == []


def test_every_module_is_short_enough_to_read() -> None:
    long = {
        name: lines
        for name, path in MODULES.items()
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    }
    assert long == {}


def test_every_class_is_short_enough_to_read() -> None:
    long = {}
    for name, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef) and node.end_lineno is not None:
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_CLASS_LINES:
                    long[f"{name}.{node.name}"] = lines
    assert long == {}


@pytest.mark.parametrize("job", JOBS)
def test_the_jobs_use_only_the_public_face(job: str) -> None:
    reaching = {
        f"{name} -> {target}"
        for name, targets in GRAPH.items()
        if name == job or name.startswith(job + ".")
        for target in targets
        if not (target == job or target.startswith(job + ".") or target in PUBLIC)
    }
    assert reaching == set()


def test_the_layers_import_downward_only() -> None:
    # _api imports nothing of ours; _http only _api; _paging only _api and _http; ...
    api, http, paging = "leat_async._api", "leat_async._http", "leat_async._paging"
    below = {
        api: (api,),
        http: (api, http),
        paging: (api, http, paging),
        "leat_async.resources": (api, http, paging, "leat_async.resources"),
        # the fake shares no code with the client: a bug cannot hide on both sides of a test
        "leat_async.testing": ("leat_async.testing",),
        "leat_async.files": (),
        "leat_async.signals": (),
    }
    upward = {
        f"{name} -> {target}"
        for layer, allowed in below.items()
        for name, targets in GRAPH.items()
        if name == layer or name.startswith(layer + ".")
        for target in targets
        if not any(target == a or target.startswith(a + ".") for a in allowed)
    }
    assert upward == set()


def test_the_house_shows_its_layers() -> None:
    root_modules = [
        path.stem
        for path in PACKAGE.glob("*.py")
        if path.stem not in ("__init__", "__main__", "_version")
    ]
    subpackages = [
        path.parent.name for path in PACKAGE.glob("*/__init__.py") if path.parent.name != "testing"
    ]
    assert len(root_modules) <= 8, root_modules
    assert len(subpackages) >= 4, subpackages
    undocumented = [
        name
        for name in subpackages
        if len(ast.get_docstring(ast.parse((PACKAGE / name / "__init__.py").read_text())) or "")
        < 80
    ]
    assert undocumented == []


def test_the_internal_layers_keep_their_faces_empty() -> None:
    # an internal subpackage's __init__ only documents: importing one module of a layer never
    # drags in the rest of it
    for layer in INTERNAL:
        assert GRAPH[layer] == [], layer
