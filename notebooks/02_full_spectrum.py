# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python (pai)
#     language: python
#     name: pai
# ---

# %% [markdown]
# # The full spectrum: Ramanujan gap, weighted spectral gap, and accuracy
#
# **Question.** Hoang et al. (ICLR 2023) relate a sparse layer's *Ramanujan gap* Δr (how far its second
# eigenvalue sits below the Ramanujan bound) to accuracy; their NeurIPS 2023 follow-up adds the
# *weighted spectral gap* λ of |W⊙M| and fuses both, with their iterative (per-degree-class) forms, into a
# **full-spectrum coordinate** (Δr, λ, iterative Δr, iterative λ). They report that the coordinate's ℓ2
# distance tracks accuracy almost linearly, more strongly than Δr alone, and use its norm to pick masks:
# **PAGS** samples many masks from a pruner and keeps the best per layer; **PEGS** does the same after a
# few hundred iterations of dense training.
#
# **Method.** A population of masks from several pruners and densities is trained (`pai.runs.sweep`);
# every mask's coordinate is measured at initialisation (`pai.metrics.network_full_spectrum`), and its
# *moving distance* — our reading: the per-layer ℓ2 distance between the coordinate with the initial and
# with the trained weights, undefined parts read as 0 as in the authors' code, averaged over layers
# (`pai.metrics.moving_distance`, used for the static runs and for DST alike) — after training. Then PAGS and PEGS are compared
# with their generators at equal density.

# %% tags=["parameters"]
dataset = "fashion-mnist"
model = "lenet-300-100"
population_methods = ["random", "random-erk", "magnitude", "snip", "grasp", "synflow"]
population_densities = [0.1, 0.03, 0.01]
seeds = [0, 1]
epochs = 5
train_subset = None
test_subset = None
batch_size = 128
lr = 0.05
weight_decay = 5e-4
schedule = "cosine"
pags_generators = ["random-erk", "snip", "grasp"]
pags_density = 0.01
pags_candidates = 20
pegs_iterations = 200
itop_generator = "random-erk"
itop_densities = [0.1, 0.05, 0.03, 0.02, 0.01]
itop_update_interval = 100
itop_drop_fraction = 0.5
lth_rate = 0.4
lth_rewind_iteration = 0
executor = "local"
workers = 2
out_dir = "runs/full_spectrum"
fig_dir = "figures/full_spectrum"

# %%
import matplotlib.pyplot as plt
import numpy as np

from pai import plots
from pai.experiments import add_full_spectrum_columns, itop_trajectories, setup_line
from pai.params import over, stage_params, unique
from pai.runs import sweep, write_tables

plots.style()
params = stage_params(globals())
population = params.grid(methods=population_methods, densities=population_densities)
generators = params.grid(methods=pags_generators, densities=[pags_density])
meta = params.grid(methods=["pags", "pegs"], densities=[pags_density],
                   options={"generator": over(pags_generators), "candidates": pags_candidates},
                   method_options={"pegs": {"pretrain_iterations": pegs_iterations}})
itop = params.grid(methods=[itop_generator], densities=itop_densities, regime="dst",
                   regime_options={"update_interval": itop_update_interval, "drop_fraction": itop_drop_fraction})
lth = params.grid(methods=["dense"], densities=[pags_density], regime="lth",
                  regime_options={"rate": lth_rate, "rewind_iteration": lth_rewind_iteration})
specs = unique(population, generators, meta, itop, lth)  # generators repeat population runs
results = sweep(specs, f"{out_dir}/runs", executor=executor, workers=workers)
table = add_full_spectrum_columns(write_tables(results, out_dir), results, f"{out_dir}/runs")
static = table.regime == "static"
table[["method", "generator", "target_density", "seed", "final_test_acc", "delta_r_norm",
       "lambda", "moving_distance"]].head(12)

# %% [markdown]
# ## Accuracy vs Δr, vs λ, and vs the full-spectrum distance
# Over the whole population (every generator and density). Each panel states Pearson ρ, p and n.

# %%
pop = table[table.method.isin(population_methods) & static]
fig, axes = plt.subplots(1, 3, figsize=(10, 3.0))
numbers = {}
for ax, (col, label) in zip(axes, [("delta_r_norm", "Ramanujan gap Δr (mean over layers)"),
                                   ("lambda", "weighted spectral gap λ (mean over layers)"),
                                   ("moving_distance", "full-spectrum ℓ2 moving distance")]):
    st = plots.correlation_scatter(ax, pop[col], pop.final_test_acc, groups=pop.method, xlabel=label,
                                   ylabel="test accuracy")
    numbers.update({f"rho acc~{col}": st["rho"], f"p acc~{col}": st["p"], f"n {col}": st["n"]})
axes[0].legend(fontsize=6)
plots.finish(fig, fig_dir, "accuracy_vs_spectrum", title="Accuracy vs Δr, λ and the full-spectrum distance",
             caption_text="Final accuracy of a population of masks (several pruners and densities) against "
                          "the Ramanujan gap, the weighted spectral gap and the full-spectrum moving distance.",
             numbers=numbers, setup=setup_line(dataset, model, params, seeds))
