"""Node-path balance stage (notebook 04): the mask geometry table, the effective-paths-vs-effective-nodes
figure and the paper-vs-ours table of Pham et al., "Towards data-agnostic pruning at initialization:
what makes a good sparse mask?", NeurIPS 2023 (NPB).

The paper's main figure places every mask at (ln effective nodes, log10 effective paths) -- both
measured as the official ``measure_node_path`` does (:func:`pai.metrics.effective_paths`,
:func:`pai.metrics.effective_nodes`) -- with bubble size growing with density.  Here the geometry is
measured on every seed's freshly initialised model without training (:func:`geometry`), so it costs
seconds and can span more densities than are trained.
"""
from __future__ import annotations

import math
from typing import Dict, Mapping, Optional, Sequence

import numpy as np
import pandas as pd

from pai.compendium.claims import geometry_table
from pai.compendium.experiments import mask_geometry_grid
from pai.compendium.variants import add_labels


def geometry(model: str, labels: Sequence[str], densities: Sequence[float], dataset: str, *,
             seeds: Sequence[int], data_subset: Optional[int] = None, image_size: Optional[int] = None,
             method_options: Optional[Mapping[str, Mapping]] = None, executor: str = "local",
             workers: int = 1) -> pd.DataFrame:
    """:func:`pai.compendium.experiments.mask_geometry` of every (label, density, seed), as the claims' geometry table
    (:func:`pai.compendium.claims.geometry_table`: ``model, method, target_density, seed, log10_paths,
    ln_effective_nodes, effective_nodes, log10_path_kernel_trace, mean/min_width_fraction``) plus
    ``dataset``, the prune options as ``opt_<name>`` columns and ``label``.

    ``labels`` are method names or registered variant labels (``"npb (paper normaliser)"``,
    :func:`pai.compendium.variants.resolve`); the variant's options travel as ``opt_*`` columns, as in
    ``results.csv``, so the scoreboard names the row by the same label.  ``method_options[method]`` are
    added to that method and its variants (what the stage's runs get, e.g. NPB's ``max_p``).  Each seed
    prunes the model that seed initialises, with prune seed = seed: the masks of the trained runs.
    ``executor``/``workers`` spread the masks as a sweep spreads runs (the table does not depend on them)."""
    grid = mask_geometry_grid([model], labels, densities, dataset, seeds=seeds, method_options=method_options,
                              train={"train_subset": data_subset, "image_size": image_size},
                              executor=executor, workers=workers)
    return geometry_table(grid.assign(dataset=dataset).to_dict("records"))


def _sizes(densities: Sequence[float], smallest: float = 14.0, largest: float = 110.0) -> Dict[float, float]:
    """Marker area per density, growing with log density (the paper's bubbles grow with density)."""
    levels = sorted({float(d) for d in densities})
    if len(levels) == 1:
        return {levels[0]: (smallest + largest) / 2}
    lo, hi = math.log(levels[0]), math.log(levels[-1])
    return {d: smallest + (largest - smallest) * (math.log(d) - lo) / (hi - lo) for d in levels}


def geometry_summary(geo: pd.DataFrame, labels: Sequence[str]) -> pd.DataFrame:
    """Per (label, target density): mean, min and max over seeds of ``ln_effective_nodes`` and
    ``log10_paths`` (disconnected masks, -inf paths, left out and counted in ``disconnected``)."""
    rows = []
    for label in labels:
        for density, sub in geo[geo["label"] == label].groupby("target_density"):
            ok = sub[np.isfinite(sub["log10_paths"].astype(float)) & np.isfinite(sub["ln_effective_nodes"].astype(float))]
            row = {"label": label, "target_density": float(density), "seeds": len(ok),
                   "disconnected": len(sub) - len(ok)}
            for col in ("ln_effective_nodes", "log10_paths"):
                v = ok[col].astype(float)
                row.update({col: v.mean(), f"{col}_min": v.min(), f"{col}_max": v.max()})
            rows.append(row)
    return pd.DataFrame(rows)


