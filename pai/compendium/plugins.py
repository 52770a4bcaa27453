"""Plugins: a researcher's own pruners and models in the compendium, without editing pai.

A plugin is an importable Python module that registers pruners (``@pai.pruners.register_pruner``) or
models (``@pai.models.register_model``) when imported.  A stage names its plugins in its params::

    plugins: [my_pruner]          # or mypkg.pruners; the module must be importable (PYTHONPATH, pip)
    methods: [random, snip, layer-magnitude]

and an installed package can declare them once for every stage through the entry-point group
``pai.compendium.plugins`` (``[project.entry-points."pai.compendium.plugins"] mine = "mypkg.pruners"`` in its
``pyproject.toml``).  :func:`load` imports both before anything looks a name up: the notebook runner
before it checks the params (:mod:`pai.compendium.notebook`), the kernel when the notebook collects its params
(:func:`pai.compendium.params.stage_params`), and every run (:func:`pai.compendium.runs.run_one`, to which
:func:`pai.compendium.runs.sweep` passes the modules its process loaded), so worker processes (spawned, or Ray
tasks on other machines) import them too.

A run's spec carries the modules that provide its pruner, its meta-pruner's ``generator`` and its
model (:func:`providers`; the ``plugins`` entry of ``spec.json``).  Specs that use no plugin have no
such entry, so their run ids are unchanged; a plugin run's id includes the module's name.

Security: importing a module runs its code.  Only names the user listed (in params, ``--plugin``, or an
installed package's entry point) are imported, and only dotted Python identifiers: a path, a file name
or anything else is refused with one line.  A spec names its plugins, and :func:`pai.compendium.runs.run_one`
imports them, so a spec from someone else is code from someone else: ``python -m pai sweep`` imports
only the plugins also given with ``--plugin``, and reading a run's files back (tables, claims) imports
nothing.
"""
from __future__ import annotations

import importlib
import re
import sys
from typing import Dict, Iterable, List, Optional, Tuple

MODULE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
GROUP = "pai.compendium.plugins"  # the entry-point group an installed package declares its plugin modules in

_LOADED: List[str] = []  # modules imported by load(), in order
_PROVIDERS: Dict[Tuple[str, str], str] = {}  # (kind, name) -> the module that registered it
_ENTRY_POINTS_LOADED = False


def check_names(modules, where: str = "plugins") -> List[str]:
    """``modules`` as a list of module names; a :class:`pai.utils.errors.UserError` (one line) for anything that is
    not a list of dotted identifiers (``mypkg.pruners``): a path, a ``.py`` file name, an empty string."""
    from pai.utils.errors import UserError

    if modules is None:
        return []
    if isinstance(modules, str) or not isinstance(modules, (list, tuple)):
        raise UserError(f"{where} must be a list of module names, like [mypkg.pruners], got {modules!r}")
    for m in modules:
        if not isinstance(m, str) or not MODULE_NAME.match(m) or m.endswith(".py"):  # x.py: a file, surely
            hint = (f" (for a file, put its folder on PYTHONPATH and list {_stem(m)!r})"
                    if isinstance(m, str) and (m.endswith(".py") or "/" in m or "\\" in m) else "")
            raise UserError(f"{where}: {m!r} is not a module name; give an importable dotted name like "
                            f"mypkg.pruners{hint}")
    return list(modules)


def _stem(path: str) -> str:
    return re.split(r"[\\/]", path)[-1].removesuffix(".py")


def _registered() -> Dict[str, set]:
    from pai import models, pruners

    return {"pruner": set(pruners.names()), "model": set(models.model_names())}


def _registries() -> Dict[str, object]:
    from pai.models import MODELS
    from pai.pruners import PRUNERS

    return {"pruner": PRUNERS, "model": MODELS}


def _import(module: str, where: str) -> None:
    from pai.utils.errors import UserError

    if module in _LOADED:
        return
    already = module in sys.modules
    before = _registered()
    try:
        importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name and (module == e.name or module.startswith(e.name + ".")):
            raise UserError(f"{where}: plugin module {module!r} not found; put its folder on PYTHONPATH or "
                            f"pip install its package") from None
        raise
    after = _registered()
    for kind, names in after.items():
        for name in sorted(names - before[kind]):
            _PROVIDERS.setdefault((kind, name), module)
    if already:  # imported before load() was asked: its entries were registered then, find them by origin
        for kind, reg in _registries().items():
            for name in reg.names():
                origin = getattr(reg.get(name), "__module__", "") or ""
                if origin == module or origin.startswith(module + "."):
                    _PROVIDERS.setdefault((kind, name), module)
    _LOADED.append(module)


def entry_point_modules() -> List[str]:
    """The modules installed packages declare in the ``pai.compendium.plugins`` entry-point group."""
    from importlib.metadata import entry_points

    return [ep.module for ep in entry_points(group=GROUP)]


def load(modules: Optional[Iterable[str]] = (), *, entry_points: bool = True, where: str = "plugins") -> List[str]:
    """Import the plugin ``modules`` (checked by :func:`check_names`) and, with ``entry_points``, those of
    the ``pai.compendium.plugins`` entry-point group (once per process); return the modules loaded so far."""
    global _ENTRY_POINTS_LOADED
    names = check_names(list(modules or []), where)
    if entry_points and not _ENTRY_POINTS_LOADED:
        _ENTRY_POINTS_LOADED = True
        names = check_names(entry_point_modules(), f"entry points {GROUP}") + names
    for m in names:
        _import(m, where)
    return list(_LOADED)


def loaded() -> List[str]:
    return list(_LOADED)


def provider(kind: str, name: Optional[str]) -> Optional[str]:
    """The plugin module that registered ``name`` (``kind``: ``pruner`` or ``model``), None for pai's own."""
    return _PROVIDERS.get((kind, name)) if isinstance(name, str) else None


def methods() -> List[str]:
    """The pruners the loaded plugins registered, sorted."""
    return sorted(name for kind, name in _PROVIDERS if kind == "pruner")


def providers(method: str, options: Optional[dict] = None, model: Optional[str] = None) -> Tuple[str, ...]:
    """The plugin modules a run needs: those that registered its ``method``, the ``generator`` option of a
    meta-pruner and its ``model`` (a ``-w<factor>`` suffix is the base model's); sorted, each once."""
    found = {provider("pruner", method), provider("pruner", (options or {}).get("generator"))}
    if model is not None:
        found.add(provider("model", model) or provider("model", re.sub(r"-w\d+(\.\d+)?$", "", model)))
    return tuple(sorted(m for m in found if m))
