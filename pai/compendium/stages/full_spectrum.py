"""The full-spectrum notebook's tables and figures (Hoang, Liu, Marculescu & Wang, ICLR 2023; Hoang, Kundu,
Liu & Wang, NeurIPS 2023): the population's spectral quantities against accuracy *within* a density, PAGS
and PEGS beside their generators and the lottery ticket, and ITOP's moving distance and trajectory.

Tables (``<out_dir>/tables/``, read by ``pai.compendium.claims``): ``moving_distance.csv`` (``run_id,
moving_distance, moving_distance_drop, valid_layers, layers`` of every static and ITOP run: both readings
of :func:`pai.compendium.experiments.moving_distance_readings` and the layers with a valid Δr at both ends),
``spectrum_correlations.csv`` (per quantity: pooled and within-density Pearson ρ with 95% intervals),
``pags_pegs.csv`` (accuracy per generator, meta-method and seed), ``layer_densities.csv`` (``run_id`` and
the kept fraction of every layer of every static run's mask, :func:`layer_density_table`) and, under a
paper profile, ``paper_vs_ours.csv``.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence

import numpy as np
import pandas as pd

from pai.compendium import plots
from pai.compendium.claims.literature import LAYER_DENSITY
from pai.compendium.experiments import add_full_spectrum_columns, itop_trajectories
from pai.metrics.paired import chance_accuracy, collapsed
from pai.compendium.claims.tables import POOLED, correlation_table, prepare
from pai.metrics.stats import correlation, partial_correlation
from pai.compendium.tables import save_table, write_tables
from pai.compendium.variants import add_labels

QUANTITIES = {"delta_r_norm": "Ramanujan gap Δr/ub\n(ICLR'23, mean over valid layers)",
              "lambda": "weighted spectral gap λ\n(mean over layers)",
              "moving_distance": "full-spectrum moving distance\n(mean over layers)"}
META = ("pags", "pegs", "itop", "lth", "dense")


def results_table(results: List[Dict], out_dir: str | Path) -> pd.DataFrame:
    """``results.csv`` (:func:`pai.compendium.tables.write_tables`) with ``generator``, the static runs'
    ``moving_distance`` (also saved as ``tables/moving_distance.csv``, which the claims join by run id),
    ``label`` (:mod:`pai.compendium.variants`) and ``collapsed`` (final accuracy at chance)."""
    root = Path(out_dir)
    table = add_full_spectrum_columns(write_tables(results, root), results, root / "runs")
    table = add_labels(table)
    chance = np.array([chance_accuracy(d) for d in table.dataset], float)
    table["collapsed"] = collapsed(table.final_test_acc.astype(float), chance)
    readings = [c for c in ("moving_distance", "moving_distance_drop", "valid_layers", "layers") if c in table.columns]
    sparse = table[table.regime.isin(["static", "dst"])]
    save_table(sparse[["run_id", *readings]], root / "tables" / "moving_distance.csv")
    save_table(layer_density_table(table[table.regime == "static"], root / "runs"), root / "tables" / "layer_densities.csv")
    return table


def layer_density_table(table: pd.DataFrame, runs_root: str | Path) -> pd.DataFrame:
    """``run_id`` and, per prunable layer, ``layer_density:<weight name>``: the fraction of that layer's
    weights the run's mask (``mask.pt``) keeps -- the control of Cunegatti et al. (TMLR 2024), who find
    that Ramanujan-type metrics predict accuracy no better than the layer-wise density.  Read from the
    masks, so no run changes; runs without a mask (dense) are left out."""
    from pai.masks import kept_layer_densities, load_mask
    from pai.train.rundir import RunDir

    rows = []
    for run_id in table["run_id"]:
        path = RunDir(Path(runs_root) / str(run_id)).mask
        if path.exists():
            dens = kept_layer_densities(load_mask(path))
            rows.append({"run_id": run_id, **{f"{LAYER_DENSITY}{k}": v for k, v in dens.items()}})
    return pd.DataFrame(rows, columns=None if rows else ["run_id"])


def population(table: pd.DataFrame, methods: Sequence[str]) -> pd.DataFrame:
    """The static runs of the population ``methods`` (faithful labels or registered variants)."""
    return table[(table.regime == "static") & table.label.isin(list(methods))].copy()


def spectrum_correlations(pop: pd.DataFrame, itop: Optional[pd.DataFrame] = None,
                          quantities: Mapping[str, str] = QUANTITIES) -> pd.DataFrame:
    """Per quantity: Pearson ρ of accuracy with it pooled over densities and *within* density (the partial
    correlation with one indicator per target density, which density alone cannot produce), each with its
    95% interval (Fisher z), p and n; collapsed runs (at chance) excluded and counted.  ``itop`` adds ITOP's
    moving distance as a row."""
    rows = []
    sets = [("population", pop, q) for q in quantities] + ([("itop", itop, "moving_distance")]
                                                          if itop is not None and len(itop) else [])
    for group, df, q in sets:
        ok = df[np.isfinite(df[q].astype(float)) & np.isfinite(df.final_test_acc.astype(float))]
        gone = int(ok.collapsed.sum())
        ok = ok[~ok.collapsed]
        pooled = correlation(ok[q], ok.final_test_acc)
        # within density: the claims' own computation (one indicator per model and density)
        within = correlation_table(prepare(df), q, pooled=True).iloc[-1]
        rows.append({"runs": group, "quantity": q, "n": pooled.n, "collapsed_excluded": gone,
                     "densities": ok.target_density.nunique(), "rho_pooled": pooled.rho, "low_pooled": pooled.low,
                     "high_pooled": pooled.high, "p_pooled": pooled.p_value, "rho_within": within["rho"],
                     "low_within": within["low"], "high_within": within["high"], "p_within": within["p_value"],
                     "undefined_share": within["undefined_share"]})
    return pd.DataFrame(rows)


def spectrum_figure(pop: pd.DataFrame, densities: Sequence[float], quantities: Mapping[str, str] = QUANTITIES):
    """One row of panels per density, one column per quantity: accuracy against the quantity, coloured
    by method, with ρ at that density (collapsed runs drawn as grey crosses and left out of ρ).
    Returns ``(fig, numbers)``."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(densities), len(quantities), figsize=(3.3 * len(quantities), 2.6 * len(densities)),
                             squeeze=False)
    numbers, boxes = {}, []
    for i, d in enumerate(densities):
        cell = pop[np.isclose(pop.target_density, d)]
        for j, (q, label) in enumerate(quantities.items()):
            ax, live = axes[i, j], cell[~cell.collapsed]
            dead = cell[cell.collapsed & np.isfinite(cell[q].astype(float))]
            if len(dead):
                ax.scatter(dead[q], dead.final_test_acc, marker="x", s=18, color="#bbbbbb", lw=1,
                           label="collapsed (not in ρ)")
            st = plots.correlation_scatter(ax, live[q], live.final_test_acc, groups=live.label, stats_box=False,
                                           xlabel=label if i == len(densities) - 1 else "",
                                           ylabel=f"test accuracy\n(density {d:g})" if j == 0 else "")
            boxes.append((ax, f"ρ = {st['rho']:.2f} [{st['low']:.2f}, {st['high']:.2f}]\n"
                              f"p = {st['p']:.2g}, n = {st['n']}"))
            numbers[f"rho acc~{q} @ {d:g}"] = st["rho"]
            numbers[f"n {q} @ {d:g}"] = st["n"]
    plots.legend_outside(fig, fontsize=7)
    for ax, text in boxes:  # after the legend: it reflows the axes, which would move boxes onto data
        plots.place_text(ax, text, fontsize=7)
    return fig, numbers


