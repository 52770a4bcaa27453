"""Runs as pure functions of their spec, stored in content-addressed directories.

A run is a :class:`pai.compendium.spec.RunSpec` (prune, then train through a regime); its directory is
``root / run_id(spec)`` (:class:`pai.train.rundir.RunDir` names its files).  :func:`run_one` is the whole
pipeline, in the order it reads:

1. resolve the directory: a ``run.json`` there is a cache hit, returned as it is;
2. build the initial model (:func:`pai.models.initial_model`: the run's seed, the dataset's shape);
3. prune (:func:`pai.prune`), or reload ``mask.pt`` when an interrupted run had pruned already;
4. train through the regime (:mod:`pai.compendium.regimes`: static, dst, lth), resumable from its checkpoints;
5. measure the mask the run ends with at initialisation (:func:`pai.metrics.run_metrics`);
6. record ``run.json``, last: its presence marks the run finished; then drop the files only a resume
   needs (:data:`pai.train.rundir.RESUME_ONLY`: the optimizer and DST state, 5.3 of a VGG run's 8 MB).

So an interrupted sweep, or a DVC stage started again, redoes only what had not finished.  Sweeps map
``run_one`` over specs through an executor picked by one setting (:mod:`pai.compendium.executors`: ``local``, or
``ray``); notebooks call :func:`sweep` and never need to know which one ran.  Tables of results:
:mod:`pai.compendium.tables`.
"""
from __future__ import annotations

import contextlib
import copy
import functools
import os
import sys
import time
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import torch

from pai import masks as M
from pai import pruners
from pai.data import load_for
from pai.compendium.executors import get_executor
from pai.utils.errors import EXIT_DIVERGED, Parser, TrainingDiverged, UserError, cli, message_of
from pai.utils.io import check_output
from pai.utils.faults import fault_point
from pai.utils.io import clean_stale_temps, load_json, load_torch, save_json, save_torch
from pai.metrics import run_metrics
from pai.models import initial_model
from pai.utils.owned import claim_root
from pai.compendium.plugins import load as load_plugins, loaded as loaded_plugins
from pai.compendium.regimes import Start, check_regime_options, get_regime
from pai.train.rundir import RESUME_ONLY, RunDir
from pai.compendium.spec import PruneSpec, RunSpec, SPEC_VERSION, as_dict, canonical, make_spec, run_id  # noqa: F401  (public)
from pai.compendium.tables import flatten_result, write_tables  # noqa: F401  (public API of pai.compendium.runs)


def run_dir(spec: RunSpec | Mapping[str, Any], root: str | os.PathLike) -> RunDir:
    return RunDir(Path(root) / run_id(spec))


def is_done(spec: RunSpec | Mapping[str, Any], root: str | os.PathLike) -> bool:
    return run_dir(spec, root).is_done()


def load_result(spec: RunSpec | Mapping[str, Any], root: str | os.PathLike) -> Dict[str, Any]:
    return _load_record(run_dir(spec, root))


def _load_record(rd: RunDir) -> Dict[str, Any]:
    return load_json(rd.record, what="run record", fix=f"delete {rd.path} to redo the run")


