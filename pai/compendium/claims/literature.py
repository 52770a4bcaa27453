"""Counter-claims and sanity checks from the literature since the four works, decided on the same runs.

- Cunegatti, Farina, Bucur & Iacca, "Understanding Sparse Neural Networks from their Topology via
  Multipartite Graph Representations", TMLR 2024: Ramanujan-type metrics of a sparse network predict its
  accuracy no better than its layer-wise density does.  Tested here as the partial correlation of each
  spectral quantity of the full-spectrum stage (Δr, λ, the full-spectrum moving distance) with accuracy
  once the per-layer densities (and, in a second row, the method too) are regressed out.
- Frankle, Dziugaite, Roy & Carbin, "Pruning Neural Networks at Initialization: Why are We Missing the
  Mark?", ICLR 2021, Sec. 5: shuffling each layer's mask (same layer-wise densities, positions forgotten)
  does not hurt the pruning-at-initialisation methods -- their masks carry no information beyond the
  per-layer densities.  The NPB paper (Pham et al., NeurIPS 2023) builds on this observation.  Tested by
  pairing each method with its own mask shuffled within layers (``pai.masks.layer_shuffle``), per seed.

Both are claims that something does *not* matter, and "no effect" can only be shown against a stated
margin.  So each effect is oriented, as the one verdict rule (:func:`pai.compendium.claims.engine.decide`) needs,
as *margin minus the effect's size*, with the image of the 95% interval:

- Cunegatti: ``0.3 − |ρ|`` for the partial ρ (Fisher z interval ``[lo, hi]``): **holds** when the whole
  interval lies inside (−0.3, 0.3) (the metric adds at most a weak correlation beyond layer-wise
  density); **contradicted** when it lies wholly outside (the metric predicts accuracy beyond it);
  inconclusive otherwise -- which, with the few dozen runs a cpu profile trains and ~10 controls, is
  the expected reading unless the correlation is strong.
- Frankle: ``1 pp − (accuracy(method) − accuracy(shuffled))`` with the paired t interval: **holds** when
  the upper bound of the drop is below 1 percentage point, **contradicted** when its lower bound is
  above 1 pp (shuffling clearly hurts), inconclusive otherwise.
"""
from __future__ import annotations

import math
from typing import List

import numpy as np
import pandas as pd

from pai.metrics.stats import fisher_interval, partial_correlation
from pai.compendium.variants import base_of, unshuffled
from pai.compendium.claims.engine import STAGES, Evidence, MissingData, register_claim
from pai.compendium.claims.tables import accuracy_comparison, table

LAYER_DENSITY = "layer_density:"  # column prefix: the fraction of a layer's weights the run's mask keeps
RHO_MARGIN = 0.3  # |partial ρ| below this: "no better than layer-wise density"
PP_MARGIN = 1.0  # percentage points: a smaller drop under shuffling "does not hurt"

CUNEGATTI = "Cunegatti, Farina, Bucur & Iacca, TMLR 2024 (multipartite graph encoding of sparse networks)"
CUNEGATTI_SRC = ("Cunegatti et al., 'Understanding Sparse Neural Networks from their Topology via Multipartite "
                 "Graph Representations', TMLR 2024")
FRANKLE = "Frankle, Dziugaite, Roy & Carbin, ICLR 2021 (pruning at initialization: missing the mark?)"
FRANKLE_SRC = ("Frankle et al., 'Pruning Neural Networks at Initialization: Why are We Missing the Mark?', "
               "ICLR 2021, Sec. 5 (layer-wise shuffling); built on by Pham et al., NeurIPS 2023 (NPB)")

FS = "full_spectrum"
META = ("pags", "pegs", "dense", "lth", "itop")


def equivalence(estimate: float, low: float, high: float, margin: float):
    """``(margin − |e|, low', high')``: the effect ``e`` with interval ``[low, high]`` mapped onto "within
    ``margin`` of 0" -- positive when the whole interval is inside (−margin, margin), negative when it
    lies wholly outside, the interval being the exact image of ``[low, high]`` under ``x -> margin − |x|``."""
    far = max(abs(low), abs(high))
    near = 0.0 if low <= 0 <= high else min(abs(low), abs(high))
    return margin - abs(estimate), margin - far, margin - near