def correlation_forest(ax, corr: pd.DataFrame) -> Dict[str, float]:
    """ρ of accuracy with each quantity pooled over densities (hollow) and within density (filled), with
    95% intervals: the within-density estimate is the one the claims use."""
    names = {"delta_r_norm": "Δr", "lambda": "λ", "moving_distance": "moving distance"}
    ys = np.arange(len(corr))[::-1]
    numbers = {}
    for y, row in zip(ys, corr.itertuples()):
        for kind, offset, face in (("pooled", 0.15, "white"), ("within", -0.15, "black")):
            rho, lo, hi = getattr(row, f"rho_{kind}"), getattr(row, f"low_{kind}"), getattr(row, f"high_{kind}")
            if not np.isfinite(rho):
                continue
            err = plots.error_span(rho, lo, hi) if np.isfinite(lo) and np.isfinite(hi) else None
            ax.errorbar(rho, y + offset, xerr=err, fmt="o", ms=5, mfc=face, mec="black", color="black", lw=1,
                        capsize=2, label=("pooled over densities" if kind == "pooled" else "within density")
                        if y == ys[0] else None)
            numbers[f"rho_{kind} {row.runs}:{row.quantity}"] = rho
    ax.axvline(0, color="#888888", lw=0.8)
    ax.set_yticks(ys, [f"{names.get(r.quantity, r.quantity)} ({'ITOP' if r.runs == 'itop' else 'static'},"
                       f" n = {r.n})" for r in corr.itertuples()])
    ax.set_xlim(-1.05, 1.05)
    ax.set_ylim(-0.6, len(corr) - 0.4)
    ax.set_xlabel("Pearson ρ with test accuracy [95% interval]")
    plots.place_legend(ax, fontsize=7)
    return numbers


