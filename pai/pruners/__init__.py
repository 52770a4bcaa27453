"""The pruner registry and the one entry point ``pai.prune``.

A pruner is registered with ``@register_pruner("name")`` and has the signature
``fn(model, density, *, seed, data=None, **options) -> Mask``.  :func:`prune` wraps every call with
what all pruners promise: the density is checked (a density that keeps no weight is refused before any
work), every RNG is seeded for the call and the caller's global RNG states (python, numpy, torch CPU,
initialised CUDA) are restored afterwards, the model's weights, buffers and train/eval mode are
restored (a pruner returns a mask and leaves the model as it came), and the returned mask is checked
against the model and for degenerate results (:mod:`.checks`: empty layers, no input->output path,
a count more than 10% off the target, nothing kept).

Every pruner's default is the method as published: on identical weights it gives the official code's
mask (the same distribution for random methods).  A variant we believe is better is a named option,
documented with its reason in the pruner's docstring.
"""
from __future__ import annotations

import copy
import importlib
from typing import Any, Mapping, Optional

from torch import nn

from ..masks import SHUFFLES, Mask, check_mask, layer_shuffle, prunable_parameters, validate_density
from ..registry import Registry
from ..seed import preserved_rng, seed_everything
from .checks import DegenerateMaskWarning, check_degenerate  # noqa: F401 (re-exported)

PRUNERS = Registry("pruner")
register_pruner = PRUNERS.register

# One file per method family; importing registers them.
_FAMILIES = ("random", "saliency", "synflow", "phew", "expanders", "npb", "sampling")
_loaded = False


def _load_all() -> None:
    global _loaded
    if _loaded:
        return
    for fam in _FAMILIES:
        try:
            importlib.import_module(f"{__name__}.{fam}")
        except ModuleNotFoundError as e:  # a family not written yet must not break the others
            if e.name != f"{__name__}.{fam}":
                raise
    _loaded = True


def get(name: str):
    _load_all()
    return PRUNERS.get(name)


def names() -> list[str]:
    _load_all()
    return PRUNERS.names()


DATA_DEPENDENT: set = set()  # filled by pruners that need training data (``needs_data``)


def needs_data(fn):
    """Mark a pruner as data-dependent: :func:`prune` refuses to call it without ``data``."""
    fn.needs_data = True
    return fn


def revised(revision: int, why: str):
    """Mark a pruner whose default mask changed: revision ``r`` > 1 enters the run id of every spec that
    uses it (``pai.spec.run_id``), so a run cached under the old default is never taken for the new one,
    while the ids of every other method stay as they were.  ``why`` says what changed."""

    def deco(fn):
        fn.revision, fn.revision_note = int(revision), why
        return fn

    return deco


def revision_of(method: str) -> int:
    """A method's revision (1 for ``dense``, unknown names and unrevised pruners)."""
    if method == "dense" or method not in names():
        return 1
    return int(getattr(get(method), "revision", 1))


def returns_state(fn):
    """Mark a pruner that, called with ``return_state=True``, returns ``(mask, state_dict)``: the weights
    its mask was chosen on, which training must start from (PEGS trains densely first)."""
    fn.returns_state = True
    return fn


def prune(model: nn.Module, method: str, density: float, *, seed: int = 0, data=None,
          degenerate: str = "warn", **options) -> Mask:
    """Prune ``model`` at ``density`` (fraction of prunable weights kept) with ``method``.

    Returns a mask ``{weight name: bool tensor}``; the model itself is not modified, and neither are
    the caller's global RNG streams.  ``degenerate``: what a degenerate mask (empty layers, no
    input->output path, a count more than 10% off the target) gives -- ``"warn"`` (a
    :class:`DegenerateMaskWarning`), ``"raise"`` (``ValueError``) or ``"ignore"``; a mask that keeps
    no weight is always an error.

    ``shuffle="layer"`` (an option every pruner takes) permutes the pruner's mask within each layer,
    seeded by ``seed`` (:func:`pai.masks.layer_shuffle`): the sanity check of Frankle et al., ICLR 2021,
    Sec. 5 -- same layer-wise densities, the choice within each layer forgotten.
    """
    density = validate_density(density)
    shuffle = options.pop("shuffle", None)
    if shuffle is not None and shuffle not in SHUFFLES:
        raise ValueError(f"shuffle must be one of {', '.join(SHUFFLES)} (or left out), got {shuffle!r}")
    fn = get(method)
    total = sum(p.numel() for p in prunable_parameters(model).values())  # raises for no prunable layer
    if round(density * total) == 0:
        raise ValueError(f"density {density:g} keeps no weight of the {total} prunable weights of "
                         f"{type(model).__name__}: the smallest useful density is {1 / total:.3g}")
    if getattr(fn, "needs_data", False) and data is None:
        raise ValueError(f"pruner {method!r} is data-dependent: pass data=pai.data.load_dataset(...)")
    state = copy.deepcopy(model.state_dict())
    modes = {name: m.training for name, m in model.named_modules()}
    with preserved_rng():
        seed_everything(seed)
        try:
            mask = fn(model, density, seed=seed, data=data, **options)
        finally:
            model.load_state_dict(state)
            for name, m in model.named_modules():
                m.training = modes[name]
            for p in model.parameters():
                p.grad = None
    extra = None
    if isinstance(mask, tuple):  # (mask, state): PEGS with return_state=True also hands back its weights
        mask, extra = mask
    mask = {k: v.detach().bool() for k, v in mask.items()}
    if shuffle == "layer":
        mask = layer_shuffle(mask, seed)
    check_mask(model, mask)
    density_free = getattr(fn, "density_free", None)
    check_degenerate(model, mask, density, method, degenerate, getattr(fn, "degenerate_hint", None), options,
                     options.get("input_shape"), check_count=not (density_free and density_free(options)))
    return mask if extra is None else (mask, extra)


def option_names(fn) -> Optional[list]:
    """The options a pruner takes (its keyword-only parameters but ``seed`` and ``data``); None when it
    takes any (``**options``)."""
    import inspect

    params = inspect.signature(fn).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return None
    return [n for n, p in params.items() if p.kind is inspect.Parameter.KEYWORD_ONLY and n not in ("seed", "data")]


def check_options(method: str, options: Mapping[str, Any]) -> None:
    """``ValueError`` naming an option that pruner ``method`` does not take, with the valid ones, before
    any pruning (``dense`` takes none)."""
    valid = [] if method == "dense" else option_names(get(method))
    if valid is None:
        return
    if method != "dense":
        valid = [*valid, "shuffle"]  # handled by prune() for every pruner
    for key in options:
        if key not in valid:
            raise ValueError(f"method {method!r} has no option {key!r}; valid: {', '.join(valid) or '(none)'}")
