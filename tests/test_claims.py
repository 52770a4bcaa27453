"""pai.compendium.claims: the verdict engine on synthetic stage tables whose truth is known.

Each table is built the way ``pai.compendium.runs.write_tables`` writes ``results.csv`` (and the notebooks a
``geometry.csv``); the effects planted in them decide what every verdict must be.
"""
from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from pai.compendium import claims
from pai.compendium.claims import HOLDS, CONTRADICTED, INCONCLUSIVE, Evidence, decide, evaluate
from pai.compendium.claims.tables import geometry_table, load_stage

SEEDS = (0, 1, 2)


def results(effects, *, models=("vgg11-w0.25",), densities=(0.1, 0.03, 0.01, 0.003), seeds=SEEDS, noise=0.002,
            seed=0, extra=None, dataset="fashion-mnist"):
    """Rows of a results.csv: ``effects[method](model, density, seed) -> accuracy``; ``extra`` adds columns."""
    rng = np.random.default_rng(seed)
    rows = []
    for model in models:
        for d in densities:
            for s in seeds:
                init = rng.normal(0, 0.01)  # shared by every method of this seed: what pairing removes
                for method, fn in effects.items():
                    acc = fn(model, d, s) + init + rng.normal(0, noise)
                    row = {"run_id": f"{model}-{method}-{d}-{s}", "model": model, "dataset": dataset,
                           "method": method, "target_density": d, "prune_seed": s, "seed": s,
                           "density": d * (1 + rng.normal(0, 0.01)), "epochs": 3, "final_test_acc": acc,
                           "best_test_acc": acc, "regime": "static"}
                    row.update((extra or (lambda *a: {}))(method, d, s, acc, rng))
                    rows.append(row)
    return pd.DataFrame(rows)


def verdicts(tables, stage=None):
    return {(r.id, r.evidence.variant if r.evidence else None): r
            for r in evaluate(tables, stages=[stage] if stage else None, strict=True)}


def const(v):
    return lambda m, d, s: v


def test_the_rule():
    ev = lambda lo, hi, n=5: Evidence("e", (lo + hi) / 2, lo, hi, n, "paired t")  # noqa: E731
    assert decide(ev(0.1, 0.3))[0] == HOLDS
    assert decide(ev(-0.3, -0.1))[0] == CONTRADICTED
    assert decide(ev(-0.1, 0.3)) == (INCONCLUSIVE, "95% interval [-0.1, 0.3] contains 0")
    assert decide(ev(0.1, 0.3, n=2))[0] == INCONCLUSIVE and "only 2 pairs" in decide(ev(0.1, 0.3, n=2))[1]
    assert decide(ev(math.nan, math.nan))[0] == INCONCLUSIVE


def test_expander_comparisons_hold_contradict_or_stay_inconclusive():
    planted = {"rreg": const(0.80), "xnet": const(0.79), "random-graph": const(0.79)}
    v = verdicts({"expander_sweep": {"results": results(planted)}}, "expander_sweep")
    assert v["rreg_ge_xnet", None].verdict == HOLDS and v["rreg_ge_random", None].verdict == HOLDS
    assert v["xnet_ge_random", None].verdict == INCONCLUSIVE  # equal by construction
    ev = v["rreg_ge_xnet", None].evidence
    assert ev.estimate == pytest.approx(1.0, abs=0.3) and ev.unit == "percentage points"
    assert ev.densities == [0.003, 0.01] and ev.seeds == [0, 1, 2] and ev.n == 6  # the sparsest half
    flipped = {"rreg": const(0.78), "xnet": const(0.80), "random-graph": const(0.81)}
    v = verdicts({"expander_sweep": {"results": results(flipped)}}, "expander_sweep")
    assert v["rreg_ge_xnet", None].verdict == CONTRADICTED and v["xnet_ge_random", None].verdict == CONTRADICTED


