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
# **full-spectrum coordinate** (Δr, λ, iterative Δr, iterative λ). They report that a subnetwork's ℓ2
# distance in that coordinate from its initialisation tracks accuracy almost linearly — under ITOP's
# random regrowth and over a population of masks — more strongly than Δr or λ alone, and use the
# coordinate's norm to pick masks: **PAGS** samples many masks from a pruner and keeps, layer by layer,
# the best; **PEGS** does the same after a few hundred iterations of dense training.
#
# **Method.** A population of masks from six pruners at two densities is trained from the same
# initialisation per seed (`pai.compendium.runs.sweep`). Every mask's Δr (ICLR'23 rule, normalised, mean over valid
# layers) and λ (NeurIPS'23 rule, mean over layers) are measured at initialisation (`pai.metrics`), and its
# **moving distance** after training: our reading, stated once in `pai.metrics.moving_distance` and used for
# the static runs and for DST alike — per layer the ℓ2 distance between the coordinate of the mask with its
# starting and with its trained weights, undefined parts read as zero as in the authors' code, averaged over
# layers. **All conv and linear layers are prunable**, the first and the last included, as in both papers'
# code. SNIP and GraSP score with BatchNorm in **eval mode** (running statistics), as the ICLR'23
# (`VITA-Group/ramanujan-on-pai`) and NeurIPS'23 dev code (`ScottHoang/dst-ram-pruning`) do: their
# `prune_loop` calls `model.eval()` unless `train_mode` is set, and neither sets it. A correlation is read
# **within a density** (the partial correlation with one indicator per density), so "denser masks train
# better" cannot produce it; collapsed runs (at chance) are left out of every ρ and counted.

# %% tags=["parameters"]
dataset = "fashion-mnist"
model = "vgg11-w0.25"
image_size = 14
population_methods = ["random", "random-erk", "magnitude", "snip", "grasp", "synflow"]
population_densities = [0.01, 0.003]
seeds = [0, 1, 2]
epochs = 6
eval_every = 6
train_subset = 10000
test_subset = None
batch_size = 128
lr = 0.05
weight_decay = 5e-4
schedule = "cosine"
pags_generators = ["random-erk", "snip"]
pags_density = 0.01
pags_candidates = 20
pegs_iterations = [200]
itop_generator = "random-erk"
itop_densities = [0.05, 0.01]
itop_update_interval = 100
itop_drop_fraction = 0.5
lth_rate = 0.6
lth_rewind_iteration = 0
published_work = None  # a paper profile: the work in pai/compendium/published.csv whose numbers we compare with
plugins = []  # modules registering your own pruners or models (README: "Your own method")
executor = "local"
workers = 2
out_dir = "runs/full_spectrum"
fig_dir = "figures/full_spectrum"

# %%
import matplotlib.pyplot as plt

from pai.compendium import plots
from pai.compendium.claims import report
from pai.compendium.experiments import setup_line
from pai.compendium.params import over, stage_params, unique
from pai.compendium.published import format_table
from pai.compendium.runs import sweep
from pai.compendium.stages import full_spectrum as fs
from pai.compendium.tables import save_table

plots.style()
params = stage_params(globals())
population = params.grid(methods=population_methods, densities=population_densities)
generators = params.grid(methods=pags_generators, densities=[pags_density])
meta_options = {"generator": over(pags_generators), "candidates": pags_candidates}
pags = params.grid(methods=["pags"], densities=[pags_density], options=meta_options)
pegs = params.grid(methods=["pegs"], densities=[pags_density],
                   options={**meta_options, "pretrain_iterations": over(pegs_iterations)})
itop = params.grid(methods=[itop_generator], densities=itop_densities, regime="dst",
                   regime_options={"update_interval": itop_update_interval, "drop_fraction": itop_drop_fraction})
lth = params.grid(methods=["dense"], densities=[pags_density], regime="lth",
                  regime_options={"rate": lth_rate, "rewind_iteration": lth_rewind_iteration})
specs = unique(population, generators, pags, pegs, itop, lth)  # the generators' runs are population runs
results = sweep(specs, f"{out_dir}/runs", executor=executor, workers=workers)
table = fs.results_table(results, out_dir)  # + tables/moving_distance.csv, tables/layer_densities.csv (by run_id)
setup = setup_line(dataset, model, params, seeds)
pop = fs.population(table, population_methods)
table[["label", "generator", "target_density", "seed", "final_test_acc", "delta_r_norm", "lambda",
       "moving_distance", "collapsed"]].head(12)

# %% [markdown]
# ## Accuracy vs Δr, vs λ and vs the moving distance, at each density
# One row per density, one column per quantity; each panel's box gives Pearson ρ at that density with its
# 95% interval, p and n. Grey crosses are collapsed runs (at chance), left out of ρ.

# %%
fig, numbers = fs.spectrum_figure(pop, population_densities)
plots.finish(fig, fig_dir, "accuracy_vs_spectrum", title="Accuracy vs Δr, λ and the moving distance, per density",
             caption_text=f"Final test accuracy of the population ({', '.join(population_methods)}) against the "
                          "normalised Ramanujan gap Δr and the weighted spectral gap λ of the mask at "
                          "initialisation, and the full-spectrum moving distance after training, one row per "
                          "density. SNIP and GraSP score in eval mode (BatchNorm running statistics), as the "
                          "ICLR'23 and NeurIPS'23 code; all layers prunable.",
             numbers=numbers, setup=setup)
