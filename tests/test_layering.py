"""The package structure, checked from the source: layers, no cycles, thin routers.

Every ``import`` in ``src/asyncpress`` is read (those under ``TYPE_CHECKING``
and inside functions too), mapped to the package it names, and held against
the layers below. A package may import its own modules and any package of a
lower layer; an import upwards or sideways fails with the line that does it.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SOURCE / "asyncpress"

# Lowest first. Packages of one layer may not import each other.
LAYERS: list[set[str]] = [
    {"fast"},  # driver-direct reads, the fair pool, socket writes, the GC policy
    {"core"},  # settings, database and unit of work, errors, cache, security, HTTP plumbing
    {"users"},
    {"events", "notifications", "tags"},  # the journal and hub, the outbox, tags
    {"profiles"},
    {"articles"},
    {"comments"},
    {"previews", "rendering", "stats"},
    {"ops"},
    {"app"},  # the application factory: services wired, routers mounted
    {"cli", "migrations"},  # migrations read the models as they are today
]
RANK = {name: rank for rank, layer in enumerate(LAYERS) for name in layer}


def _module_name(path: Path) -> str:
    parts = path.relative_to(SOURCE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[tuple[int, str]]:
    """Every asyncpress module (or package) ``path`` imports, with its line."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            found.append((node.lineno, target))
            # ``from asyncpress import articles`` names a package in the alias.
            found.extend((node.lineno, f"{target}.{alias.name}") for alias in node.names)
    return [(line, name) for line, name in found if name.split(".")[0] == "asyncpress"]


def _package_of(module: str) -> str | None:
    parts = module.split(".")
    if len(parts) < 2:
        return None
    candidate = PACKAGE / parts[1]
    return parts[1] if candidate.is_dir() else None


def _edges() -> dict[tuple[str, str], list[str]]:
    """(importer, imported) package pairs, each with the lines that make it."""
    edges: dict[tuple[str, str], list[str]] = defaultdict(list)
    for path in sorted(PACKAGE.rglob("*.py")):
        source = _package_of(_module_name(path))
        if source is None:
            continue
        for line, name in _imports(path):
            target = _package_of(name)
            if target is not None and target != source:
                where = f"{path.relative_to(SOURCE)}:{line} imports {name}"
                edges[source, target].append(where)
    return edges


def _cycles(edges: dict[tuple[str, str], list[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one package (Tarjan)."""
    graph: dict[str, set[str]] = defaultdict(set)
    for source, target in edges:
        graph[source].add(target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups


def test_every_package_has_a_layer() -> None:
    # Any folder of Python code, a package or not (the migrations are not).
    packages = {p.name for p in PACKAGE.iterdir() if p.is_dir() and any(p.glob("*.py"))}
    assert packages == set(RANK), "add new packages to LAYERS (and docs/architecture.md)"


def test_no_package_imports_another_in_a_circle() -> None:
    edges = _edges()
    cycles = _cycles(edges)
    detail = [
        where
        for group in cycles
        for (source, target), lines in edges.items()
        if source in group and target in group
        for where in lines
    ]
    assert cycles == [], "\n".join(detail)


def test_imports_only_go_down_the_layers() -> None:
    upward = [
        where
        for (source, target), lines in sorted(_edges().items())
        if RANK[target] >= RANK[source]
        for where in lines
    ]
    assert upward == [], "\n".join(upward)


def test_the_checks_see_a_cycle_when_there_is_one() -> None:
    # The detector itself: a planted cycle and a planted upward import are found.
    edges = {("a", "b"): ["a -> b"], ("b", "c"): ["b -> c"], ("c", "a"): ["c -> a"]}
    assert _cycles(edges) == [["a", "b", "c"]]
    assert _cycles({("a", "b"): ["a -> b"]}) == []


ROUTER_MUST_NOT = {
    "cache": (".cache", "cache_keys", "invalidate(", "get_or_compute("),
    "outbox": ("outbox", ".kick("),
    "previews warming": (".warm(",),
    "events": ("journal.append", "hub.committed", "wake_streams"),
    "background work": ("BackgroundTasks", "background.add_task"),
    "sessions": ("sessionmaker", "SessionDep", "AsyncSession"),
}


# Health and metrics (ops) report on the infrastructure itself: not domain routers.
DOMAIN_ROUTERS = sorted(p for p in PACKAGE.glob("*/router.py") if p.parent.name != "ops")


@pytest.mark.parametrize("router", DOMAIN_ROUTERS, ids=lambda p: p.parent.name)
def test_routers_only_translate_http(router: Path) -> None:
    """Caches, mail, previews, events and sessions belong to services and their units of work."""
    text = router.read_text(encoding="utf-8")
    found = [
        f"{what}: {needle!r}"
        for what, needles in ROUTER_MUST_NOT.items()
        for needle in needles
        if needle in text
    ]
    assert found == []


def test_no_orm_listener_is_registered_at_import() -> None:
    """What follows a commit is declared in its unit of work, not hooked onto every Session."""
    # Either spelling of SQLAlchemy's event registration, on Session or a sessionmaker.
    needles = ("listen(Session", "listens_for(Session", "listen(sessionmaker")
    hooks = [
        f"{path.relative_to(SOURCE)}"
        for path in PACKAGE.rglob("*.py")
        if any(needle in path.read_text(encoding="utf-8") for needle in needles)
    ]
    assert hooks == []


ROOT = SOURCE.parent


def _top_level_imports(folder: Path) -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                names = [node.module]
            found.update((str(path.relative_to(ROOT)), name) for name in names)
    return found


def test_bench_and_tests_share_servers_not_each_others_helpers() -> None:
    """Both use servers/; bench never imports tests, and tests import bench only to test it."""
    bench_to_tests = [
        f"{path} imports {name}"
        for path, name in _top_level_imports(ROOT / "bench")
        if name.split(".")[0] == "tests"
    ]
    tests_to_bench = [
        f"{path} imports {name}"
        for path, name in _top_level_imports(ROOT / "tests")
        if name.split(".")[0] == "bench" and not path.endswith("test_bench_harness.py")
    ]
    assert bench_to_tests == []
    assert tests_to_bench == []