def meta_table(table: pd.DataFrame, generators: Sequence[str], density: float) -> pd.DataFrame:
    """Accuracy at ``density`` per (generator, kind, seed): the generator's own mask (``kind`` =
    "generator"), PAGS, and PEGS per number of dense iterations ("PEGS (T=200)"), plus the lottery
    ticket (``generator`` = "LTH"); ``density`` is the fraction each run actually kept."""
    at = table[np.isclose(table.target_density, density)]
    rows = []
    for g in generators:
        own = at[(at.regime == "static") & (at.label == g)]
        rows += [{"generator": g, "kind": "generator", "seed": r.seed, "final_test_acc": r.final_test_acc,
                  "density": r.density, "run_id": r.run_id} for r in own.itertuples()]
        gen = at["opt_generator"] if "opt_generator" in at.columns else pd.Series(None, index=at.index)
        for r in at[at.method.isin(["pags", "pegs"]) & (gen == g)].itertuples():
            kind = "PAGS" if r.method == "pags" else f"PEGS (T={_iterations(r)})"
            rows.append({"generator": g, "kind": kind, "seed": r.seed, "final_test_acc": r.final_test_acc,
                         "density": r.density, "run_id": r.run_id})
    rows += [{"generator": "LTH", "kind": "LTH", "seed": r.seed, "final_test_acc": r.final_test_acc,
              "density": r.density, "run_id": r.run_id} for r in at[at.method == "lth"].itertuples()]
    return pd.DataFrame(rows, columns=["generator", "kind", "seed", "final_test_acc", "density", "run_id"])


def meta_comparisons(table: pd.DataFrame) -> pd.DataFrame:
    """PAGS against its generator's own mask and PEGS against PAGS, paired per (model, density, seed,
    generator), per generator and pooled: :func:`pai.compendium.claims.spectrum.meta_pairs`, the table the
    claims ``pags_ge_generator`` and ``pegs_ge_pags`` decide from, for the notebook to show under the bars."""
    from pai.compendium.claims.engine import MissingData
    from pai.compendium.claims.spectrum import meta_pairs

    prepared, parts = prepare(table), []
    for a, b in (("pags", "generator"), ("pegs", "pags")):
        try:
            parts.append(meta_pairs(prepared, a, b, by="gen").assign(comparison=f"{a} − {b}"))
        except MissingData as e:  # a profile without that pair: the claim says the same
            parts.append(pd.DataFrame([{"comparison": f"{a} − {b}", "stratum": f"no pairs: {e}"}]))
    out = pd.concat(parts, ignore_index=True).reindex(columns=["comparison", "stratum", "n", "mean", "low", "high"])
    return out.rename(columns={"stratum": "generator"})


