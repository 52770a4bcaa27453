"""The PHEW stage (``notebooks/03_phew_path_kernel.py``; Patil & Dovrolis, ICML 2021): the tables its
figures and claims read, reshaped from the sweep's results and the mask geometry.

- :func:`geometry_csv`: ``pai.experiments.mask_geometry_grid`` rows flattened for ``geometry.csv``
  (``pai.claims.geometry_table``) with each row's variant ``label`` -- the table the path-kernel-trace
  and width claims read;
- :func:`curve_rows`: rows for ``pai.plots.density_curves(..., by="label")`` with the density each mask
  actually keeps on x;
- :func:`width_bars`: per-layer width fractions at one density, per label and seed, for
  ``pai.plots.grouped_bars``;
- :func:`loss_curves`: training loss per epoch (mean and min-max over seeds) per label;
- :func:`means_at`: one number per label at one level, for a figure's caption;
- :func:`paper_table`: ``pai.published.paper_vs_ours`` of the faithful runs only;
- :func:`geometry_setup`: the footer of a mask-only figure.
"""
from __future__ import annotations

import math
from typing import Any, Dict, List, Sequence, Tuple

import numpy as np
import pandas as pd

from ..claims.tables import geometry_table
from ..variants import add_labels, label_of


def geometry_csv(geometry: pd.DataFrame) -> pd.DataFrame:
    """``geometry.csv``: one row per mask (``model, method, target_density, seed, kept_density,
    log10_paths, ln_effective_nodes, effective_nodes, log10_path_kernel_trace, mean_width_fraction,
    min_width_fraction``, the ``opt_*`` prune options) and its ``label``."""
    return geometry_table(geometry.to_dict("records"))


def curve_rows(table: pd.DataFrame, y: str) -> List[Dict[str, Any]]:
    """Rows ``{label, density, target_density, y}`` for :func:`pai.plots.density_curves` with
    ``by="label"``: ``density`` is the density the mask keeps (``kept_density`` in a geometry table,
    ``density`` in results), ``target_density`` the level its seeds share."""
    table = table if "label" in table.columns else add_labels(table)
    kept = "kept_density" if "kept_density" in table.columns else "density"
    target = "target_density" if "target_density" in table.columns else "density"
    return [{"label": r["label"], "density": float(r[kept]), "target_density": float(r[target]), y: float(r[y])}
            for r in table.to_dict("records") if r.get("method") != "dense"]


def width_bars(geometry: pd.DataFrame, model: str, density: float,
               labels: Sequence[str]) -> Tuple[List[str], Dict[str, List[List[float]]]]:
    """``(layer names, {label: [per-seed width fractions of layer i] for each layer})`` at the target
    ``density`` of ``model``, from the unflattened geometry (``mask_geometry_grid``; per-layer lists)."""
    rows = geometry[(geometry["model"] == model) & np.isclose(geometry["density"], density)]
    rows = rows.assign(label=[label_of(r["method"], {k[4:]: v for k, v in r.items() if k.startswith("opt_")})
                              for r in rows.to_dict("records")])
    if rows.empty:
        raise ValueError(f"no geometry rows of {model} at density {density:g}")
    layers = [name.removesuffix(".weight") for name in rows.iloc[0]["layers"]]
    series = {}
    for lab in labels:
        per_seed = [np.asarray(w, float) for w in rows[rows["label"] == lab]["width_fraction"]]
        if per_seed:
            series[lab] = [[w[i] for w in per_seed] for i in range(len(layers))]
    return layers, series


def loss_curves(results: List[Dict[str, Any]], labels: Sequence[str], *, model: str, density: float,
                epochs: int) -> Dict[str, pd.DataFrame]:
    """``{label: DataFrame(epoch, mean, low, high, n)}``: the training loss of the first ``epochs``
    epochs of ``model``'s runs at the target ``density``, mean and min-max over seeds (runs that
    diverged have no history and are left out)."""
    per: Dict[str, List[Dict[str, float]]] = {}
    for r in results:
        spec, train = r["spec"], r.get("train")
        p = spec["prune"]
        label = label_of(p["method"], p.get("options"))
        if (label in labels and spec["train"]["model"] == model and math.isclose(p["density"], density)
                and train):
            per.setdefault(label, []).extend(
                {"epoch": h["epoch"], "loss": h["train_loss"]} for h in train["history"][:epochs])
    out = {}
    for lab in labels:
        if lab in per:
            g = pd.DataFrame(per[lab]).groupby("epoch")["loss"]
            out[lab] = pd.DataFrame({"mean": g.mean(), "low": g.min(), "high": g.max(), "n": g.size()}).reset_index()
    return out


def means_at(table: pd.DataFrame, column: str, *, model: str, level: float, prefix: str = "") -> Dict[str, float]:
    """``{"<prefix><label>": mean of column}`` over the seeds of ``model`` at target ``level`` (a
    caption's numbers; ``-inf`` means masks with no input-output path)."""
    table = table if "label" in table.columns else add_labels(table)
    target = "target_density" if "target_density" in table.columns else "density"
    sub = table[(table["model"] == model) & np.isclose(table[target].astype(float), level)]
    return {f"{prefix}{lab}": float(g[column].astype(float).mean()) for lab, g in sub.groupby("label", sort=False)}


def paper_table(table: pd.DataFrame, work) -> pd.DataFrame:
    """:func:`pai.published.paper_vs_ours` of the runs under a method's plain name (its faithful
    default): the published baselines ran that protocol (SynFlow's Fig. 6 scores SNIP and GraSP in eval
    mode), so a variant such as ``"snip (train mode)"`` is not matched against them."""
    from ..published import paper_table as published_table

    return published_table(table if "label" in table.columns else add_labels(table), work)


def geometry_setup(dataset: str, models: Sequence[str], params, seeds: Sequence[int]) -> str:
    """The footer of a figure of masks at initialisation: dataset, models with their input size and the
    training subset the data-dependent pruners draw their images from, seeds (no epochs: nothing is
    trained)."""
    from ..data import shape

    parts = []
    for m in models:
        opts = params.train(m)
        px, sub = opts.get("image_size") or shape(dataset).image_size, opts.get("train_subset")
        parts.append(f"{m} ({px} px" + (f", {sub} training images" if sub else "") + ")")
    return (f"{dataset}; masks at initialisation, no training: {', '.join(parts)}; seeds "
            f"{', '.join(map(str, seeds))}.")
