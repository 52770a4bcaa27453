"""What the stage notebooks read back from finished runs: models, masks, layer tables, mask geometry.

Kept here (not in the notebooks) so a notebook stays "the question, a call into pai, a figure".
Parameters and spec grids: :mod:`pai.compendium.params`; the files of a run: :class:`pai.train.rundir.RunDir`.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Dict, List, Mapping, Sequence


from pai import metrics
from pai.data import load_dataset, shape
from pai.utils.io import load_torch
from pai.masks import density as mask_density, load_mask
from pai.models import initial_model
from pai.compendium.params import StageParams
from pai.pruners import get as get_pruner, prune
from pai.train.rundir import RunDir
from pai.compendium.spec import RunSpec, as_dict, run_id
from pai.compendium.tables import regime_of

SpecLike = RunSpec | Mapping[str, Any]


def setup_line(dataset: str, models: Sequence[str] | str, params: StageParams, seeds: Sequence[int]) -> str:
    """The footer every figure carries: dataset, models with their epochs, subset and input size, seeds."""
    models = [models] if isinstance(models, str) else list(models)
    parts = []
    for m in models:
        opts = params.train(m)
        sub, px = opts.get("train_subset"), opts.get("image_size")
        parts.append(f"{m} ({opts.get('epochs')} epochs" + (f", {sub} training images" if sub else "")
                     + (f", {px} px" if px else "") + ")")
    return f"{dataset}; {', '.join(parts)}; seeds {', '.join(map(str, seeds))}."


def model_of_spec(spec: SpecLike):
    """The run's model at initialisation (the seed and architecture :func:`pai.compendium.runs.run_one` built)."""
    cfg = as_dict(spec)["train"]
    return initial_model(cfg["model"], input_shape(cfg["dataset"], cfg.get("image_size")), cfg["seed"])


def input_shape(dataset: str, image_size: int | None = None):
    """The dataset's registered shape, at ``image_size`` when the run downsamples its input
    (``TrainConfig.image_size``)."""
    s = shape(dataset)
    return s if image_size is None else s._replace(image_size=int(image_size))


def files_of_run(spec: SpecLike, root: str | Path) -> RunDir:
    return RunDir(Path(root) / run_id(spec))


def mask_of_run(spec: SpecLike, root: str | Path):
    return load_mask(files_of_run(spec, root).mask)


def init_model_of_run(spec: SpecLike, root: str | Path):
    """The model whose weights the run's mask was chosen on (θ_T for PEGS, θ_0 otherwise)."""
    model = model_of_spec(spec)
    state = files_of_run(spec, root).init_state
    if state.exists():
        model.load_state_dict(load_torch(state, what="initial weights", fix=f"delete {state.parent} to redo the run"))
    return model


def final_model_of_run(spec: SpecLike, root: str | Path):
    model = model_of_spec(spec)
    final = files_of_run(spec, root).final
    model.load_state_dict(load_torch(final, what="final weights", fix=f"delete {final.parent} to redo the run"))
    return model


def moving_distance_of_run(spec: SpecLike, root: str | Path) -> float:
    """Full-spectrum moving distance of a finished run (``pai.metrics.moving_distance``, our reading stated
    there) between the mask at its initial and at its trained weights.  NaN for a dense run."""
    return moving_distance_readings(spec, root)["moving_distance"]