def run_one(spec: RunSpec | Mapping[str, Any], root: str | os.PathLike,
            progress: bool | None = False, plugins: Sequence[str] = ()) -> Dict[str, Any]:
    """Prune, train and measure one spec in ``root/run_id(spec)``; return its record (``run.json``).

    A spec given as a mapping keeps the id of that mapping (a hand-written partial spec is not
    completed with defaults before hashing), so directories made from mappings stay reachable.
    Two writers of one run directory (two sweeps sharing runs) take turns: the second waits for the
    first and reuses its result.  A run whose training diverges returns a record with ``status``
    ``"diverged"`` and its epoch, and writes no ``run.json``: it is never a cache hit, and a rerun
    retries it from its last finite checkpoint (on the CPU it diverges again, at the cost of one epoch).
    ``plugins``: modules to import first (:mod:`pai.compendium.plugins`) beside those the spec names; :func:`sweep`
    passes the ones its own process loaded, so a worker knows every method its caller knew."""
    record_spec = as_dict(spec)
    rd = run_dir(record_spec, root)
    if rd.is_done():
        return _load_record(rd)
    spec = RunSpec.coerce(spec)
    load_plugins([*plugins, *spec.plugins], entry_points=False, where=f"run {rd.path.name}")  # in a worker too
    rd.path.mkdir(parents=True, exist_ok=True)
    with _locked(rd):
        if rd.is_done():  # another writer finished it while this one waited
            return _load_record(rd)
        clean_stale_temps(rd.path, recursive=True)  # what a kill -9 of an earlier attempt left
        save_json(record_spec, rd.spec)
        data = dataset_of(spec.train)
        model = initial_model(spec.train.model, data.shape, spec.train.seed)
        mask, init_state, prune_seconds = prune_step(spec.prune, model, data, rd, meta={"spec": record_spec})
        fault_point("pruned")
        start = Start(spec, rd, data, copy.deepcopy(model), mask, init_state, progress)
        try:
            trained = get_regime(spec.regime)(start, **spec.regime_options)
        except TrainingDiverged as e:
            return {"run_id": rd.path.name, "spec": record_spec, "status": "diverged", "prune_seconds": prune_seconds,
                    "density": _density(mask), "metrics": {}, "train": None,
                    "diverged": {"epoch": e.epoch, "reason": e.reason}}
        metrics = {}
        if trained.mask is not None and spec.metrics:
            metrics = run_metrics(model, trained.mask, init_state)
            save_json(metrics, rd.metrics)
        out = {"run_id": rd.path.name, "spec": record_spec, "status": "finished", "prune_seconds": prune_seconds,
               "density": _density(trained.mask), "metrics": metrics, "train": trained.result, **trained.record}
        save_json(out, rd.record)  # written last: its presence marks the run finished
        drop_resume_state(rd)
        fault_point("run_done")
        return _load_record(rd)  # what a cache hit returns, so a fresh run and a reused one agree


def drop_resume_state(rd: RunDir) -> None:
    """Remove what only resuming needs (:data:`pai.train.rundir.RESUME_ONLY`) from a finished run's folder and its
    sub-folders (lottery-ticket rounds); a kill half-way leaves some of it, which nothing reads."""
    for name in RESUME_ONLY:
        for path in rd.path.rglob(name):
            path.unlink(missing_ok=True)


