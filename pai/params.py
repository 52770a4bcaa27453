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
    """A notebook's parameters from its globals; first the modules of its ``plugins`` list and of the
    ``pai.plugins`` entry points are imported (:func:`pai.plugins.load`), so the grids may name their
    pruners and models."""
    from .plugins import load

    load(namespace.get("plugins") or [])
    keys = set(TRAIN_KEYS) | {"dataset", "models", "model", "seeds", "densities", "plugins"}
    return StageParams({k: namespace[k] for k in keys if k in namespace})


# ----------------------------------------------------------------------------- validation

LOCATION_KEYS = ("out_dir", "fig_dir")  # where a stage writes: pai.notebook and the tests set them
OPTIONAL_KEYS = ("plugins",)  # every stage takes them, none needs them: pai.plugins


def check_params(params: Mapping[str, Any], schema: Mapping[str, Any], *, complete: bool = False,
                 where: str = "params") -> Dict[str, Any]:
    """``params`` checked against a notebook's ``schema`` (its parameters cell: ``{name: default}``), with
    numbers given as strings (YAML 1.1 reads ``5e-4`` as one) made floats; a ``UserError`` otherwise.

    - a key that is neither in the schema nor a ``TrainConfig`` field the params helpers read
      (:data:`TRAIN_KEYS`) is an error naming the closest valid key (``epoch`` -> ``epochs``);
    - a value must have its default's type: a bool is ``true``/``false`` only (``"no"`` is an error), an
      int is no float, a float may be an int, a list's items have the type of the default's items; a
      ``None`` default takes anything, and ``None`` is always accepted ("not used");
    - a ``TrainConfig`` field may be a ``{model: value}`` mapping (:func:`train_options`);
    - ``plugins`` (any stage): a list of module names (:func:`pai.plugins.check_names`);
    - with ``complete`` (a stage's whole parameter file), every key whose default is not ``None`` must be
      given, but the output locations :data:`LOCATION_KEYS` and :data:`OPTIONAL_KEYS`.
    """
    import difflib

    from .errors import UserError

    defaults = {k: getattr(TrainConfig(), k) for k in TRAIN_KEYS}
    defaults.update({k: None for k in OPTIONAL_KEYS})
    defaults.update(schema)
    unknown = [k for k in params if k not in defaults]
    if unknown:
        hints = [f"{k!r} (did you mean {m[0]!r}?)" if (m := difflib.get_close_matches(k, list(defaults), n=1))
                 else repr(k) for k in unknown]
        raise UserError(f"{where}: unknown parameter{'s' * (len(unknown) > 1)} {', '.join(hints)}; valid: "
                        f"{', '.join(sorted(defaults))}")
    out = {k: _checked(k, v, defaults[k], k in TRAIN_KEYS, where) for k, v in params.items()}
    if "plugins" in out:
        from .plugins import check_names

        out["plugins"] = check_names(out["plugins"], f"{where}: plugins")
    if complete:
        missing = [k for k, d in schema.items()
                   if d is not None and k not in params and k not in LOCATION_KEYS + OPTIONAL_KEYS]
        if missing:
            raise UserError(f"{where}: missing parameter{'s' * (len(missing) > 1)} {', '.join(missing)} (the "
                            f"notebook's defaults would be used silently); add {'them' if len(missing) > 1 else 'it'} "
                            f"to the file")
    return out


def _checked(key: str, value: Any, default: Any, per_model: bool, where: str) -> Any:
    from .errors import UserError

    if value is None or default is None:
        return value
    if per_model and isinstance(value, dict) and not isinstance(default, dict):
        return {m: _checked(f"{key}[{m}]", v, default, False, where) for m, v in value.items()}
    if isinstance(default, bool):
        ok = isinstance(value, bool)
        expected = "true or false"
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
        expected = "an integer"
    elif isinstance(default, float):
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                pass
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        expected = "a number"
        value = float(value) if ok else value
    elif isinstance(default, (list, tuple)):
        if not isinstance(value, (list, tuple)):
            raise UserError(f"{where}: {key} must be a list, got {value!r}")
        item = default[0] if default and all(type(d) is type(default[0]) for d in default) else None
        return [_checked(f"{key}[{i}]", v, item, False, where) for i, v in enumerate(value)]
    else:
        ok, expected = isinstance(value, type(default)), f"a {type(default).__name__}"
    if not ok:
        raise UserError(f"{where}: {key} must be {expected} (like its default {default!r}), got {value!r}")
    return value
