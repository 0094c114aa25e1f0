"""The layout is a map of the architecture: dependencies run one way, and nothing hides.

Read from the source with ``ast`` (every import, also those inside functions), so a new
import that points upward or closes a cycle fails here, whether or not it is ever executed.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("nn", "optim", "losses")

#: The layers of the architecture, lowest first; a module belongs to the longest prefix.
LAYERS = [
    ("checks", ["nn.checks", "nn.parameter"]),
    ("losses and optimizers", ["losses", "optim"]),
    ("layer math", ["nn", "nn.layer", "nn.activations", "nn.init", "nn.linear", "nn.dropout"]
     + ["nn.normalization", "nn.preprocessing", "nn.container"]),
    ("files", ["nn.files"]),
    ("training", ["nn.training"]),
    ("around", ["nn.data", "nn.gradcheck", "nn.tracing", "nn.export", "nn.estimators"]
     + ["nn.distributed", "nn.cli", "nn.__main__"]),
]  # fmt: skip
#: The upward edges allowed: Sequential's facade delegates fit, evaluate and save.
FACADE = {("nn.container", "fit"), ("nn.container", "evaluate"), ("nn.container", "save")}
MAX_LOCAL_IMPORTS = 6
MAX_MODULE_LINES = 600


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {
    module_name(path): path for package in PACKAGES for path in (ROOT / package).rglob("*.py")
}


def layer_of(module: str) -> int:
    levels = [
        (len(prefix), level)
        for level, (_, prefixes) in enumerate(LAYERS)
        for prefix in prefixes
        if module == prefix or module.startswith(prefix + ".")
    ]
    assert levels, f"{module} is in no layer of the architecture: add it to LAYERS"
    return max(levels)[1]


def imports(module: str):
    """(imported internal module, enclosing function or None, line) for every import."""
    path = MODULES[module]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}

    def context(node):
        while node in parents:
            node = parents[node]
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                return "TYPE_CHECKING"
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                return node.name
        return None

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            targets = [
                f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in MODULES else node.module
                for a in node.names
            ]
        else:
            continue
        where = context(node)
        for target in targets:
            if target.split(".")[0] in PACKAGES and where != "TYPE_CHECKING":
                yield target, where, node.lineno


EDGES = {(module, *edge) for module in MODULES for edge in imports(module)}


def test_every_imported_internal_module_exists():
    missing = sorted({(m, t) for m, t, _, _ in EDGES if t not in MODULES})
    assert not missing


def test_dependencies_run_one_way_from_lower_layers_to_higher_ones():
    upward = [
        f"{module}:{line} ({LAYERS[layer_of(module)][0]}) imports {target} "
        f"({LAYERS[layer_of(target)][0]})"
        for module, target, where, line in sorted(EDGES, key=str)
        if layer_of(target) > layer_of(module) and (module, where) not in FACADE
    ]
    assert not upward, "\n".join(upward)


def test_no_import_cycle_between_modules():
    """Counting imports inside functions; the facade's delegation is the one edge left out."""
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for module, target, where, _ in EDGES:
        if target != module and (module, where) not in FACADE:
            graph[module].add(target)
    # Tarjan's strongly connected components: a component of two or more modules is a cycle.
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
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
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    assert not cycles


def test_few_imports_hide_in_functions_and_each_says_why():
    local = []
    for module, path in MODULES.items():
        lines = path.read_text(encoding="utf-8").splitlines()
        tree = ast.parse("\n".join(lines))
        for fn in ast.walk(tree):
            if not isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            if (module, fn.name) in FACADE:
                continue
            for node in ast.walk(fn):
                if isinstance(node, ast.Import | ast.ImportFrom):
                    local.append((module, node.lineno, lines[node.lineno - 1]))
    assert len(local) <= MAX_LOCAL_IMPORTS, local
    unexplained = [entry for entry in local if "#" not in entry[2]]
    assert not unexplained


def test_no_runtime_module_is_over_600_lines():
    long = {m: n for m, p in MODULES.items() if (n := len(p.read_text().splitlines())) > 600}
    assert not long


def test_importing_the_packages_loads_neither_training_nor_slow_dependencies():
    code = (
        "import sys; import nn, losses, optim; "
        "print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('scipy', 'tqdm', 'threadpoolctl', 'sklearn', 'matplotlib', 'onnx', 'mpi4py') "
        "or m.startswith(('nn.training', 'nn.files', 'nn.data', 'nn.cli')))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert out.stdout.split() == []
    # and the lazy names are there when asked for
    code = "import nn; print(nn.fit.__module__, nn.load.__module__, nn.Callback.__module__)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert out.stdout.split() == [
        "nn.training.loop",
        "nn.files.model_file",
        "nn.training.callbacks",
    ]


@pytest.mark.parametrize("name", ["definitely_not_there", "Dense_"])
def test_an_unknown_attribute_of_nn_is_an_attribute_error(name):
    import nn

    with pytest.raises(AttributeError, match=name):
        getattr(nn, name)
