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

from pai.train.config import TrainConfig
from pai.compendium.spec import PruneSpec, RunSpec, run_id
from pai.compendium.variants import resolve

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
    entry may be a registered variant label (``"phew (graph walk)"``, :mod:`pai.compendium.variants`): its method
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
    ``pai.compendium.plugins`` entry points are imported (:func:`pai.compendium.plugins.load`), so the grids may name their
    pruners and models."""
    from pai.compendium.plugins import load

    load(namespace.get("plugins") or [])
    keys = set(TRAIN_KEYS) | {"dataset", "models", "model", "seeds", "densities", "plugins"}
    return StageParams({k: namespace[k] for k in keys if k in namespace})


# ----------------------------------------------------------------------------- validation

LOCATION_KEYS = ("out_dir", "fig_dir")  # where a stage writes: pai.compendium.notebook and the tests set them
OPTIONAL_KEYS = ("plugins",)  # every stage takes them, none needs them: pai.compendium.plugins


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
    - ``plugins`` (any stage): a list of module names (:func:`pai.compendium.plugins.check_names`);
    - with ``complete`` (a stage's whole parameter file), every key whose default is not ``None`` must be
      given, but the output locations :data:`LOCATION_KEYS` and :data:`OPTIONAL_KEYS`;
    - then every value is checked for its range and meaning (:func:`check_value`, :data:`RULES`): a
      density in (0, 1], a known model, method or executor, ``workers >= 1``, a DST update interval
      ``>= 1``, ``dense_first`` true, false or null, ... -- so nothing fails after the kernel started.
    """
    import difflib

    from pai.utils.errors import UserError

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
        from pai.compendium.plugins import check_names

        out["plugins"] = check_names(out["plugins"], f"{where}: plugins")
    out = {k: check_value(k, v, where) for k, v in out.items()}
    if complete:
        missing = [k for k, d in schema.items()
                   if d is not None and k not in params and k not in LOCATION_KEYS + OPTIONAL_KEYS]
        if missing:
            raise UserError(f"{where}: missing parameter{'s' * (len(missing) > 1)} {', '.join(missing)} (the "
                            f"notebook's defaults would be used silently); add {'them' if len(missing) > 1 else 'it'} "
                            f"to the file")
    return out


def _checked(key: str, value: Any, default: Any, per_model: bool, where: str) -> Any:
    from pai.utils.errors import UserError

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


# ----------------------------------------------------------------------------- value rules
# One rule per notebook parameter (tests/test_params.py checks that every parameter of every notebook has
# one): the type and the range of its values, so a bad value is refused before a kernel or a run starts.
# A rule returns the value, normalised (a number given as a string, "1e-3", becomes a float: YAML 1.1 reads
# it as a string), or raises ``ValueError`` with what the value must be.


def _num(low: float = -math.inf, high: float = math.inf, *, low_open: bool = False, high_open: bool = False):
    def rule(v):
        if isinstance(v, str):
            try:
                v = float(v)
            except ValueError:
                pass
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or \
                not (v > low if low_open else v >= low) or not (v < high if high_open else v <= high):
            span = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
            raise ValueError(f"must be a number in {span}, got {v!r}")
        return float(v)
    return rule


def _int(low: int = 0):
    def rule(v):
        if isinstance(v, bool) or not isinstance(v, int) or v < low:
            raise ValueError(f"must be an integer >= {low}, got {v!r}")
        return v
    return rule


def _bool(v):
    if not isinstance(v, bool):
        raise ValueError(f"must be true or false, got {v!r}")
    return v


def _name(kind: str, check: Callable[[str], Any]):
    def rule(v):
        if not isinstance(v, str) or not v:
            raise ValueError(f"must be a {kind} name, got {v!r}")
        try:
            check(v)
        except (KeyError, ValueError) as e:
            raise ValueError(str(e.args[0]) if e.args else f"unknown {kind} {v!r}") from None
        return v
    return rule


def _text(v):
    if not isinstance(v, str) or not v.strip():
        raise ValueError(f"must be a non-empty string, got {v!r}")
    return v


def _optional(rule):
    return lambda v: None if v is None else rule(v)


def _list(rule, *, distinct: bool = False, empty: bool = True):
    def check(v):
        if not isinstance(v, (list, tuple)) or not (v or empty):
            raise ValueError(f"must be a {'' if empty else 'non-empty '}list, got {v!r}")
        out = []
        for i, item in enumerate(v):
            try:
                out.append(rule(item))
            except ValueError as e:
                raise ValueError(f"item {i}: {e}") from None
        if distinct and len(set(map(repr, out))) != len(out):
            raise ValueError(f"lists a value twice ({v!r}): each would be the same runs again")
        return out
    return check


def _per_model(rule):
    """A value, or ``{model: value}`` (each model a known one)."""
    def check(v):
        if isinstance(v, dict):
            out = {}
            for m, item in v.items():
                _model(m)
                try:
                    out[m] = rule(item)
                except ValueError as e:
                    raise ValueError(f"[{m}]: {e}") from None
            return out
        return rule(v)
    return check


