"""The pruner registry and the one entry point ``pai.prune``.

A pruner is a function ``fn(model, density, *, seed, data=None, <options>) -> Mask`` registered with
its metadata in one frozen record (:class:`Pruner`), the way timm registers a model with its config::

    @register_pruner("snip", needs_data=True)
    def prune_snip(model, density, *, seed, data=None, samples_per_class=10, ...): ...

:func:`prune` is the contract every method shares: ``data`` may be a :class:`pai.data.Dataset`, an
``(x, y)`` pair of tensors or an iterable of ``(x, y)`` batches (a ``DataLoader``); ``input_shape``
is accepted by every method (inferred from ``data``, else ``model.input_shape``) and handed to those
that trace the network; options are checked against the record before any work.  Around every call
it promises: the density is checked (a density that keeps no weight is refused before any work),
every RNG is seeded for the call and the caller's global RNG states (python, numpy, torch CPU,
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
import inspect
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Optional, Sequence, Tuple

from torch import nn

from pai.masks import SHUFFLES, Mask, check_mask, check_materialized, layer_shuffle, prunable_parameters, validate_density
from pai.utils.registry import Registry
from pai.utils.seed import preserved_rng, seed_everything
from pai.pruners.checks import DegenerateMaskWarning, check_degenerate  # noqa: F401 (re-exported)

PRUNERS = Registry("pruner")

# what every pruner is called with, so never one of its options
CONTRACT = ("seed", "data", "input_shape")


@dataclass(frozen=True)
class Pruner:
    """One registered method: its function and everything :func:`prune` needs to know of it.

    ``needs_data``: refused without ``data`` (SNIP, GraSP, PEGS).  ``needs_input_shape``: traces the
    network (SynFlow's all-ones input, PHEW's and NPB's graph), refused when no shape can be found.
    ``takes_input_shape``: the function has an ``input_shape`` parameter and gets the resolved shape
    (those that trace, and meta-pruners that forward it to their base method).  ``returns_state``:
    with ``return_state=True`` it returns ``(mask, state_dict)``, the weights its mask was chosen on,
    which training must start from (PEGS trains densely first).  ``revision`` r > 1: the default mask
    changed (``revision_note`` says how); it enters the run id of every spec using the method
    (``pai.compendium.spec.run_id``), so a run cached under the old default is never taken for the new one.
    ``options``: the option names it takes (None: any).  ``density_free(options) -> bool``: for these
    options the count does not follow ``density`` (no count check).  ``degenerate_hint(options, kinds)
    -> str | None``: the fix to name when its mask is degenerate (:mod:`.checks`).
    """

    name: str
    fn: Callable = field(repr=False, compare=False)
    needs_data: bool = False
    needs_input_shape: bool = False
    takes_input_shape: bool = False
    returns_state: bool = False
    revision: int = 1
    revision_note: str = ""
    options: Optional[Tuple[str, ...]] = None
    density_free: Optional[Callable[[Mapping[str, Any]], bool]] = field(default=None, repr=False, compare=False)
    degenerate_hint: Optional[Callable] = field(default=None, repr=False, compare=False)

    def __call__(self, model: nn.Module, density: float, **kwargs):
        """The bare function (no checks, no RNG handling): what meta-pruners call on their base."""
        return self.fn(model, density, **kwargs)

    @classmethod
    def of(cls, name: str, fn: Callable) -> "Pruner":
        """The record of ``fn`` registered without metadata (a plain function in the registry)."""
        return fn if isinstance(fn, Pruner) else cls(name, fn, options=keyword_options(fn),
                                                     takes_input_shape=_has_param(fn, "input_shape"))


def _has_param(fn: Callable, name: str) -> bool:
    return name in inspect.signature(fn).parameters


def keyword_options(*fns: Callable) -> Optional[Tuple[str, ...]]:
    """The option names of ``fns`` together: their keyword-only parameters but :data:`CONTRACT`'s,
    in order, each once; None when the first takes any (``**options``) and no later one lists them."""
    names, open_ended = [], False
    for i, fn in enumerate(fns):
        for n, p in inspect.signature(fn).parameters.items():
            if p.kind is inspect.Parameter.VAR_KEYWORD:
                open_ended = open_ended or i == 0
            elif p.kind is inspect.Parameter.KEYWORD_ONLY and n not in CONTRACT and n not in names:
                names.append(n)
    return None if open_ended and len(fns) == 1 else tuple(names)


def register_pruner(name: str, *, needs_data: bool = False, needs_input_shape: bool = False,
                    returns_state: bool = False, revision: int = 1, revision_note: str = "",
                    forwards: Sequence[Callable] = (), density_free: Optional[Callable] = None,
                    degenerate_hint: Optional[Callable] = None) -> Callable:
    """Decorator registering ``fn`` as pruner ``name`` with its :class:`Pruner` record; returns ``fn``
    unchanged.  Its options are its keyword-only parameters, plus those of ``forwards`` (the functions
    a pruner hands its ``**options`` to).  ``revision`` > 1 needs a ``revision_note``."""
    if isinstance(revision, bool) or not isinstance(revision, int) or revision < 1:
        raise ValueError(f"pruner {name!r}: revision must be an int >= 1, got {revision!r}")
    if revision > 1 and not revision_note:
        raise ValueError(f"pruner {name!r}: revision {revision} needs a revision_note saying what changed")

    def deco(fn: Callable) -> Callable:
        PRUNERS.register(name)(Pruner(
            name, fn, needs_data=bool(needs_data), needs_input_shape=bool(needs_input_shape),
            takes_input_shape=_has_param(fn, "input_shape"), returns_state=bool(returns_state),
            revision=revision, revision_note=revision_note, options=keyword_options(fn, *forwards),
            density_free=density_free, degenerate_hint=degenerate_hint))
        return fn

    return deco


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


def get(name: str) -> Pruner:
    """The :class:`Pruner` record of method ``name`` (``KeyError`` listing the valid names)."""
    _load_all()
    return Pruner.of(name, PRUNERS.get(name))


def names() -> list[str]:
    _load_all()
    return PRUNERS.names()


def revision_of(method: str) -> int:
    """A method's revision (1 for ``dense``, unknown names and unrevised pruners)."""
    if method == "dense" or method not in names():
        return 1
    return get(method).revision


def resolve_input_shape(model: nn.Module, input_shape=None, data=None) -> Optional[Tuple[int, ...]]:
    """The shape of one input without the batch dimension: ``input_shape`` as given, else that of
    ``data``'s training inputs, else ``model.input_shape``, else None."""
    if input_shape is None and data is not None:
        input_shape = tuple(data.x_train.shape[1:])
    if input_shape is None:
        input_shape = getattr(model, "input_shape", None)
    if input_shape is None:
        return None
    if isinstance(input_shape, (str, bytes)) or not hasattr(input_shape, "__iter__"):
        raise ValueError(f"input_shape must be a tuple of ints such as (3, 32, 32), got {input_shape!r}")
    shape = tuple(input_shape)
    if not shape or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in map(_as_int, shape)):
        raise ValueError(f"input_shape must be a tuple of positive ints such as (3, 32, 32), got {input_shape!r}")
    return tuple(int(s) for s in shape)