def draw_paths_vs_nodes(ax, geo: pd.DataFrame, labels: Sequence[str]) -> Dict[str, str]:
    """The paper's main figure from a :func:`geometry` table: per label, the mean over seeds at each
    density (marker area = density, key beside the axes) with min-max bars over seeds, joined in density
    order; one colour per method, variants in its colour with their own line style and marker
    (:func:`pai.compendium.plots.style_of`).  Legend and size key go outside the axes, right (constrained layout).  Returns the numbers
    for the caption (``"<label> @ <density>": "ln nodes / log10 paths"``)."""
    from matplotlib.lines import Line2D

    from pai.compendium import plots

    summary = geometry_summary(geo, labels)
    sizes = _sizes(summary["target_density"]) if len(summary) else {}
    handles, numbers = [], {}
    for label in labels:
        sub = summary[summary["label"] == label].dropna(subset=["log10_paths"]).sort_values("target_density")
        if sub.empty:
            continue
        st = plots.style_of(label)
        x, y = sub["ln_effective_nodes"].to_numpy(), sub["log10_paths"].to_numpy()
        ax.errorbar(x, y, xerr=plots.error_span(x, sub["ln_effective_nodes_min"], sub["ln_effective_nodes_max"]),
                    yerr=plots.error_span(y, sub["log10_paths_min"], sub["log10_paths_max"]), fmt="none",
                    ecolor=st["color"], elinewidth=0.6, alpha=0.6, capsize=0)
        ax.plot(x, y, color=st["color"], ls=st["linestyle"], lw=0.9, alpha=0.7)
        ax.scatter(x, y, s=[sizes[d] for d in sub["target_density"]], color=st["color"], marker=st["marker"],
                   edgecolors="black", linewidths=0.3, zorder=3)
        handles.append(Line2D([], [], color=st["color"], ls=st["linestyle"], marker=st["marker"], ms=5,
                              markeredgecolor="black", markeredgewidth=0.3, label=label))
        for row in sub.itertuples():
            numbers[f"{label} @ {row.target_density:g}: ln nodes / log10 paths"] = \
                f"{row.ln_effective_nodes:.2f} / {row.log10_paths:.2f}"
    ax.set_xlabel("ln(effective nodes)")
    ax.set_ylabel("log10(effective paths)")
    # Outside the axes, right: the masks span the whole plane (random ERK bottom right, SynFlow top left)
    fig = ax.figure
    fig.legend(handles=handles, loc="outside right upper", fontsize=7)
    keys, names = plots.size_handles(sizes)
    fig.legend(keys, names, loc="outside right lower", title="density", fontsize=7, title_fontsize=7)
    return numbers


def accuracy_numbers(table: pd.DataFrame, labels: Sequence[str]) -> Dict[str, float]:
    """Mean final test accuracy per (label, target density) of a labelled results table, and the dense one."""
    out = {}
    for label in labels:
        for density, sub in table[table["label"] == label].groupby("target_density"):
            out[f"{label} acc @ {density:g}"] = float(sub["final_test_acc"].mean())
    dense = table[table["method"] == "dense"]["final_test_acc"]
    if len(dense):
        out["dense acc"] = float(dense.mean())
    return out


def faithful_rows(table: pd.DataFrame) -> pd.DataFrame:
    """The rows of each method's faithful default (its plain label) and the dense runs: what the paper
    ran, so a variant never doubles a published number's match (:func:`pai.compendium.published.paper_vs_ours`)."""
    labelled = table if "label" in table.columns else add_labels(table)
    return labelled[labelled["label"] == labelled["method"]]


def paper_table(table: pd.DataFrame, work: str) -> pd.DataFrame:
    """:func:`pai.compendium.published.paper_vs_ours` of the faithful runs against ``work``'s published numbers."""
    from pai.compendium.published import paper_table as published_table

    return published_table(table if "label" in table.columns else add_labels(table), work)