def test_missing_methods_tables_and_columns_are_inconclusive_with_a_reason():
    only = {"rreg": const(0.8), "random-graph": const(0.7)}
    v = verdicts({"expander_sweep": {"results": results(only)}}, "expander_sweep")
    assert v["rreg_ge_xnet", None].verdict == INCONCLUSIVE and "no runs of 'xnet'" in v["rreg_ge_xnet", None].reason
    assert v["rreg_ge_random", None].verdict == HOLDS
    r = v["accuracy_rises_with_expansion", None]
    assert r.verdict == INCONCLUSIVE and "expansion" in r.reason and r.evidence is None
    everything = verdicts({})
    assert all(r.verdict == INCONCLUSIVE and r.reason.startswith("missing data") for r in everything.values())
    # a row for every claim, data or not (a plugin's claims: a row per plugin method, none without)
    assert {cid for cid, _ in everything} == set(claims.CLAIMS) - set(claims.plugins.CLAIM_IDS)


def test_collapsed_pairs_are_excluded_or_counted_never_silently_averaged():
    def xnet(m, d, s):
        return 0.10 if d <= 0.003 else 0.79  # at chance at the sparsest level

    planted = {"rreg": lambda m, d, s: 0.10 if d <= 0.003 else 0.80, "xnet": xnet,
               "random-graph": lambda m, d, s: 0.10 if d <= 0.01 else 0.78}
    v = verdicts({"expander_sweep": {"results": results(planted, noise=0.0005)}}, "expander_sweep")
    ev = v["rreg_ge_xnet", None].evidence
    assert ev.n == 3 and ev.densities == [0.01] and "3 of 6 pairs excluded: both at chance" in ev.notes[0]
    ev = v["xnet_ge_random", None].evidence  # at 0.01 only random collapsed: kept, counted, shown without
    assert ev.n == 3 and any("only random-graph collapsed" in n or "where only random-graph did" in n for n in ev.notes)
    all_chance = {m: const(0.1) for m in ("rreg", "xnet", "random-graph")}
    v = verdicts({"expander_sweep": {"results": results(all_chance)}}, "expander_sweep")
    assert v["rreg_ge_xnet", None].verdict == INCONCLUSIVE and "at chance" in v["rreg_ge_xnet", None].reason


def _expansion_table(within_slope):
    """Expansion and accuracy both rise with density; within a density accuracy follows expansion by
    ``within_slope`` (0: density alone makes the pooled relation)."""
    def extra(method, d, s, acc, rng):
        return {}

    rng = np.random.default_rng(4)
    df = results({m: (lambda m_, d, s: 0.6 + 0.1 * np.log10(d) + 0.4) for m in ("rreg", "xnet", "random-graph")},
                 noise=0.003, seed=5, extra=extra)
    wobble = rng.normal(0, 1, len(df))
    df["expansion"] = 2 + np.log10(df["target_density"]) + 0.1 * wobble
    df["final_test_acc"] += within_slope * 0.1 * wobble
    return df


def test_expansion_claim_is_decided_within_density():
    confounded = verdicts({"expander_sweep": {"results": _expansion_table(0.0)}}, "expander_sweep")
    r = confounded["accuracy_rises_with_expansion", None]
    assert r.verdict == INCONCLUSIVE and "pooled over densities" in r.evidence.notes[0]
    pooled_rho = float(r.evidence.notes[0].split("ρ = ")[1].split(" ")[0])
    assert pooled_rho > 0.9  # what a pooled correlation would have called a strong relation
    real = verdicts({"expander_sweep": {"results": _expansion_table(0.05)}}, "expander_sweep")
    assert real["accuracy_rises_with_expansion", None].verdict == HOLDS
    neg = verdicts({"expander_sweep": {"results": _expansion_table(-0.05)}}, "expander_sweep")
    assert neg["accuracy_rises_with_expansion", None].verdict == CONTRADICTED


