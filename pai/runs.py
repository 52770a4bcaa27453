"""Runs as pure functions of their config, stored in content-addressed directories.

A *run* is one (prune, then train) experiment described by a plain dict ``spec``::

    {"train": {...TrainConfig fields, model and dataset included...},
     "prune": {"method": "rreg", "density": 0.05, "seed": 0, "options": {}},
     "metrics": True}

Its directory is ``root / run_id(spec)`` where ``run_id`` is a stable hash of the canonical JSON of the
spec (the open_lth ``Desc.hashname`` pattern; a test pins the hash of a fixed spec).  A run whose
``run.json`` exists is a cache hit and is skipped; an interrupted run resumes from its checkpoint
(``pai.train`` writes them atomically).  So an interrupted sweep, or a DVC stage started again, redoes
only what had not finished.

Sweeps go through an executor picked by one setting (``pai.executors``): ``local`` (sequential or N
worker processes) or ``ray`` (an existing Ray cluster, or a local one).  Notebooks call :func:`sweep`
and never need to know which one ran.
"""
from __future__ import annotations

import copy
import hashlib
import json
import math
import os
import time
from pathlib import Path
from typing import Any, Dict, Iterable, List

import torch

from .io import save_json
from .seed import seed_everything

RECORD = "run.json"  # the run's record (spec, prune time, mask metrics, training result)
SPEC_VERSION = 1  # bump only when the meaning of a spec changes: it enters every hash


def canonical(spec: Dict[str, Any]) -> str:
    return json.dumps(spec, sort_keys=True, separators=(",", ":"), default=str)


HOW_TO_RUN = ("threads", "data_root")  # TrainConfig fields that say how to run, not what: not in the id


def run_id(spec: Dict[str, Any]) -> str:
    """Stable 16-hex-digit id of a spec (md5 of its canonical JSON and the spec version)."""
    if any(k in spec.get("train", {}) for k in HOW_TO_RUN):
        spec = {**spec, "train": {k: v for k, v in spec["train"].items() if k not in HOW_TO_RUN}}
    payload = f"v{SPEC_VERSION}:" + canonical(spec)
    return hashlib.md5(payload.encode()).hexdigest()[:16]


def make_spec(*, model: str, dataset: str, method: str = "dense", density: float = 1.0, prune_seed: int = 0,
              prune_options: Dict[str, Any] | None = None, metrics: bool = True, regime: str = "static",
              regime_options: Dict[str, Any] | None = None, **train) -> Dict[str, Any]:
    """Build a spec from flat keyword arguments (anything else is a ``TrainConfig`` field).

    ``regime``: ``static`` (train the pruned mask as it is), ``dst`` (dynamic sparse training from it,
    ``pai.sparse_training.train_dst`` options) or ``lth`` (lottery-ticket IMP down to ``density``,
    ``pai.lth.lottery_ticket`` options; ``method`` must be ``dense``)."""
    from .train import TrainConfig

    if regime not in ("static", "dst", "lth"):
        raise ValueError(f"unknown regime {regime!r}; valid: static, dst, lth")
    if regime == "lth" and method != "dense":
        raise ValueError("the lth regime starts from the dense network: method must be 'dense'")
    cfg = TrainConfig.from_dict({"model": model, "dataset": dataset, **train}).to_dict()
    spec = {"train": cfg, "metrics": bool(metrics),
            "prune": {"method": method, "density": float(density), "seed": int(prune_seed),
                      "options": dict(prune_options or {})}}
    if regime != "static":  # absent for static runs, so their ids stay what they were
        spec["regime"] = {"kind": regime, "options": dict(regime_options or {})}
    return spec


def is_done(spec: Dict[str, Any], root: str | os.PathLike) -> bool:
    return (Path(root) / run_id(spec) / RECORD).exists()


def load_result(spec: Dict[str, Any], root: str | os.PathLike) -> Dict[str, Any]:
    with open(Path(root) / run_id(spec) / RECORD) as f:
        return json.load(f)


_DATA_CACHE: Dict[tuple, Any] = {}


def _device(cfg) -> torch.device:
    if cfg.device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(cfg.device)


def _dataset(cfg) -> Any:
    """The run's data, as ``pai.train`` would load it (subsets are seeded by the run's seed)."""
    from .data import load_dataset

    key = (cfg.dataset, cfg.data_root, cfg.train_subset, cfg.test_subset, cfg.image_size, cfg.seed,
           str(_device(cfg)))
    if key not in _DATA_CACHE:
        _DATA_CACHE.clear()  # one dataset per process at a time keeps memory flat in long sweeps
        _DATA_CACHE[key] = load_dataset(cfg.dataset, root=cfg.data_root, device=_device(cfg),
                                        train_subset=cfg.train_subset, test_subset=cfg.test_subset,
                                        image_size=cfg.image_size, seed=cfg.seed)
    return _DATA_CACHE[key]


