"""Claims of Hoang et al. (Ramanujan graphs, ICLR 2023; the full spectrum, NeurIPS 2023): the
full-spectrum moving distance tracks accuracy, more than the Ramanujan gap Δr or the weighted spectral
gap λ alone, and PAGS/PEGS improve on their generators."""
from __future__ import annotations

import pandas as pd

from ..metrics.stats import correlation_difference, paired_difference
from ..variants import base_of
from .engine import Evidence, MissingData, register_claim
from .tables import accuracy_comparison, table, within_correlation

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
    df = table(tables, STAGE, columns=("final_test_acc", "moving_distance"))
    dst = df[df["regime"] == "dst"] if "regime" in df.columns else df.iloc[:0]
    if len(dst) == 0:
        raise MissingData(f"no ITOP (regime dst) runs in runs/{STAGE}/results.csv")
    return within_correlation(dst, "moving_distance", stages=[STAGE])


def _stronger(tables, other: str, name: str) -> Evidence:
    pop = _population(tables, "moving_distance", other)
    for col in ("moving_distance", other):
        if pop[col].notna().sum() == 0:
            raise MissingData(f"no {col} for the static population runs" + (
                f" (a runs/{STAGE}/moving_distance.csv with run_id, moving_distance is joined onto results)"
                if col == "moving_distance" else ""))
    pop = pop[~pop["collapsed"]]
    cells = pop["model"].astype(str) + "|" + pop["level"].astype(str)
    gap = correlation_difference(pop["final_test_acc"], pop["moving_distance"], pop[other], groups=cells)
    return Evidence(f"|ρ(moving distance, acc)| − |ρ({name}, acc)|, within density", gap.estimate, gap.low,
                    gap.high, gap.n, "bootstrap over runs (both ρ on each resample), 95%", unit="Pearson ρ",
                    n_min=10, models=sorted(pop["model"].unique()),
                    densities=sorted(float(v) for v in pop["level"].unique()),
                    seeds=sorted(int(s) for s in pop["seed"].unique()), stages=[STAGE],
                    notes=[f"within-density ρ: moving distance {gap.rho1:.3g}, {name} {gap.rho2:.3g}",
                           f"population: {', '.join(sorted(pop['label'].unique()))}; collapsed runs excluded"])


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


def _meta_pairs(tables, a: str, b: str) -> Evidence:
    """``a`` (pags or pegs) against ``b`` (pags, or "generator": the generator's own mask), per generator."""
    df = table(tables, STAGE, columns=("final_test_acc",))
    if "opt_generator" not in df.columns:
        raise MissingData(f"runs/{STAGE}/results.csv has no opt_generator column (no PAGS/PEGS runs)")
    meta = df[df["label"].isin([a, b])].assign(gen=lambda t: t["opt_generator"])
    gens = sorted(meta.loc[meta["label"] == a, "gen"].dropna().unique())
    if b == "generator":
        regime = df["regime"] if "regime" in df.columns else pd.Series("static", index=df.index)
        own = df[df["label"].isin(gens) & (regime == "static")]
        meta = pd.concat([meta[meta["label"] == a], own.assign(gen=own["label"], label="generator")])
    ev = accuracy_comparison(meta, a, b, stages=[STAGE], extra_keys=("gen",))
    for g in gens:
        sub = meta[meta["gen"] == g]
        pa = sub[sub["label"] == a].set_index(["model", "level", "seed"])["final_test_acc"]
        pb = sub[sub["label"] == b].set_index(["model", "level", "seed"])["final_test_acc"]
        both = pa.index.intersection(pb.index)
        if len(both):
            r = paired_difference(100 * pa[both].to_numpy(), 100 * pb[both].to_numpy())
            ev.notes.append(f"generator {g}: {r.mean:+.3g} pp (n = {r.n})")
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

