"""The house's stairs run one way: no import cycle among keras_vit's modules, counting imports anywhere.

The import graph is read with ``ast`` from the source folders that install as the package (keras_vit/,
training/ -> keras_vit.training, tflite/ -> keras_vit.tflite): ``import``/``from ... import`` statements at
the top of a file and inside function bodies, and ``importlib.import_module("keras_vit....")`` with a
literal name. ``from package import name`` points at ``package.name`` when that is a module (as
import-linter's grimp counts it). A package's implicit import by its submodules is not an edge.
"""

import ast
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROOTS = {"keras_vit": "keras_vit", "keras_vit.training": "training", "keras_vit.tflite": "tflite"}


def _modules() -> dict:
    """Module name -> file path, for every ``.py`` file under the three folders."""
    found = {}
    for package, folder in ROOTS.items():
        for dirpath, dirnames, filenames in os.walk(os.path.join(REPO, folder)):
            dirnames[:] = [d for d in dirnames if d != "__pycache__"]
            for filename in filenames:
                if filename.endswith(".py"):
                    rel = os.path.relpath(os.path.join(dirpath, filename), os.path.join(REPO, folder))[:-3]
                    parts = [p for p in rel.split(os.sep) if p != "__init__"]
                    found[".".join([package] + parts)] = os.path.join(dirpath, filename)
    return found


def _imported(node, module, path):
    """The dotted names one AST node imports (before mapping to our modules), and whether it sits in a body."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:
            package = module.split(".") if path.endswith("__init__.py") else module.split(".")[:-1]
            base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
        return [(base, alias.name) for alias in node.names]
    if (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None)) == "import_module"
            and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
        return [node.args[0].value]
    return []


def import_graph() -> dict:
    """Module -> {imported module: [(line, inside a function body)]} over our modules only."""
    modules = _modules()
    graph = {}
    for module, path in modules.items():
        with open(path, encoding="utf-8") as handle:
            tree = ast.parse(handle.read(), path)
        inner = {id(n) for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
                 for n in ast.walk(f) if n is not f}
        edges = graph.setdefault(module, {})
        for node in ast.walk(tree):
            for target in _imported(node, module, path):
                if isinstance(target, tuple):  # from base import name: base.name when that is a module
                    target = f"{target[0]}.{target[1]}" if f"{target[0]}.{target[1]}" in modules else target[0]
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != module:
                    edges.setdefault(target, []).append((node.lineno, id(node) in inner))
    return graph


def cycles(graph: dict) -> list:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10000))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_import_graph_has_no_cycle():
    graph = import_graph()
    assert len(graph) > 80 and "keras_vit.tflite.runtime" in graph and "keras_vit.training.run" in graph
    found = cycles(graph)
    detail = [" -> ".join(c) + "\n    " + "\n    ".join(
        f"{a} imports {b} (line {graph[a][b][0][0]})" for a in c for b in graph[a] if b in c) for c in found]
    assert not found, "Import cycles (a module must not import one that imports it back):\n" + "\n".join(detail)


def test_the_cycle_finder_finds_a_cycle_through_a_function_body(tmp_path):
    # The detector itself: a backward edge hidden in a function body is still an edge.
    graph = {"a": {"b": [(1, False)]}, "b": {"c": [(3, True)]}, "c": {"a": [(9, True)]}, "d": {"a": [(1, False)]}}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b": []}, "b": {}}) == []


@pytest.mark.parametrize("low,high", [
    ("keras_vit.registration", "keras_vit"), ("keras_vit.registry", "keras_vit"),
    ("keras_vit.pretrained", "keras_vit"), ("keras_vit.weights", "keras_vit.model"),
    ("keras_vit.weights", "keras_vit.factory"), ("keras_vit.weights.hub", "keras_vit.weights.loader"),
    ("keras_vit.layers", "keras_vit.model"), ("keras_vit.model", "keras_vit.factory"),
])
def test_lower_floors_never_reach_up(low, high):
    """The floors of docs/architecture.md: nothing in ``low`` imports ``high`` (or, for a leaf, any of keras_vit)."""
    graph = import_graph()
    leaf = high == "keras_vit"
    for module, edges in graph.items():
        if module == low or module.startswith(low + "."):
            up = [t for t in edges if (t.startswith("keras_vit") if leaf else t == high or t.startswith(high + "."))]
            assert not up, f"{module} imports {up}: {low} must stand below {high}"


def test_imports_inside_function_bodies_in_keras_vit_say_why():
    """Each import inside a function body in the keras_vit/ folder has a one-line reason (on it or just above)."""
    missing = []
    for module, path in _modules().items():
        if not path.startswith(os.path.join(REPO, "keras_vit") + os.sep):
            continue
        with open(path, encoding="utf-8") as handle:
            lines = handle.read().splitlines()
        tree = ast.parse("\n".join(lines), path)
        for function in ast.walk(tree):
            if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(function):
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    line, above = lines[node.lineno - 1], lines[node.lineno - 2].strip()
                    if "#" not in line and not above.startswith("#"):
                        missing.append(f"{path}:{node.lineno}: {line.strip()}")
    missing = sorted(set(missing))
    assert not missing, "Function-body imports without a one-line reason:\n" + "\n".join(missing)


def test_the_tables_import_no_tensorflow():
    code = ("import sys\nimport keras_vit\n"
            "names = keras_vit.list_models('vit_tiny_*')\n"
            "rows = keras_vit.list_pretrained('vit_tiny_*')\n"
            "from keras_vit.pretrained import find_pretrained\n"
            "from keras_vit.registry import variant_config\n"
            "assert names and rows and find_pretrained('vit_base_patch16_224') and variant_config('Ti/16')\n"
            "print(sorted(m for m in ('tensorflow', 'keras', 'numpy') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize("package,folder", [("keras_vit", "keras_vit"), ("keras_vit.weights", "keras_vit/weights"),
                                            ("keras_vit.tflite", "tflite")])
def test_package_docstrings_name_every_module(package, folder):
    path = os.path.join(REPO, folder)
    docstring = ast.get_docstring(ast.parse(open(os.path.join(path, "__init__.py"), encoding="utf-8").read()))
    names = sorted(n[:-3] if n.endswith(".py") else n for n in os.listdir(path)
                   if (n.endswith(".py") and n != "__init__.py")
                   or os.path.isfile(os.path.join(path, n, "__init__.py")))
    if package == "keras_vit":
        names += ["training", "tflite"]
    missing = [n for n in names if f"``{n}``" not in docstring and f"{package}.{n}`" not in docstring]
    assert not missing, f"{package}'s docstring does not name {missing}"