def run_one(spec: Dict[str, Any], root: str | os.PathLike, progress: bool | None = False) -> Dict[str, Any]:
    """Prune, measure and train one spec in ``root/run_id(spec)``; return its result dict."""
    from . import masks as M
    from .models import create_model
    from .pruners import prune
    from .train import TrainConfig, train

    run_dir = Path(root) / run_id(spec)
    if (run_dir / RECORD).exists():
        with open(run_dir / RECORD) as f:
            return json.load(f)
    run_dir.mkdir(parents=True, exist_ok=True)
    save_json(spec, run_dir / "spec.json")
    cfg = TrainConfig.from_dict(spec["train"])
    data = _dataset(cfg)
    seed_everything(cfg.seed)  # the same initialisation pai.train would build
    model = create_model(cfg.model, num_classes=data.num_classes, in_channels=data.in_channels,
                         image_size=data.image_size)
    p = spec["prune"]
    init_state = None
    mask_path = run_dir / "mask.pt"
    t0 = time.perf_counter()
    prune_seconds = 0.0
    if p["method"] == "dense":
        mask = None  # (the lth regime makes its own mask below)
    elif mask_path.exists():  # resumed: pruning finished before the interruption
        mask = M.load_mask(mask_path, model)
        init_state = _load_init_state(run_dir)
        prune_seconds = M.load_mask_meta(mask_path).get("prune_seconds", math.nan)
    else:
        extra = {}
        if p["method"] == "pegs":  # PEGS trains densely first and starts sparse training from there
            extra["return_state"] = True
        out = prune(model, p["method"], p["density"], seed=p["seed"], data=data, **p["options"], **extra)
        mask, init_state = (out if isinstance(out, tuple) else (out, None))
        if init_state is not None:
            from .io import save_torch

            save_torch(init_state, run_dir / "init_state.pt")
        prune_seconds = time.perf_counter() - t0
        M.save_mask(mask, mask_path, meta={"spec": spec, "prune_seconds": prune_seconds})
    regime = spec.get("regime", {"kind": "static"})
    extra: Dict[str, Any] = {}
    if regime["kind"] == "lth":  # iterative magnitude pruning down to the target density, then its last round
        from .lth import lottery_ticket

        rounds = lottery_ticket(cfg, density_target=p["density"], model=model, data=data,
                                run_dir=run_dir / "lth", progress=progress, **regime.get("options", {}))
        mask = rounds[-1].mask
        M.save_mask(mask, mask_path, meta={"spec": spec, "lth_rounds": len(rounds) - 1})
        result = rounds[-1].result.to_dict()
        extra["lth_rounds"] = [{k: v for k, v in r.summary().items() if k != "layer_densities"} for r in rounds]
        from .io import save_torch

        save_torch(result_state(rounds[-1].result), run_dir / "final.pt")
    metrics = {}
    if mask is not None and spec.get("metrics", True):
        metrics = _mask_metrics(model, mask, init_state)
        save_json(metrics, run_dir / "metrics.json")
    if regime["kind"] == "static":
        result = train(cfg, mask=mask, model=model, data=data, run_dir=run_dir, progress=progress,
                       init_state=init_state).to_dict()
    elif regime["kind"] == "dst":  # dynamic sparse training (ITOP-Rand / SET / RigL) from the pruned mask
        from .sparse_training import train_dst

        result = train_dst(cfg, mask=mask, model=model, data=data, run_dir=run_dir, progress=progress,
                           init_state=init_state, **regime.get("options", {})).to_dict()
    elif regime["kind"] != "lth":
        raise ValueError(f"unknown regime {regime['kind']!r}; valid: static, dst, lth")
    out = {"run_id": run_id(spec), "spec": spec, "prune_seconds": prune_seconds,
           "density": M.density(mask) if mask is not None else 1.0, "metrics": metrics, "train": result, **extra}
    save_json(out, run_dir / RECORD)  # written last: its presence marks the run finished
    return out


def result_state(result) -> Dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu") for k, v in result.model.state_dict().items()}


def _load_init_state(run_dir: Path):
    path = run_dir / "init_state.pt"
    return torch.load(path, map_location="cpu", weights_only=True) if path.exists() else None


def _mask_metrics(model, mask, init_state=None) -> Dict[str, Any]:
    from .metrics import network_metrics

    if init_state is not None:
        model = copy.deepcopy(model)
        model.load_state_dict(init_state)
    out = network_metrics(model, mask)
    out["channel_spectral_gap"] = channel_spectral_gap(mask)
    return out


def channel_spectral_gap(mask) -> float:
    """Mean over layers of sigma1 - sigma2 of the channel-level biadjacency (an edge = a non-empty kernel),
    the graph RReg and X-Net build (Stewart et al. 2023)."""
    import math

    from .metrics import biadjacency, spectral_gap

    gaps = [spectral_gap(biadjacency(None, m, "channel")) for m in mask.values()]
    gaps = [g for g in gaps if not math.isnan(g)]
    return sum(gaps) / len(gaps) if gaps else math.nan


