"""Stage glue of the expander sweep (``notebooks/01_expander_sweep.py``): random-graph vs X-Net vs RReg
layers (Stewart, Michieli & Ozay, *Data-Free Model Pruning at Initialization via Expanders*, CVPRW 2023;
X-Net: Prabhu, Varma & Namboodiri, ECCV 2018).

- :func:`sweep_specs`: the runs, per model at its own densities (``{model: [densities]}``; the
  expander pruners keep at least one edge per node, so each model has its own density floor) or at
  one degree for every layer (the paper profile), plus the dense baselines;
- :func:`results_table`: the results with ``label`` (variants by name), ``level`` and ``collapsed``,
  exactly as the claims scoreboard reads them (:func:`pai.compendium.claims.tables.prepare`);
- :func:`within_level` / :func:`residual_panel`: accuracy against expansion *within* a (model, level)
  cell -- each cell's mean removed from both axes, whose Pearson ρ is the within-density partial
  correlation the claim ``accuracy_rises_with_expansion`` tests;
- :func:`layer_gaps`: each layer's channel-graph spectral gap σ1 − σ2 and kept fraction, per seed;
- :func:`paper_comparison`: the published table beside ours (:func:`pai.compendium.published.paper_vs_ours`).
"""
from __future__ import annotations

import math
from typing import Dict, List, Mapping, Optional, Sequence

import numpy as np
import pandas as pd

from pai.compendium.params import StageParams, find
from pai.compendium.spec import RunSpec

def sweep_specs(params: StageParams, methods: Sequence[str], *,
                densities: Optional[Mapping[str, Sequence[float]]] = None, degrees: Optional[Sequence[int]] = None, allocation: str = "uniform",
                dense_first: Optional[bool] = None) -> List[RunSpec]:
    """Every sparse run and the dense baselines, model by model.

    ``degrees``: one degree ``d`` for every sparse layer (the RReg paper's CIFAR table; ``densities`` is
    then unused); otherwise ``densities[model]`` are the global target densities of that model, the
    per-layer degree following from them by ``allocation`` (``pai.pruners.expanders``).
    ``dense_first``: None = the first-layer rule of ``dense_layer_rule`` (official); True/False = keep
    every model's first layer dense/sparse, for all methods alike (left out of the spec when None, so
    the faithful runs keep their ids)."""
    first = {} if dense_first is None else {"dense_first": bool(dense_first)}
    specs = []
    for model in params.models:
        if degrees:
            specs += params.grid(models=[model], methods=methods, degrees=degrees, options=first)
        else:
            if not densities or model not in densities:
                raise ValueError(f"no densities for model {model!r}: give densities as {{model: [densities]}}")
            specs += params.grid(models=[model], methods=methods, densities=densities[model],
                                 options={"allocation": allocation, **first})
        specs += params.grid(models=[model], methods=["dense"])
    return specs


def stem_check_specs(params: StageParams, methods: Sequence[str], models: Sequence[str], *,
                     densities: Optional[Mapping[str, Sequence[float]]] = None, degrees: Optional[Sequence[int]] = None,
                     allocation: str = "uniform") -> List[RunSpec]:
    """The runs of ``models`` at their sparsest level again, with the first layer dense for every method
    (``dense_first=True``): beside the official rule they show how much of a difference between the
    methods comes from the stem alone (a 1-channel stem is complete under RReg, d of its outputs wide
    under X-Net, and empty with probability (1 - d/n_out)^n_out under the Bernoulli random graph)."""
    specs = []
    for model in models:
        level = {"degrees": [min(degrees)]} if degrees else {"densities": [min(densities[model])]}
        specs += params.grid(models=[model], methods=methods, **level,
                             options={"dense_first": True, **({} if degrees else {"allocation": allocation})})
    return specs


