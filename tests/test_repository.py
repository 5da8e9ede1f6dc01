"""Rules about the code itself (issue 14): python/dlfast has no import cycle, every file a
comment or docstring names exists in the repository, and the kernel table, the activations and
the losses are each listed once (csrc/common/dispatch.h) and reach Python from there."""

import ast
import os
import re

import numpy as np

from dlfast import _core, ops

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(ROOT, "python", "dlfast")
COMPILED = {"_core", "_cuda"}  # extension modules: leaves, they import nothing of dlfast


def package_modules():
    """{dotted name: path} of every module of python/dlfast."""
    mods = {}
    for folder, _, files in os.walk(PACKAGE):
        for f in files:
            if f.endswith(".py"):
                path = os.path.join(folder, f)
                name = os.path.relpath(path, os.path.dirname(PACKAGE))[:-3].replace(os.sep, ".")
                mods[name.removesuffix(".__init__")] = path
    return mods


def imported(name, path, mods, node):
    """The dlfast modules one import statement of module `name` (at `path`) loads."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name in mods]
    package = name.split(".") if path.endswith("__init__.py") else name.split(".")[:-1]
    if node.level:
        base = ".".join(package[:len(package) - node.level + 1] + [node.module or ""]).strip(".")
    else:
        base = node.module or ""
    if base not in mods:
        return []
    out = []
    for alias in node.names:
        if alias.name in COMPILED:
            continue
        sub = f"{base}.{alias.name}"
        out.append(sub if sub in mods else base)  # a submodule, or a name from `base`
    return out


def import_graph():
    """{module: set of modules it imports}, counting every import, at the top of a module or
    inside a function (a deferred import hides a cycle; it does not remove it)."""
    mods = package_modules()
    graph = {}
    for name, path in mods.items():
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read(), path)
        graph[name] = {m for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))
                       for m in imported(name, path, mods, node) if m != name}
    return graph


def find_cycle(graph):
    """One cycle [a, b, ..., a] of the graph, or None (depth-first search)."""
    state, stack = {}, []

    def visit(v):
        state[v] = "open"
        stack.append(v)
        for w in sorted(graph[v]):
            if state.get(w) == "open":
                return stack[stack.index(w):] + [w]
            if w not in state:
                found = visit(w)
                if found:
                    return found
        stack.pop()
        state[v] = "done"
        return None

    for v in sorted(graph):
        if v not in state:
            found = visit(v)
            if found:
                return found
    return None


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_the_import_graph_sees_deferred_and_relative_imports():
    graph = import_graph()
    assert "dlfast.backend.cuda" in graph["dlfast.models.model"]  # inside Model.to
    assert "dlfast.ops" in graph["dlfast.cuda.ops"]  # from ..ops import ...
    assert "dlfast.registry" in graph["dlfast._configs"]  # from . import a, b


def test_python_package_has_no_import_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_every_file_named_in_the_repository_exists():
    # Names like README.md or bench/gpu_check.sh in code, comments and docs must be files of
    # the repository (the planning documents outside it are not).
    pattern = re.compile(r"\b[\w./-]+\.(?:md|sh)\b")
    missing = []
    for folder in ("python", "csrc", "tests", "bench", "examples", "docs", ".ci"):
        for base, _, files in os.walk(os.path.join(ROOT, folder)):
            for f in files:
                if f.endswith((".py", ".cpp", ".h", ".cu", ".cuh", ".md", ".sh", ".txt")) or \
                        f == "run":
                    path = os.path.join(base, f)
                    with open(path, encoding="utf-8", errors="replace") as fh:
                        text = fh.read()
                    for ref in set(pattern.findall(text)):
                        candidates = [os.path.join(ROOT, ref), os.path.join(base, ref)]
                        if not any(os.path.exists(c) for c in candidates):
                            missing.append(f"{os.path.relpath(path, ROOT)}: {ref}")
    for top in ("README.md", "CMakeLists.txt", "pyproject.toml"):
        with open(os.path.join(ROOT, top), encoding="utf-8") as fh:
            for ref in set(pattern.findall(fh.read())):
                if not os.path.exists(os.path.join(ROOT, ref)):
                    missing.append(f"{top}: {ref}")
    assert not missing, "references to files the repository does not have:\n" + \
        "\n".join(sorted(missing))


def test_activation_and_loss_codes_come_from_the_kernels_lists():
    # One list each in csrc/common/dispatch.h; Python reads it, so codes cannot drift.
    assert ops.ACTIVATIONS == _core.ACTIVATIONS
    assert ops.LOSSES == _core.LOSSES
    assert list(_core.ACTIVATIONS.values()) == list(range(len(_core.ACTIVATIONS)))
    assert list(_core.LOSSES.values()) == list(range(len(_core.LOSSES)))
    assert {"linear", "relu", "sigmoid", "tanh", "softmax", "leaky_relu"} <= set(ops.ACTIVATIONS)
    for name, code in ops.ACTIVATIONS.items():  # every listed activation runs element-wise
        x = np.linspace(-2, 2, 12).reshape(3, 4)
        y = _core.activation_forward(x, code, 0.2)
        assert y.shape == x.shape and np.isfinite(y).all(), name


def test_kernel_table_is_listed_by_name():
    # dispatch.cpp fills the table from DLFAST_KERNELS by field name and static_asserts that
    # the list covers the struct; here: the list has no repeats and names real entry points.
    names = _core.KERNELS
    assert len(names) == len(set(names)) and len(names) >= 32
    with open(os.path.join(ROOT, "csrc", "common", "dispatch.h"), encoding="utf-8") as f:
        header = f.read()
    struct = header[header.index("struct KernelTable {"):]
    struct = struct[:struct.index("\n};")]
    fields = re.findall(r"\(\*(\w+)\)\(", struct)
    assert fields == list(names)  # same entries, same order as declared


def test_no_python_file_over_400_lines_and_no_cpp_file_over_600():
    # Issue 14's size rule, kept: a file past it is split by what it holds.
    limits = {".py": 400, ".cpp": 600, ".h": 600, ".cu": 600, ".cuh": 600}
    too_long = []
    for folder in ("python", "csrc"):
        for base, _, files in os.walk(os.path.join(ROOT, folder)):
            for f in files:
                limit = limits.get(os.path.splitext(f)[1])
                if limit:
                    with open(os.path.join(base, f), encoding="utf-8") as fh:
                        n = sum(1 for _ in fh)
                    if n > limit:
                        too_long.append(f"{os.path.relpath(os.path.join(base, f), ROOT)}: {n}")
    assert not too_long, "over the size limit:\n" + "\n".join(too_long)