def _as_int(s):
    """``s`` as an int when it is an integral number (a numpy or torch integer), else ``s`` itself."""
    try:
        return int(s) if not isinstance(s, bool) and int(s) == s else s
    except (TypeError, ValueError):
        return s


def prune(model: nn.Module, method: str, density: float, *, seed: int = 0, data=None, input_shape=None,
          degenerate: str = "warn", **options) -> Mask:
    """Prune ``model`` at ``density`` (fraction of prunable weights kept) with ``method``.

    ``data``: a :class:`pai.data.Dataset`, an ``(x, y)`` pair of tensors or an iterable of ``(x, y)``
    batches (read once, in full: :meth:`pai.data.Dataset.coerce`); data-dependent methods refuse to
    run without it.  ``input_shape``: one input's shape without the batch dimension, e.g. ``(3, 32,
    32)``; inferred from ``data``, else ``model.input_shape``.  ``options``: the method's own (a name
    it does not take is refused before any work).

    Returns a mask ``{weight name: bool tensor}``; the model itself is not modified, and neither are
    the caller's global RNG streams.  ``degenerate``: what a degenerate mask (empty layers, no
    input->output path, a count more than 10% off the target) gives -- ``"warn"`` (a
    :class:`DegenerateMaskWarning`), ``"raise"`` (``ValueError``) or ``"ignore"``; a mask that keeps
    no weight is always an error.

    ``shuffle="layer"`` (an option every pruner takes) permutes the pruner's mask within each layer,
    seeded by ``seed`` (:func:`pai.masks.layer_shuffle`): the sanity check of Frankle et al., ICLR 2021,
    Sec. 5 -- same layer-wise densities, the choice within each layer forgotten.
    """
    from pai.data import Dataset

    density = validate_density(density)
    shuffle = options.pop("shuffle", None)
    if shuffle is not None and shuffle not in SHUFFLES:
        raise ValueError(f"shuffle must be one of {', '.join(SHUFFLES)} (or left out), got {shuffle!r}")
    pruner = get(method)
    check_options(method, options)
    check_materialized(model)
    total = sum(p.numel() for p in prunable_parameters(model).values())  # raises for no prunable layer
    if round(density * total) == 0:
        raise ValueError(f"density {density:g} keeps no weight of the {total} prunable weights of "
                         f"{type(model).__name__}: the smallest useful density is {1 / total:.3g}")
    if pruner.needs_data and data is None:
        raise ValueError(f"pruner {method!r} is data-dependent: pass data= (a pai Dataset, an (x, y) pair of "
                         f"tensors or a DataLoader)")
    data = Dataset.coerce(data) if data is not None else None
    shape = resolve_input_shape(model, input_shape, data)
    if pruner.needs_input_shape and shape is None:
        raise ValueError(f"pruner {method!r} traces the network and needs the input shape: pass "
                         f"input_shape=(C, H, W), or data= to infer it")
    if pruner.takes_input_shape:
        options = {**options, "input_shape": shape}
    state = copy.deepcopy(model.state_dict())
    modes = {name: m.training for name, m in model.named_modules()}
    with preserved_rng():
        seed_everything(seed)
        try:
            mask = pruner(model, density, seed=seed, data=data, **options)
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
    check_mask(model, mask, empty_ok=True)  # nothing kept: check_degenerate's message, naming the pruner
    free = pruner.density_free is not None and pruner.density_free(options)
    check_degenerate(model, mask, density, method, degenerate, pruner.degenerate_hint, options, shape,
                     check_count=not free)
    return mask if extra is None else (mask, extra)


def option_names(method: str) -> Optional[list]:
    """The options pruner ``method`` takes (its record's; ``input_shape`` besides, as every method does),
    None when it takes any; ``dense`` takes none."""
    if method == "dense":
        return []
    valid = get(method).options
    return None if valid is None else list(valid)


def check_options(method: str, options: Mapping[str, Any]) -> None:
    """``ValueError`` naming an option that pruner ``method`` does not take, with the valid ones, before
    any pruning (``dense`` takes none; every other method takes ``input_shape``)."""
    valid = option_names(method)
    if valid is None:
        return
    if method != "dense":
        valid = [*valid, "shuffle"]  # handled by prune() for every pruner
    for key in options:
        if key not in valid and not (key == "input_shape" and method != "dense"):
            raise ValueError(f"method {method!r} has no option {key!r}; valid: {', '.join(valid) or '(none)'}")
