"""Runs as pure functions of their spec, stored in content-addressed directories.

A run is a :class:`pai.spec.RunSpec` (prune, then train through a regime); its directory is
``root / run_id(spec)`` (:class:`pai.rundir.RunDir` names its files).  :func:`run_one` is the whole
pipeline, in the order it reads:

1. resolve the directory: a ``run.json`` there is a cache hit, returned as it is;
2. build the initial model (:func:`pai.models.initial_model`: the run's seed, the dataset's shape);
3. prune (:func:`pai.prune`), or reload ``mask.pt`` when an interrupted run had pruned already;
4. train through the regime (:mod:`pai.regimes`: static, dst, lth), resumable from its checkpoints;
5. measure the mask the run ends with at initialisation (:func:`pai.metrics.run_metrics`);
6. record ``run.json``, last: its presence marks the run finished.

So an interrupted sweep, or a DVC stage started again, redoes only what had not finished.  Sweeps map
``run_one`` over specs through an executor picked by one setting (:mod:`pai.executors`: ``local``, or
``ray``); notebooks call :func:`sweep` and never need to know which one ran.  Tables of results:
:mod:`pai.tables`.
"""
from __future__ import annotations

import copy
import functools
import json
import math
import os
import time
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple

import torch

from . import masks as M
from . import pruners
from .data import load_for
from .executors import get_executor
from .io import save_json, save_torch
from .metrics import run_metrics
from .models import initial_model
from .regimes import Start, get_regime
from .rundir import RunDir
from .spec import PruneSpec, RunSpec, SPEC_VERSION, as_dict, canonical, make_spec, run_id  # noqa: F401  (public)
from .tables import flatten_result, write_tables  # noqa: F401  (public API of pai.runs)


def run_dir(spec: RunSpec | Mapping[str, Any], root: str | os.PathLike) -> RunDir:
    return RunDir(Path(root) / run_id(spec))


def is_done(spec: RunSpec | Mapping[str, Any], root: str | os.PathLike) -> bool:
    return run_dir(spec, root).is_done()


def load_result(spec: RunSpec | Mapping[str, Any], root: str | os.PathLike) -> Dict[str, Any]:
    with open(run_dir(spec, root).record) as f:
        return json.load(f)


def run_one(spec: RunSpec | Mapping[str, Any], root: str | os.PathLike,
            progress: bool | None = False) -> Dict[str, Any]:
    """Prune, train and measure one spec in ``root/run_id(spec)``; return its record (``run.json``).

    A spec given as a mapping keeps the id of that mapping (a hand-written partial spec is not
    completed with defaults before hashing), so directories made from mappings stay reachable."""
    record_spec = as_dict(spec)
    rd = run_dir(record_spec, root)
    if rd.is_done():
        with open(rd.record) as f:
            return json.load(f)
    spec = RunSpec.coerce(spec)
    rd.path.mkdir(parents=True, exist_ok=True)
    save_json(record_spec, rd.spec)
    data = dataset_of(spec.train)
    model = initial_model(spec.train.model, data.shape, spec.train.seed)
    mask, init_state, prune_seconds = prune_step(spec.prune, model, data, rd, meta={"spec": record_spec})
    start = Start(spec, rd, data, copy.deepcopy(model), mask, init_state, progress)
    trained = get_regime(spec.regime)(start, **spec.regime_options)
    metrics = {}
    if trained.mask is not None and spec.metrics:
        metrics = run_metrics(model, trained.mask, init_state)
        save_json(metrics, rd.metrics)
    out = {"run_id": rd.path.name, "spec": record_spec, "prune_seconds": prune_seconds,
           "density": _density(trained.mask), "metrics": metrics, "train": trained.result, **trained.record}
    save_json(out, rd.record)  # written last: its presence marks the run finished
    return out


def prune_step(prune: PruneSpec, model: torch.nn.Module, data, rd: RunDir,
               meta: Optional[Dict[str, Any]] = None) -> Tuple[Optional[dict], Optional[dict], float]:
    """``(mask, init_state, seconds)``: the pruned mask (None for ``dense``), the weights it was chosen
    on when a pruner hands them back (PEGS: theta_T, else None) and the pruning time.  A mask already
    in the directory (a resumed run) is reloaded with its state and its recorded time."""
    if prune.method == "dense":
        return None, None, 0.0  # (the lth regime makes its own mask)
    if rd.mask.exists():  # resumed: pruning finished before the interruption
        init_state = (torch.load(rd.init_state, map_location="cpu", weights_only=True)
                      if rd.init_state.exists() else None)
        return M.load_mask(rd.mask, model), init_state, M.load_mask_meta(rd.mask).get("prune_seconds", math.nan)
    t0 = time.perf_counter()
    wants_state = getattr(pruners.get(prune.method), "returns_state", False)
    out = pruners.prune(model, prune.method, prune.density, seed=prune.seed, data=data, **prune.options,
                        **({"return_state": True} if wants_state else {}))
    mask, init_state = out if isinstance(out, tuple) else (out, None)
    if init_state is not None:
        save_torch(init_state, rd.init_state)
    seconds = time.perf_counter() - t0
    M.save_mask(mask, rd.mask, meta={**(meta or {}), "prune_seconds": seconds})
    return mask, init_state, seconds


def _density(mask) -> float:
    return M.density(mask) if mask is not None else 1.0


_DATA_CACHE: Dict[tuple, Any] = {}


def dataset_of(cfg) -> Any:
    """The run's data, as ``pai.train`` would load it (subsets are seeded by the run's seed); one
    dataset per process is kept, so the runs of a sweep on the same data load it once."""
    device = cfg.torch_device()
    key = (cfg.dataset, cfg.data_root, cfg.train_subset, cfg.test_subset, cfg.image_size, cfg.seed, str(device))
    if key not in _DATA_CACHE:
        _DATA_CACHE.clear()  # one dataset per process at a time keeps memory flat in long sweeps
        _DATA_CACHE[key] = load_for(cfg, device)
    return _DATA_CACHE[key]


def sweep(specs: Iterable[RunSpec | Mapping[str, Any]], root: str | os.PathLike, *, executor: str = "local",
          workers: int = 1, progress: bool | None = None, **executor_options) -> List[Dict[str, Any]]:
    """Run every spec (skipping finished ones) and return their records in the order given."""
    specs = list(specs)
    ids = [run_id(s) for s in specs]
    if len(set(ids)) != len(ids):
        raise ValueError("sweep got the same spec twice")
    Path(root).mkdir(parents=True, exist_ok=True)
    run = functools.partial(run_one, root=str(root), progress=False)
    return get_executor(executor)(run, specs, workers=workers, progress=progress, desc="runs", **executor_options)


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
