"""Claims of Patil & Dovrolis, *PHEW* (ICML 2021), and of SynFlow (Tanaka et al., NeurIPS 2020) that
PHEW's argument rests on: PHEW beats SynFlow(-L2) at high sparsity, has a larger path-kernel trace than
random and wider layers than SynFlow(-L2); SynFlow avoids the layer collapse of magnitude and SNIP."""
from __future__ import annotations

import pandas as pd

from pai.metrics.stats import mean_interval
from pai.compendium.claims.engine import Evidence, MissingData, register_claim
from pai.compendium.claims.tables import (STAGES, accuracy_comparison, across_variants, labels_of, metric_comparison, pairs, sparsest,
                     table)

STAGE = "phew_path_kernel"
WORK = "PHEW (Patil & Dovrolis, ICML 2021)"
SLIDES = "Patil & Dovrolis, ICML 2021, PHEW talk slides"
NPB_FIG = "Pham et al., NeurIPS 2023, main figure (bubble labels; PHEW and SynFlow as run by the NPB authors)"
NEEDS = f"runs/{STAGE}/results.csv: model, dataset, method, target_density, seed, final_test_acc"
GEOMETRY = (f"runs/{STAGE}/geometry.csv (pai.compendium.claims.geometry_table of pai.compendium.experiments.mask_geometry rows): "
            "model, method, target_density, seed, ")


def mask_table(tables, stage: str, column: str) -> pd.DataFrame:
    """Mask metrics at initialisation: ``geometry.csv`` when it has ``column``, else ``results.csv``."""
    geo = tables.get(stage, {}).get("geometry")
    if geo is not None and column in geo.columns and geo[column].notna().any():
        return table(tables, stage, "geometry", columns=(column,))
    try:
        return table(tables, stage, columns=(column,))
    except MissingData as e:
        raise MissingData(f"no runs/{stage}/geometry.csv with {column}, and {e}") from None


def _sparse_accuracy(tables, a: str, b: str):
    df = sparsest(table(tables, STAGE, columns=("final_test_acc",)))
    return across_variants(df, a, b, lambda la, lb: accuracy_comparison(df, la, lb, stages=[STAGE]))


@register_claim("phew_ge_synflow_sparse", title="PHEW ≥ SynFlow at high sparsity", stage=STAGE, work=WORK, source=NPB_FIG,
                needs=NEEDS,
                statement="At high sparsity PHEW is at least as accurate as SynFlow.",
                paper="ResNet-20/CIFAR-10 at 99% sparsity: PHEW 70.44% vs SynFlow 66.05%; VGG-19/CIFAR-100: "
                      "64.43% vs 62.11%")
def phew_ge_synflow_sparse(tables):
    return _sparse_accuracy(tables, "phew", "synflow")


@register_claim("phew_ge_synflow_l2_sparse", title="PHEW ≥ SynFlow-L2 at high sparsity", stage=STAGE, work=WORK, source="PHEW abstract; " + SLIDES,
                needs=NEEDS, statement="At high sparsity PHEW is at least as accurate as SynFlow-L2.",
                paper_reason="PHEW's own tables are not in the source text")
def phew_ge_synflow_l2_sparse(tables):
    return _sparse_accuracy(tables, "phew", "synflow-l2")


def _metric(tables, a: str, b: str, column: str, unit: str):
    df = mask_table(tables, STAGE, column)
    return across_variants(df, a, b, lambda la, lb: metric_comparison(df, la, lb, column, unit=unit,
                                                                      stages=[STAGE]))


@register_claim("phew_trace_above_random", title="PHEW path-kernel trace > random", stage=STAGE, work=WORK, source=SLIDES + " (path kernel slides)",
                needs=GEOMETRY + "log10_path_kernel_trace (or results.csv's)",
                statement="PHEW's masks have a larger path-kernel trace (Gebhart et al. 2021) than random "
                          "masks of the same density.",
                paper_reason="shown as a figure; the source text gives no number")
def phew_trace_above_random(tables):
    return _metric(tables, "phew", "random", "log10_path_kernel_trace", "log10 units")


@register_claim("phew_wider_than_synflow_l2", title="PHEW wider than SynFlow-L2", stage=STAGE, work=WORK, source=SLIDES + " (layer width slides)",
                needs=GEOMETRY + "mean_width_fraction",
                statement="PHEW keeps wider layers than SynFlow-L2 (which maximises the path-kernel trace and "
                          "so produces narrow layers).",
                paper_reason="shown as a figure; the source text gives no number")
def phew_wider_than_synflow_l2(tables):
    return _metric(tables, "phew", "synflow-l2", "mean_width_fraction", "fraction of units")


