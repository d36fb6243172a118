"""The package's layout rules: no import cycles between modules, and small files.

Imports are read from the source (``ast``), not executed. Module-level imports are what Python runs when a module
is imported: a cycle there is a module that can be half-initialised. Imports inside functions (lazy imports of
optional or heavy parts) are not counted.
"""

from __future__ import annotations

import ast
from pathlib import Path

import graftwork

PACKAGE = Path(graftwork.__file__).parent
MAX_LINES = 400


def _name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_name(p): p for p in PACKAGE.rglob("*.py")}


def _known(name: str) -> str | None:
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _top_level_imports(module: str, path: Path) -> set[str]:
    """The graftwork modules ``module`` imports when it is imported (not inside functions or TYPE_CHECKING)."""
    is_package = path.name == "__init__.py"
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                continue
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            if isinstance(child, ast.Import):
                found.update(t for a in child.names if (t := _known(a.name)) and a.name.startswith("graftwork"))
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = module.split(".") if is_package else module.split(".")[:-1]
                    base = base[: len(base) - (child.level - 1)]
                    where = ".".join(base + ([child.module] if child.module else []))
                else:
                    where = child.module or ""
                if not where.startswith("graftwork"):
                    continue
                for a in child.names:
                    t = f"{where}.{a.name}" if f"{where}.{a.name}" in MODULES else _known(where)
                    if t:
                        found.add(t)
            else:
                visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    found.discard(module)
    return found


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` (depth-first search), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_module_level_import_cycles():
    graph = {m: _top_level_imports(m, p) for m, p in MODULES.items()}
    cycle = _cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_cycle_finder_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_no_file_over_the_line_limit_without_a_reason():
    """A module over ~400 lines says why at its top (a line containing "over 400 lines")."""
    long = [str(p.relative_to(PACKAGE)) for p in MODULES.values()
            if len(p.read_text(encoding="utf-8").splitlines()) > MAX_LINES
            and "over 400 lines" not in p.read_text(encoding="utf-8")[:2000]]
    assert not long, f"modules over {MAX_LINES} lines without a reason at the top: {long}"
