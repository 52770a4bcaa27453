"""The PHEW stage (``notebooks/03_phew_path_kernel.py``; Patil & Dovrolis, ICML 2021): the tables its
figures and claims read, reshaped from the sweep's results and the mask geometry.

- :func:`geometry_csv`: ``pai.compendium.experiments.mask_geometry_grid`` rows flattened for ``geometry.csv``
  (``pai.compendium.claims.geometry_table``) with each row's variant ``label`` -- the table the path-kernel-trace
  and width claims read;
- :func:`curve_rows`: rows for ``pai.compendium.plots.density_curves(..., by="label")`` with the density each mask
  actually keeps on x;
- :func:`width_bars`: per-layer width fractions at one density, per label and seed, for
  ``pai.compendium.plots.grouped_bars``;
- :func:`loss_curves`: training loss per epoch (mean and min-max over seeds) per label;
- :func:`means_at`: one number per label at one level, for a figure's caption;
- :func:`paper_table`: ``pai.compendium.published.paper_vs_ours`` of the faithful runs only;
- :func:`geometry_setup`: the footer of a mask-only figure;
- :func:`trace_note`, :func:`width_note`, :func:`accuracy_note`: the Markdown the notebook renders under
  each figure, every number in it computed from the tables (true under every profile and seed).
"""
from __future__ import annotations

import math
from typing import Any, Dict, List, Sequence, Tuple

import numpy as np
import pandas as pd

from pai.compendium.claims.tables import geometry_table
from pai.compendium.variants import add_labels, label_of


def geometry_csv(geometry: pd.DataFrame) -> pd.DataFrame:
    """``geometry.csv``: one row per mask (``model, method, target_density, seed, kept_density,
    log10_paths, ln_effective_nodes, effective_nodes, log10_path_kernel_trace, mean_width_fraction,
    min_width_fraction``, the ``opt_*`` prune options) and its ``label``."""
    return geometry_table(geometry.to_dict("records"))


def curve_rows(table: pd.DataFrame, y: str) -> List[Dict[str, Any]]:
    """Rows ``{label, density, target_density, y}`` for :func:`pai.compendium.plots.density_curves` with
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
    """:func:`pai.compendium.published.paper_vs_ours` of the runs under a method's plain name (its faithful
    default): the published baselines ran that protocol (SynFlow's Fig. 6 scores SNIP and GraSP in eval
    mode), so a variant such as ``"snip (train mode)"`` is not matched against them."""
    from pai.compendium.published import paper_table as published_table

    return published_table(table if "label" in table.columns else add_labels(table), work)


def geometry_setup(dataset: str, models: Sequence[str], params, seeds: Sequence[int]) -> str:
    """The footer of a figure of masks at initialisation: dataset, models with their input size and the
    training subset the data-dependent pruners draw their images from, seeds (no epochs: nothing is
    trained)."""
    from pai.data import shape

    parts = []
    for m in models:
        opts = params.train(m)
        px, sub = opts.get("image_size") or shape(dataset).image_size, opts.get("train_subset")
        parts.append(f"{m} ({px} px" + (f", {sub} training images" if sub else "") + ")")
    return (f"{dataset}; masks at initialisation, no training: {', '.join(parts)}; seeds "
            f"{', '.join(map(str, seeds))}.")


def _versus(a: float, b: float, other: str) -> str:
    """Where log10 value ``a`` sits against ``other``'s ``b``, in words ("2.3 orders of magnitude above
    random's"); ``-inf`` is a mask with no input-output path."""
    if not (math.isfinite(a) or math.isfinite(b)):
        return f"without a path, like {other}'s"
    if not math.isfinite(a):
        return f"zero (no path), where {other}'s is not"
    if not math.isfinite(b):
        return f"above {other}'s, which has no path"
    d = a - b
    return f"{abs(d):.1f} orders of magnitude {'above' if d >= 0 else 'below'} {other}'s"


