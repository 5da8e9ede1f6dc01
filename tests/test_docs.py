"""The documentation in docs/ (issue 14) cannot drift from the code: every file path a page
names exists, every ``::: dlfast.x`` directive of the API pages names something importable,
the activation list that docs/adding-an-op.md quotes is the one in csrc/common/dispatch.h
(and the one dlfast._core reports), and every public name of a module's ``__all__`` is on
its API page. The site itself is built by ``mkdocs build --strict`` in CI (.ci/run)."""

import glob
import importlib
import os
import re

import pytest

from dlfast import _core

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = os.path.join(ROOT, "docs")
DISPATCH_H = os.path.join(ROOT, "csrc", "common", "dispatch.h")

# A path inside the repository: a top-level folder and what follows it, or a top-level file.
PATH = re.compile(r"(?<![\w./-])((?:csrc|python|tests|bench|examples|docs|scripts|\.ci)"
                  r"/[\w.*/-]*[\w*/]|README\.md|CMakeLists\.txt|pyproject\.toml|mkdocs\.yml)")
DIRECTIVE = re.compile(r"^:::\s+(\S+)", re.M)


def pages():
    """{path relative to docs/: text} of every page."""
    out = {}
    for path in sorted(glob.glob(os.path.join(DOCS, "**", "*.md"), recursive=True)):
        with open(path, encoding="utf-8") as f:
            out[os.path.relpath(path, DOCS)] = f.read()
    return out


def api_pages():
    return {name: text for name, text in pages().items() if name.startswith("api" + os.sep)}


def test_docs_exist_with_an_api_page_per_public_module():
    names = set(pages())
    for page in ("index", "architecture", "adding-an-op"):
        assert f"{page}.md" in names, page
    for module in ("dlfast", "layers", "models", "optimizers", "losses", "metrics", "callbacks",
                   "initializers", "regularizers", "ops", "utils", "cuda", "saving"):
        assert os.path.join("api", f"{module}.md") in names, module


def test_the_path_pattern_finds_paths():
    text = "see `csrc/cpu/activation.cpp`, tests/test_kernels_*.py and README.md; a/b.py no"
    assert PATH.findall(text) == ["csrc/cpu/activation.cpp", "tests/test_kernels_*.py",
                                  "README.md"]


def test_every_file_a_page_names_exists():
    missing = []
    for name, text in pages().items():
        for ref in sorted(set(PATH.findall(text))):
            ref = ref.rstrip("/")
            found = glob.glob(os.path.join(ROOT, ref)) if "*" in ref else \
                os.path.exists(os.path.join(ROOT, ref))
            if not found:
                missing.append(f"docs/{name}: {ref}")
    assert not missing, "the docs name files the repository does not have:\n" + "\n".join(missing)


def resolve(target):
    """The object a mkdocstrings identifier names (a module, or attributes below one)."""
    parts = target.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for attr in parts[i:]:
            obj = getattr(obj, attr)  # AttributeError: the target does not resolve
        return obj
    raise ImportError(target)


def test_every_api_directive_resolves():
    targets = [t for text in api_pages().values() for t in DIRECTIVE.findall(text)]
    assert len(targets) >= 13
    for target in targets:
        assert target == "dlfast" or target.startswith("dlfast."), target
        assert resolve(target) is not None, target


def dispatch_macro(name):
    """The lines of ``#define name(X) ...`` in dispatch.h, with its continuation lines."""
    with open(DISPATCH_H, encoding="utf-8") as f:
        lines = f.read().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"#define {name}(X)"))
    end = start
    while lines[end].rstrip().endswith("\\"):
        end += 1
    return lines[start:end + 1]


def test_the_activation_list_is_the_one_the_kernels_have():
    macro = dispatch_macro("DLFAST_ACTIVATIONS")
    body = " ".join(line.rstrip("\\") for line in macro).split("(X)", 1)[1]
    names = re.findall(r"X\((\w+)\)", body)
    assert names == list(_core.ACTIVATIONS), (names, _core.ACTIVATIONS)
    assert list(_core.ACTIVATIONS.values()) == list(range(len(names)))


def test_adding_an_op_quotes_the_activation_list_as_dispatch_h_has_it():
    """The worked example appends softplus to the list as the page quotes it. The quote must
    be dispatch.h's line, or that line as it stood before activations were appended to it
    (so that adding an activation does not make the page change: issue 14)."""
    with open(os.path.join(DOCS, "adding-an-op" + ".md"), encoding="utf-8") as f:
        doc = f.read()
    quote = re.search(r"^#define DLFAST_ACTIVATIONS\(X\)(.*)$", doc, re.M)
    assert quote, "docs/adding-an-op.md must quote csrc/common/dispatch.h's DLFAST_ACTIVATIONS"
    quoted = re.findall(r"X\((\w+)\)", quote.group(1))
    macro = " ".join(line.rstrip("\\") for line in dispatch_macro("DLFAST_ACTIVATIONS"))
    names = re.findall(r"X\((\w+)\)", macro.split("(X)", 1)[1])
    assert quoted and quoted == names[:len(quoted)], (
        f"docs/adding-an-op.md quotes DLFAST_ACTIVATIONS as {quoted}; csrc/common/dispatch.h "
        f"has {names}: the quote must be the line or its start")


# module -> the name of its API page, docs/api/<name> plus ".md" (a module documented on
# another module's page says so here)
MODULE_PAGES = {
    "dlfast.distributed": "distributed", "dlfast.distributed.callbacks": "distributed",
    "dlfast": "dlfast", "dlfast.layers": "layers", "dlfast.models": "models",
    "dlfast.optimizers": "optimizers", "dlfast.optimizers.schedules": "optimizers",
    "dlfast.losses": "losses", "dlfast.metrics": "metrics", "dlfast.callbacks": "callbacks",
    "dlfast.initializers": "initializers", "dlfast.regularizers": "regularizers",
    "dlfast.ops": "ops", "dlfast.utils": "utils", "dlfast.cuda": "cuda",
    "dlfast.cuda.ops": "cuda", "dlfast.saving": "saving", "dlfast.datasets": "datasets",
    "dlfast.generative": "datasets", "dlfast.interop": "interop",
}


@pytest.mark.parametrize("module", sorted(MODULE_PAGES))
def test_every_public_name_is_on_its_api_page(module):
    page_path = os.path.join("docs", "api", MODULE_PAGES[module] + ".md")
    with open(os.path.join(ROOT, page_path), encoding="utf-8") as f:
        page = f.read()
    mod = importlib.import_module(module)
    public = getattr(mod, "__all__", None)
    if public is None:  # no __all__: what the module defines itself, as mkdocstrings shows it
        public = [n for n, v in vars(mod).items() if not n.startswith("_")
                  and getattr(v, "__module__", None) == module]
    whole = re.search(rf"^:::\s+{re.escape(module)}\s*$", page, re.M)
    members = None
    if whole:  # an explicit members list narrows a module directive to what it names
        rest = page[whole.end():]
        listed = re.match(r"\s*options:(?:\n[ \t]+.*)*", rest)
        block = listed.group(0) if listed else ""
        found = re.search(r"members:\s*\[([^\]]*)\]", block) or \
            re.search(r"members:\s*\n((?:[ \t]+- .*\n?)+)", block)
        if found:
            members = set(re.findall(r"\w+", found.group(1)))
    missing = [n for n in public
               if not (whole and (members is None or n in members))
               and not re.search(rf"(?<![\w]){re.escape(n)}(?![\w])", page)]
    assert not missing, f"{page_path} lacks {module}'s {missing}"
