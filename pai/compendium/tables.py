"""Results tables: one row per finished run (``results.csv``) and the per-run DVC metrics (``metrics.json``).

A row flattens a run's record (``run.json``, :func:`pai.compendium.runs.run_one`): the spec's key fields, the
accuracies, ``status`` (``finished``, or ``diverged`` with ``diverged_epoch``: its accuracies are empty),
the mask's summary metrics, the prune options as ``opt_<name>``, ``plugin`` (the module that registered a
plugin's pruner, :mod:`pai.compendium.plugins`; only in tables that have such runs), and per regime its own
columns (``dst``: the ITOP rate and moving distances, ``method`` = ``itop`` with the pruner as
``generator``; ``lth``: ``method`` = ``lth``).
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Dict, List, Sequence

from pai.utils.io import atomic_write, save_json
from pai.compendium.plugins import provider

# The columns ``dvc metrics show`` lists per run (results.csv has every column).
METRIC_KEYS = ("final_test_acc", "best_test_acc", "density", "itop_rate", "moving_distance")
DST_KEYS = ("itop_rate", "moving_distance", "moving_distance_stacked", "anchor_distance", "updates")


def regime_of(spec: Dict[str, Any]) -> str:
    """The regime of a spec in its JSON form (static specs carry no ``regime`` key)."""
    return (spec.get("regime") or {"kind": "static"})["kind"]


def completed(spec: Dict[str, Any]) -> Dict[str, Any]:
    """A spec's JSON form with every default filled in (a hand-written spec may leave fields out; its run
    id is that of the mapping as given, :func:`pai.compendium.spec.run_id`)."""
    from pai.compendium.spec import RunSpec

    return RunSpec.from_dict(spec).to_dict()


def flatten_result(result: Dict[str, Any]) -> Dict[str, Any]:
    """One table row: spec fields, prune fields, summary metrics and accuracies."""
    spec, tr = completed(result["spec"]), result.get("train") or {}  # a diverged run has no training result
    status = result.get("status", "finished")  # records written before statuses existed are finished runs
    row = {"run_id": result["run_id"], "model": spec["train"]["model"], "dataset": spec["train"]["dataset"],
           "method": spec["prune"]["method"], "target_density": spec["prune"]["density"],
           "prune_seed": spec["prune"]["seed"], "seed": spec["train"]["seed"], "density": result["density"],
           "epochs": spec["train"]["epochs"], "best_test_acc": tr.get("best_test_acc"),
           "final_test_acc": tr.get("final_test_acc"), "wall_time_s": tr.get("wall_time_s"),
           "prune_seconds": result.get("prune_seconds"), "status": status,
           "diverged_epoch": (result.get("diverged") or {}).get("epoch")}
    for k, v in (result.get("metrics") or {}).items():
        if isinstance(v, (int, float)) or v is None:
            row[k] = v
    for k, v in spec["prune"]["options"].items():
        row[f"opt_{k}"] = v
    if provider("pruner", row["method"]) in spec.get("plugins", ()):  # a researcher's own pruner (pai.compendium.plugins)
        row["plugin"] = provider("pruner", row["method"])
    regime = regime_of(spec)
    row["regime"] = regime
    if regime == "lth":
        row["method"] = "lth"
    elif regime == "dst":
        row["generator"], row["method"] = row["method"], "itop"
        dst = (tr.get("meta") or {}).get("dst", {})
        for k in DST_KEYS:
            row[k] = dst.get(k)
    return row


def save_table(table, path: str | os.PathLike) -> Path:
    """A DataFrame as CSV, written atomically (a stage's extra tables: ``runs/<stage>/tables/<name>.csv``,
    which the claims scoreboard reads)."""
    return atomic_write(Path(path), lambda tmp: table.to_csv(tmp, index=False))


def write_tables(results: List[Dict[str, Any]], out_dir: str | os.PathLike,
                 name_fields: Sequence[str] = ("model", "method", "target_density", "seed")):
    """Write ``results.csv`` (one row per run) and ``metrics.json`` ({run name: row}, for ``dvc metrics``);
    return the table."""
    import pandas as pd

    rows = [flatten_result(r) for r in results]
    table = pd.DataFrame(rows)
    out_dir = Path(out_dir)
    atomic_write(out_dir / "results.csv", lambda tmp: table.to_csv(tmp, index=False))
    metrics = {}
    for row in rows:
        key = metric_name(row, name_fields)
        if key in metrics:  # still ambiguous: the run id decides
            key = f"{key}/{row['run_id']}"
        metrics[key] = {k: row[k] for k in METRIC_KEYS
                        if isinstance(row.get(k), (int, float)) and math.isfinite(row[k])}  # NaN is not JSON
        if row["status"] != "finished":  # a number DVC can show and diff: the epoch the loss blew up
            metrics[key]["diverged_epoch"] = row["diverged_epoch"]
    save_json(metrics, out_dir / "metrics.json")
    return table


def metric_name(row: Dict[str, Any], name_fields: Sequence[str]) -> str:
    """A run's key in ``metrics.json``: the name fields, the prune options and a non-static regime."""
    parts = [f"{row[f]:g}" if isinstance(row[f], float) else str(row[f]) for f in name_fields]
    parts += [f"{k[4:]}={row[k]}" for k in sorted(row) if k.startswith("opt_")]  # PAGS generators, degrees
    parts += [] if row.get("regime", "static") == "static" else [row["regime"]]
    return "/".join(parts)
