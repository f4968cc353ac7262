"""The package's shape, checked from its source: imports run one way, pure modules stay
pure, and helpers use only what a client declares for them.

These read the code as text (with ``ast``), so they hold for imports under
``TYPE_CHECKING`` too, which running the code would never execute.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "pssh"

PURE_MODULES = ["pssh.config", "pssh.output", "pssh.exceptions", "pssh._commands",
                "pssh._validate", "pssh._deadline"]
HELPER_MODULES = ["pssh.clients.base._channel", "pssh.clients.base.shell",
                  "pssh.clients.native._channel", "pssh.clients.native._sftp",
                  "pssh.clients.native._scp", "pssh.clients.native._proxy",
                  "pssh.clients.ssh._channel"]
CLIENT_MODULES = ["pssh.clients.base.single", "pssh.clients.native.single",
                  "pssh.clients.ssh.single"]


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(path): path for path in PACKAGE.rglob("*.py")}


def _imports(name: str, path: Path) -> set[str]:
    """Every module ``name`` imports, at any level of its code."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: {imported for imported in _imports(name, path) if imported in modules}
            for name, path in modules.items()}


def _reaches(graph: dict[str, set[str]], start: str, goal: str) -> bool:
    seen, todo = set(), list(graph[start])
    while todo:
        current = todo.pop()
        if current == goal:
            return True
        if current not in seen:
            seen.add(current)
            todo.extend(graph.get(current, ()))
    return False


def test_no_module_imports_itself_through_others():
    graph = _graph()
    # A package's __init__ re-exports its modules, so it is left out of the search: an
    # edge into a package means "this package's __init__", which imports downward only.
    graph = {name: {each for each in imported if not _modules()[each].name == "__init__.py"}
             for name, imported in graph.items()}
    circles = sorted(name for name in graph if _reaches(graph, name, name))
    assert circles == []


@pytest.mark.parametrize("helper", HELPER_MODULES)
def test_helpers_import_no_client_module(helper):
    imported = _graph()[helper]
    assert imported.isdisjoint(CLIENT_MODULES)


@pytest.mark.parametrize("helper", HELPER_MODULES)
def test_helpers_call_no_private_method_of_a_client(helper):
    source = _modules()[helper].read_text()
    reaching_in = re.findall(r"\bclient\._[a-z]\w*", source)
    assert reaching_in == []


@pytest.mark.parametrize("module", PURE_MODULES)
def test_pure_modules_import_no_ssh_library_or_gevent(module):
    imported = _imports(module, _modules()[module])
    assert not {name.partition(".")[0] for name in imported} & {"ssh2", "ssh", "gevent"}