def _spectrum_tables():
    rng = np.random.default_rng(8)
    pop = ["random", "snip", "synflow"]
    df = results({m: const(0.8) for m in pop}, densities=(0.1, 0.03, 0.01), seed=9, noise=0.0)
    quality = rng.normal(0, 1, len(df))
    df["final_test_acc"] += 0.01 * quality
    df["delta_r_norm"] = quality + rng.normal(0, 3, len(df))  # weakly related
    df["lambda"] = rng.normal(0, 1, len(df))  # unrelated
    moving = pd.DataFrame({"run_id": df["run_id"], "moving_distance": quality + rng.normal(0, 0.2, len(df))})
    gens = results({g: const(0.7) for g in ("random-erk", "grasp")}, densities=(0.01,), seed=10)
    meta = []
    pags = gens.copy()
    pags["final_test_acc"] += 0.02 + rng.normal(0, 0.002, len(pags))
    pegs = pags.copy()
    pegs["final_test_acc"] += np.resize([0.01, -0.01], len(pegs))  # PEGS = PAGS on average, exactly
    for kind, m in (("pags", pags), ("pegs", pegs)):
        m["opt_generator"], m["method"] = m["method"], kind
        m["run_id"] = kind + m["run_id"]
        meta.append(m)
    itop = results({"random-erk": const(0.8)}, densities=(0.1, 0.05, 0.03, 0.02, 0.01), seed=11, noise=0.0)
    q = rng.normal(0, 1, len(itop))
    itop["final_test_acc"] += 0.01 * q
    itop["moving_distance"] = q + rng.normal(0, 0.3, len(itop))
    itop["regime"], itop["generator"], itop["method"] = "dst", itop["method"], "itop"
    itop["run_id"] = "itop" + itop["run_id"]
    table = pd.concat([df, gens[~gens.method.isin(pop)], *meta, itop], ignore_index=True)
    return table.drop_duplicates("run_id"), moving


def test_full_spectrum_claims(tmp_path):
    table, moving = _spectrum_tables()
    stage = tmp_path / "full_spectrum"
    stage.mkdir()
    table.to_csv(stage / "results.csv", index=False)
    moving.to_csv(stage / "moving_distance.csv", index=False)  # joined onto results by run_id
    loaded = load_stage(stage)
    assert loaded["results"]["moving_distance"].notna().sum() == len(moving) + (table.regime == "dst").sum()
    v = verdicts({"full_spectrum": loaded}, "full_spectrum")
    assert v["itop_distance_tracks_accuracy", None].verdict == HOLDS
    assert v["distance_beats_delta_r", None].verdict == HOLDS and v["distance_beats_lambda", None].verdict == HOLDS
    assert v["distance_beats_delta_r", None].evidence.interval.startswith("bootstrap")
    pags = v["pags_ge_generator", None]
    assert pags.verdict == HOLDS and pags.evidence.n == 6  # 2 generators × 3 seeds
    assert any(n.startswith("generator grasp:") for n in pags.evidence.notes)
    assert v["pegs_ge_pags", None].verdict == INCONCLUSIVE  # planted equal


def _geometry(widths, traces, densities=(0.1, 0.01), seeds=SEEDS):
    rng = np.random.default_rng(12)
    rows = []
    for d in densities:
        for s in seeds:
            for m in widths:
                w = np.clip(widths[m] + rng.normal(0, 0.01, 4), 0, 1)
                rows.append({"model": "vgg11-w0.25", "method": m, "density": d, "seed": s,
                             "log10_paths": 30.0, "ln_effective_nodes": 6.0,
                             "log10_path_kernel_trace": traces[m] + rng.normal(0, 0.1),
                             "layers": [f"l{i}" for i in range(4)], "width_fraction": list(w)})
    return geometry_table(rows)


