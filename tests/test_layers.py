"""The import layers, read from the code: features talk through events, and nothing is circular.

* The shared layers (crypto, fhir, db, audit, web, events, auth and the small modules beside
  them) import no feature's logic: at most a feature's tables (``models``) or its leaf
  ``status`` questions (authentication asks whether a clinic is accredited).
* A feature package imports no other feature's ``service``, ``views``, ``pages`` or ``cli``:
  what it needs of another feature is that feature's tables (``models``) or a leaf module of
  shared pieces; what it must make happen there is an event (registry/events.py) that the
  other feature subscribes to in registry/subscriptions.py.
* No module imports itself back through others, counting imports inside functions too.

No exceptions are listed: a new crossing or cycle fails here.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "registry"
FEATURES = {
    "accreditation",
    "certificates",
    "clinic_portal",
    "examinations",
    "fraud",
    "operations",
    "referrals",
    "surveillance",
    "verification",
}
SHARED = {
    "audit",
    "auth",
    "config",
    "crypto",
    "db",
    "errors",
    "events",
    "extensions",
    "fhir",
    "i18n",
    "jsonlimits",
    "logs",
    "pages",
    "transparency",
    "web",
}
LEAVES = {"models", "status"}  # what a shared layer may read of a feature
ENTRY_POINTS = {"service", "views", "pages", "cli"}  # a feature's own; never imported across
COMPOSITION = {
    "registry",
    "registry.cli",
    "registry.demo",
    "registry.schema",
    "registry.subscriptions",
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _runtime_nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node, but those under ``if TYPE_CHECKING:`` (imports for annotations only)."""
    found: list[ast.AST] = []
    pending = [tree]
    while pending:
        node = pending.pop()
        found.append(node)
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and getattr(child.test, "id", None) == "TYPE_CHECKING":
                pending.extend(child.orelse)
                continue
            pending.append(child)
    return found


# every module of the package, parsed once for all the tests here
TREES = {_module_name(p): ast.parse(p.read_text("utf-8")) for p in PACKAGE.rglob("*.py")}


def _imports() -> dict[str, set[str]]:
    """Every module of the package and the registry modules it imports (anywhere in it)."""
    modules = TREES
    graph: dict[str, set[str]] = defaultdict(set)
    for name, tree in modules.items():
        graph[name]
        for node in _runtime_nodes(tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                # `from registry.x import y` imports registry.x.y when y is a module
                targets = [
                    f"{node.module}.{a.name}"
                    if f"{node.module}.{a.name}" in modules
                    else node.module
                    for a in node.names
                ]
            graph[name] |= {t for t in targets if t in modules and t != name}
    return dict(graph)


GRAPH = _imports()


def _layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def test_the_graph_sees_the_whole_package() -> None:
    assert "registry.examinations.service" in GRAPH
    assert "registry.db" in GRAPH["registry.examinations.service"]
    assert {_layer(m) for m in GRAPH} - {None} <= FEATURES | SHARED | {
        "cli",
        "cli_support",
        "demo",
        "schema",
        "subscriptions",
        "wsgi",
    }


@pytest.mark.parametrize("module", sorted(m for m in GRAPH if _layer(m) in SHARED))
def test_a_shared_layer_imports_no_features_logic(module: str) -> None:
    logic = [m for m in GRAPH[module] if _layer(m) in FEATURES and m.split(".")[-1] not in LEAVES]
    assert sorted(logic) == []


@pytest.mark.parametrize("module", sorted(m for m in GRAPH if _layer(m) in FEATURES))
def test_a_feature_reaches_no_other_features_service(module: str) -> None:
    crossing = [
        imported
        for imported in GRAPH[module]
        if _layer(imported) in FEATURES
        and _layer(imported) != _layer(module)
        and imported.split(".")[-1] in ENTRY_POINTS
    ]
    assert crossing == [], f"{module} reaches into {crossing}: publish an event instead"


def test_only_the_composition_root_imports_every_feature() -> None:
    wide = {
        module
        for module, imported in GRAPH.items()
        if len({_layer(m) for m in imported} & FEATURES) >= 6
    }
    assert wide <= COMPOSITION


def _cycles() -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(GRAPH.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(GRAPH):
        if node not in index:
            visit(node)
    return found


def test_no_module_imports_itself_back() -> None:
    assert _cycles() == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    GRAPH["registry.db"] = GRAPH["registry.db"] | {"registry.web"}
    try:
        assert any("registry.db" in cycle for cycle in _cycles())
    finally:
        GRAPH["registry.db"] = GRAPH["registry.db"] - {"registry.web"}


@pytest.mark.parametrize("library", ["jwt", "hmac", "hashlib"])
def test_keys_digests_and_tokens_have_one_home_in_crypto(library: str) -> None:
    importers = []
    for module, tree in TREES.items():
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name.split(".")[0] for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module.split(".")[0]]
            if library in names:
                importers.append(module)
    assert importers, f"nothing imports {library} at all"
    assert sorted(m for m in importers if _layer(m) != "crypto") == []
