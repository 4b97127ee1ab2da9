"""The rooms' dependency direction (design.md): ``server`` and ``mobile_export`` use ``core``; ``core`` knows
neither; ``server`` and ``mobile_export`` do not use each other; a plugin uses only ``core`` (plus the
standard library and third-party packages). Checked by parsing every module's imports, including imports
inside functions, so a lazy import cannot hide a wrong-way dependency."""

from __future__ import annotations

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ROOMS = ("core", "server", "mobile_export", "plugins")

# room → top-level packages of this repository it must not import
FORBIDDEN: dict[str, set[str]] = {
    "core": {"server", "mobile_export", "plugins", "tests"},
    "server": {"mobile_export", "plugins", "tests"},
    "mobile_export": {"server", "plugins", "tests"},
    "plugins": {"server", "mobile_export", "tests"},
}


def _nodes(tree: ast.AST, typing_too: bool) -> list[ast.AST]:
    """Every node; without ``typing_too``, not those under ``if TYPE_CHECKING:`` (never run)."""
    out: list[ast.AST] = []
    todo = [tree]
    while todo:
        node = todo.pop()
        out.append(node)
        if not typing_too and isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            todo.extend(node.orelse)
            continue
        todo.extend(ast.iter_child_nodes(node))
    return out


def imported_modules(path: Path, root: Path = ROOT, typing_too: bool = True) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in a file; relative imports are resolved. Imports
    only for type checkers count unless ``typing_too`` is False (a type is a dependency, not a cycle)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    # the folders at the top are packages of ``rasoat`` (pyproject's package-dir)
    package = ["rasoat", *path.relative_to(root).with_suffix("").parts[:-1]]  # same for a module and __init__
    nodes = _nodes(tree, typing_too)
    return sorted((node.lineno, name) for node in nodes for name in _resolved(node, package))


def _resolved(node: ast.AST, package: list[str]) -> list[str]:
    """The absolute module names an import statement (in ``package``) imports; none for other nodes."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    if node.level:
        name = ".".join(package[: len(package) - (node.level - 1)] + ([node.module] if node.module else []))
    else:
        name = node.module or ""
    if not node.module:  # ``from . import x``: x is a module of that package
        return [name, *(f"{name}.{alias.name}" for alias in node.names)]
    return [name]


def room_modules(room: str) -> list[Path]:
    return sorted(p for p in (ROOT / room).rglob("*.py") if "__pycache__" not in p.parts)


def violations(path: Path, root: Path = ROOT) -> list[str]:
    rel = path.relative_to(root)
    room = rel.parts[0]
    own_plugin = rel.parts[1] if room == "plugins" and len(rel.parts) > 2 else None
    found = []
    for line, name in imported_modules(path, root):
        parts = name.split(".")
        if parts[0] != "rasoat":
            continue  # the standard library or a third-party package
        parts = parts[1:]
        top = parts[0] if parts else ""
        bad = top in FORBIDDEN[room]
        if room == "plugins" and top == "plugins" and len(parts) > 1 and parts[1] != own_plugin:
            bad = True  # one province's plugin must not lean on another's package
        if bad:
            found.append(f"{rel}:{line} imports {name}")
    return found


@pytest.mark.parametrize("room", ROOMS)
def test_room_imports_only_what_it_may(room: str) -> None:
    modules = room_modules(room)
    assert modules, f"no modules found under {room}/"
    problems = [v for path in modules for v in violations(path)]
    assert problems == [], "wrong-way imports:\n" + "\n".join(problems)


def test_the_check_sees_lazy_and_relative_imports(tmp_path: Path) -> None:
    """The checker itself: an import inside a function and a relative one both count."""
    pkg = tmp_path / "core" / "sub"
    pkg.mkdir(parents=True)
    mod = pkg / "thing.py"
    mod.write_text("def f():\n    from rasoat.server.app import create_app\nfrom ..x import y\n", "utf-8")
    assert [n for _, n in imported_modules(mod, tmp_path)] == ["rasoat.server.app", "rasoat.core.x"]
    assert violations(mod, tmp_path) == ["core/sub/thing.py:2 imports rasoat.server.app"]
    other = tmp_path / "plugins" / "hung_yen" / "checks.py"
    other.parent.mkdir(parents=True)
    other.write_text("from rasoat.plugins.thai_nguyen import forms\n"
                     "from rasoat.plugins.hung_yen import x\n", "utf-8")
    assert violations(other, tmp_path) == ["plugins/hung_yen/checks.py:1 imports rasoat.plugins.thai_nguyen"]


# --- no cycles: the graph of which module imports which, inside core and inside server --------------


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = ["rasoat", *path.relative_to(root).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(room: str, root: Path = ROOT) -> dict[str, set[str]]:
    """Module → the modules of the same room it imports, at the top or inside a function alike (a lazy
    import hides a cycle, it does not remove it). ``from pkg import sub`` is an edge to ``pkg.sub`` when that
    is a module, since only then is ``pkg``'s own code not what is used. Importing ``a.b.c`` first runs the
    packages ``a`` and ``a.b``, so each is an edge too, except the importer's own packages (already running
    when it is imported)."""
    paths = sorted(p for p in (root / room).rglob("*.py") if "__pycache__" not in p.parts)
    modules = {module_name(p, root): p for p in paths}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        edges: set[str] = set()
        for _, target in imported_modules(path, root, typing_too=False):
            if target in modules and target != name:
                edges.add(target)
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in _nodes(tree, typing_too=False):
            if isinstance(node, ast.ImportFrom) and node.module and not node.level:
                subs = {f"{node.module}.{a.name}" for a in node.names} & modules.keys()
                if subs and not (set(a.name for a in node.names) - {s.rsplit(".", 1)[1] for s in subs}):
                    edges.discard(node.module)  # only submodules taken: the package itself is not used
                edges |= subs - {name}
        packages = {".".join(t.split(".")[:i]) for t in edges for i in range(1, t.count(".") + 1)}
        graph[name] = edges | {p for p in packages & modules.keys() if not f"{name}.".startswith(f"{p}.")}
    return graph


def cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of the graph (graphlib finds it), or None."""
    try:
        TopologicalSorter(graph).prepare()
    except CycleError as exc:
        return list(exc.args[1])
    return None


