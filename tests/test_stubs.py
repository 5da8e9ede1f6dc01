"""The type stubs of the compiled module (python/dlfast/_core/__init__.pyi and _core/ref.pyi,
written by scripts/stubs.py) name every function and constant the modules have, each function with the module's parameter
names in order: a binding added, removed or changed without regenerating the stub fails here."""

import ast
import os
import re
import types

import pytest

from dlfast import _core

PACKAGE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "python",
                       "dlfast")


def split_top_level(params):
    """'a: tuple[int, int], b: str = "x"' -> ['a: tuple[int, int]', 'b: str = "x"']."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(params):
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(params[start:i])
            start = i + 1
    if params[start:].strip():
        parts.append(params[start:])
    return [p.strip() for p in parts]


def module_signatures(module):
    """{name: [parameter names of each overload]} from pybind11's docstring signatures, and
    the set of the module's other public names (constants)."""
    functions, constants = {}, set()
    for name in dir(module):
        if name.startswith("__"):
            continue
        obj = getattr(module, name)
        if isinstance(obj, types.ModuleType):  # a submodule: its own stub file
            continue
        if not callable(obj):
            constants.add(name)
            continue
        lines = re.findall(rf"^(?:\d+\. )?{name}\((.*)\) ->", obj.__doc__ or "", re.M)
        functions[name] = [[p.split(":")[0].split("=")[0].strip() for p in split_top_level(args)]
                           for args in lines]
    return functions, constants


def stub_signatures(path):
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    functions, constants = {}, set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            functions.setdefault(node.name, []).append([a.arg for a in node.args.args])
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            constants.add(node.target.id)
        elif isinstance(node, ast.Assign):
            constants.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return functions, {c for c in constants if not c.startswith("__")}


def test_split_top_level_keeps_brackets_whole():
    assert split_top_level("a: tuple[int, int], b: str = 'x'") == ["a: tuple[int, int]",
                                                                   "b: str = 'x'"]
    assert split_top_level("") == []


@pytest.mark.parametrize("module, stub", [(_core, "__init__.pyi"), (_core.ref, "ref.pyi")],
                         ids=["_core", "_core.ref"])
def test_core_stubs_match_the_modules(module, stub):
    live_functions, live_constants = module_signatures(module)
    stub_functions, stub_constants = stub_signatures(os.path.join(PACKAGE, "_core", stub))
    hint = " (run `python scripts/stubs.py` after changing a binding)"
    assert set(stub_functions) == set(live_functions), \
        f"functions: only in the module {sorted(set(live_functions) - set(stub_functions))}, " \
        f"only in the stub {sorted(set(stub_functions) - set(live_functions))}" + hint
    for name, overloads in live_functions.items():
        assert overloads, f"{name}: no signature in its docstring"
        assert stub_functions[name] == overloads, f"{name}: parameters differ" + hint
    assert stub_constants == live_constants, hint


def test_package_says_it_is_typed():
    assert os.path.exists(os.path.join(PACKAGE, "py.typed"))