plt.show()

# %% [markdown]
# ## PAGS and PEGS vs their generator, and lottery tickets
# At density `pags_density`: the generator's own mask, PAGS (best of `pags_candidates` per layer by the
# full-spectrum criterion) and PEGS (the same after `pegs_iterations` dense steps); the grey band is the
# lottery ticket (iterative magnitude pruning, `lth_rate` of the remaining weights per round, rewound to
# iteration `lth_rewind_iteration`) at the same density — "pruning after training", the reference. Bars
# are the mean over seeds, error bars the min–max.

# %%
fig, ax = plt.subplots(figsize=(4.8, 3.0))
numbers = {}
kinds = ["generator", "pags", "pegs"]
for j, kind in enumerate(kinds):
    for i, g in enumerate(pags_generators):
        sel = table[(table.generator == g) & np.isclose(table.target_density, pags_density) & static]
        sel = sel[sel.method == (g if kind == "generator" else kind)]
        acc = sel.final_test_acc.to_numpy()
        if len(acc) == 0:
            continue
        ax.bar(i + (j - 1) * 0.27, acc.mean(), width=0.27, color=plots.color(kind if kind != "generator" else g),
               yerr=[[acc.mean() - acc.min()], [acc.max() - acc.mean()]], capsize=2,
               label=kind if i == 0 else None, edgecolor="black", lw=0.4)
        numbers[f"{g} {kind} acc"] = float(acc.mean())
tickets = table[table.method == "lth"]
if len(tickets):
    ax.axhspan(tickets.final_test_acc.min(), tickets.final_test_acc.max(), color=plots.color("lth"), alpha=0.5,
               label=f"LTH (density {tickets.density.mean():.4f})")
    numbers["lth acc"] = float(tickets.final_test_acc.mean())
    numbers["lth density"] = float(tickets.density.mean())
ax.set_xticks(range(len(pags_generators)), pags_generators)
ax.set_ylabel("test accuracy")
lo = np.nanmin(list(v for k, v in numbers.items() if k.endswith("acc"))) if numbers else 0
ax.set_ylim(max(0, lo - 0.05), None)
ax.legend(fontsize=7)
plots.finish(fig, fig_dir, "pags_pegs", title="PAGS / PEGS vs generator, and lottery tickets",
             caption_text=f"Accuracy at density {pags_density} of each generator's mask, its PAGS selection "
                          f"({pags_candidates} candidates), PEGS ({pegs_iterations} dense iterations first) and "
                          f"the lottery ticket (IMP, {lth_rate:.0%} per round).",
             numbers=numbers, setup=setup_line(dataset, model, params, seeds))
plt.show()

# %% [markdown]
# ## ITOP: accuracy vs the full-spectrum moving distance
# Dynamic sparse training (ITOP-Rand: every `itop_update_interval` steps drop the smallest weights and
# regrow as many at random) from `itop_generator` masks at several densities. The moving distance is the
# per-layer ℓ2 distance between the full-spectrum coordinate of the final (mask, weights) and the initial
# ones, averaged over layers (`pai.dst`). Right: the coordinate's trajectory (means over layers) for seed
# `seeds[0]`.

# %%
runs_itop = table[table.regime == "dst"]
fig, axes = plt.subplots(1, 3, figsize=(10.5, 3.0))
st = plots.correlation_scatter(axes[0], runs_itop.moving_distance, runs_itop.final_test_acc,
                               groups=[f"d={d:g}" for d in runs_itop.target_density],
                               xlabel="full-spectrum moving distance", ylabel="test accuracy")
numbers = {"rho acc~moving distance (ITOP)": st["rho"], "p": st["p"], "n": st["n"],
           "mean ITOP rate": float(runs_itop.itop_rate.mean())}
for d, traj in itop_trajectories(results, seed=seeds[0]).items():
    axes[1].plot(traj.step, traj.delta_r, marker=".", ms=3, lw=1, label=f"d={d:g}")
    axes[2].plot(traj.step, traj["lambda"], marker=".", ms=3, lw=1, label=f"d={d:g}")
axes[1].set_xlabel("step")
axes[1].set_ylabel("Δr (mean over layers)")
axes[2].set_xlabel("step")
axes[2].set_ylabel("λ (mean over layers)")
axes[1].legend(fontsize=6)
axes[0].legend(fontsize=6)
plots.finish(fig, fig_dir, "itop_moving_distance", title="ITOP: accuracy vs moving distance, and trajectories",
             caption_text=f"ITOP-Rand runs from {itop_generator} masks (densities "
                          f"{', '.join(map(str, itop_densities))}): final accuracy against the full-spectrum "
                          "moving distance, and the coordinate's trajectory over training.",
             numbers=numbers, setup=setup_line(dataset, model, params, seeds))
plt.show()

# %% [markdown]
# ## What the figures show at this scale
# The ρ values and the PAGS/PEGS margins are in `figures/README.md`. The paper's claims are that the
# full-spectrum distance correlates with accuracy more strongly than Δr alone and that PAGS ≥ its
# generator; at this scale (an MLP on Fashion-MNIST, a few epochs) read both against the seed spread.
