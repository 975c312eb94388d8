"""The package's modules import each other one way: no circle, also through imports inside functions (those under
`if TYPE_CHECKING:` are annotations only and do not count)."""

import ast
import os

PACKAGE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "hf_gradinit")


def _module_name(path: str) -> str:
    rel = os.path.relpath(path, os.path.dirname(PACKAGE))[: -len(".py")].replace(os.sep, ".")
    return rel[: -len(".__init__")] if rel.endswith(".__init__") else rel


def _runtime_imports(path: str) -> set[str]:
    """The hf_gradinit modules `path` imports when it runs (relative imports resolved)."""
    tree = ast.parse(open(path, encoding="utf-8").read())
    here = _module_name(path)
    package = here if path.endswith("__init__.py") else here.rsplit(".", 1)[0]
    skipped = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(n) for n in ast.walk(node))
    found = set()
    for node in ast.walk(tree):
        if id(node) in skipped or not isinstance(node, ast.ImportFrom) or node.level == 0:
            continue
        base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
        target = f"{base}.{node.module}" if node.module else base
        modules = {target} | {f"{target}.{a.name}" for a in node.names}  # `from . import x` may name a module
        found |= {m for m in modules if _exists(m)}
    return found - {here}


def _exists(module: str) -> bool:
    path = os.path.join(os.path.dirname(PACKAGE), *module.split("."))
    return os.path.isfile(path + ".py") or os.path.isfile(os.path.join(path, "__init__.py"))


def _graph() -> dict[str, set[str]]:
    graph = {}
    for folder, _, files in os.walk(PACKAGE):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                graph[_module_name(path)] = _runtime_imports(path)
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}

    def visit(node, trail):
        state[node] = 1
        for nxt in sorted(graph.get(node, set())):
            if state.get(nxt) == 1:
                return trail + [node, nxt]
            if nxt not in state:
                found = visit(nxt, trail + [node])
                if found:
                    return found
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node, [])
            if found:
                return found
    return None


def test_no_module_of_the_package_imports_itself_in_a_circle():
    graph = _graph()
    assert "hf_gradinit.search_report" in graph["hf_gradinit.result"]  # the graph sees imports
    assert _cycle(graph) is None, " -> ".join(_cycle(graph))


def test_the_check_finds_a_circle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) is not None
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