def _one_or_list(rule):
    """One value, or a list of them."""
    many = _list(rule, distinct=True)
    return lambda v: many(v) if isinstance(v, (list, tuple)) else rule(v)


def _check_model(name: str) -> None:
    from pai.models import MODELS, parse_name

    MODELS.get(parse_name(name)[0])


def _check_method(name: str) -> None:
    from pai import pruners

    method, _ = resolve(name)
    if method != "dense":
        pruners.get(method)


def _check_dataset(name: str) -> None:
    from pai.data import shape

    shape(name)


def _check_executor(name: str) -> None:
    from pai.compendium.executors import get_executor

    get_executor(name)


def _check_allocation(name: str) -> None:
    from pai.pruners.allocation import SCHEMES

    if name not in SCHEMES:
        raise ValueError(f"unknown allocation {name!r}; valid: {', '.join(SCHEMES)}")


def _check_work(name: str) -> None:
    from pai.compendium.published import WORKS

    if name not in WORKS:
        raise ValueError(f"unknown published work {name!r}; valid: {', '.join(WORKS)}")


def _method_options(v):
    from pai import pruners

    if not isinstance(v, dict):
        raise ValueError(f"must be a mapping {{method: {{option: value}}}}, got {v!r}")
    for method, options in v.items():
        _method(method)
        if not isinstance(options, dict):
            raise ValueError(f"[{method}] must be a mapping of options, got {options!r}")
        pruners.check_options(resolve(method)[0], options)
    return v


def _plugins(v):
    from pai.compendium.plugins import check_names

    return check_names(v, "plugins")  # a list of dotted module names; its own one-line refusal


def _train_field(key: str):
    """A ``TrainConfig`` field: its own checks (:class:`pai.train.config.TrainConfig`), per model or for all."""
    def one(v):
        if v is None:
            return None
        try:
            return getattr(TrainConfig(**{key: v}), key)
        except (ValueError, TypeError) as e:
            raise ValueError(str(e).removeprefix(f"{key} ")) from None
    return _per_model(one)


_model = _name("model", _check_model)
_method = _name("method", _check_method)
_density = _num(0.0, 1.0, low_open=True)
_densities = _list(_density, distinct=True)

RULES: Dict[str, Callable[[Any], Any]] = {
    **{k: _train_field(k) for k in TRAIN_KEYS},
    "milestones": _per_model(_optional(_list(_num(0.0, 1.0)))),
    "dataset": _name("dataset", _check_dataset),
    "model": _model,
    "models": _list(_model, distinct=True, empty=False),
    "geometry_models": _list(_model, distinct=True),
    "stem_check": _optional(_list(_model, distinct=True)),
    "methods": _list(_method, distinct=True),
    "population_methods": _list(_method, distinct=True),
    "variant_methods": _list(_method, distinct=True),
    "shuffled_methods": _list(_method, distinct=True),
    "pags_generators": _list(_method, distinct=True),
    "itop_generator": _method,
    "method_options": _method_options,
    "densities": _optional(_per_model(_densities)),
    "population_densities": _densities,
    "variant_densities": _densities,
    "shuffled_densities": _densities,
    "geometry_densities": _densities,
    "itop_densities": _densities,
    "pags_density": _density,
    "focus_density": _density,
    "spectral_density": _optional(_per_model(_density)),
    "degrees": _optional(_list(_int(1), distinct=True)),
    "spectral_degree": _optional(_int(1)),
    "seeds": _list(_int(0), distinct=True, empty=False),
    "allocation": _name("allocation", _check_allocation),
    "dense_first": _optional(_bool),
    "published_work": _optional(_one_or_list(_name("published work", _check_work))),
    "executor": _name("executor", _check_executor),
    "workers": _int(1),
    "out_dir": _text,
    "fig_dir": _text,
    "pags_candidates": _int(1),
    "pegs_iterations": _list(_int(0), distinct=True),
    "itop_update_interval": _int(1),  # pai.train.dst.DynamicSparsity: steps between mask updates
    "itop_drop_fraction": _num(0.0, 1.0),
    "lth_rate": _num(0.0, 1.0, low_open=True, high_open=True),  # pai.train.lth: fraction pruned per round
    "lth_rewind_iteration": _int(0),
    "curve_epochs": _int(1),
    "plugins": _plugins,
}


def check_value(key: str, value: Any, where: str = "params") -> Any:
    """``value`` of parameter ``key`` checked by its rule in :data:`RULES` (normalised); a ``UserError``
    naming ``where``, the key and what it must be otherwise.  A key without a rule is returned as it is."""
    from pai.utils.errors import UserError

    rule = RULES.get(key)
    if rule is None:
        return value
    try:
        return rule(value)
    except ValueError as e:
        raise UserError(f"{where}: {key} {e}") from None
