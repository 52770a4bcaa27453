"""pai.compendium.claims.literature: the literature's counter-claims (Cunegatti et al., TMLR 2024) and sanity checks
(Frankle et al., ICLR 2021) on synthetic stage tables whose truth is known."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pai.compendium.claims import CONTRADICTED, HOLDS, INCONCLUSIVE, evaluate
from pai.compendium.claims.literature import LAYER_DENSITY, PP_MARGIN, RHO_MARGIN, equivalence

LAYERS = ("conv1.weight", "conv2.weight", "fc.weight")
# four methods, each its own allocation of a global density over three layers (as pruners differ)
PROFILES = {"random": (1.0, 1.0, 1.0), "snip": (2.0, 0.8, 0.5), "synflow": (1.5, 1.2, 0.3), "grasp": (0.7, 1.1, 1.6)}


def verdicts(tables, stage=None):
    return {(r.id, r.evidence.variant if r.evidence else None): r
            for r in evaluate(tables, stages=[stage] if stage else None, strict=True)}


def spectrum_population(seeds=range(25), seed=0, layer_densities=True):
    """full_spectrum results + layer_densities tables: accuracy is a function of the per-layer densities
    plus noise; ``delta_r_norm`` is another function of them (it adds nothing beyond them, though it
    correlates with accuracy within a target density, where the seeds' control leaves the allocation in);
    ``lambda`` tracks the accuracy's own noise (it predicts beyond layer-wise density)."""
    rng = np.random.default_rng(seed)
    rows, dens_rows = [], []
    for d in (0.01, 0.003):
        for method, prof in PROFILES.items():
            for s in seeds:
                ld = np.clip(d * np.asarray(prof) * np.exp(rng.normal(0, 0.05, 3)), 1e-5, 1)
                logs = np.log10(ld)
                signal = 0.05 * logs.sum() + 0.04 * logs[2]  # what layer-wise density explains
                noise = rng.normal(0, 0.01)  # what it does not
                rid = f"{method}-{d}-{s}"
                rows.append({"run_id": rid, "model": "vgg11-w0.25", "dataset": "fashion-mnist", "method": method,
                             "target_density": d, "prune_seed": s, "seed": s, "density": d, "regime": "static",
                             "final_test_acc": 0.9 + signal + noise,
                             "delta_r_norm": 3 * logs[2] + logs.sum() + rng.normal(0, 0.01),
                             "lambda": noise + rng.normal(0, 0.002)})
                dens_rows.append({"run_id": rid, **{f"{LAYER_DENSITY}{k}": v for k, v in zip(LAYERS, ld)}})
    tables = {"results": pd.DataFrame(rows)}
    if layer_densities:
        tables["layer_densities"] = pd.DataFrame(dens_rows)
    return tables


def merged(tables):
    """As ``load_stage`` joins a table with ``run_id`` onto results."""
    from pai.compendium.claims.tables import merge_by_run

    out = dict(tables)
    for name, t in tables.items():
        if name != "results":
            out["results"] = merge_by_run(out["results"], t)
    return out


def test_equivalence_maps_the_interval_onto_the_margin():
    assert equivalence(0.05, -0.1, 0.2, 0.3) == pytest.approx((0.25, 0.1, 0.3))  # inside: holds
    assert equivalence(-0.6, -0.8, -0.4, 0.3) == pytest.approx((-0.3, -0.5, -0.1))  # beyond: contradicted
    assert equivalence(0.3, 0.1, 0.5, 0.3) == pytest.approx((0.0, -0.2, 0.2))  # across the margin


def test_cunegatti_claims_on_planted_populations():
    v = verdicts({"full_spectrum": merged(spectrum_population())}, "full_spectrum")
    dr = v["delta_r_no_better_than_layer_density", None]
    assert dr.verdict == HOLDS, dr.reason  # a function of the layer densities adds nothing beyond them
    assert dr.evidence.low > 0 and dr.evidence.n == 200
    # ... although the seeds' control (within target density) sees a strong correlation: the notes say so
    seeds_note = next(n for n in dr.evidence.notes if "seeds' control" in n)
    assert abs(float(seeds_note.split("ρ = ")[1].split()[0])) > 0.5
    lam = v["lambda_no_better_than_layer_density", None]
    assert lam.verdict == CONTRADICTED and lam.evidence.high < 0  # tracks what density cannot explain
    assert v["lambda_no_better_than_layer_density", "control: layer-wise density and method"].verdict == CONTRADICTED
    dist = v["distance_no_better_than_layer_density", None]
    assert dist.verdict == INCONCLUSIVE and "moving_distance" in dist.reason  # no such column: missing data
    assert f"{RHO_MARGIN:g}" in dr.evidence.effect


def test_cunegatti_few_runs_or_no_layer_densities_are_inconclusive():
    few = verdicts({"full_spectrum": merged(spectrum_population(seeds=range(2)))}, "full_spectrum")
    r = few["delta_r_no_better_than_layer_density", None]
    assert r.verdict == INCONCLUSIVE and r.evidence.low < 0 < r.evidence.high  # 16 runs: too wide to show "none"
    assert any("'holds' is out of reach" in n for n in r.evidence.notes)  # and the notes say why
    bare = verdicts({"full_spectrum": merged(spectrum_population(layer_densities=False))}, "full_spectrum")
    r = bare["delta_r_no_better_than_layer_density", None]
    assert r.verdict == INCONCLUSIVE and "layer_densities.csv" in r.reason


def phew_results(drops, seed=0):
    """phew_path_kernel results: each method and, for those in ``drops``, its layer-shuffled mask trained
    ``drops[label]`` percentage points lower (per-seed noise of 0.2 pp)."""
    rng = np.random.default_rng(seed)
    methods = {"phew": {}, "synflow": {}, "snip (train mode)": {"opt_train_mode": True}}
    rows = []
    for d in (0.01, 0.003):
        for s in (0, 1, 2):
            init = rng.normal(0, 0.01)
            for lab, opts in methods.items():
                method = lab.split(" ")[0]
                for shuffled in (False, True):
                    if shuffled and lab not in drops:
                        continue
                    acc = 0.8 + init + rng.normal(0, 0.002) - (drops[lab] / 100 if shuffled else 0)
                    rows.append({"run_id": f"{lab}-{shuffled}-{d}-{s}", "model": "vgg11-w0.25",
                                 "dataset": "fashion-mnist", "method": method, "target_density": d,
                                 "prune_seed": s, "seed": s, "density": d, "regime": "static",
                                 "final_test_acc": acc, **opts, **({"opt_shuffle": "layer"} if shuffled else {})})
    return pd.DataFrame(rows)


def test_frankle_shuffle_claim_per_method():
    v = verdicts({"phew_path_kernel": {"results": phew_results({"phew": 0.0, "synflow": 3.0,
                                                                 "snip (train mode)": 1.0})}}, "phew_path_kernel")
    assert v["shuffle_does_not_hurt", "phew"].verdict == HOLDS  # no drop: within the 1 pp margin
    syn = v["shuffle_does_not_hurt", "synflow"]
    assert syn.verdict == CONTRADICTED and syn.evidence.estimate == pytest.approx(PP_MARGIN - 3.0, abs=0.4)
    assert syn.evidence.n == 6
    assert v["shuffle_does_not_hurt", "snip (train mode)"].verdict == INCONCLUSIVE  # a drop at the margin
    # the shuffled masks are no variant of their method: PHEW vs SynFlow pairs only the methods themselves
    assert [k for k in v if k[0] == "phew_ge_synflow_sparse"] == [("phew_ge_synflow_sparse", None)]
    assert v["phew_ge_synflow_sparse", None].evidence.n == 3


def test_frankle_without_shuffled_runs_is_inconclusive():
    v = verdicts({"phew_path_kernel": {"results": phew_results({})}}, "phew_path_kernel")
    r = v["shuffle_does_not_hurt", None]
    assert r.verdict == INCONCLUSIVE and "layer-shuffled" in r.reason