# ---------------------------------------------------------------------------------------- Cunegatti'24

def _spectral_population(tables, column: str) -> pd.DataFrame:
    df = table(tables, FS, columns=("final_test_acc", column))
    regime = df["regime"] if "regime" in df.columns else pd.Series("static", index=df.index)
    pop = df[(regime == "static") & ~df["label"].map(base_of).isin(META)]
    layers = [c for c in pop.columns if c.startswith(LAYER_DENSITY)]
    if not layers or pop[layers].notna().sum().sum() == 0:
        raise MissingData(f"no per-layer densities: runs/{FS}/tables/layer_densities.csv (run_id, "
                          f"{LAYER_DENSITY}<weight name>; pai.compendium.stages.full_spectrum.layer_density_table)")
    ok = np.isfinite(pop[column].astype(float)) & np.isfinite(pop["final_test_acc"].astype(float))
    return pop[ok & ~pop["collapsed"]]


def _layer_design(pop: pd.DataFrame) -> np.ndarray:
    """log10 of every layer's kept fraction (floored at 1e-6: an emptied layer is a finite extreme), 0 where
    a model has no such layer (the per-model indicators absorb it)."""
    cols = [c for c in pop.columns if c.startswith(LAYER_DENSITY)]
    dens = pop[cols].astype(float)
    return np.where(dens.notna(), np.log10(dens.clip(lower=1e-6).fillna(1.0)), 0.0)


def _beyond_layer_density(tables, column: str, name: str) -> List[Evidence]:
    pop = _spectral_population(tables, column)
    if len(pop) == 0:
        raise MissingData(f"no uncollapsed static run with finite {column}")
    x, y = pop[column].astype(float), pop["final_test_acc"].astype(float)
    seeds_cells = pop["model"].astype(str) + "|" + pop["level"].astype(str)
    seeds_r = partial_correlation(x, y, groups=seeds_cells)
    common = {"models": sorted(map(str, pop["model"].unique())),
              "densities": sorted(float(v) for v in pop["level"].unique()),
              "seeds": sorted(int(s) for s in pop["seed"].unique()), "stages": [FS]}
    out = []
    for control, groups in (("layer-wise density", pop["model"].astype(str)),
                            ("layer-wise density and method", pop["model"].astype(str) + "|" + pop["label"])):
        r = partial_correlation(x, y, covariates=_layer_design(pop), groups=groups)
        est, low, high = (equivalence(r.rho, r.low, r.high, RHO_MARGIN) if math.isfinite(r.low)
                          else (float("nan"),) * 3)
        out.append(Evidence(
            f"{RHO_MARGIN:g} − |partial ρ({name}, accuracy | {control})|", est, low, high, r.n,
            "Fisher z on the partial correlation given the controls, 95%, mapped onto the margin",
            unit="Pearson ρ", n_min=r.k + 5,
            variant=None if control == "layer-wise density" else f"control: {control}",
            notes=[f"partial ρ = {r.rho:.3g} [{r.low:.3g}, {r.high:.3g}] (n = {r.n}, {r.k} control columns: model "
                   f"indicators{' × method' if 'method' in control else ''} and log10 of each layer's density)",
                   f"beside it, the seeds' control (within model and target density): ρ = {seeds_r.rho:.3g} "
                   f"[{seeds_r.low:.3g}, {seeds_r.high:.3g}]",
                   f"rule: holds if the interval of ρ lies inside (−{RHO_MARGIN:g}, {RHO_MARGIN:g}), contradicted "
                   "if it lies wholly outside, inconclusive otherwise; collapsed runs excluded",
                   f"resolution: with n = {r.n} and {r.k} controls a true ρ of 0 gives an interval of ±"
                   f"{fisher_interval(0.0, r.n, k=r.k).high:.2f}, so 'holds' "
                   + ("is within reach" if fisher_interval(0.0, r.n, k=r.k).high < RHO_MARGIN
                      else "is out of reach of these runs (more runs would be needed)"),
                   f"population: {', '.join(sorted(pop['label'].unique()))}"], **common))
    return out