def test_phew_claims_and_variants_as_rows(monkeypatch):
    from pai.compendium import variants

    monkeypatch.setattr(variants, "_VARIANTS", [])
    variants.register_variant("synflow", "synflow (exact count)", options={"exact_count": True})
    acc = {"phew": const(0.80), "synflow": const(0.78), "synflow-l2": const(0.80), "random": const(0.7)}
    df = results(acc)
    exact = results({"synflow": const(0.81)}, seed=3).assign(opt_exact_count=True)
    exact["run_id"] = "x" + exact["run_id"]
    geo = _geometry({"phew": 0.9, "synflow": 0.7, "synflow-l2": 0.4, "random": 1.0},
                    {"phew": 5.0, "synflow": 6.0, "synflow-l2": 7.0, "random": 3.0})
    assert {"mean_width_fraction", "target_density"} <= set(geo.columns) and "width_fraction" not in geo
    v = verdicts({"phew_path_kernel": {"results": pd.concat([df, exact]), "geometry": geo}}, "phew_path_kernel")
    assert v["phew_ge_synflow_sparse", None].verdict == HOLDS
    variant = v["phew_ge_synflow_sparse", "phew vs synflow (exact count)"]
    assert variant.verdict == CONTRADICTED  # the variant beats PHEW here: its own row, its own verdict
    assert v["phew_ge_synflow_l2_sparse", None].verdict == INCONCLUSIVE
    assert v["phew_trace_above_random", None].verdict == HOLDS
    assert v["phew_wider_than_synflow_l2", None].verdict == HOLDS and v["phew_wider_than_synflow", None].verdict == HOLDS
    assert v["phew_wider_than_synflow", None].evidence.unit == "fraction of units"


def test_unregistered_variant_rows_are_reported_not_averaged(monkeypatch):
    from pai.compendium import variants

    monkeypatch.setattr(variants, "_VARIANTS", [])
    df = results({"phew": const(0.8), "synflow": const(0.78)})
    twin = results({"synflow": const(0.9)}, seed=1).assign(opt_exact_count=True)
    twin["run_id"] = "t" + twin["run_id"]
    r = verdicts({"phew_path_kernel": {"results": pd.concat([df, twin])}}, "phew_path_kernel")
    r = r["phew_ge_synflow_sparse", None]
    assert r.verdict == INCONCLUSIVE and "register_variant" in r.reason


def test_synflow_collapse_claim_pools_stages():
    def disconnected(method, d, s, acc, rng):
        return {"log10_paths": -np.inf if (method == "magnitude" and d <= 0.003) else 20.0}

    fs = results({"magnitude": lambda m, d, s: 0.7, "synflow": const(0.75), "snip": const(0.7)}, extra=disconnected)
    ph = results({"snip": lambda m, d, s: 0.1 if d <= 0.01 else 0.7, "synflow": const(0.75)}, seed=2)
    v = verdicts({"full_spectrum": {"results": fs}, "phew_path_kernel": {"results": ph}})
    r = v["synflow_avoids_collapse", None]
    assert r.verdict == HOLDS and r.evidence.stages == ["full_spectrum", "phew_path_kernel"]
    assert r.evidence.n == 3 + 6  # magnitude disconnected at 0.003, snip at chance at 0.01 and 0.003
    assert any("magnitude failed 3/12" in n for n in r.evidence.notes)
    both = results({"snip": lambda m, d, s: 0.1 if d <= 0.003 else 0.7,
                    "synflow": lambda m, d, s: 0.1 if d <= 0.003 else 0.75})
    r = verdicts({"phew_path_kernel": {"results": both}})["synflow_avoids_collapse", None]
    assert r.verdict == INCONCLUSIVE and r.evidence.estimate == 0  # SynFlow collapses there too
    calm = results({"magnitude": const(0.7), "synflow": const(0.75)})
    r = verdicts({"phew_path_kernel": {"results": calm}})["synflow_avoids_collapse", None]
    assert r.verdict == INCONCLUSIVE and "does not appear" in r.reason