@register_claim("phew_wider_than_synflow", title="PHEW wider than SynFlow", stage=STAGE, work=WORK, source=SLIDES + " (layer width slides)",
                needs=GEOMETRY + "mean_width_fraction",
                statement="PHEW keeps wider layers than SynFlow.",
                paper_reason="shown as a figure; the source text gives no number")
def phew_wider_than_synflow(tables):
    return _metric(tables, "phew", "synflow", "mean_width_fraction", "fraction of units")


COLLAPSE_BASELINES = ("magnitude", "snip")


@register_claim("synflow_avoids_collapse", title="SynFlow avoids layer collapse (vs magnitude, SNIP)", stage=STAGE,
                work="SynFlow (Tanaka et al., NeurIPS 2020)",
                source="Tanaka et al., NeurIPS 2020; official repository ganguli-lab/Synaptic-Flow, Results/data (mean of 3 seeds)",
                needs="results.csv of every stage with synflow and magnitude or snip runs: final_test_acc, "
                      "log10_paths or effective_nodes (disconnected masks)",
                statement="Where magnitude pruning or SNIP collapse (a disconnected or untrainable network), "
                          "SynFlow at the same model, density and seed does not.",
                paper="VGG-16/CIFAR-10 at 99.9% sparsity: SynFlow 80.39%, magnitude 10.00% (chance), SNIP "
                      "76.25%; ResNet-18/CIFAR-10 at 99%: SynFlow 90.36%, magnitude 10.00%")
def synflow_avoids_collapse(tables):
    frames = {}
    for stage in STAGES:
        try:
            frames[stage] = table(tables, stage, columns=("final_test_acc",))
        except MissingData:
            continue
    labels = sorted({lab for df in frames.values() for lab in labels_of(df, "synflow")},
                    key=lambda lab: (lab != "synflow", lab))
    if "synflow" not in labels:
        raise MissingData("no stage has synflow runs")
    return [_collapse_rate(frames, lab) for lab in labels]


def _collapse_rate(frames, synflow: str) -> Evidence:
    """Over the (stage, model, density, seed) where a baseline (magnitude, SNIP or one of their variants)
    failed (at chance or disconnected):
    failed(baseline) − failed(synflow) = 1 − failed(synflow), in percentage points.  0 would mean SynFlow
    collapses wherever they do; a baseline that never collapses leaves nothing to test."""
    diffs, used, parts, stages = [], [], [], []
    for stage, df in frames.items():
        df = df.assign(failed=(df["collapsed"] | df["disconnected"]).astype(float))
        # a baseline's variants count as that baseline: SNIP scored in train mode (the PHEW repo's
        # protocol) is still SNIP
        for base in [lab for b in COLLAPSE_BASELINES for lab in labels_of(df, b)]:
            if synflow not in set(df["label"]):
                continue
            pr = pairs(df, base, synflow, "failed")
            parts.append(f"{stage}: {base} failed {int(pr['a'].sum())}/{len(pr)} pairs, {synflow} "
                         f"{int(pr['b'].sum())}/{len(pr)}")
            pr = pr[pr["a"] == 1]
            if len(pr):
                diffs.append(100 * (pr["a"] - pr["b"]))
                used.append(pr)
                stages += [] if stage in stages else [stage]
    if not parts:
        raise MissingData(f"no stage has both {synflow} and magnitude or snip runs")
    if not diffs:
        raise MissingData("magnitude and SNIP never collapsed at these densities (the phenomenon does not "
                          "appear here); " + "; ".join(parts))
    res = mean_interval(pd.concat(diffs))
    pr = pd.concat(used)
    d = pd.concat(diffs)
    strata = []
    for model in sorted(pr["model"].astype(str).unique()):
        at = (pr["model"].astype(str) == model).to_numpy()
        r, sub = mean_interval(d.to_numpy()[at]), pr[at]
        strata.append(Evidence(f"collapse(baseline) − collapse({synflow}) where the baseline collapsed", r.mean,
                               r.low, r.high, r.n, "paired t over (stage, model, density, seed, baseline) pairs, 95%",
                               unit="percentage points of runs", models=[model],
                               densities=sorted(float(v) for v in sub["level"].unique()),
                               seeds=sorted(int(s) for s in sub["seed"].unique()), stages=stages,
                               variant=None if synflow == "synflow" else synflow, stratum=model))
    return Evidence(f"collapse(baseline) − collapse({synflow}) where the baseline collapsed", res.mean, res.low,
                    res.high, res.n, "paired t over (stage, model, density, seed, baseline) pairs, 95%",
                    unit="percentage points of runs", models=sorted(pr["model"].unique()),
                    densities=sorted(float(v) for v in pr["level"].unique()),
                    seeds=sorted(int(s) for s in pr["seed"].unique()), stages=stages, notes=parts,
                    variant=None if synflow == "synflow" else synflow, strata=strata)