@contextlib.contextmanager
def _locked(rd: RunDir):
    """An exclusive ``flock`` on the run directory for the block (released by the kernel if the process
    dies); where the filesystem has no locks (some network mounts) the block runs unlocked."""
    import fcntl

    fd = os.open(rd.path, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError:
            pass
        yield
    finally:
        os.close(fd)  # closing releases the lock


def prune_step(prune: PruneSpec, model: torch.nn.Module, data, rd: RunDir,
               meta: Optional[Dict[str, Any]] = None) -> Tuple[Optional[dict], Optional[dict], float]:
    """``(mask, init_state, seconds)``: the pruned mask (None for ``dense``), the weights it was chosen
    on when a pruner hands them back (PEGS: theta_T, else None) and the pruning time.  A mask already
    in the directory (a resumed run) is reloaded with its state and its recorded time."""
    if prune.method == "dense":
        return None, None, 0.0  # (the lth regime makes its own mask)
    if rd.mask.exists():  # resumed: pruning finished before the interruption
        init_state = (load_torch(rd.init_state, what="initial weights", fix=f"delete {rd.path} to redo the run")
                      if rd.init_state.exists() else None)
        return M.load_mask(rd.mask, model), init_state, M.load_mask_meta(rd.mask).get("prune_seconds")
    t0 = time.perf_counter()
    wants_state = pruners.get(prune.method).returns_state
    # prune where the run trains (the data's device): SNIP/GraSP/SynFlow scores, PAGS candidates and PEGS's
    # dense steps are GPU work at paper scale; the model goes back to the CPU, where run_one keeps it
    device = getattr(getattr(data, "x_train", None), "device", torch.device("cpu"))
    out = pruners.prune(model.to(device), prune.method, prune.density, seed=prune.seed, data=data,
                        **prune.options, **({"return_state": True} if wants_state else {}))
    model.to("cpu")
    mask, init_state = out if isinstance(out, tuple) else (out, None)
    mask = {k: v.cpu() for k, v in mask.items()}
    if init_state is not None:
        init_state = {k: v.cpu() for k, v in init_state.items()}
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
    """Run every spec (skipping finished ones) and return their records in the order given; diverged
    runs come back with ``status: "diverged"`` and are listed on stderr."""
    specs = list(specs)
    for i, s in enumerate(specs):  # every value checked before the first run starts
        check_spec(s, f"spec {i} of the sweep")
    ids = [run_id(s) for s in specs]
    if len(set(ids)) != len(ids):
        raise ValueError("sweep got the same spec twice")
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
        raise UserError(f"workers must be an int >= 1, got {workers!r}")
    get_executor(executor)
    claim_root(root, what="runs folder", fix="give the sweep a folder of its own")
    extra = {"plugins": tuple(loaded_plugins())} if loaded_plugins() else {}  # workers import what this one did
    run = functools.partial(run_one, root=str(root), progress=False, **extra)
    results = get_executor(executor)(run, specs, workers=workers, progress=progress, desc="runs", **executor_options)
    diverged = [r for r in results if r.get("status") == "diverged"]
    if diverged:
        listed = "; ".join(f"{r['run_id']} ({r['spec']['train']['model']} {r['spec']['prune']['method']} "
                           f"{r['spec']['prune']['density']:g}, epoch {r['diverged']['epoch']})" for r in diverged[:5])
        more = f"; and {len(diverged) - 5} more" if len(diverged) > 5 else ""
        print(f"pai.compendium.runs: {len(diverged)} of {len(results)} runs diverged (non-finite loss; tables mark them "
              f"'diverged'): {listed}{more}", file=sys.stderr, flush=True)
    return results


def check_spec(spec: RunSpec | Mapping[str, Any], where: str = "spec", trusted_plugins=None) -> RunSpec:
    """``spec`` as a :class:`RunSpec` with every name, value and pruner option checked, so a sweep refuses
    a bad spec before any run starts; a :class:`pai.utils.errors.UserError` names ``where`` and the problem.
    ``trusted_plugins``: the plugin modules a spec may name (None: any); others are refused, not imported."""
    from pai.data import shape
    from pai.masks import validate_density
    from pai.models import MODELS, parse_name

    try:
        if not isinstance(spec, (RunSpec, Mapping)):
            raise ValueError(f"a spec is a mapping with 'train' and 'prune', got {type(spec).__name__}")
        if isinstance(spec, Mapping) and not {"train", "prune"} <= set(spec):
            raise ValueError(f"a spec needs 'train' and 'prune' entries, got keys {sorted(spec)}")
        if isinstance(spec, Mapping):
            _no_numbers_as_strings(spec)
        s = RunSpec.coerce(spec)
        untrusted = [m for m in s.plugins if trusted_plugins is not None and m not in trusted_plugins]
        if untrusted:
            raise UserError(f"names plugin {untrusted[0]!r}, which runs its code on import; pass "
                            f"--plugin {untrusted[0]} if you trust it")
        load_plugins(s.plugins, where="plugins")
        check_regime_options(s.regime, s.regime_options)
        MODELS.get(parse_name(s.train.model)[0])
        shape(s.train.dataset)
        if s.prune.method != "dense":
            pruners.get(s.prune.method)
            validate_density(s.prune.density)
        pruners.check_options(s.prune.method, s.prune.options)
    except TypeError as e:  # PruneSpec(**{...}) or a regime's check with an unknown key
        text = message_of(e).replace("PruneSpec.__init__()", "prune").replace("check_regime_options()", "regime")
        raise UserError(f"{where}: {text}") from None
    except (ValueError, KeyError) as e:
        raise UserError(f"{where}: {message_of(e)}") from None
    return s


def _no_numbers_as_strings(spec: Mapping[str, Any]) -> None:
    """A spec mapping hashes as written, so ``"0.1"`` and ``0.1`` would be two runs of one spec: a number
    written as a string is refused (``ValueError``)."""
    import dataclasses

    from pai.train.config import TrainConfig

    numeric = [f.name for f in dataclasses.fields(TrainConfig) if f.type in ("int", "float", "Optional[int]")]
    found = [f"train.{k}" for k in numeric if isinstance((spec.get("train") or {}).get(k), str)]
    prune = spec.get("prune") or {}
    found += [f"prune.{k}" for k in ("density", "seed") if isinstance(prune.get(k), str)]
    if found:
        where = found[0]
        section, key = where.split(".")
        raise ValueError(f"{where} is written as a string ({spec[section][key]!r}); write the number itself "
                         f"(a string would give the same run another id)")


@cli("python -m pai sweep")
def main(argv=None) -> int:
    """``python -m pai sweep SPECS.json --root DIR [--executor local|ray] [--workers N]``: every spec is
    checked before the first run; exit 2 on bad input, 3 when a run diverged."""
    ap = Parser(prog="python -m pai sweep", description=main.__doc__)
    ap.add_argument("specs", help="JSON file holding a list of specs ({'train': {...}, 'prune': {...}})")
    ap.add_argument("--root", required=True, help="folder of run directories (created if missing)")
    ap.add_argument("--executor", default="local", help="local or ray")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--address", default=None, help="Ray cluster address (executor=ray)")
    ap.add_argument("--plugin", action="append", default=[], metavar="MODULE",
                    help="a module registering your own pruners or models (pai.compendium.plugins); repeat for more. "
                         "It is imported, so its code runs: list only code you trust")
    args = ap.parse_args(argv)
    trusted = load_plugins(args.plugin, where="--plugin")  # with the pai.compendium.plugins entry points
    specs = load_json(args.specs, what="specs file", fix="give a JSON list of specs")
    if not isinstance(specs, list) or not specs:
        raise UserError(f"specs file {args.specs} must hold a non-empty JSON list of specs, "
                        f"got {type(specs).__name__ if specs else 'nothing'}")
    for i, s in enumerate(specs):
        check_spec(s, f"{args.specs}: spec {i}", trusted_plugins=trusted)
    ids = [run_id(s) for s in specs]
    dup = next((i for i, r in enumerate(ids) if r in ids[:i]), None)
    if dup is not None:
        raise UserError(f"{args.specs}: spec {dup} is the same run as spec {ids.index(ids[dup])}; list each once")
    get_executor(args.executor)
    if args.workers < 1:
        raise UserError(f"--workers must be >= 1, got {args.workers}")
    check_output(args.root, kind="dir", what="--root")
    claim_root(args.root, what="--root", fix="give the sweep a folder of its own")
    reused = [is_done(s, args.root) for s in specs]
    opts = {"address": args.address} if args.executor == "ray" else {}
    results = sweep(specs, args.root, executor=args.executor, workers=args.workers, **opts)
    for r, was_done in zip(results, reused):
        row = flatten_result(r)
        acc = "acc=-" if row["final_test_acc"] is None else f"acc={row['final_test_acc']:.4f}"
        status = "reused" if was_done else row["status"]
        print(f"{row['run_id']} {row['model']:14s} {row['method']:12s} d={row['density']:.4f} {acc} {status}")
    return EXIT_DIVERGED if any(r.get("status") == "diverged" for r in results) else 0
