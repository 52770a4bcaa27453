"""Method names as tables, figures and the claims scoreboard show them: a method's faithful default
is its plain name; a *variant* (the same method with an option that changes what it does, e.g. SynFlow
pruning to an exact count instead of the official strict threshold) gets its own label, such as
``"synflow (exact count)"``.  Figures give a variant its method's colour and a different line style,
marker or hatch (``pai.compendium.plots.style_of``), so the faithful and the corrected method sit side by side
and cannot be confused.

A variant is registered once, at the bottom of this module (not beside the pruner, so that naming a
run, in a figure or the claims scoreboard, never imports the pruners and torch)::

    register_variant("synflow", "synflow (exact count)", options={"exact_count": True})
    register_variant("phew", "phew (graph walk)", method="phew-graph")   # a separately named pruner

and :func:`label_of` names a run from its method and prune options (:func:`label_row` from a
``results.csv`` row, whose options are the ``opt_*`` columns; :func:`add_labels` a whole table).
Options not registered as a variant (a degree, an allocation, PAGS's generator) do not change the label.
"""
from __future__ import annotations

import math
from typing import Any, Dict, List, Mapping, NamedTuple, Optional


class Variant(NamedTuple):
    base: str  # the method whose colour it shares
    label: str
    method: str  # the pruner name the runs carry (the base's own name unless registered apart)
    options: Dict[str, Any]


_VARIANTS: List[Variant] = []


def register_variant(base: str, label: str, *, method: Optional[str] = None,
                     options: Optional[Mapping[str, Any]] = None) -> Variant:
    """Name runs of ``method`` (default ``base``) whose options include ``options`` as ``label``."""
    if not options and (method is None or method == base):
        raise ValueError("a variant differs from its base by its options or by its pruner name")
    if any(v.label == label for v in _VARIANTS):
        _VARIANTS[:] = [v for v in _VARIANTS if v.label != label]  # re-registering replaces
    variant = Variant(base, label, method or base, dict(options or {}))
    _VARIANTS.append(variant)
    return variant


def variants(base: Optional[str] = None) -> List[Variant]:
    """Registered variants (of ``base``), in registration order."""
    return [v for v in _VARIANTS if base is None or v.base == base]


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return str(a).lower() == str(b).lower()
    try:
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=0.0)
    except (TypeError, ValueError):
        return str(a) == str(b)


def label_of(method: str, options: Optional[Mapping[str, Any]] = None) -> str:
    """The label of a run of ``method`` with ``options``: the most specific registered variant it
    matches, else the method name.  A mask shuffled within its layers (the ``shuffle`` option of
    ``pai.prune``, Frankle et al., ICLR 2021) is prefixed, ``"layer-shuffled snip (train mode)"``: it is
    not a variant of its method (it keeps only the method's layer-wise densities), so it never counts as
    one where a claim gathers a method's variants."""
    options = {k: v for k, v in (options or {}).items() if not _missing(v)}
    best, best_size = str(method), -1
    for v in _VARIANTS:
        if v.method != method:
            continue
        if all(k in options and _same(options[k], want) for k, want in v.options.items()):
            if len(v.options) > best_size:
                best, best_size = v.label, len(v.options)
    shuffle = options.get("shuffle")
    return f"{shuffle}-shuffled {best}" if shuffle else best


def unshuffled(label: str) -> str:
    """The label of the method a ``"layer-shuffled ..."`` label shuffled (any other label as it is)."""
    head, _, rest = str(label).partition("-shuffled ")
    return rest if rest and " " not in head else str(label)


def label_row(row: Mapping[str, Any]) -> str:
    """:func:`label_of` a table row: ``method`` and its ``opt_<name>`` columns."""
    opts = {k[4:]: v for k, v in row.items() if k.startswith("opt_")}
    return label_of(row["method"], opts)


def add_labels(table):
    """``table`` (a results DataFrame) with a ``label`` column: :func:`label_row` of every row."""
    return table.assign(label=[label_row(r) for r in table.to_dict("records")])


def base_of(label: str) -> str:
    """The method a label belongs to: a registered variant's base, else the text before `` (``."""
    for v in _VARIANTS:
        if v.label == label or v.method == label:
            return v.base
    return str(label).split(" (")[0]


def variant_rank(label: str) -> int:
    """0 for a method's default; 1, 2, ... for its variants in registration order (an unregistered
    label with a ``" ("`` suffix counts as the base's first free rank)."""
    base = base_of(label)
    if label == base:
        return 0
    names = [v.label for v in variants(base)]
    return names.index(label) + 1 if label in names else len(names) + 1


# The registered variants (faithful defaults are the plain method names; add a method's variants here).
# Each is a named option of its pruner (the docstring there gives the reason); the notebooks plot it
# beside the faithful default wherever the two differ.
register_variant("synflow", "synflow (exact count)", options={"rule": "exact"})
register_variant("synflow-l2", "synflow-l2 (exact count)", options={"rule": "exact"})
register_variant("phew", "phew (graph walk)", options={"walk": "graph"})
register_variant("npb", "npb (paper normaliser)", options={"path_norm": "max"})
register_variant("rreg", "rreg (exact degrees)", options={"exact_degrees": True})
register_variant("random-graph", "random-graph (fixed count)", options={"fixed_count": True})
# Not a correction but the other published protocol: the PHEW repo scores SNIP and GraSP with batch
# statistics (train mode); the SynFlow and NPB repos, and pai's default, in eval mode.
register_variant("snip", "snip (train mode)", options={"train_mode": True})
register_variant("grasp", "grasp (train mode)", options={"train_mode": True})


def resolve(name: str):
    """``(method, options)`` of a method name or a registered variant label: what a stage's ``methods``
    list may hold, e.g. ``["synflow", "synflow (exact count)"]``."""
    for v in _VARIANTS:
        if v.label == name:
            return v.method, dict(v.options)
    return name, {}

# PEGS at the NeurIPS'23 tables' other setting (their dev code's default, and the pruner's, is 500 dense
# iterations); a label of its own so that two PEGS rows of one seed never pair by accident.
register_variant("pegs", "pegs (100 iterations)", options={"pretrain_iterations": 100})
