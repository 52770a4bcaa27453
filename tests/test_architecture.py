"""The package's shape: two parts, one direction.  The library (``pai.pruners``, ``pai.metrics``,
``pai.models``, ``pai.data``, ``pai.train``, ``pai.masks``, ``pai.graph``, ``pai.utils``) never imports the
compendium (``pai.compendium``: runs, stages, plots, claims), and no import cycle; every module imports; each
DVC stage depends on every pai module its notebook can reach (a missing dependency would leave stale results).

Imports are read from the source with ``ast`` -- every ``import`` statement, the ones inside functions
included -- plus the registry's dynamic loads (``pai.pruners`` imports its families by name), so a
lazy import cannot hide a cycle or a boundary crossing.
"""
import ast
import importlib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]

COMPENDIUM = "pai.compendium"
# Commands outside both parts: ``python -m pai`` and the old names of the compendium's commands (thin shims),
# and the benchmarks, which may drive anything.
ENTRY_POINTS = ["pai.__main__", "pai.notebook", "pai.claims", "pai.figindex", "pai.profiles", "pai.bench"]
TOP_LEVEL = {"__init__.py", "__main__.py", "pruners", "metrics", "models", "data", "train", "masks.py", "graph.py",
             "utils", "compendium", "bench", "notebook.py", "claims.py", "figindex.py", "profiles.py"}


def _under(module: str, names) -> bool:
    return any(module == n or module.startswith(n + ".") for n in names)


def _modules():
    out = {}
    for path in sorted((ROOT / "pai").rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _resolve(name: str) -> str | None:
    """The pai module ``name`` refers to (a function or class imported from a module: that module)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _import_nodes(tree: ast.AST, top_level: bool):
    """Import statements of ``tree``; with ``top_level`` only those run at import (not in functions)."""
    todo = [tree]
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif not (top_level and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))):
            todo += list(ast.iter_child_nodes(node))


def imports_of(source: str, module: str, is_package: bool = False, top_level: bool = False) -> set:
    """pai modules imported in ``source`` (the code of ``module``): anywhere, or only at import time."""
    found = set()
    for node in _import_nodes(ast.parse(source), top_level):
        if isinstance(node, ast.Import):
            found |= {_resolve(a.name) for a in node.names if a.name.split(".")[0] == "pai"}
            continue
        if node.level:
            base = module if is_package else module.rpartition(".")[0]
            for _ in range(node.level - 1):
                base = base.rpartition(".")[0]
            base = f"{base}.{node.module}" if node.module else base
        elif node.module and node.module.split(".")[0] == "pai":
            base = node.module
        else:
            continue
        found |= {_resolve(f"{base}.{a.name}") for a in node.names}
    return found - {None}


def _dynamic_imports() -> dict:
    pruners = importlib.import_module("pai.pruners")
    return {"pai.pruners": {f"pai.pruners.{f}" for f in pruners._FAMILIES}}


def import_graph(top_level: bool = False) -> dict:
    graph = {m: imports_of(p.read_text(), m, p.name == "__init__.py", top_level) - {m} for m, p in MODULES.items()}
    for m, extra in _dynamic_imports().items():
        graph[m] |= extra
    return graph


def test_every_module_imports():
    for module in MODULES:
        importlib.import_module(module)


def test_the_library_never_imports_the_compendium():
    library = [m for m in MODULES if not _under(m, [COMPENDIUM, *ENTRY_POINTS])]
    assert "pai.pruners" in library and "pai.train" in library
    bad = [f"{a} imports {b}" for a, deps in import_graph().items() if a in library
           for b in deps if _under(b, [COMPENDIUM, *ENTRY_POINTS])]
    assert not bad, "\n".join(bad)


def test_the_top_of_pai_shows_the_library():
    """pruners, metrics, models, data, train, masks, graph (+ utils), then the compendium, the benchmarks and
    the commands' old names; a new module goes into one of these folders."""
    top = {p.name for p in (ROOT / "pai").iterdir() if p.name != "__pycache__" and not p.name.endswith(".egg-info")}
    assert top == TOP_LEVEL, sorted(top ^ TOP_LEVEL)


def _cycle(graph: dict):
    """One import cycle as a list of modules, or None.  A submodule importing its own package (the
    registries' ``from . import register_model``) is not an edge: the package imports it last."""
    edges = {a: {b for b in deps if not a.startswith(b + ".")} for a, deps in graph.items()}
    state, stack = {}, []

    def visit(m):
        state[m] = "open"
        stack.append(m)
        for n in sorted(edges.get(m, ())):
            if state.get(n) == "open":
                return stack[stack.index(n):] + [n]
            if n not in state:
                found = visit(n)
                if found:
                    return found
        stack.pop()
        state[m] = "done"
        return None

    for m in sorted(edges):
        if m not in state:
            found = visit(m)
            if found:
                return found
    return None


def test_no_import_cycle():
    assert _cycle(import_graph()) is None, " -> ".join(_cycle(import_graph()))


def test_cycle_finder_finds_a_cycle():
    assert _cycle({"pai.a": {"pai.b"}, "pai.b": {"pai.c"}, "pai.c": {"pai.a"}}) == ["pai.a", "pai.b", "pai.c", "pai.a"]
    assert _cycle({"pai.m.x": {"pai.m"}, "pai.m": {"pai.m.x"}}) is None


def reachable(roots) -> set:
    """Every pai module that importing ``roots`` and calling into them can run: their imports (those in
    functions too), transitively, and each module's parent packages with what those import at import
    time (importing ``pai.metrics.stats`` runs ``pai/metrics/__init__.py``, not ``pai``'s lazy façade)."""
    graph, at_import = import_graph(), import_graph(top_level=True)
    seen, todo = set(), [(m, False) for m in roots]
    while todo:
        m, as_parent = todo.pop()
        if (m, as_parent) in seen or (m, False) in seen:
            continue
        seen.add((m, as_parent))
        todo += [(n, False) for n in (at_import if as_parent else graph).get(m, ())]
        parent = m.rpartition(".")[0]
        if parent:
            todo.append((parent, True))
    return {m for m, _ in seen}


def missing_deps(deps, roots) -> list:
    """Files of the pai modules ``roots`` reach that no entry of ``deps`` (a file or a folder) covers."""
    paths = sorted(MODULES[m].relative_to(ROOT).as_posix() for m in reachable(roots))
    return [p for p in paths if not any(p == d or p.startswith(d.rstrip("/") + "/") for d in deps)]


def _notebook_stages():
    group = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]["notebook"]
    for stage, item in group["foreach"].items():
        deps = [d.replace("${key}", stage).replace("${item.notebook}", item["notebook"]) for d in group["do"]["deps"]]
        yield stage, ROOT / "notebooks" / f"{item['notebook']}.py", deps