def trace_note(geo: pd.DataFrame, models: Sequence[str], labels: Sequence[str], density: float) -> str:
    """Markdown under the path-kernel figure, computed from ``geometry.csv``: per model the mean log10
    trace of every label at target ``density``, PHEW's distance to random, SynFlow and SynFlow-L2 in
    orders of magnitude, and at which densities each label's masks lose every input-output path."""
    from pai.compendium.stages import fmt_values

    lines = [f"From `tables/geometry.csv`, at density {density:g}, mean over seeds of the log10 trace:"]
    for model in models:
        m = {k: v for k, v in means_at(geo, "log10_path_kernel_trace", model=model, level=density).items()
             if k in labels}
        text = f"- **{model}**: {fmt_values(m, 'log')}."
        if "phew" in m:
            cmp = [_versus(m["phew"], m[o], o) for o in ("random", "synflow", "synflow-l2") if o in m]
            text += f" PHEW's trace is {'; '.join(cmp)}." if cmp else ""
        lines.append(text)
    sub = geo[geo["model"].isin(models) & geo["label"].isin(labels)]
    empty = sub[~np.isfinite(sub["log10_path_kernel_trace"].astype(float))]
    by_label = empty.groupby("label", sort=False)["target_density"].agg(lambda d: sorted(set(d), reverse=True))
    lines.append("")
    lines.append("Masks with no input-output path (trace zero), at the densities where any seed has one: "
                 + ("; ".join(f"{lab} at {', '.join(f'{d:g}' for d in ds)}" for lab, ds in by_label.items())
                    or "none") + ".")
    return "\n".join(lines)


def width_note(geometry: pd.DataFrame, geo: pd.DataFrame, models: Sequence[str], labels: Sequence[str],
               density: float) -> str:
    """Markdown under the width figure: per model, every label's mean fraction of units kept over the
    layers and on the first layer, at target ``density`` (means over seeds)."""
    from pai.compendium.stages import fmt_values

    lines = [f"From the mask geometry at density {density:g}, mean over seeds of the fraction of units kept:"]
    for model in models:
        mean = {k: v for k, v in means_at(geo, "mean_width_fraction", model=model, level=density).items()
                if k in labels}
        layers, series = width_bars(geometry, model, density, labels)
        first = {lab: float(np.mean(v[0])) for lab, v in series.items()}
        lines.append(f"- **{model}**, over the layers: {fmt_values(mean, 'pct')}; first layer (`{layers[0]}`): "
                     f"{fmt_values(first, 'pct')}.")
    return "\n".join(lines)


def accuracy_note(table: pd.DataFrame, geo: pd.DataFrame, models: Sequence[str], labels: Sequence[str],
                  densities: Sequence[float], dataset: str) -> str:
    """Markdown under the accuracy figure, from ``results.csv`` and ``geometry.csv``: per model and
    density every label's mean final test accuracy, the spread among the pruners that did not collapse,
    and at the sparsest density the mean log10 count of input-output paths of each label."""
    from pai.metrics.paired import COLLAPSE_MARGIN, chance_accuracy
    from pai.compendium.stages import fmt_number, fmt_values

    chance = chance_accuracy(dataset)
    table = table if "label" in table.columns else add_labels(table)
    lines = ["From `results.csv`, mean final test accuracy over seeds (chance: "
             f"{fmt_number(chance, 'pct')}; collapsed: at most {fmt_number(chance * (1 + COLLAPSE_MARGIN), 'pct')}):"]
    for model in models:
        runs = table[table["model"] == model]
        dense = runs[runs["method"] == "dense"]["final_test_acc"].astype(float).mean()
        for d in sorted(densities, reverse=True):
            acc = {k: v for k, v in means_at(runs, "final_test_acc", model=model, level=d).items() if k in labels}
            alive = [v for v in acc.values() if v > chance * (1 + COLLAPSE_MARGIN)]
            spread = (f"; the {len(alive)} above the collapse line lie within {100 * (max(alive) - min(alive)):.1f} "
                      "points of each other" if len(alive) > 1 else "")
            lines.append(f"- **{model}**, density {d:g}: {fmt_values(acc, 'pct')}{spread} (dense "
                         f"{fmt_number(dense, 'pct')}).")
        lowest = min(densities)
        paths = {k: v for k, v in means_at(geo, "log10_paths", model=model, level=lowest).items() if k in labels}
        if paths:
            lines.append(f"- **{model}**, density {lowest:g}, log10 input-output paths: {fmt_values(paths, 'log')}.")
    return "\n".join(lines)
