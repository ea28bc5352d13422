"""The import graph of ``drlib``, read from the source: no circles, and no drlib import hidden in a function.

Data flows one way (data -> models -> training -> results -> analysis -> notebooks and book); a circle or an
import moved into a function body to dodge one is how that breaks first. Imports of optional third-party
packages inside functions (papermill, the text encoder) are fine: only imports of drlib's own modules count.
"""
from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "drlib"


def module_name(path: Path) -> str:
    parts = path.relative_to(PKG.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in PKG.rglob("*.py")}


def _resolve(importer: str, is_pkg: bool, node: ast.ImportFrom | ast.Import) -> list[str]:
    """The drlib modules one import statement loads (a ``from pkg import name`` of a submodule counts as it)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name.split(".")[0] == "drlib"]
    if node.level:
        base = importer.split(".") if is_pkg else importer.split(".")[:-1]
        base = base[:len(base) - (node.level - 1)]
        target = ".".join(base + ([node.module] if node.module else []))
    else:
        target = node.module or ""
    if target.split(".")[0] != "drlib":
        return []
    out = []
    for alias in node.names:
        sub = f"{target}.{alias.name}"
        out.append(sub if sub in MODULES else target)
    return out


def import_graph() -> tuple[dict[str, set[str]], list[tuple[str, int, str]]]:
    """``({module: modules it imports}, [(module, line, target) of drlib imports inside a function or class])``."""
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    hidden = []
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text(), str(path))
        is_pkg = path.name == "__init__.py"
        top = set(map(id, tree.body))
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                targets = [t for t in _resolve(name, is_pkg, node) if t != name]
                graph[name].update(t for t in targets if t in MODULES)
                if targets and id(node) not in top:
                    hidden.append((name, node.lineno, targets[0]))
    return graph, hidden


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
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
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_graph_is_read():
    graph, _ = import_graph()
    assert "drlib.registry" in graph["drlib.runner"] and "drlib.models.base" in graph["drlib.diffureason.module"]
    assert "drlib.sid.build" in graph["drlib.models.sid_base"]


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles_in_drlib():
    found = cycles(import_graph()[0])
    assert not found, "import circles: " + "; ".join(" <-> ".join(c) for c in found)


def test_no_drlib_import_inside_a_function():
    _, hidden = import_graph()
    assert not hidden, "drlib imports inside functions (move them to the top of the module): " + ", ".join(
        f"{m}:{line} -> {t}" for m, line, t in hidden)