def test_npb_claims():
    shape = {"npb": (32.0, 6.0), "synflow": (36.0, 4.0), "random-erk": (20.0, 6.3), "snip": (28.0, 5.0)}
    rows = []
    rng = np.random.default_rng(14)
    for d in (0.1, 0.01, 0.003):
        for s in SEEDS:
            for m, (p, n) in shape.items():
                rows.append({"model": "resnet20-w0.25", "method": m, "density": d, "seed": s,
                             "log10_paths": p + rng.normal(0, 0.3), "ln_effective_nodes": n + rng.normal(0, 0.03),
                             "log10_path_kernel_trace": 1.0, "layers": ["a"], "width_fraction": [1.0]})
    acc = results({"npb": const(0.70), "synflow": const(0.66), "random-erk": const(0.5), "snip": const(0.6),
                   "phew": const(0.69)}, models=("resnet20-w0.25",))
    v = verdicts({"node_path_balance": {"results": acc, "geometry": geometry_table(rows)}}, "node_path_balance")
    bal = v["npb_nearest_balance", None]
    assert bal.verdict == HOLDS and bal.evidence.n == 9
    sparse = v["npb_ge_baselines_sparse", None]
    assert sparse.verdict == HOLDS and "rival" in sparse.evidence.notes[0] and "phew" in sparse.evidence.effect
    acc2 = results({"npb": const(0.66), "phew": const(0.69), "snip": const(0.6)}, models=("resnet20-w0.25",))
    v = verdicts({"node_path_balance": {"results": acc2}}, "node_path_balance")
    assert v["npb_ge_baselines_sparse", None].verdict == CONTRADICTED


def test_balance_counts_nodes_as_npb_does():
    """ResNet-20 at density 0.01, CIFAR-10 shapes, seed 0 (pai.metrics of each pruner's mask): SynFlow keeps
    the most paths and few nodes, random-ERK the reverse; both must sit farther from balance than NPB
    and PHEW.  With ln(nodes) SynFlow would look the most balanced (0.23 against NPB's 0.41)."""
    from pai.compendium.claims.npb import balance_distance

    masks = {"npb": (17.21, 574), "phew": (17.10, 649), "synflow": (28.93, 148), "random-erk": (14.30, 661)}
    df = pd.DataFrame([{"model": "resnet20", "dataset": "cifar10", "label": m, "level": 0.01, "seed": 0,
                        "log10_paths": p, "effective_nodes": n} for m, (p, n) in masks.items()])
    d = balance_distance(df, list(masks)).set_index("label")["distance"]
    assert max(d["npb"], d["phew"]) < min(d["synflow"], d["random-erk"])
    assert abs(d["npb"] - 0.426) < 0.01 and abs(d["synflow"] - 0.776) < 0.01


def test_writer_gives_strict_json_and_markdown(tmp_path):
    runs = tmp_path / "runs"
    (runs / "expander_sweep").mkdir(parents=True)
    results({"rreg": const(0.8), "xnet": const(0.79), "random-graph": const(0.7)}).to_csv(
        runs / "expander_sweep" / "results.csv", index=False)
    from pai.compendium.claims.__main__ import main

    out = tmp_path / "figures" / "CLAIMS.md"
    assert main([str(out), "--runs", str(runs)]) == 0
    text = out.read_text()
    assert "**Verdict rule.**" in text and "RReg ≥ X-Net at low density" in text and "**holds**" in text
    doc = json.loads(out.with_suffix(".json").read_text(), parse_constant=lambda c: pytest.fail(f"non-JSON {c}"))
    assert {c["id"] for c in doc["claims"]} == set(claims.CLAIMS) - set(claims.plugins.CLAIM_IDS)
    for c in doc["claims"]:
        assert c["verdict"] in (HOLDS, CONTRADICTED, INCONCLUSIVE, claims.UNDEFINED) and c["reason"]
        assert c["strata"] or c["reason"].startswith("missing data")  # each model's verdict beside the combined one
        for k in ("estimate", "low", "high"):
            assert c[k] is not None or c[f"{k}_reason"]
        assert c["paper"] is not None or c["paper_reason"]


def test_notebook_report(tmp_path, capsys):
    stage = tmp_path / "expander_sweep"
    stage.mkdir()
    results({"rreg": const(0.8), "xnet": const(0.79), "random-graph": const(0.7)}).to_csv(stage / "results.csv",
                                                                                         index=False)
    out = claims.report("expander_sweep", stage)
    printed = capsys.readouterr().out
    assert {r.stage for r in out} == {"expander_sweep"} and len(out) == 4
    assert "RReg ≥ X-Net at low density" in printed and "holds" in printed
    same = claims.report("expander_sweep", {"results": pd.read_csv(stage / "results.csv")}, show=False)
    assert [r.verdict for r in same] == [r.verdict for r in out]
    with pytest.raises(KeyError, match="stage"):
        claims.report("no_such_stage", stage)


