"""Glue the stage notebooks share: parameters → run specs, a run's mask and model back, captions.

Kept here (not in the notebooks) so a notebook stays "the question, a call into pai, a figure".
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Dict, Iterable, List, Sequence

import torch

from .runs import make_spec, run_id, train_options


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


def stage_params(namespace: Dict[str, Any]) -> StageParams:
    from .runs import TRAIN_KEYS

    keys = set(TRAIN_KEYS) | {"dataset", "models", "model", "seeds", "densities"}
    return StageParams({k: namespace[k] for k in keys if k in namespace})


def dense_specs(models: Sequence[str], dataset: str, seeds: Iterable[int], params: StageParams) -> List[Dict]:
    """The unpruned baseline of every model and seed."""
    return [make_spec(model=m, dataset=dataset, method="dense", density=1.0, prune_seed=s, seed=s,
                      **params.train(m)) for m in models for s in seeds]


def setup_line(dataset: str, models: Sequence[str] | str, params: StageParams, seeds: Sequence[int]) -> str:
    """The footer every figure carries: dataset, models with their epochs and subset, seeds."""
    models = [models] if isinstance(models, str) else list(models)
    parts = []
    for m in models:
        opts = params.train(m)
        sub = opts.get("train_subset")
        parts.append(f"{m} ({opts.get('epochs')} epochs" + (f", {sub} training images" if sub else "") + ")")
    return f"{dataset}; {', '.join(parts)}; seeds {', '.join(map(str, seeds))}."


def model_of_spec(spec: Dict[str, Any]):
    """The run's model at initialisation (the same seed and architecture ``pai.runs.run_one`` built)."""
    from .data import load_dataset
    from .models import create_model
    from .seed import seed_everything

    cfg = spec["train"]
    shape = _data_shape(cfg["dataset"])
    seed_everything(cfg["seed"])
    return create_model(cfg["model"], num_classes=shape[0], in_channels=shape[1],
                        image_size=cfg.get("image_size") or shape[2])  # TrainConfig.image_size: downsampled


_SHAPES = {"fashion-mnist": (10, 1, 28), "mnist": (10, 1, 28), "cifar10": (10, 3, 32), "cifar100": (100, 3, 32),
           "digits": (10, 1, 8)}


def _data_shape(name: str):
    if name not in _SHAPES:
        raise KeyError(f"unknown dataset {name!r}; valid: {', '.join(_SHAPES)}")
    return _SHAPES[name]


def mask_of_run(spec: Dict[str, Any], root: str | Path):
    from .masks import load_mask

    return load_mask(Path(root) / run_id(spec) / "mask.pt")


def init_model_of_run(spec: Dict[str, Any], root: str | Path):
    """The model whose weights the run's mask was chosen on (θ_T for PEGS, θ_0 otherwise)."""
    model = model_of_spec(spec)
    state = Path(root) / run_id(spec) / "init_state.pt"
    if state.exists():
        model.load_state_dict(torch.load(state, map_location="cpu", weights_only=True))
    return model


def final_model_of_run(spec: Dict[str, Any], root: str | Path):
    model = model_of_spec(spec)
    model.load_state_dict(torch.load(Path(root) / run_id(spec) / "final.pt", map_location="cpu",
                                     weights_only=True))
    return model


def layer_table_of_run(spec: Dict[str, Any], root: str | Path):
    """Per-layer metrics (``pai.metrics.layer_metrics``) of a run's mask at initialisation, as a DataFrame."""
    import pandas as pd

    from .metrics import biadjacency, layer_metrics, spectral_gap

    mask = mask_of_run(spec, root)
    table = pd.DataFrame(layer_metrics(init_model_of_run(spec, root), mask))
    table["channel_gap"] = [spectral_gap(biadjacency(None, mask[k], "channel")) for k in table.layer]
    return table


def with_method(spec: Dict[str, Any], **prune) -> Dict[str, Any]:
    out = copy.deepcopy(spec)
    out["prune"].update(prune)
    return out


def moving_distance_of_run(spec: Dict[str, Any], root: str | Path) -> float:
    """Full-spectrum moving distance of a finished run: per layer, the ℓ2 distance between the coordinate
    of the mask with its initial weights and with its trained weights, averaged over layers (our reading
    of Hoang et al., NeurIPS 2023; see ``pai.metrics.full_spectrum_distance``).  NaN for a dense run."""
    import math

    from .metrics import full_spectrum_distance, network_full_spectrum

    if spec["prune"]["method"] == "dense":
        return math.nan
    mask = mask_of_run(spec, root)
    start = network_full_spectrum(init_model_of_run(spec, root), mask)
    end = network_full_spectrum(final_model_of_run(spec, root), mask)
    dists = [full_spectrum_distance(start[k], end[k]) for k in start]
    dists = [d for d in dists if math.isfinite(d)]
    return float(sum(dists) / len(dists)) if dists else math.nan


def mask_geometry(model_name: str, dataset: str, method: str, density: float, *, seed: int = 0,
                  data_subset: int | None = None, image_size: int | None = None, **options) -> Dict[str, Any]:
    """Prune one freshly initialised model and measure the mask's path/node geometry (no training):
    log10 effective paths, ln effective nodes (as Pham et al. plot them), log10 path-kernel trace, and the
    per-layer width (fraction of output units with a kept weight)."""
    import math

    from . import metrics
    from .pruners import get, prune

    cls, ch, size = _data_shape(dataset)
    data = None
    if getattr(get(method), "needs_data", False):
        from .data import load_dataset

        data = load_dataset(dataset, train_subset=data_subset, test_subset=256, seed=seed, image_size=image_size)
    model = model_of_spec({"train": {"dataset": dataset, "model": model_name, "seed": seed,
                                     "image_size": image_size}})
    mask = prune(model, method, density, seed=seed, data=data, **options)
    nodes = metrics.effective_nodes(model, mask)
    widths = metrics.layer_width(mask)
    return {"model": model_name, "method": method, "density": float(density), "seed": seed,
            "log10_paths": float(metrics.effective_paths(model, mask, log10=True)),
            "ln_effective_nodes": math.log(max(1, nodes["total"])) if nodes["total"] else -math.inf,
            "effective_nodes": nodes["total"],
            "log10_path_kernel_trace": float(metrics.path_kernel_trace(model, mask, log=True)),
            "layers": list(widths), "width_fraction": [w["out"] / w["out_total"] for w in widths.values()]}


def itop_trajectory(result: Dict[str, Any]):
    """A DST run's full-spectrum trajectory: per mask update, the mean over layers of Δr, λ and their
    iterative forms (NaN-aware), the distance from the start and the ITOP rate (``pai.dst``)."""
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