def moving_distance_readings(spec: SpecLike, root: str | Path = None, *, start=None, end=None) -> Dict[str, float]:
    """Both readings of a run's moving distance (``pai.metrics.moving_distance``): ``moving_distance``
    (invalid layers read as 0, the authors' dev code), ``moving_distance_drop`` (``invalid="drop"``: only
    layers whose Δr is defined at both ends), ``valid_layers`` and ``layers``.  ``start``/``end``:
    coordinates already recorded (a DST run's ``initial``/``final``); else measured on the run's mask at
    its initial and trained weights.  NaN for a dense run."""
    nan = {"moving_distance": math.nan, "moving_distance_drop": math.nan, "valid_layers": math.nan,
           "layers": math.nan}
    if as_dict(spec)["prune"]["method"] == "dense":
        return nan
    if start is None or end is None:
        mask = mask_of_run(spec, root)
        start = metrics.network_full_spectrum(init_model_of_run(spec, root), mask, invalid=math.nan)
        end = metrics.network_full_spectrum(final_model_of_run(spec, root), mask, invalid=math.nan)
    if not start or not end or start.keys() != end.keys():
        return nan
    as_float = lambda c: {k: [math.nan if v is None else float(v) for v in c[k]] for k in c}  # noqa: E731  (JSON null)
    start, end = as_float(start), as_float(end)
    zero, drop = metrics.moving_distance(start, end), metrics.moving_distance(start, end, invalid="drop")
    return {"moving_distance": zero["mean"], "moving_distance_drop": drop["mean"],
            "valid_layers": float(zero["valid_layers"]), "layers": float(len(start))}


def add_full_spectrum_columns(table, results: List[Dict[str, Any]], root: str | Path):
    """The full-spectrum notebook's table: ``generator`` (PAGS/PEGS: the pruner they sample from; else
    the method itself) and, for static runs, the ``moving_distance`` of :func:`moving_distance_of_run`
    (DST runs: from the coordinates ``pai.train.dst`` recorded), in both readings with the layer counts
    (:func:`moving_distance_readings`).  ``table`` is ``write_tables(results, ...)``."""
    import pandas as pd

    table = table.copy()
    table["generator"] = [r["spec"]["prune"]["options"].get("generator", r["spec"]["prune"]["method"])
                          for r in results]
    readings = []
    for r, regime in zip(results, table.regime):
        dst = ((r.get("train") or {}).get("meta") or {}).get("dst") or {}
        if regime == "static":
            readings.append(moving_distance_readings(r["spec"], root))
        elif regime == "dst" and dst.get("final"):  # the distance pai.train.dst recorded, both readings
            readings.append(moving_distance_readings(r["spec"], start=dst.get("initial"), end=dst.get("final")))
        else:  # other regimes keep what their row has
            readings.append({})
    readings = pd.DataFrame(readings, index=table.index)
    for col in readings.columns:
        table[col] = readings[col].combine_first(table[col]) if col in table.columns else readings[col]
    return table


def mask_geometry(model_name: str, dataset: str, method: str, density: float, *, seed: int = 0,
                  data_subset: int | None = None, image_size: int | None = None, test_subset: int | None = 256,
                  **options) -> Dict[str, Any]:
    """Prune one freshly initialised model and measure the mask's path/node geometry (no training):
    log10 effective paths, ln effective nodes (as Pham et al. plot them), log10 path-kernel trace, the
    density the mask actually keeps (``kept_density``; ``density`` is the target) and the per-layer width
    (fraction of output units with a kept weight).  The prune options are returned as ``opt_<name>``, as
    in ``results.csv``, so :func:`pai.compendium.variants.label_row` names a variant's row."""
    data = None
    if getattr(get_pruner(method), "needs_data", False):
        data = load_dataset(dataset, train_subset=data_subset, test_subset=test_subset, seed=seed,
                            image_size=image_size)
    model = initial_model(model_name, input_shape(dataset, image_size), seed)
    mask = prune(model, method, density, seed=seed, data=data, **options)
    nodes = metrics.effective_nodes(model, mask)
    widths = metrics.layer_width(mask)
    return {"model": model_name, "method": method, "density": float(density), "seed": seed,
            "kept_density": mask_density(mask),
            "log10_paths": float(metrics.effective_paths(model, mask, log10=True)),
            "ln_effective_nodes": math.log(max(1, nodes["total"])) if nodes["total"] else -math.inf,
            "effective_nodes": nodes["total"],
            "log10_path_kernel_trace": float(metrics.path_kernel_trace(model, mask, log=True)),
            "layers": list(widths), "width_fraction": [w["out"] / w["out_total"] for w in widths.values()],
            **{f"opt_{k}": v for k, v in options.items()}}