def test_the_dense_baseline_is_no_density_level():
    planted = {"rreg": const(0.8), "xnet": const(0.79), "random-graph": const(0.7)}
    df = pd.concat([results(planted, densities=(0.2, 0.05)), results({"dense": const(0.9)}, densities=(1.0,))])
    ev = verdicts({"expander_sweep": {"results": df}}, "expander_sweep")["rreg_ge_xnet", None].evidence
    assert ev.densities == [0.05]


# --- per-model verdicts, undefined quantities, one computation for figures and claims -------------------

def _pairs_table(diffs, *, level, base=0.6):
    """results.csv rows of rreg and xnet for ``{model: [rreg − xnet in pp, one per (level, seed)]}``."""
    rows = []
    for model, ds in diffs.items():
        for i, d in enumerate(ds):
            lv, seed = (level[model][i // 3], i % 3)
            for method, acc in (("rreg", base + d / 100), ("xnet", base)):
                rows.append({"run_id": f"{model}-{method}-{lv}-{seed}", "model": model, "dataset": "fashion-mnist",
                             "method": method, "target_density": lv, "prune_seed": seed, "seed": seed,
                             "density": lv, "final_test_acc": acc, "regime": "static"})
    return pd.DataFrame(rows)


def test_verdict_is_per_model_then_combined_by_one_rule():
    """VGG-11/4 at 2%: +17.6, +21.1, +21.9 pp; the MLP within ±2 pp at its two sparsest levels.  One t
    interval over the nine pairs contains 0 (+6.65 [-1.23, 14.5] in the sweep), because the models differ
    a hundredfold, not because of noise; per model VGG holds and the MLP is inconclusive."""
    diffs = {"vgg11-w0.25": [17.6, 21.1, 21.9], "lenet-300-100": [1.5, -1.2, 0.8, -1.9, 0.4, 0.3]}
    df = _pairs_table(diffs, level={"vgg11-w0.25": [0.02], "lenet-300-100": [0.01, 0.008]})
    wide = pd.concat([df, df.assign(target_density=df.target_density * 3, density=df.density * 3,
                                    run_id=df.run_id + "x")])  # the denser halves, which the claim leaves out
    r = verdicts({"expander_sweep": {"results": wide}}, "expander_sweep")["rreg_ge_xnet", None]
    per = {s.stratum: s for s in r.strata}
    assert set(per) == {"vgg11-w0.25", "lenet-300-100"}
    assert per["vgg11-w0.25"].verdict == HOLDS and per["vgg11-w0.25"].evidence.n == 3
    assert per["vgg11-w0.25"].evidence.estimate == pytest.approx(20.2, abs=0.01)
    assert (per["vgg11-w0.25"].evidence.low, per["vgg11-w0.25"].evidence.high) == pytest.approx((14.6, 25.8), abs=0.1)
    assert per["lenet-300-100"].verdict == INCONCLUSIVE and per["lenet-300-100"].evidence.n == 6
    pooled = r.evidence
    assert pooled.n == 9 and pooled.low < 0 < pooled.high  # the old single interval: inconclusive
    assert r.verdict == HOLDS and r.reason == "holds on 1 of 2 models, contradicted on none"
    doc = json.loads(claims.to_json([r]))["claims"][0]
    assert [s["stratum"] for s in doc["strata"]] == ["lenet-300-100", "vgg11-w0.25"]
    assert {s["stratum"]: s["verdict"] for s in doc["strata"]} == {"vgg11-w0.25": HOLDS, "lenet-300-100": INCONCLUSIVE}
    md = claims.markdown([r])
    # the t interval of the three rounded values quoted above
    assert "| vgg11-w0.25 | 3 | +20.2 pp [14.5, 25.9] | holds |" in md and "**combined**" in md
    assert claims.COMBINE in md


def test_the_combination_rule():
    U = claims.UNDEFINED
    assert claims.combine([HOLDS, INCONCLUSIVE])[0] == HOLDS
    assert claims.combine([HOLDS, CONTRADICTED])[0] == INCONCLUSIVE  # the models disagree
    assert claims.combine([CONTRADICTED, U])[0] == CONTRADICTED
    assert claims.combine([U, U]) == (U, "undefined on all 2 models")
    assert claims.combine([INCONCLUSIVE, U])[0] == INCONCLUSIVE


def _itop(valid_layers, *, densities=(0.05, 0.02), slope=1.0):
    """ITOP runs of one model, 9 layers each, ``valid_layers[density]`` of them with a valid Δr at both
    ends; accuracy rises with the drop reading by ``slope`` and falls with the faithful one."""
    rng = np.random.default_rng(21)
    rows = []
    for d in densities:
        for s in range(6):
            q = rng.normal()
            rows.append({"run_id": f"itop-{d}-{s}", "model": "vgg11-w0.25", "dataset": "fashion-mnist",
                         "method": "itop", "target_density": d, "seed": s, "prune_seed": s, "density": d, "regime": "dst",
                         "final_test_acc": 0.7 + 0.01 * q, "moving_distance": -q + rng.normal(0, 0.05),
                         "moving_distance_drop": slope * q + rng.normal(0, 0.05),
                         "valid_layers": valid_layers[d], "layers": 9})
    return pd.DataFrame(rows)


def test_a_quantity_undefined_for_most_units_gets_no_verdict():
    """7 of VGG-11/4's 9 layers without a valid Δr at every density: the faithful moving distance (invalid
    layers read as 0) is undefined, never contradicted, however strong its ρ; the invalid='drop' reading
    is its own row beside it."""
    v = verdicts({"full_spectrum": {"results": _itop({0.05: 2, 0.02: 2})}}, "full_spectrum")
    faithful = v["itop_distance_tracks_accuracy", None]
    assert faithful.evidence.estimate < -0.9  # what the old scoreboard called contradicted
    assert faithful.verdict == claims.UNDEFINED and "78% of the units" in faithful.strata[0].reason
    drop = v["itop_distance_tracks_accuracy", "invalid='drop' reading (only layers with a valid Δr at both ends)"]
    assert drop.verdict == HOLDS
    # one density defined (8 of 9 layers valid): the verdict rests on it alone, the other is named
    v = verdicts({"full_spectrum": {"results": _itop({0.05: 8, 0.02: 2})}}, "full_spectrum")
    faithful = v["itop_distance_tracks_accuracy", None]
    assert faithful.verdict == CONTRADICTED and faithful.strata[0].evidence.densities == [0.05]
    assert any("left out: density 0.02" in n for n in faithful.strata[0].evidence.notes)


def test_figures_show_the_numbers_the_claims_decide_on():
    """Claim by claim, the numbers a notebook's figure or table shows (pai.compendium.stages) equal those in
    CLAIMS.json: both read pai.compendium.claims.tables.comparison_table / correlation_table."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from pai.compendium.claims.tables import prepare
    from pai.compendium.stages import expanders, full_spectrum
    from pai.compendium.claims.spectrum import meta_pairs

    def acc(m, d, s):  # one pair at chance under both methods: excluded by the collapsed-run rule
        return 0.1 if (m == "vgg11-w0.25" and d == 0.02 and s == 0) else 0.8

    planted = {"rreg": lambda m, d, s: acc(m, d, s) + (0.02 if acc(m, d, s) > 0.5 else 0), "xnet": acc,
               "random-graph": lambda m, d, s: acc(m, d, s) - (0.01 if acc(m, d, s) > 0.5 else 0)}
    df = results(planted, models=("lenet-300-100", "vgg11-w0.25"), densities=(0.05, 0.02), noise=0.004)
    rng = np.random.default_rng(3)
    df["expansion"] = rng.normal(0, 1, len(df))
    df["final_test_acc"] += 0.003 * df["expansion"]
    itop = _itop({0.05: 8, 0.02: 2})
    doc = json.loads(claims.to_json(evaluate({"expander_sweep": {"results": df},
                                              "full_spectrum": {"results": itop}}, strict=True)))
    strata = {(c["id"], c["variant"]): {s["stratum"]: s for s in c["strata"]} for c in doc["claims"]}

    table = expanders.results_table(df)
    sparsest = table[table.level == 0.02]
    effect = expanders.stem_effect(table, sparsest, [("rreg", "xnet"), ("xnet", "random-graph"),
                                                     ("rreg", "random-graph")])
    official = effect[effect.rule == "official rule"]
    assert len(official) == 6
    for row in official.itertuples():
        cid = {"rreg − xnet": "rreg_ge_xnet", "xnet − random-graph": "xnet_ge_random",
               "rreg − random-graph": "rreg_ge_random"}[row.comparison]
        s = strata[cid, None][row.model]
        assert (row.mean_pp, row.low, row.high, row.n) == (s["estimate"], s["low"], s["high"], s["n"])
    assert official[official.model == "vgg11-w0.25"].n.tolist() == [2, 2, 2]  # the pair at chance left out

    for model in ("lenet-300-100", "vgg11-w0.25"):
        fig, ax = plt.subplots()
        shown = expanders.residual_panel(ax, table[table.model == model], "expansion", xlabel="expansion")
        plt.close(fig)
        s = strata["accuracy_rises_with_expansion", None][model]
        assert (shown["rho_within"], shown["low"], shown["high"], shown["n"]) == (s["estimate"], s["low"],
                                                                                  s["high"], s["n"])

    shown = full_spectrum.itop_correlations(itop)
    for reading, variant in (("faithful", None),
                             ("invalid='drop'", "invalid='drop' reading (only layers with a valid Δr at both ends)")):
        s = strata["itop_distance_tracks_accuracy", variant]["vgg11-w0.25"]
        assert (shown[reading]["rho"], shown[reading]["n"]) == (s["estimate"], s["n"])

    fs, _ = _spectrum_tables()
    fs_doc = json.loads(claims.to_json(evaluate({"full_spectrum": {"results": fs}}, strict=True)))
    pags = next(c for c in fs_doc["claims"] if c["id"] == "pags_ge_generator")
    row = meta_pairs(prepare(fs), "pags", "generator").iloc[0]
    s = pags["strata"][0]
    assert (row["stratum"], row["mean"], row["low"], row["high"], row["n"]) == (s["stratum"], s["estimate"], s["low"],
                                                                                s["high"], s["n"])
    # the table notebook 02 shows under the PAGS bars: its pooled PAGS row is the claim's reported effect
    from pai.compendium.claims.tables import POOLED
    from pai.compendium.stages.full_spectrum import meta_comparisons

    shown = meta_comparisons(fs).set_index(["comparison", "generator"]).loc[("pags − generator", POOLED)]
    assert (shown["mean"], shown["low"], shown["high"], shown["n"]) == (pags["estimate"], pags["low"],
                                                                        pags["high"], pags["n"])


def test_moving_distance_readings_of_a_recorded_dst_run():
    """A DST run's recorded coordinates (JSON: an invalid layer's Δr is null): both readings and the
    valid-layer count the undefined rule reads.  Layer b crosses the validity threshold: the faithful
    reading counts its jump from 0, the drop reading leaves it out."""
    from pai.compendium.experiments import moving_distance_readings

    spec = {"prune": {"method": "random-erk"}}
    start = {"a": [1.0, 2.0, 0.0, 0.0], "b": [None, 1.0, 0.0, 0.0], "c": [None, None, None, None]}
    end = {"a": [1.0, 2.0, 0.0, 3.0], "b": [5.0, 1.0, 0.0, 0.0], "c": [None, 1.0, None, None]}
    r = moving_distance_readings(spec, start=start, end=end)
    assert (r["valid_layers"], r["layers"]) == (1, 3)
    assert r["moving_distance_drop"] == pytest.approx(3.0)  # layer a only
    assert r["moving_distance"] == pytest.approx((3.0 + 5.0 + 1.0) / 3)  # b's jump and c's lambda count
    assert math.isnan(moving_distance_readings({"prune": {"method": "dense"}})["moving_distance"])