def _cunegatti(id: str, title: str, column: str, name: str):
    @register_claim(id, title=title, stage=FS, work=CUNEGATTI, source=CUNEGATTI_SRC,
                    needs=(f"runs/{FS}/results.csv: model, dataset, method, regime, target_density, seed, "
                           f"final_test_acc, {column}; runs/{FS}/tables/layer_densities.csv: run_id, "
                           f"{LAYER_DENSITY}<weight name>" + ("; tables/moving_distance.csv"
                                                              if column == "moving_distance" else "")),
                    statement=f"{name} predicts a sparse network's accuracy no better than its layer-wise density "
                              f"does: once the per-layer densities are controlled for, |partial ρ({name}, "
                              f"accuracy)| < {RHO_MARGIN:g}. The counter-claim to the seeds' (Hoang et al.) "
                              "reading of the same runs.",
                    paper_reason="the source compares regression fits of topological metrics against layer-wise "
                                 "density; it states no single correlation for these quantities")
    def claim(tables):
        return _beyond_layer_density(tables, column, name)
    return claim


_cunegatti("delta_r_no_better_than_layer_density", "Δr adds nothing beyond layer-wise density",
           "delta_r_norm", "the Ramanujan gap Δr")
_cunegatti("lambda_no_better_than_layer_density", "λ adds nothing beyond layer-wise density",
           "lambda", "the weighted spectral gap λ")
_cunegatti("distance_no_better_than_layer_density", "full-spectrum distance adds nothing beyond layer-wise density",
           "moving_distance", "the full-spectrum moving distance")


# ------------------------------------------------------------------------------------------ Frankle'21

@register_claim("shuffle_does_not_hurt", title="shuffling a PaI mask within layers does not hurt",
                stage="phew_path_kernel", work=FRANKLE, source=FRANKLE_SRC,
                needs="results.csv of every stage with layer-shuffled runs (opt_shuffle = layer) and their "
                      "methods' own runs: model, dataset, method, target_density, seed, final_test_acc, opt_*",
                statement=f"A pruning-at-initialisation method's mask, shuffled within each layer (same per-layer "
                          f"densities), trains to within {PP_MARGIN:g} percentage point of the method's own mask "
                          "at the same density: the methods' choice within a layer carries no information.",
                paper_reason="shown as figures (accuracy against sparsity, shuffled beside unshuffled); the text "
                             "states the finding without a single number")
def shuffle_does_not_hurt(tables):
    out = []
    for stage in STAGES:
        try:
            df = table(tables, stage, columns=("final_test_acc",))
        except MissingData:
            continue
        if "opt_shuffle" not in df.columns:
            continue
        shuffled = [lab for lab in dict.fromkeys(df["label"]) if unshuffled(lab) != lab]
        for lab in shuffled:
            own = unshuffled(lab)
            try:
                ev = accuracy_comparison(df, own, lab, stages=[stage])
            except MissingData as e:
                out.append(_missing_row(stage, own, lab, str(e)))
                continue
            for part in [ev, *ev.strata]:  # the verdict is per model: each stratum is read the same way
                est, low, high = equivalence_one_sided(part.estimate, part.low, part.high, PP_MARGIN)
                part.notes.insert(0, f"accuracy({own}) − accuracy({lab}) = {part.estimate:+.3g} [{part.low:.3g}, "
                                     f"{part.high:.3g}] pp; rule: holds if its upper bound is below +{PP_MARGIN:g} "
                                     f"pp, contradicted if its lower bound is above +{PP_MARGIN:g} pp")
                part.effect = f"{PP_MARGIN:g} pp − (accuracy({own}) − accuracy({lab}))"
                part.estimate, part.low, part.high = est, low, high
                part.variant = own  # one row per method, each named by it
            out.append(ev)
    if not out:
        raise MissingData("no stage has layer-shuffled runs (prune option shuffle: layer) beside their method")
    return out


def equivalence_one_sided(estimate: float, low: float, high: float, margin: float):
    """``(margin − d, margin − high, margin − low)``: a drop ``d`` mapped onto "smaller than ``margin``"."""
    return margin - estimate, margin - high, margin - low


def _missing_row(stage, own, lab, why) -> Evidence:
    nan = float("nan")
    return Evidence(f"{PP_MARGIN:g} pp − (accuracy({own}) − accuracy({lab}))", nan, nan, nan, 0,
                    "paired t over (model, density, seed) pairs, 95%", unit="percentage points", stages=[stage],
                    variant=own, notes=[why])