@pytest.mark.parametrize("room", ["core", "server", "mobile_export"])
def test_no_import_cycles(room: str) -> None:
    found = cycle(import_graph(room))
    assert found is None, "import cycle: " + " → ".join(found or [])


def test_the_cycle_check_sees_a_lazy_cycle(tmp_path: Path) -> None:
    pkg = tmp_path / "core"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("", "utf-8")
    (pkg / "a.py").write_text("from rasoat.core.b import x\n", "utf-8")
    (pkg / "b.py").write_text("def f():\n    from rasoat.core.a import y\n", "utf-8")
    (pkg / "c.py").write_text("from rasoat.core import a, b\n", "utf-8")
    typing_only = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from rasoat.core.e import E\n"
    (pkg / "d.py").write_text(typing_only, "utf-8")  # d ↔ e only for the type checker: no cycle
    (pkg / "e.py").write_text("from rasoat.core.d import x\n", "utf-8")
    graph = import_graph("core", tmp_path)
    assert graph["rasoat.core.c"] == {"rasoat.core.a", "rasoat.core.b"}
    assert set(cycle(graph) or []) == {"rasoat.core.a", "rasoat.core.b"}
    (pkg / "b.py").write_text("x = 1\n", "utf-8")
    assert cycle(import_graph("core", tmp_path)) is None


def test_the_cycle_check_runs_the_parent_packages(tmp_path: Path) -> None:
    """Importing ``pkg.light`` runs ``pkg/__init__``: a package that imports its heavy submodules joins
    every cycle through them; a package's own submodules importing each other do not."""
    pkg = tmp_path / "core" / "pkg"
    pkg.mkdir(parents=True)
    (tmp_path / "core" / "__init__.py").write_text("", "utf-8")
    (pkg / "__init__.py").write_text("from rasoat.core.pkg.heavy import h\n", "utf-8")
    (pkg / "light.py").write_text("x = 1\n", "utf-8")
    heavy = "from rasoat.core.pkg.light import x\nfrom rasoat.core.user import u\n"
    (pkg / "heavy.py").write_text(heavy, "utf-8")
    (tmp_path / "core" / "user.py").write_text("from rasoat.core.pkg.light import x\n", "utf-8")
    graph = import_graph("core", tmp_path)
    assert graph["rasoat.core.user"] == {"rasoat.core.pkg", "rasoat.core.pkg.light"}
    assert graph["rasoat.core.pkg.heavy"] == {"rasoat.core.pkg.light", "rasoat.core.user"}
    assert set(cycle(graph) or []) == {"rasoat.core.user", "rasoat.core.pkg", "rasoat.core.pkg.heavy"}
    (pkg / "__init__.py").write_text('"""A light package."""\n', "utf-8")
    assert cycle(import_graph("core", tmp_path)) is None


# --- imports inside functions: only where they keep a start-up light ---------------------------------------

# ``rasoat --help`` imports every command module (benchmarks/cli_startup.py), so these import their work
# inside the functions that do it; and psycopg loads only for a deployment that names a database.
LAZY_ALLOWED = {"core/cli.py", "core/commands", "server/plugin.py", "mobile_export/commands.py",
                "mobile_export/plugin.py"}
LAZY_DRIVER = "rasoat.core.storage.postgres"


def lazy_imports(path: Path, root: Path = ROOT) -> list[str]:
    """``file:line imports module`` for each import of this project's modules inside a function."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = ["rasoat", *path.relative_to(root).with_suffix("").parts[:-1]]
    functions = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
    found = {(node.lineno, name) for f in functions for node in ast.walk(f)
             for name in _resolved(node, package)}
    return [f"{path.relative_to(root)}:{line} imports {name}" for line, name in sorted(found)
            if name.startswith("rasoat.") and name != LAZY_DRIVER]


def test_imports_inside_functions_only_where_start_up_needs_them() -> None:
    paths = [p for room in ROOMS for p in room_modules(room)
             if not any(str(p.relative_to(ROOT)).startswith(a) for a in LAZY_ALLOWED)]
    found = [line for p in paths for line in lazy_imports(p)]
    assert found == [], "imports inside functions (move them to the top):\n" + "\n".join(found)


def test_the_lazy_import_check_sees_one(tmp_path: Path) -> None:
    mod = tmp_path / "core" / "thing.py"
    mod.parent.mkdir()
    mod.write_text("import json\nfrom rasoat.core.units import get_units\n\n\ndef f():\n"
                   "    from rasoat.core.rounds import x\n    from . import y\n"
                   "    from rasoat.core.storage.postgres import PostgresStore\n    import csv\n", "utf-8")
    assert lazy_imports(mod, tmp_path) == ["core/thing.py:6 imports rasoat.core.rounds",
                                           "core/thing.py:7 imports rasoat.core",
                                           "core/thing.py:7 imports rasoat.core.y"]