def stem_effect(table: pd.DataFrame, stem: pd.DataFrame, pairs: Sequence[Sequence[str]]) -> pd.DataFrame:
    """Per model and comparison ``(a, b)``: the paired accuracy difference a − b (pp, over seeds, 95% t
    interval) under the official first-layer rule (``table``, at ``stem``'s levels) and with the first
    layer dense (``stem``): rows of :func:`pai.compendium.claims.tables.comparison_table`, the function the claims
    ``rreg_ge_xnet``, ``xnet_ge_random`` and ``rreg_ge_random`` read, so its collapsed-run rule (pairs
    where both runs collapsed excluded, pairs where one did kept and counted) applies here alike."""
    from pai.compendium.claims.tables import comparison_table

    rows = []
    for model, sub in stem.groupby("model", sort=False):
        level = sub["level"].iloc[0]
        official = table[(table["model"] == model) & (table["level"] == level)]
        for rule, df in (("official rule", official), ("first layer dense", sub)):
            for a, b in pairs:
                if not ((df["label"] == a).any() and (df["label"] == b).any()):
                    continue
                r = comparison_table(df, a, b, by="model", pooled=False).iloc[0]
                rows.append({"model": model, "level": level, "rule": rule, "comparison": f"{a} − {b}",
                             "mean_pp": r["mean"], "low": r["low"], "high": r["high"], "n": r["n"],
                             "both_collapsed": r["both_collapsed"], "only_a": r["only_a"], "only_b": r["only_b"]})
    return pd.DataFrame(rows)


def table_of(results: Sequence[Dict]) -> pd.DataFrame:
    """Run records as a prepared table (:func:`results_table`) without writing ``results.csv``: the
    runs of a side check that the claims must not read."""
    from pai.compendium.tables import flatten_result

    if not results:
        return pd.DataFrame(columns=["model", "method", "label", "level", "seed", "final_test_acc", "collapsed"])
    return results_table(pd.DataFrame([flatten_result(r) for r in results]))