def mask_geometry_grid(models: Sequence[str], methods: Sequence[str], densities: Sequence[float], dataset: str, *,
                       seeds: Sequence[int] = (0,), train=None, method_options: Mapping[str, Mapping] | None = None,
                       executor: str = "local", workers: int = 1, progress: bool | None = None):
    """:func:`mask_geometry` of every (model, method, density, seed), as a DataFrame in that loop order
    (one row per mask, per-layer widths as lists; ``pai.compendium.claims.geometry_table`` flattens it for
    ``geometry.csv``).  A ``methods`` entry may be a variant label (``"snip (train mode)"``,
    :mod:`pai.compendium.variants`).  ``train``: the runs' ``TrainConfig`` fields, a mapping or a function of the
    model name (``params.train``), of which ``train_subset`` (the data-dependent pruners' images, drawn
    by the seed as a run draws them) and ``image_size`` are used, so a mask here is the mask a trained
    run of the same seed starts from.  ``method_options[method]`` are added to that method and its variants
    (what the stage's runs get, e.g. NPB's ``max_p``).  ``executor``/``workers``: as a sweep's
    (:mod:`pai.compendium.executors`); every mask is seeded on its own, so the table does not depend on them."""
    import pandas as pd

    from pai.compendium.executors import get_executor
    from pai.compendium.plugins import loaded
    from pai.compendium.variants import resolve

    items, plugins = [], tuple(loaded())
    for net in models:
        cfg = dict(train(net) if callable(train) else (train or {}))
        for name in methods:
            method, variant = resolve(name)
            options = {**dict((method_options or {}).get(method, {})), **variant}
            for d in densities:
                for s in seeds:
                    items.append((plugins, dict(
                        model_name=net, dataset=dataset, method=method, density=d, seed=s,
                        data_subset=cfg.get("train_subset"), image_size=cfg.get("image_size"),
                        test_subset=cfg.get("test_subset"), **options)))
    # SynFlow's 100 rounds make most of a stage's geometry time: one mask per worker, as runs are
    rows = get_executor(executor)(_geometry_item, items, workers=workers, progress=progress, desc="masks",
                                  interval=10.0, unit="mask")
    return pd.DataFrame(rows)


def _geometry_item(item) -> Dict[str, Any]:
    """One mask of :func:`mask_geometry_grid` where the executor runs it: a worker first imports the
    plugins the caller had loaded (a plugin's method is unknown to a fresh process), as a run does."""
    from pai.compendium.plugins import load

    plugins, kwargs = item
    load(plugins, entry_points=False, where="plugins")
    return mask_geometry(**kwargs)


def itop_trajectory(result: Dict[str, Any]):
    """A DST run's full-spectrum trajectory: per mask update, the mean over layers of Δr, λ and their
    iterative forms (NaN-aware), the distance from the start and the ITOP rate (``pai.train.dst``)."""
    import numpy as np
    import pandas as pd

    dst = result["train"]["meta"]["dst"]
    rows = []
    for entry in [{"step": 0, "coords": dst["initial"], "distance": 0.0, "itop_rate": None}] + dst["trajectory"]:
        coords = np.array([v for v in entry.get("coords", {}).values()], dtype=float).reshape(-1, 4)
        means = np.nanmean(coords, axis=0) if len(coords) else [np.nan] * 4
        rows.append({"step": entry["step"], "delta_r": means[0], "lambda": means[1], "it_delta_r": means[2],
                     "it_lambda": means[3], "distance": entry.get("distance"), "itop_rate": entry.get("itop_rate")})
    return pd.DataFrame(rows)


def itop_trajectories(results: List[Dict[str, Any]], *, seed: int) -> Dict[float, Any]:
    """``{target density: itop_trajectory}`` of the DST runs trained with ``seed``, in the order given."""
    return {r["spec"]["prune"]["density"]: itop_trajectory(r) for r in results
            if regime_of(r["spec"]) == "dst" and r["spec"]["train"]["seed"] == seed and r.get("train")}
