"""
The package's layering (README "Architecture", ../shared/ARCHITECTURE.md), checked on the source.

Walks every module of ``psicoia/`` with ``ast`` and fails on: an import of a layer a module may
not use, an import cycle between modules, an import inside a function or class (the usual way
to dodge a cycle), and, in the core, an import of the libraries that belong to the edges. The
last tests run the same checks on small made-up packages, to show each rule can fail.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "psicoia"

# Which layers each layer may import (besides itself). ``texts`` is a leaf of strings and
# ``config`` the one frozen Config: every layer may use both.
BASE = {"texts", "config"}
ALLOWED = {
    "texts": set(),
    "config": {"texts"},
    "ops": BASE,
    "chat": BASE | {"ops"},
    "provider": BASE | {"ops", "chat"},
    "storage": BASE | {"ops", "chat"},
    "transports": BASE | {"ops", "chat"},
    "app": BASE | {"ops", "chat", "provider", "storage", "transports"},
}
# The core stays free of what the edges use (HTTP, WebSocket, databases).
CORE_FORBIDDEN = ("twisted.web", "autobahn", "treq", "sqlite3", "txredisapi", "cryptography")
# Imports that may sit in a function, and why: twistd installs the reactor chosen with
# --reactor before makeService runs; a module-level import would install the default first.
# txredisapi imports the global reactor when imported, so it is imported at first use too.
FUNCTION_LEVEL_OK = {("psicoia.app.tap", "twisted.internet"),
                     ("psicoia.storage.redis_link", "txredisapi")}


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer_of(module: str, top: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == top else ""


def imports_of(path: Path, module: str) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
    """(module-level imports, imports inside functions or classes), as (name, line)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top, nested = [], []
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]

    def visit(node, depth: int) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and getattr(child.test, "id", "") == "TYPE_CHECKING":
                continue  # annotations only: no import at run time
            inner = depth + isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef,
                                               ast.ClassDef, ast.Lambda))
            names = []
            if isinstance(child, ast.Import):
                names = [alias.name for alias in child.names]
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    anchor = package.split(".")
                    anchor = anchor[:len(anchor) - child.level + 1]
                    base = ".".join(anchor + ([base] if base else []))
                if base == "__future__":
                    continue
                # "from psicoia.chat import session" imports the module psicoia.chat.session.
                names = [f"{base}.{alias.name}" for alias in child.names]
            for name in names:
                (nested if depth else top).append((name, child.lineno))
            visit(child, inner)

    visit(tree, 0)
    return top, nested


def check(root: Path) -> list[str]:
    """Every breach of the rules above in the package at ``root``, one line each."""
    top_name = root.name
    paths = {module_name(p, root): p for p in sorted(root.rglob("*.py"))}
    problems: list[str] = []
    graph: dict[str, set[str]] = {m: set() for m in paths}

    def resolve(name: str) -> str:
        """The package module an import names (longest known prefix), or ''."""
        while name:
            if name in paths:
                return name
            name = name.rpartition(".")[0]
        return ""

    for module, path in paths.items():
        layer = layer_of(module, top_name)
        top, nested = imports_of(path, module)
        for name, line in nested:
            if (module, name.rsplit(".", 1)[0]) in FUNCTION_LEVEL_OK or (module, name) in FUNCTION_LEVEL_OK:
                continue
            problems.append(f"{module}:{line} imports {name} inside a function or class")
        for name, line in top:
            if layer == "chat" and name.startswith(CORE_FORBIDDEN):
                problems.append(f"{module}:{line} (core) imports {name}")
            target = resolve(name)
            if not target or target == module:
                continue
            graph[module].add(target)
            target_layer = layer_of(target, top_name)
            if target_layer in ("", layer) or layer == "":
                continue
            if target_layer not in ALLOWED.get(layer, set()):
                problems.append(f"{module}:{line} ({layer}) imports {target} ({target_layer})")
    problems.extend(f"import cycle: {' -> '.join(cycle)}" for cycle in cycles(graph))
    return problems


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def strong(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                strong(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component) + [sorted(component)[0]])

    for node in sorted(graph):
        if node not in index:
            strong(node)
    return found


# --- the real package -------------------------------------------------------------------------

def test_the_package_keeps_its_layers_and_has_no_cycles():
    assert check(PACKAGE) == []


def test_every_layer_of_the_tree_exists():
    assert {p.name for p in PACKAGE.iterdir() if p.is_dir() and p.name != "__pycache__"} >= {
        "chat", "provider", "storage", "transports", "ops", "app"}


def test_twistd_plugins_name_modules_and_import_nothing_heavy():
    for path in (PACKAGE.parent / "twisted" / "plugins").glob("*.py"):
        top, nested = imports_of(path, "twisted.plugins." + path.stem)
        assert [name for name, _ in top + nested] == ["twisted.application.service.ServiceMaker"]


def test_no_module_is_over_400_lines():
    long = {str(p.relative_to(PACKAGE)): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > 400}
    assert long == {}


# --- the checks can fail ----------------------------------------------------------------------

def make_package(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "pkg"
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    for folder in {p.parent for p in root.rglob("*.py")} | {root}:
        (folder / "__init__.py").touch()
    return root


@pytest.mark.parametrize("files, expected", [
    ({"ops/a.py": "from pkg.chat import b\n", "chat/b.py": ""}, "(ops) imports pkg.chat.b (chat)"),
    ({"chat/a.py": "import pkg.transports.b\n", "transports/b.py": ""},
     "(chat) imports pkg.transports.b (transports)"),
    ({"provider/a.py": "from pkg.storage.b import x\n", "storage/b.py": "x = 1\n"},
     "(provider) imports pkg.storage.b (storage)"),
    ({"chat/a.py": "import treq\n"}, "(core) imports treq"),
    ({"transports/a.py": "def f():\n    from pkg.chat import b\n", "chat/b.py": ""},
     "imports pkg.chat.b inside a function"),
    ({"chat/a.py": "from pkg.chat import b\n", "chat/b.py": "from pkg.chat import a\n"},
     "import cycle: pkg.chat.a -> pkg.chat.b -> pkg.chat.a"),
    ({"storage/a.py": "from pkg.app.core import x\n", "app/core.py": "x = 1\n"},
     "(storage) imports pkg.app.core (app)"),
])
def test_each_rule_fails_on_a_breach(tmp_path, files, expected):
    problems = check(make_package(tmp_path, files))
    assert any(expected in problem for problem in problems), problems


def test_a_clean_made_up_package_passes(tmp_path):
    root = make_package(tmp_path, {
        "texts.py": "HI = 'hola'\n",
        "chat/a.py": "from pkg import texts\nfrom pkg.ops import m\n",
        "ops/m.py": "import json\n",
        "app/core.py": "from pkg.chat import a\nfrom pkg.transports import t\n",
        "transports/t.py": "from pkg.chat.a import texts\n",
    })
    assert check(root) == []