def _iterations(row) -> int:
    """PEGS' dense iterations of a results row (the pruner's default, 500, when the option is unset)."""
    t = getattr(row, "opt_pretrain_iterations", None)
    return 500 if t is None or (isinstance(t, float) and math.isnan(t)) else int(t)


def dense_accuracy(results: List[Dict]) -> List[float]:
    """Final accuracy of the dense network, one per seed: round 0 of each lottery-ticket run (the same
    recipe and initialisation as every run of that seed)."""
    return [r["lth_rounds"][0]["final_test_acc"] for r in results
            if r.get("lth_rounds") and r["lth_rounds"][0].get("final_test_acc") is not None]


def meta_bars(ax, meta: pd.DataFrame, dense: Sequence[float] = ()) -> Dict[str, float]:
    """Grouped bars: one group (and colour) per generator, one hatch per meta-method (generator, PAGS,
    PEGS per T), the lottery ticket as its own group, the dense accuracy as a dashed line; the mean over
    seeds with a min-max error bar.  The legend is the hatch key (the colours are the x labels)."""
    kinds = [k for k in ["generator", "PAGS"] + sorted(k for k in meta.kind.unique() if k.startswith("PEGS"))
             if k in set(meta.kind)]
    hatches = dict(zip(kinds, plots.HATCHES + ("\\\\\\", "---")))
    groups = [g for g in dict.fromkeys(meta.generator) if g != "LTH"] + (["LTH"] if (meta.generator == "LTH").any()
                                                                        else [])
    step, numbers = 0.8 / max(1, len(kinds)), {}
    for i, g in enumerate(groups):
        sub = meta[meta.generator == g]
        here = ["LTH"] if g == "LTH" else kinds
        for j, k in enumerate(here):
            acc = sub[sub.kind == k].final_test_acc.dropna().to_numpy(float)
            if not acc.size:
                continue
            x = i + (j - (len(here) - 1) / 2) * step
            ax.bar(x, acc.mean(), width=step, color=plots.color("lth" if g == "LTH" else g),
                   hatch=hatches.get(k), edgecolor="black", lw=0.4,
                   yerr=plots.error_span(acc.mean(), acc.min(), acc.max()), capsize=2)
            numbers[f"{g} {k} acc"] = float(acc.mean())
    handles = [plots.patch_handle("#dddddd", k, hatches[k]) for k in kinds]
    if len(dense):
        line = ax.axhline(float(np.mean(dense)), color=plots.color("dense"), ls="--", lw=1,
                          label=f"dense ({np.mean(dense):.3f})")
        handles.append(line)
        numbers["dense acc"] = float(np.mean(dense))
    ax.set_xticks(range(len(groups)), groups)
    ax.set_ylabel("test accuracy")
    vals = [v for v in numbers.values()]
    if vals:
        ax.set_ylim(max(0.0, min(vals) - 0.05), min(1.0, max(vals) + 0.04))
    plots.place_legend(ax, handles, fontsize=7)
    return numbers


