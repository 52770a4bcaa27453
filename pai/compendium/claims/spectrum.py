"""Claims of Hoang et al. (Ramanujan graphs, ICLR 2023; the full spectrum, NeurIPS 2023): the
full-spectrum moving distance tracks accuracy, more than the Ramanujan gap Δr or the weighted spectral
gap λ alone, and PAGS/PEGS improve on their generators."""
from __future__ import annotations

import numpy as np
import pandas as pd

from pai.metrics.stats import correlation_difference
from pai.compendium.variants import base_of
from pai.compendium.claims.engine import Evidence, MissingData, register_claim
from pai.compendium.claims.tables import POOLED, accuracy_comparison, comparison_table, table, undefined_fraction, within_correlation

STAGE = "full_spectrum"
WORK = "Full spectrum / PAGS, PEGS (Hoang et al., ICLR 2023, NeurIPS 2023)"
BLOG = "Hoang et al., NeurIPS 2023, as summarised by its authors (Intel community blog, Kundu)"
NEEDS = (f"runs/{STAGE}/results.csv: model, dataset, method, regime, target_density, seed, final_test_acc, "
         "delta_r_norm, lambda, moving_distance (static runs: a notebook table with run_id, moving_distance, "
         "e.g. moving_distance.csv), opt_generator (PAGS/PEGS rows)")
META = ("pags", "pegs", "dense", "lth", "itop")


def _population(tables, *columns) -> pd.DataFrame:
    df = table(tables, STAGE, columns=("final_test_acc", *columns))
    regime = df["regime"] if "regime" in df.columns else pd.Series("static", index=df.index)
    return df[(regime == "static") & ~df["label"].map(base_of).isin(META)]  # variants too ("pegs (100 ...)")


@register_claim("itop_distance_tracks_accuracy", title="ITOP moving distance tracks accuracy", stage=STAGE, work=WORK, source=BLOG + " (Fig. 3)",
                needs=NEEDS,
                statement="Under ITOP's random regrowth, a sparse network's ℓ2 moving distance in the "
                          "full-spectrum coordinate rises with its accuracy (near-linearly).",
                paper_reason="Pearson ρ per model is printed in the figure only; the source text gives none")
def itop_distance_tracks_accuracy(tables):
    """Two readings side by side (``pai.metrics.moving_distance``): the faithful one, an invalid layer read
    as 0 (a run whose layers mostly have no valid Δr is then "moving" by layers crossing the validity
    threshold, so a density where most units are invalid is undefined), and ``invalid="drop"``, over the
    layers valid at both ends only (a run with none is undefined)."""
    df = table(tables, STAGE, columns=("final_test_acc", "moving_distance"))
    dst = df[df["regime"] == "dst"] if "regime" in df.columns else df.iloc[:0]
    if len(dst) == 0:
        raise MissingData(f"no ITOP (regime dst) runs in runs/{STAGE}/results.csv")
    ev = within_correlation(dst, "moving_distance", stages=[STAGE],
                            what="the moving distance (layers without a valid Δr at either end read as 0)")
    out = [ev]
    counts = ""
    if {"valid_layers", "layers"} <= set(dst.columns) and dst["layers"].notna().any():
        counts = (f"layers with a valid Δr at both ends: {dst['valid_layers'].mean():.2g} of "
                  f"{dst['layers'].mean():.2g} per run on average")
        ev.notes.append(counts)
    if "moving_distance_drop" in dst.columns:
        try:
            drop = within_correlation(dst, "moving_distance_drop", stages=[STAGE],
                                      what="the moving distance over valid layers (no layer valid at both ends)")
        except MissingData as e:
            ev.notes.append(f"invalid='drop' reading: {e}")
        else:
            drop.variant = "invalid='drop' reading (only layers with a valid Δr at both ends)"
            drop.notes += [counts] if counts else []
            out.append(drop)
    return out


def _stratum_gap(pop: pd.DataFrame, other: str, name: str, stratum: str) -> Evidence:
    from pai.compendium.claims.engine import UNDEFINED_SHARE

    share = float(np.mean(undefined_fraction(pop, "moving_distance"))) if len(pop) else 0.0
    cells = pop["model"].astype(str) + "|" + pop["level"].astype(str)
    gap = correlation_difference(pop["final_test_acc"], pop["moving_distance"], pop[other], groups=cells)
    undefined = ""
    if share > UNDEFINED_SHARE:
        undefined = (f"the moving distance is undefined for {share:.0%} of the units (layers without a valid Δr; "
                     f"more than {UNDEFINED_SHARE:.0%}): no verdict at this density")
    return Evidence(f"|ρ(moving distance, acc)| − |ρ({name}, acc)|, within density", gap.estimate, gap.low,
                    gap.high, gap.n, "bootstrap over runs (both ρ on each resample), 95%", unit="Pearson ρ",
                    n_min=10, models=sorted(pop["model"].unique()),
                    densities=sorted(float(v) for v in pop["level"].unique()),
                    seeds=sorted(int(s) for s in pop["seed"].unique()), stages=[STAGE],
                    notes=[f"within-density ρ: moving distance {gap.rho1:.3g}, {name} {gap.rho2:.3g}",
                           f"population: {', '.join(sorted(pop['label'].unique()))}; collapsed runs excluded"],
                    stratum=stratum, undefined=undefined, undefined_share=share)


