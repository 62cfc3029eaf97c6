"""The project's import graph: no cycle anywhere, and the layering holds.

Every `import` and `from ... import` of `tfposenc/`, `trainers/` and `serving/` counts,
at any depth (inside functions too). `from package import name` is an edge to
`package.name` when that is a module of the project, else to `package`. Implicit parent
package imports are not edges (a package's `__init__` importing its own submodules is
the usual layout, not a cycle of the code's own making).
"""

import ast
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOP = ("tfposenc", "trainers", "serving")


def modules():
    """`{module name: path}` of every Python file of the three top-level packages."""
    found = {}
    for top in TOP:
        for folder, _, files in os.walk(os.path.join(ROOT, top)):
            for name in files:
                if name.endswith(".py"):
                    path = os.path.join(folder, name)
                    parts = os.path.relpath(path, ROOT)[:-3].split(os.sep)
                    if parts[-1] == "__init__":
                        parts = parts[:-1]
                    found[".".join(parts)] = path
    return found


def edges(known):
    graph = {}
    for module, path in known.items():
        tree = ast.parse(open(path).read(), path)
        package = module if path.endswith("__init__.py") else module.rpartition(".")[0]
        targets = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, *([base] if base else [])])
                names = [
                    f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names
                ]
            else:
                continue
            for name in names:
                while name and name not in known and "." in name:
                    name = name.rpartition(".")[0]  # `import a.b.c` of a name inside a module
                if name in known and name != module:
                    targets.add(name)
        graph[module] = targets
    return graph


def cycles(graph):
    """The strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, found, counter = {}, {}, [], set(), [], [0]

    def visit(node):
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
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


def test_the_graph_sees_imports_inside_functions():
    graph = edges(modules())
    # cli imports the runner inside `main` (so --help does not import TensorFlow).
    assert "trainers.framework.runner" in graph["trainers.framework.cli"]
    assert len(graph) > 100


def test_no_import_cycle_in_the_project():
    assert cycles(edges(modules())) == []


def test_a_planted_cycle_is_found():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_layering_library_never_imports_trainers_and_serving_imports_no_library():
    graph = edges(modules())
    for module, targets in graph.items():
        if module.startswith("tfposenc"):
            assert not [t for t in targets if t.startswith("trainers")], module
        if module.startswith("serving"):
            assert not [t for t in targets if t.startswith(("tfposenc", "trainers"))], module


# The packages of `trainers/`, bottom up: the framework carries the experiments; the
# experiments and the delivery stand on it side by side; the entry modules on top.
FRAMEWORK = "trainers.framework"
DELIVERY = "trainers.delivery"
EXPERIMENTS = ("channelwise", "attack", "shift_invariance", "probe")


def trainers_package(module):
    """`framework`, `delivery`, an experiment's name, or `entry` (`trainers`,
    `trainers.push`, `trainers.launch`); None outside `trainers`."""
    parts = module.split(".")
    if parts[0] != "trainers":
        return None
    if len(parts) == 1 or parts[1] in ("push", "launch"):
        return "entry"
    return parts[1]


def layering_violations(graph):
    """`(module, target)` edges against the trainers' layering: the framework imports no
    other trainers package; an experiment imports only the framework (and itself);
    the delivery imports the framework only (it finds experiments by name)."""
    found = []
    for module, targets in sorted(graph.items()):
        mine = trainers_package(module)
        if mine in (None, "entry"):
            continue
        for target in sorted(targets):
            theirs = trainers_package(target)
            if theirs in (None, mine, "framework"):
                continue
            found.append((module, target))
    return found


def test_trainers_packages_point_one_way():
    graph = edges(modules())
    assert {trainers_package(m) for m in graph} >= {"framework", "delivery", *EXPERIMENTS[:3]}
    assert layering_violations(graph) == []
    # the framework finds what sits above it by name (trainers.framework.registry)
    assert not [t for t in graph[f"{FRAMEWORK}.runner"] if t.startswith(DELIVERY)]


def test_a_planted_layering_violation_is_found():
    graph = edges(modules())
    planted = {**graph, f"{FRAMEWORK}.runner": {*graph[f"{FRAMEWORK}.runner"],
                                               "trainers.channelwise.config"}}  # fmt: skip
    assert layering_violations(planted) == [(f"{FRAMEWORK}.runner", "trainers.channelwise.config")]
    planted = {**graph, "trainers.attack.data": {"trainers.channelwise.config"}}
    assert layering_violations(planted) == [("trainers.attack.data", "trainers.channelwise.config")]
    planted = {**graph, f"{DELIVERY}.cli": {"trainers.attack"}}
    assert layering_violations(planted) == [(f"{DELIVERY}.cli", "trainers.attack")]
