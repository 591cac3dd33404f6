"""Imports inside gan/ only go downward: no module reaches, through any chain of imports, back to itself. The graph is
built from the modules' own import statements with `ast`, so lazy imports (inside functions) and `TYPE_CHECKING`
imports count too: a circle of types is still a circle for a reader."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "gan"


def _module_name(path: Path, package: Path) -> str:
    parts = path.relative_to(package.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """Each module of the package -> the package's modules it imports (`from . import x` names module x where one
    exists; `from .x import name` names module x, or x.name where that is a module)."""
    modules = {_module_name(path, package): path for path in package.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        here = name if is_package else name.rpartition(".")[0]
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = here.split(".")
                    base = base[: len(base) - (node.level - 1)]
                    source = ".".join(base + ([node.module] if node.module else []))
                else:
                    source = node.module or ""
                targets.add(source)
                targets.update(f"{source}.{alias.name}" for alias in node.names)
        graph[name] = {target for target in targets if target in modules and target != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
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
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _is_submodule_of_parent(importer: str, imported: str) -> bool:
    """A package's __init__ importing its own submodules, and a submodule importing a sibling through the package
    (`from . import x`), make package<->submodule edges that are not circles of code: a submodule needs nothing of
    its package's __init__ but the package to exist."""
    return imported.startswith(importer + ".") or importer.startswith(imported + ".")


def test_the_graph_sees_lazy_and_type_checking_imports(tmp_path):
    package = tmp_path / "gan"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("def f():\n    from .b import g\n")
    (package / "b.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .sub.c import C\n")
    (package / "sub" / "__init__.py").write_text("")
    (package / "sub" / "c.py").write_text("from .. import a\nfrom ..sub import d\n")
    (package / "sub" / "d.py").write_text("import gan.a\n")
    graph = import_graph(package)
    assert graph["gan.a"] == {"gan.b"} and graph["gan.b"] == {"gan.sub.c"}
    assert graph["gan.sub.c"] == {"gan", "gan.a", "gan.sub", "gan.sub.d"} and graph["gan.sub.d"] == {"gan.a"}
    assert cycles(graph) == [["gan.a", "gan.b", "gan.sub.c", "gan.sub.d"]]


def test_no_import_cycle_inside_gan():
    graph = {
        module: {target for target in targets if not _is_submodule_of_parent(module, target)}
        for module, targets in import_graph().items()
    }
    assert cycles(graph) == []
