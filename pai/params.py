"""A stage's parameters and the spec grids built from them: ``params.grid(methods=..., densities=...)``.

A notebook's parameters (``params/<stage>.yaml``, injected by papermill) name a dataset, models, seeds
and the ``TrainConfig`` fields, where a value given as ``{model: value}`` is per model.
:func:`stage_params` collects them; :meth:`StageParams.grid` then builds the Cartesian product of
runs a figure needs, one line per group::

    params = stage_params(globals())
    specs = params.grid(methods=methods, densities=densities, options={"allocation": allocation})
    specs += params.grid(methods=["dense"])                       # the unpruned baselines
    pags = params.grid(methods=["pags", "pegs"], densities=[0.01],
                       options={"generator": over(["snip", "grasp"]), "candidates": 20},
                       method_options={"pegs": {"pretrain_iterations": 200}})

Order is fixed (model, method, level, option combination, seed: the loops the notebooks always
wrote), so results tables keep their row order.  Every run trains with seed ``s`` and prunes with
seed ``s``.  :func:`find` picks one spec back out of a grid by its fields.
"""
from __future__ import annotations

import itertools
import math
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence

from .config import TrainConfig
from .spec import PruneSpec, RunSpec, run_id
from .variants import resolve

TRAIN_KEYS = ("epochs", "batch_size", "lr", "momentum", "nesterov", "weight_decay", "schedule", "milestones",
              "gamma", "label_smoothing", "augment", "train_subset", "test_subset", "device", "compile",
              "image_size", "eval_every", "eval_batch_size")


def train_options(params: Mapping[str, Any], model: str) -> Dict[str, Any]:
    """The ``TrainConfig`` fields of a stage's parameters; a value given as ``{model: value}`` is per model."""
    out = {}
    for key in TRAIN_KEYS:
        if key not in params:
            continue
        value = params[key].get(model) if isinstance(params[key], dict) else params[key]
        if value is not None or key in ("train_subset", "test_subset"):  # None there means "all the data"
            out[key] = value
    if "milestones" in out:
        out["milestones"] = tuple(out["milestones"])
    return out


class over(tuple):
    """An option value that is an axis of the grid: ``options={"generator": over(["snip", "grasp"])}``
    makes one run per generator (a plain list stays one option value)."""

    def __new__(cls, values: Iterable[Any]):
        return super().__new__(cls, values)


def grid(*, dataset: str, models: Sequence[str], seeds: Sequence[int], methods: Sequence[str] = ("dense",),
         densities: Sequence[float] = (1.0,), degrees: Optional[Sequence[int]] = None,
         options: Optional[Mapping[str, Any]] = None, method_options: Optional[Mapping[str, Mapping]] = None,
         regime: str = "static", regime_options: Optional[Mapping[str, Any]] = None,
         train: Callable[[str], Mapping[str, Any]] | Mapping[str, Any] | None = None) -> List[RunSpec]:
    """Every (model, method, level, option combination, seed) run, in that loop order.

    ``densities`` (fraction kept), or ``degrees``: one degree for every layer (the expander pruners'
    ``degree`` option; the density is then 1.0, which they ignore).  ``options`` go to every pruner,
    an :class:`over` value spanning an axis; ``method_options[method]`` are added for that method.
    ``train``: the ``TrainConfig`` fields, a mapping or a function of the model name.  A ``methods``
    entry may be a registered variant label (``"phew (graph walk)"``, :mod:`pai.variants`): its method
    with the variant's options."""
    levels = ([(1.0, {"degree": int(d)}) for d in degrees] if degrees is not None
              else [(float(d), {}) for d in densities])
    options = dict(options or {})
    axes = [k for k, v in options.items() if isinstance(v, over)]
    combos = [dict(zip(axes, values)) for values in itertools.product(*(options[k] for k in axes))]
    specs = []
    for model in models:
        cfg = dict(train(model) if callable(train) else (train or {}))
        for name in methods:
            method, variant_options = resolve(name)
            for density, level_options in levels:
                for combo in combos:
                    opts = {**level_options, **{k: combo.get(k, v) for k, v in options.items()},
                            **dict((method_options or {}).get(method, {})), **variant_options}
                    for seed in seeds:
                        specs.append(RunSpec(TrainConfig.from_dict({"model": model, "dataset": dataset, **cfg,
                                                                    "seed": seed}),
                                             PruneSpec(method, density, seed, opts), regime, regime_options or {}))
    return specs


def unique(*groups: Iterable[RunSpec]) -> List[RunSpec]:
    """The specs of all groups in order, each once (grids of different figures may share runs)."""
    return list({run_id(s): s for group in groups for s in group}.values())


def find(specs: Iterable[RunSpec], **fields) -> RunSpec:
    """The one spec whose fields match: ``model``, ``dataset``, ``seed``, ``method``, ``density``
    (compared with ``math.isclose``), ``regime``, or any prune option by name."""
    def value(s: RunSpec, key: str):
        known = {"model": s.train.model, "dataset": s.train.dataset, "seed": s.train.seed, "method": s.prune.method,
                 "density": s.prune.density, "regime": s.regime}
        return known[key] if key in known else s.prune.options.get(key, _MISSING)

    def same(a, b) -> bool:
        if isinstance(a, float) or isinstance(b, float):
            return a is not _MISSING and b is not _MISSING and math.isclose(a, b)
        return a == b

    found = [s for s in specs if all(same(value(s, k), v) for k, v in fields.items())]
    if len(found) != 1:
        raise LookupError(f"{len(found)} specs match {fields}, expected exactly one")
    return found[0]


_MISSING = object()


class StageParams:
    """A notebook's parameters (its globals after papermill injected them)."""

    def __init__(self, values: Dict[str, Any]):
        self.values = {k: v for k, v in values.items() if not k.startswith("_")}

    def __getitem__(self, key):
        return self.values[key]

    def get(self, key, default=None):
        return self.values.get(key, default)

    def train(self, model: str) -> Dict[str, Any]:
        return train_options(self.values, model)

    def epochs(self, model: str) -> int:
        return int(self.train(model).get("epochs", 0))

    @property
    def models(self) -> List[str]:
        return list(self.values["models"]) if "models" in self.values else [self.values["model"]]

    def grid(self, *, models: Optional[Sequence[str]] = None, **kw) -> List[RunSpec]:
        """:func:`grid` with this stage's dataset, models (``models``, else ``[model]``), seeds and
        training fields; keywords as there."""
        return grid(dataset=self.values["dataset"], models=self.models if models is None else models,
                    seeds=self.values["seeds"], train=self.train, **kw)


def stage_params(namespace: Dict[str, Any]) -> StageParams:
    keys = set(TRAIN_KEYS) | {"dataset", "models", "model", "seeds", "densities"}
    return StageParams({k: namespace[k] for k in keys if k in namespace})