def _stronger(tables, other: str, name: str) -> Evidence:
    pop = _population(tables, "moving_distance", other)
    for col in ("moving_distance", other):
        if pop[col].notna().sum() == 0:
            raise MissingData(f"no {col} for the static population runs" + (
                f" (a runs/{STAGE}/moving_distance.csv with run_id, moving_distance is joined onto results)"
                if col == "moving_distance" else ""))
    pop = pop[~pop["collapsed"]]
    ev = _stratum_gap(pop, other, name, POOLED)
    ev.stratum, ev.undefined = None, ""
    ev.strata = [_stratum_gap(sub, other, name, str(model)) for model, sub in pop.groupby("model", sort=True)]
    return ev


@register_claim("distance_beats_delta_r", title="full-spectrum distance beats Δr", stage=STAGE, work=WORK, source=BLOG + " (Fig. 4)", needs=NEEDS,
                statement="The full-spectrum distance correlates with accuracy more strongly than the "
                          "Ramanujan gap Δr alone.",
                paper_reason="ρ values are in the figure only; the source text gives none")
def distance_beats_delta_r(tables):
    return _stronger(tables, "delta_r_norm", "Δr")


@register_claim("distance_beats_lambda", title="full-spectrum distance beats λ", stage=STAGE, work=WORK, source=BLOG + " (Fig. 4)", needs=NEEDS,
                statement="The full-spectrum distance correlates with accuracy more strongly than the "
                          "weighted spectral gap λ alone.",
                paper_reason="ρ values are in the figure only; the source text gives none")
def distance_beats_lambda(tables):
    return _stronger(tables, "lambda", "λ")


def _meta_frame(df: pd.DataFrame, a: str, b: str) -> pd.DataFrame:
    """The runs of ``a`` and ``b`` with ``gen``, the generator each pairs on (``b`` = "generator": the
    generator's own static runs, labelled "generator")."""
    if "opt_generator" not in df.columns:
        raise MissingData(f"runs/{STAGE}/results.csv has no opt_generator column (no PAGS/PEGS runs)")
    meta = df[df["label"].isin([a, b])].assign(gen=lambda t: t["opt_generator"])
    gens = sorted(meta.loc[meta["label"] == a, "gen"].dropna().unique())
    if b == "generator":
        regime = df["regime"] if "regime" in df.columns else pd.Series("static", index=df.index)
        own = df[df["label"].isin(gens) & (regime == "static")]
        meta = pd.concat([meta[meta["label"] == a], own.assign(gen=own["label"], label="generator")])
    return meta


def meta_pairs(df: pd.DataFrame, a: str, b: str, *, by: str = "model") -> pd.DataFrame:
    """The comparison table (:func:`pai.compendium.claims.tables.comparison_table`) of ``a`` (pags or pegs) against
    ``b`` (pags, or "generator": each generator's own static mask) in a prepared results table, paired per
    generator, per ``by`` ("model", or "gen": one row per generator): what the claims ``pags_ge_generator``
    and ``pegs_ge_pags`` decide, for a figure or table to show."""
    return comparison_table(_meta_frame(df, a, b), a, b, by=by, extra_keys=("gen",))


def _meta_pairs(tables, a: str, b: str) -> Evidence:
    """``a`` (pags or pegs) against ``b`` (pags, or "generator": the generator's own mask), per generator."""
    meta = _meta_frame(table(tables, STAGE, columns=("final_test_acc",)), a, b)
    ev = accuracy_comparison(meta, a, b, stages=[STAGE], extra_keys=("gen",))
    per = comparison_table(meta, a, b, by="gen", extra_keys=("gen",), pooled=False)
    ev.notes += [f"generator {r.stratum}: {r.mean:+.3g} pp (n = {r.n})" for r in per.itertuples() if r.n]
    return ev


@register_claim("pags_ge_generator", title="PAGS ≥ its generator", stage=STAGE, work=WORK, source=BLOG + " (Tables 2-3)", needs=NEEDS,
                statement="PAGS (best of many masks from a generator by the full-spectrum criterion) is at "
                          "least as accurate as the generator's own mask at the same density (99% sparsity).",
                paper_reason="the tables are images in the source; no number in its text")
def pags_ge_generator(tables):
    return _meta_pairs(tables, "pags", "generator")


@register_claim("pegs_ge_pags", title="PEGS ≥ PAGS", stage=STAGE, work=WORK, source=BLOG + " (Tables 2-3)", needs=NEEDS,
                statement="PEGS (PAGS after a few hundred dense iterations) is at least as accurate as PAGS "
                          "from the same generator.",
                paper_reason="the tables are images in the source; no number in its text")
def pegs_ge_pags(tables):
    return _meta_pairs(tables, "pegs", "pags")