def itop_figure(results: List[Dict], table: pd.DataFrame, seed: int):
    """Left: ITOP runs' accuracy against their moving distance (colour = density; ρ within density).
    Right: the (Δr, λ) trajectory of seed ``seed`` per density, means over layers at every mask update,
    from the start (circle) to the end (star).  Returns ``(fig, numbers)``."""
    import matplotlib.pyplot as plt

    runs = table[table.regime == "dst"]
    fig, axes = plt.subplots(1, 2, figsize=(7.6, 3.0))
    levels = [f"d={d:g}" for d in runs.target_density]
    st = plots.correlation_scatter(axes[0], runs.moving_distance, runs.final_test_acc, groups=levels,
                                   within=runs.target_density.astype(str).tolist(), stats_box=False,
                                   xlabel="full-spectrum moving distance", ylabel="test accuracy")
    numbers = {"rho acc~moving distance (ITOP, pooled)": st["rho"], "n": st["n"],
               "mean ITOP rate": float(runs.itop_rate.mean()) if len(runs) else math.nan}
    within = itop_correlations(runs)
    for reading, row in within.items():  # the claim's numbers: pai.compendium.claims.tables.correlation_table
        numbers.update({f"rho within density ({reading})": row["rho"], f"low ({reading})": row["low"],
                        f"high ({reading})": row["high"], f"n ({reading})": int(row["n"]),
                        f"undefined share ({reading})": row["undefined_share"]})
    for d, traj in itop_trajectories(results, seed=seed).items():
        c = plots.style_of(f"d={d:g}")["color"]
        axes[1].plot(traj.delta_r, traj["lambda"], color=c, lw=1, marker=".", ms=3, label=f"d={d:g}")
        axes[1].plot(traj.delta_r.iloc[:1], traj["lambda"].iloc[:1], "o", color=c, ms=6, mfc="white")
        axes[1].plot(traj.delta_r.iloc[-1:], traj["lambda"].iloc[-1:], "*", color=c, ms=9)
    if len(runs):  # keys for the trajectory's ends (empty artists: nothing to cover)
        axes[1].plot([], [], "o", color="#666666", mfc="white", label="start (m₀, θ₀)")
        axes[1].plot([], [], "*", color="#666666", ms=9, label="end (m_T, θ_T)")
    else:
        for ax in axes:
            ax.text(0.5, 0.5, "no ITOP runs in this profile", transform=ax.transAxes, ha="center", color="#666666")
    axes[1].set_xlabel("Δr (NeurIPS'23, mean over layers)")
    axes[1].set_ylabel("λ (mean over layers)")
    plots.legend_outside(fig, fontsize=7)
    if len(runs):  # after the legend: it reflows the axes
        lines = [f"ρ = {st['rho']:.2f} [{st['low']:.2f}, {st['high']:.2f}], n = {st['n']}"]
        for reading, row in within.items():
            lines.append(f"within density ({reading}): ρ = {row['rho']:.2f} [{row['low']:.2f}, {row['high']:.2f}], "
                         f"n = {int(row['n'])}; undefined {row['undefined_share']:.0%}")
        plots.place_text(axes[0], "\n".join(lines), fontsize=7)
    return fig, numbers


def itop_correlations(runs: pd.DataFrame) -> Dict[str, Dict]:
    """ITOP runs' within-density ρ of accuracy with the moving distance, per reading ("faithful": an
    invalid layer read as 0; "invalid='drop'": valid layers only), from
    :func:`pai.compendium.claims.tables.correlation_table` -- the numbers the claim ``itop_distance_tracks_accuracy``
    decides on (one model: its row; several: the row pooled over them)."""
    if not len(runs):
        return {}
    prepared = prepare(runs)
    out = {}
    for reading, col in (("faithful", "moving_distance"), ("invalid='drop'", "moving_distance_drop")):
        if col not in prepared.columns or not np.isfinite(prepared[col].astype(float)).any():
            continue
        corr = correlation_table(prepared, col)
        models = corr[corr["stratum"] != POOLED]
        out[reading] = (models if len(models) == 1 else corr[corr["stratum"] == POOLED]).iloc[0].to_dict()
    return out


def paper_table(table: pd.DataFrame, work: str, dataset: str) -> pd.DataFrame:
    """:func:`pai.compendium.published.paper_vs_ours` of the faithful static runs against ``work``'s published
    numbers on ``dataset``; published rows our grid does not run are kept ("not run")."""
    from pai.compendium.published import paper_table as published_table

    return published_table(table, work, dataset=dataset, exclude=META, keep_unmatched=True)
