"""mmemu's import graph: no cycles, and data flowing one way.

Every import statement of every module is read from its source (function-
level imports included, since hiding a cycle in a function only defers it),
so the graph is the one a reader sees, not the one a lucky import order
happens to load.  Imports under ``if TYPE_CHECKING:`` (the types of an
annotation) never run: they may close a loop (watermark.py naming
page_alloc.py's MmState), but they too must keep to the layers.  Layers,
lowest first (docs/DEVELOPING.md draws them):

    layout, flavour, errors, log,      constants and the simplest records
    physmem
    config_schema, config, kernel/image   what a machine is (and the kernel it boots)
    mm/, arch/, kernel/, devices/, init/  the model (no cycles among them either);
                                          init/main.py boots it in the kernel's order
    engine                             the one module that talks to Unicorn
    runtime/                           guest programs, hypercalls, faults
    views/                             what Linux shows in /proc and dmesg
    machine                            builds and wires all of the above
    cli, harness/, oracle/, ...        front ends and test drivers

A module may import its own layer and the layers below, never one above.
"""
import ast
from pathlib import Path


PACKAGE = Path(__file__).resolve().parent.parent / "mmemu"

LAYERS = [
    {"mmemu.layout", "mmemu.flavour", "mmemu.errors", "mmemu.log", "mmemu.physmem"},
    {"mmemu.config_schema", "mmemu.config", "mmemu.kernel.image"},
    {"mmemu.mm", "mmemu.arch", "mmemu.kernel", "mmemu.devices", "mmemu.init"},
    {"mmemu.engine"},
    {"mmemu.runtime"},
    {"mmemu.views"},
    {"mmemu.machine"},
    {"mmemu", "mmemu.cli", "mmemu.harness", "mmemu.oracle", "mmemu.testing"},
]

def _modules():
    """{module name: (path, is_package)} for every .py file under mmemu/."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts.pop()
        found[".".join(parts)] = (path, is_package)
    return found


MODULES = _modules()


def _targets(name, is_package, node):
    """The names an import statement of module `name` imports."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        package = name.split(".") if is_package else name.split(".")[:-1]
        package = package[:len(package) - (node.level - 1)]
        base = ".".join(package + ([node.module] if node.module else []))
    # "from mmemu.mm import page_alloc" imports the module mmemu.mm.page_alloc.
    return [f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base
            for alias in node.names]


def _own_module(target):
    """The mmemu module a dotted import target names (its longest known prefix)."""
    while target and target not in MODULES:
        target = target.rpartition(".")[0]
    return target or None


def _type_only(tree):
    """The import statements under ``if TYPE_CHECKING:`` (typing.TYPE_CHECKING too)."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and (
                isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"
                or isinstance(node.test, ast.Attribute) and node.test.attr == "TYPE_CHECKING"):
            out.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    return out


def _graph(type_only=False):
    """{module: {the mmemu modules it imports anywhere in its source}}: the imports
    that run, or with type_only those under ``if TYPE_CHECKING:`` as well."""
    graph = {}
    for name, (path, is_package) in MODULES.items():
        deps = set()
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        skip = set() if type_only else _type_only(tree)
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)) and id(node) not in skip:
                for target in _targets(name, is_package, node):
                    module = _own_module(target)
                    if module and module != name:
                        deps.add(module)
        graph[name] = deps
    return graph


GRAPH = _graph()                       # what runs: no cycle in it
TYPED_GRAPH = _graph(type_only=True)   # and what annotations name: no layer above


def _cycles(graph):
    """The strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(component)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _layer(module):
    """The index in LAYERS of a module: that of its longest listed prefix."""
    best = None
    for i, names in enumerate(LAYERS):
        for prefix in names:
            if module == prefix or module.startswith(prefix + "."):
                if best is None or len(prefix) > len(best[1]):
                    best = (i, prefix)
    return best[0] if best else None


def _path(graph, cycle):
    """One loop through a cycle, for the failure message: a -> b -> ... -> a."""
    start = min(cycle)
    path, seen = [start], {start}
    while True:
        nxt = min(w for w in graph[path[-1]] if w in cycle)
        if nxt in seen:
            return " -> ".join(path[path.index(nxt):] + [nxt])
        path.append(nxt)
        seen.add(nxt)


def test_the_graph_sees_function_level_imports():
    # A fixture of the checker itself: an import inside a function is an edge.
    tree = ast.parse("def f():\n    from mmemu.mm import page_alloc\n")
    node = next(n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom))
    assert _targets("mmemu.views.x", False, node) == ["mmemu.mm.page_alloc"]
    assert "mmemu.kernel.panic" in GRAPH["mmemu.mm.page_alloc"]


def test_type_checking_imports_are_type_only():
    tree = ast.parse("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                     "    from mmemu.mm.page_alloc import MmState\nimport mmemu.layout\n")
    skip = _type_only(tree)
    names = [n.module if isinstance(n, ast.ImportFrom) else n.names[0].name
             for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))
             and id(n) not in skip]
    assert names == ["typing", "mmemu.layout"]


def test_the_cycle_finder_finds_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [{"a", "b", "c"}]
    assert _path(graph, {"a", "b", "c"}) == "a -> b -> c -> a"


def test_no_import_cycle_in_mmemu():
    cycles = _cycles(GRAPH)
    assert not cycles, "import cycles:\n" + "\n".join(_path(GRAPH, c) for c in cycles)


def test_every_module_has_a_layer():
    assert [m for m in MODULES if _layer(m) is None] == []


def test_no_module_imports_a_layer_above_its_own():
    upward = [f"{m} (layer {_layer(m)}) imports {d} (layer {_layer(d)})"
              for m, deps in sorted(TYPED_GRAPH.items()) for d in sorted(deps)
              if _layer(d) > _layer(m)]
    assert not upward, "imports against the data flow:\n" + "\n".join(upward)


def test_only_the_engine_imports_unicorn():
    importers = set()
    for name, (path, _) in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                roots = [alias.name.split(".")[0] for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                roots = [(node.module or "").split(".")[0]]
            else:
                continue
            if "unicorn" in roots:
                importers.add(name)
    assert importers == {"mmemu.engine"}