def results_table(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` (``pai.compendium.runs.write_tables``) with ``label``, ``level`` (target density, or the degree
    where one was given) and ``collapsed`` (at chance), as :mod:`pai.compendium.claims` pairs and filters runs."""
    from pai.compendium.claims.tables import prepare

    return prepare(table)


def within_level(table: pd.DataFrame, x: str, y: str = "final_test_acc") -> pd.DataFrame:
    """The sparse, not collapsed runs with finite ``x`` and ``y``, and ``x_within``/``y_within``: each
    value minus its (model, level) cell's mean.  The Pearson ρ of the two within columns over several
    cells equals the partial correlation with one indicator per cell (the claim's estimate)."""
    df = table[(table["method"] != "dense") & ~table["collapsed"]].copy()
    df = df[np.isfinite(df[x].astype(float)) & np.isfinite(df[y].astype(float))]
    cell = df.groupby(["model", "level"])
    df["x_within"] = df[x].astype(float) - cell[x].transform("mean")
    df["y_within"] = df[y].astype(float) - cell[y].transform("mean")
    df["cell"] = df["model"].astype(str) + "|" + df["level"].astype(str)
    return df


def residual_panel(ax, table: pd.DataFrame, x: str, *, xlabel: str, title: str = "", level_name: str = "density",
                   methods: Optional[Sequence[str]] = None) -> Dict[str, float]:
    """Accuracy (pp) against ``x``, both relative to their (model, level) cell means, one colour per
    method label, with a least-squares line and the within-level ρ, its 95% interval, p and n in a box
    on no data (:func:`pai.compendium.plots.place_text`).  Collapsed runs are left out, as in the claim."""
    from pai.compendium.claims.tables import POOLED, correlation_table
    from pai.compendium.plots import place_text, style_of

    df = within_level(table, x)
    labels = [m for m in (methods or dict.fromkeys(df["label"])) if (df["label"] == m).any()]
    for lab in labels:
        sub = df[df["label"] == lab]
        st = style_of(lab)
        ax.scatter(sub["x_within"], 100 * sub["y_within"], s=18, alpha=0.85, color=st["color"],
                   marker=st["marker"], edgecolors="none", label=lab)
    # the number in the box is the claim's: the same table, the same function (one model: its row)
    corr = correlation_table(table[table["method"] != "dense"], x) if len(df) else None
    r = None
    if corr is not None:
        models = corr[corr["stratum"] != POOLED]
        r = (models if len(models) == 1 else corr[corr["stratum"] == POOLED]).iloc[0]
    if len(df) >= 3 and np.ptp(df["x_within"]) > 0:
        a, b = np.polyfit(df["x_within"], 100 * df["y_within"], 1)
        xs = np.linspace(df["x_within"].min(), df["x_within"].max(), 50)
        ax.plot(xs, a * xs + b, color="black", lw=1, ls="--", alpha=0.7)
    ax.axhline(0, color="#999999", lw=0.6)
    ax.axvline(0, color="#999999", lw=0.6)
    ax.set_xlabel(f"{xlabel}\n(minus its mean at the same {level_name})")
    ax.set_ylabel(f"test accuracy (pp, minus\nits mean at the same {level_name})")
    if title:
        ax.set_title(title)
    out = {"rho_within": math.nan, "low": math.nan, "high": math.nan, "p": math.nan, "n": len(df),
           "cells": int(df["cell"].nunique()) if len(df) else 0}
    if r is not None:
        out.update(rho_within=r["rho"], low=r["low"], high=r["high"], p=r["p_value"], n=int(r["n"]),
                   cells=int(r["cells"]))
    place_text(ax, f"within-{level_name} ρ = {out['rho_within']:.2f} [{out['low']:.2f}, {out['high']:.2f}]\n"
                   f"p = {out['p']:.2g}, n = {out['n']} runs in {out['cells']} cells")
    return out


def layer_gaps(specs: Sequence[RunSpec], root, *, model: str, methods: Sequence[str], seeds: Sequence[int],
               **level) -> pd.DataFrame:
    """One row per (method label, seed, layer) at one level (``density=`` or ``degree=``, as in
    :func:`pai.compendium.params.find`): the layer's kept fraction and the spectral gap σ1 − σ2 of its channel
    biadjacency (an edge = a kept kernel; ``pai.metrics.spectral_gap``), from the run's saved mask."""
    from pai import metrics
    from pai.compendium.experiments import mask_of_run
    from pai.compendium.variants import resolve

    rows = []
    for label in methods:
        method, options = resolve(label)
        for seed in seeds:
            spec = find(specs, model=model, method=method, seed=seed, **options, **level)
            mask = mask_of_run(spec, root)
            for i, (name, m) in enumerate(mask.items()):
                rows.append({"model": model, "label": label, "seed": seed, "layer_index": i,
                             "layer": name.removesuffix(".weight"), "kept_fraction": float(m.float().mean()),
                             "channel_gap": metrics.spectral_gap(metrics.biadjacency(None, m, "channel"))})
    return pd.DataFrame(rows)


def sparse_layers(layers: pd.DataFrame) -> pd.DataFrame:
    """The rows of :func:`layer_gaps` whose layer some method keeps sparse: a layer complete under every
    method (the dense classifier) has the same graph for all and a gap (``sqrt(n_in n_out)``) that
    would dwarf the others."""
    dense_everywhere = layers.groupby("layer_index")["kept_fraction"].transform("min") >= 1.0
    return layers[~dense_everywhere]


def level_ticks(ax, rows: pd.DataFrame) -> None:
    """One x tick per level (target density or degree) at the mean density the methods keep there, so
    the ticks of nearby kept densities do not overprint (the points stay at each mask's own density)."""
    import matplotlib.ticker as mt

    kept = rows.groupby("level")["density"].mean().sort_values()
    ax.xaxis.set_minor_formatter(mt.NullFormatter())
    ax.set_xticks(kept.to_numpy(), [f"{v:.2g}" for v in kept])


def layer_series(layers: pd.DataFrame, column: str, methods: Sequence[str]) -> Dict[str, List[np.ndarray]]:
    """``{label: [per-seed values of layer 0, layer 1, ...]}`` of a :func:`layer_gaps` column, for
    :func:`pai.compendium.plots.grouped_bars` (one bar per method and layer, whiskers over seeds)."""
    index = sorted(layers["layer_index"].unique())
    return {lab: [layers[(layers["label"] == lab) & (layers["layer_index"] == i)][column].to_numpy() for i in index]
            for lab in methods if (layers["label"] == lab).any()}


def paper_comparison(table: pd.DataFrame, work: str) -> pd.DataFrame:
    """The published rows of ``work`` for the datasets, models' and degrees we ran (dense included),
    each with our mean ± spread over seeds and Δ (:func:`pai.compendium.published.paper_vs_ours`, matched on the
    degree); a published row we have no run for says "not run".  Only the faithful methods are
    compared: a variant (``label`` differs from ``method``) is not what the paper ran."""
    from pai.compendium.published import paper_table

    return paper_table(table, work, keep_unmatched=True, levels_run_only=True)