def sweep(specs: Iterable[Dict[str, Any]], root: str | os.PathLike, *, executor: str = "local",
          workers: int = 1, progress: bool | None = None, **executor_options) -> List[Dict[str, Any]]:
    """Run every spec (skipping finished ones) and return their results in the order given."""
    from .executors import get_executor

    specs = list(specs)
    ids = [run_id(s) for s in specs]
    if len(set(ids)) != len(ids):
        raise ValueError("sweep got the same spec twice")
    Path(root).mkdir(parents=True, exist_ok=True)
    return get_executor(executor)(specs, str(root), workers=workers, progress=progress, **executor_options)


def flatten_result(result: Dict[str, Any]) -> Dict[str, Any]:
    """One table row: spec fields, prune fields, summary metrics and accuracies."""
    spec, tr = result["spec"], result["train"]
    row = {"run_id": result["run_id"], "model": spec["train"]["model"], "dataset": spec["train"]["dataset"],
           "method": spec["prune"]["method"], "target_density": spec["prune"]["density"],
           "prune_seed": spec["prune"]["seed"], "seed": spec["train"]["seed"], "density": result["density"],
           "epochs": spec["train"]["epochs"], "best_test_acc": tr["best_test_acc"],
           "final_test_acc": tr["final_test_acc"], "wall_time_s": tr["wall_time_s"],
           "prune_seconds": result["prune_seconds"]}
    for k, v in (result.get("metrics") or {}).items():
        if isinstance(v, (int, float)) or v is None:
            row[k] = v
    for k, v in spec["prune"]["options"].items():
        row[f"opt_{k}"] = v
    regime = spec.get("regime", {"kind": "static"})["kind"]
    row["regime"] = regime
    if regime == "lth":
        row["method"] = "lth"
    elif regime == "dst":
        row["generator"], row["method"] = row["method"], "itop"
        dst = (tr.get("meta") or {}).get("dst", {})
        for k in ("itop_rate", "moving_distance", "moving_distance_stacked", "anchor_distance", "updates"):
            row[k] = dst.get(k)
    return row


def main(argv=None) -> int:
    """``python -m pai sweep SPECS.json --root DIR [--executor local|ray] [--workers N]``."""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m pai sweep", description=main.__doc__)
    ap.add_argument("specs", help="JSON file holding a list of specs")
    ap.add_argument("--root", required=True)
    ap.add_argument("--executor", default="local")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--address", default=None, help="Ray cluster address (executor=ray)")
    args = ap.parse_args(argv)
    with open(args.specs) as f:
        specs = json.load(f)
    opts = {"address": args.address} if args.executor == "ray" else {}
    results = sweep(specs, args.root, executor=args.executor, workers=args.workers, **opts)
    for r in results:
        row = flatten_result(r)
        print(f"{row['run_id']} {row['model']:14s} {row['method']:12s} d={row['density']:.4f} "
              f"acc={row['final_test_acc']:.4f}")
    return 0


TRAIN_KEYS = ("epochs", "batch_size", "lr", "momentum", "nesterov", "weight_decay", "schedule", "milestones",
              "gamma", "label_smoothing", "augment", "train_subset", "test_subset", "device", "compile",
              "image_size", "eval_every", "eval_batch_size")


def train_options(params: Dict[str, Any], model: str) -> Dict[str, Any]:
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


# The columns ``dvc metrics show`` lists per run (results.csv has every column).
METRIC_KEYS = ("final_test_acc", "best_test_acc", "density", "itop_rate", "moving_distance")


def write_tables(results: List[Dict[str, Any]], out_dir: str | os.PathLike, name_fields=("model", "method",
                 "target_density", "seed")):
    """Write ``results.csv`` (one row per run) and ``metrics.json`` ({run name: row}, for ``dvc metrics``)."""
    import pandas as pd

    from .io import atomic_write

    rows = [flatten_result(r) for r in results]
    table = pd.DataFrame(rows)
    out_dir = Path(out_dir)
    atomic_write(out_dir / "results.csv", lambda tmp: table.to_csv(tmp, index=False))
    metrics = {}
    for row in rows:
        parts = [f"{row[f]:g}" if isinstance(row[f], float) else str(row[f]) for f in name_fields]
        parts += [f"{k[4:]}={row[k]}" for k in sorted(row) if k.startswith("opt_")]  # PAGS generators, degrees
        parts += [] if row.get("regime", "static") == "static" else [row["regime"]]
        key = "/".join(parts)
        if key in metrics:  # still ambiguous: the run id decides
            key = f"{key}/{row['run_id']}"
        metrics[key] = {k: row[k] for k in METRIC_KEYS
                        if isinstance(row.get(k), (int, float)) and math.isfinite(row[k])}  # NaN is not JSON
    save_json(metrics, out_dir / "metrics.json")
    return table