def test_each_notebook_stage_depends_on_every_module_it_reaches():
    for stage, notebook, deps in _notebook_stages():
        assert f"notebooks/{notebook.name}" in deps
        roots = imports_of(notebook.read_text(), "notebook") | {"pai.compendium.notebook"}  # the stage's cmd
        assert not missing_deps(deps, roots), f"stage {stage}: used but not a dependency"
        assert "pai/masks.py" in missing_deps([d for d in deps if d != "pai/masks.py"], roots)


def test_figure_index_stage_depends_on_every_module_it_reaches():
    deps = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]["figure_index"]["deps"]
    assert not missing_deps(deps, {"pai.compendium.figindex"})


def test_long_functions_say_why():
    """About 50 lines at most; a longer function says "Long on purpose: ..." in its docstring."""
    long = []
    for module, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                doc = ast.get_docstring(node) or ""
                start = node.body[0].end_lineno + 1 if doc else node.body[0].lineno
                if node.end_lineno - start + 1 > 55 and "Long on purpose" not in doc:
                    long.append(f"{module}.{node.name} ({node.end_lineno - start + 1} lines)")
    assert not long, long


def test_sources_cite_papers_not_our_internal_documents():
    """Comments and docstrings cite a paper or the official code, never a document a reader of the
    repository does not have (a research brief, an issue)."""
    import re

    pattern = re.compile(r"\b(the|research|our) brief\b|\bthe issue\b", re.IGNORECASE)
    files = sorted((ROOT / "pai").rglob("*.py")) + sorted((ROOT / "notebooks").glob("*.py"))
    bad = [f"{path.relative_to(ROOT)}:{i}" for path in files
           for i, line in enumerate(path.read_text().splitlines(), 1) if pattern.search(line)]
    assert not bad, bad


def test_claims_stage_depends_on_every_module_it_reaches():
    deps = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]["claims"]["deps"]
    assert not missing_deps(deps, {"pai.compendium.claims.__main__"})