plt.show()

# %% [markdown]
# ## Which quantity tracks accuracy within a density?
# ρ pooled over densities (hollow) mixes the density effect in; ρ within density (filled: the partial
# correlation with one indicator per density) is what the claims test. The paper's claim is that the moving
# distance's |ρ| exceeds Δr's and λ's; the scoreboard below tests the difference by a paired bootstrap.

# %%
corr = fs.spectrum_correlations(pop, itop=table[table.regime == "dst"])
save_table(corr, f"{out_dir}/tables/spectrum_correlations.csv")
fig, ax = plt.subplots(figsize=(5.6, 0.5 + 0.55 * len(corr)))
numbers = fs.correlation_forest(ax, corr)
plots.finish(fig, fig_dir, "within_density_correlation", title="ρ with accuracy: pooled vs within density",
             caption_text="Pearson ρ of final test accuracy with Δr, λ and the moving distance over the static "
                          "population, and with the moving distance over the ITOP runs: pooled over densities "
                          "and within density (partial correlation, one indicator per density), 95% Fisher-z "
                          "intervals; collapsed runs excluded.",
             numbers=numbers, setup=setup)
plt.show()
corr.round(3)

# %% [markdown]
# ## PAGS and PEGS vs their generator, and lottery tickets
# At density `pags_density`: each generator's own mask, PAGS (per layer, the best of `pags_candidates`
# masks of that generator by IMDB_r and ‖v‖₂, `pai.pruners.sampling`) and PEGS (the same on the weights
# after T dense steps, training from them); the lottery ticket (iterative magnitude pruning, `lth_rate` of
# the remaining weights per round, rewound to iteration `lth_rewind_iteration`) is "pruning after
# training", and the dashed line is the dense network (the ticket's round zero). Colour = generator, hatch =
# meta-method; bars are the mean over seeds, error bars the min–max.

# %%
meta = fs.meta_table(table, pags_generators, pags_density)
save_table(meta, f"{out_dir}/tables/pags_pegs.csv")
fig, ax = plt.subplots(figsize=(1.6 + 1.3 * (len(pags_generators) + 1), 3.0))
numbers = fs.meta_bars(ax, meta, fs.dense_accuracy(results))
plots.finish(fig, fig_dir, "pags_pegs", title="PAGS / PEGS vs their generator, and lottery tickets",
             caption_text=f"Test accuracy at density {pags_density} of each generator's mask, its PAGS selection "
                          f"({pags_candidates} candidates), PEGS after {', '.join(map(str, pegs_iterations))} dense "
                          f"iterations, and the lottery ticket (IMP, {lth_rate:.0%} per round, rewound to "
                          f"iteration {lth_rewind_iteration}); dashed: dense. SNIP scores in eval mode.",
             numbers=numbers, setup=setup)
plt.show()
display(meta.groupby(["generator", "kind"], sort=False).final_test_acc.agg(["mean", "min", "max", "count"]).round(4))
fs.meta_comparisons(table).round(3)  # the paired differences (pp) the PAGS/PEGS claims decide from

# %% [markdown]
# ## ITOP: accuracy vs the moving distance, and the (Δr, λ) trajectory
# Dynamic sparse training (ITOP-Rand: every `itop_update_interval` steps each layer drops the smallest
# weights and regrows as many at random, `pai.train.dst`) from `itop_generator` masks. Left: final accuracy
# against the moving distance between (m₀, θ₀) and (m_T, θ_T), with ρ within density. Right: the
# coordinate's (Δr, λ) means over layers at every mask update for seed `seeds[0]`, from the start (circle)
# to the end (star).

# %%
fig, numbers = fs.itop_figure(results, table, seeds[0])
plots.finish(fig, fig_dir, "itop_moving_distance", title="ITOP: accuracy vs moving distance, and trajectories",
             caption_text=f"ITOP-Rand runs from {itop_generator} masks (densities "
                          f"{', '.join(map(str, itop_densities)) or 'none'}, update every {itop_update_interval} "
                          f"steps, drop fraction {itop_drop_fraction}): final accuracy against the full-spectrum "
                          "moving distance, and the (Δr, λ) trajectory over training.",
             numbers=numbers, setup=setup)
plt.show()

# %% [markdown]
# ## Our numbers beside the papers'
# Under a paper profile (`published_work` set): the published accuracies of `pai/compendium/published.csv` for this
# dataset beside ours (mean ± standard deviation over seeds, Δ = ours − paper, percentage points). The
# NeurIPS'23 PAGS/PEGS tables are printed as images only, so no PAGS/PEGS number could be transcribed; the
# published rows are the ICLR'23 baselines at the density of its tables ("not run" where our grid lacks
# that model).

# %%
if published_work:
    versus = fs.paper_table(table, published_work, dataset)
    save_table(versus, f"{out_dir}/tables/paper_vs_ours.csv")
    print(format_table(versus))
else:
    print("cpu profile: no published numbers at this scale (set published_work in a paper profile)")

# %% [markdown]
# ## What this notebook decides
# The claims of this stage, each decided by code from the tables above (`pai.compendium.claims`): the effect, its 95%
# interval and the verdict by the rule printed with them.

# %%
claims = report("full_spectrum", out_dir)
