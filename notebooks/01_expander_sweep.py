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
# # Expander sweep: random graph vs X-Net vs RReg
#
# **Question.** Stewart, Michieli & Ozay (*Data-Free Model Pruning at Initialization via Expanders*,
# CVPRW 2023) sparsify each layer as a bipartite graph and claim that (i) random *d-regular* layers
# (**RReg**) are at least as accurate as X-Net's *d-left-regular* layers (Prabhu et al., ECCV 2018), which
# are at least as accurate as plain random layer graphs, most clearly when very sparse, and (ii) accuracy
# rises with the graph's expansion.
#
# **Method.** Every prunable layer is a channel-level bipartite graph (an edge is a whole kernel). As in
# the official code (`SamsungLabs/ExpandersPruning`, `pai.pruners.expanders`): `random-graph` keeps each
# kernel with probability d/n_out, `xnet` gives every input node d distinct outputs, `rreg` gives the
# larger side degree d and balances the smaller one by the configuration model (parallel edges collapse,
# as the official networkx graph does), keeping the best of `n_graphs` such graphs (the official count) by
# sampled vertex expansion.
# **One first/last-layer rule for all three methods** (`pai.pruners.expanders.dense_layer_rule`): the
# classifier stays dense; VGG's stem is sparse (official VGG rule) and so is the MLP's input layer.
# The VGG stem, with $n_{in}$ input channels (the image's) and $n_{out}$ outputs, is where the methods
# differ most when $n_{in} \ll n_{out}$: RReg puts degree d on the larger side and keeps about
# $\min(d\,n_{out}, n_{in} n_{out})$ kernels (on a grey image its smaller side is one node, so the stem is
# complete), X-Net keeps $d\,n_{in}$, and the Bernoulli random graph keeps no kernel of an input channel
# with probability $(1 - d/n_{out})^{n_{out}}$ — the official rule on CIFAR's colour stem has the same
# imbalance. The per-layer panel below shows it; the MLP has no such layer and is the cleaner test. Without a
# `degrees` list the per-layer degree follows from a global density (`allocation`: the same density in
# every sparse layer, the regular side's degree rounded and at least one), so each model has a **density
# floor** (one edge per node) and every figure puts the density actually kept on its x-axis. Within a seed
# every method starts from the same initialisation (`pai.train`); expansion and spectral gap are measured on
# the mask at initialisation.
# The named variant `"rreg (exact degrees)"` (parallel edges repaired, so every degree is exact) can be
# added to `methods`; it is plotted and tested beside the faithful RReg.

# %% tags=["parameters"]
dataset = "fashion-mnist"
models = ["lenet-300-100", "vgg11-w0.25"]
methods = ["random-graph", "xnet", "rreg"]
densities = {"lenet-300-100": [0.03, 0.01, 0.008], "vgg11-w0.25": [0.05, 0.02]}
degrees = None  # paper profile: one degree for every sparse layer instead of densities
seeds = [0, 1, 2]
allocation = "uniform"
dense_first = None  # None: the first-layer rule of dense_layer_rule (official); true: every first layer dense
epochs = 6  # a TrainConfig field may be given per model: {model: value}
image_size = {"lenet-300-100": None, "vgg11-w0.25": 14}
train_subset = {"lenet-300-100": None, "vgg11-w0.25": 10000}
test_subset = None
batch_size = 128
lr = 0.05
weight_decay = 5e-4
schedule = "cosine"
milestones = None  # multistep schedules (paper profiles): fractions of the epochs, lr times gamma at each
gamma = None
augment = None  # paper profiles: random crop + horizontal flip
eval_every = 6
stem_check = ["vgg11-w0.25"]  # models rerun at their sparsest level with the first layer dense (None: none)
spectral_density = {"lenet-300-100": 0.03, "vgg11-w0.25": 0.05}
spectral_degree = None
published_work = None  # paper profiles: "rreg" prints and saves the paper-vs-ours table
plugins = []  # modules registering your own pruners or models (README: "Your own method")
executor = "local"
workers = 2
out_dir = "runs/expander_sweep"
fig_dir = "figures/expander_sweep"

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from pai.compendium import plots
from pai.compendium.claims import report
from pai.compendium.experiments import setup_line
from pai.compendium.params import stage_params
from pai.compendium.published import format_table
from pai.compendium.runs import sweep, write_tables
from pai.compendium.stages import expanders as stage
from pai.compendium.tables import save_table

plots.style()
params = stage_params(globals())
specs = stage.sweep_specs(params, methods, densities=densities, degrees=degrees, allocation=allocation,
                          dense_first=dense_first)
stem_specs = stage.stem_check_specs(params, methods, stem_check or [], densities=densities, degrees=degrees,
                                    allocation=allocation)  # a side check, kept out of results.csv
results = sweep(specs + stem_specs, f"{out_dir}/runs", executor=executor, workers=workers)
table = stage.results_table(write_tables(results[:len(specs)], out_dir))
stem = stage.table_of(results[len(specs):])
level_name = "degree" if degrees else "density"
setup = setup_line(dataset, models, params, seeds)
table[["model", "label", "level", "density", "seed", "final_test_acc", "collapsed", "expansion",
       "channel_spectral_gap"]].head(12)

# %% [markdown]
# ## Accuracy against the density kept
# Mean over seeds, with the min–max band, against the fraction of weights each mask actually keeps
# (dense classifier included); the dashed line is the dense network. A regular graph cannot go below one
# edge per node, so the sparsest target of each model sits at its floor, and the three methods land at
# slightly different densities. Runs at chance (collapsed) are counted under the figure.

# %%
fig, axes = plt.subplots(1, len(models), figsize=(3.5 * len(models), 3.0), squeeze=False)
numbers = {}
for ax, model in zip(axes[0], models):
    sub = table[(table.model == model) & (table.method != "dense")]
    plots.density_curves(ax, sub.to_dict("records"), y="final_test_acc", methods=methods, by="label",
                         ylabel="test accuracy")
    stage.level_ticks(ax, sub)
    dense = table[(table.model == model) & (table.method == "dense")].final_test_acc
    ax.axhline(dense.mean(), color=plots.color("dense"), ls="--", lw=1, label="dense")
    ax.set_title(model)
    sparsest = sub.level.min()  # the lowest density, or degree
    for lab, at in sub[sub.level == sparsest].groupby("label"):
        numbers[f"{model} {lab} acc @ {level_name} {sparsest:g}"] = at.final_test_acc.mean()
        numbers[f"{model} {lab} kept density @ {level_name} {sparsest:g}"] = at.density.mean()
        numbers[f"{model} {lab} collapsed runs"] = int(sub[sub.label == lab].collapsed.sum())
    numbers[f"{model} dense acc"] = dense.mean()
plots.legend_outside(fig)
plots.finish(fig, fig_dir, "accuracy_vs_density", title="Accuracy vs density kept: random graph, X-Net, RReg",
             caption_text="Test accuracy (mean, min-max band over seeds) against the density each mask keeps; "
                          "dashed: dense network.", numbers=numbers, setup=setup)
plt.show()
print("runs at chance (collapsed):",
      {k.removesuffix(" collapsed runs"): v for k, v in numbers.items() if "collapsed" in k})

# %% [markdown]
# ## Does accuracy rise with expansion at a fixed density?
# Pooled over densities, expansion and accuracy both grow with density, so their correlation mostly
# measures density. Here each run's expansion and accuracy are taken relative to the mean of its own
# (model, density) cell — the same seeds and density, three graph models — so only the differences
# between graphs of one density remain; the slope of this cloud is the within-density partial
# correlation that the claim `accuracy_rises_with_expansion` tests (collapsed runs left out, as there).
# Top: the RReg paper's sampled vertex expansion |N(S)|/|S|; bottom: the spectral gap σ1 − σ2 of the
# channel biadjacency (both the mean over layers, dense layers included, which shift every cell alike).

# %%
fig, axes = plt.subplots(2, len(models), figsize=(3.6 * len(models), 6.0), squeeze=False)
numbers = {}
for j, model in enumerate(models):
    sub = table[table.model == model]
    for i, (col, label) in enumerate([("expansion", "vertex expansion |N(S)|/|S|"),
                                      ("channel_spectral_gap", "spectral gap σ1 − σ2")]):
        st = stage.residual_panel(axes[i][j], sub, col, xlabel=label, level_name=level_name, methods=methods,
                                  title=model if i == 0 else "")
        numbers.update({f"{model} within-{level_name} rho acc~{col}": st["rho_within"],
                        f"{model} CI low acc~{col}": st["low"], f"{model} CI high acc~{col}": st["high"],
                        f"{model} p acc~{col}": st["p"], f"{model} n acc~{col}": st["n"]})
plots.legend_outside(fig)
plots.finish(fig, fig_dir, "accuracy_vs_expansion", title=f"Accuracy vs expansion within a {level_name}",
             caption_text=f"Final accuracy against the expansion of the layer graphs, both relative to the mean of "
                          f"runs at the same model and {level_name}; within-{level_name} Pearson ρ with its 95% "
                          f"interval.", numbers=numbers, setup=setup)
plt.show()
within = stage.within_level(table, "expansion")
_ = save_table(within[["model", "label", "level", "seed", "expansion", "final_test_acc", "x_within", "y_within"]],
               f"{out_dir}/tables/expansion_within_{level_name}.csv")

# %% [markdown]
# ## Each layer's graph at one density
# Seed by seed, the masks of the three graph models at one level: top, the spectral gap σ1 − σ2 of each
# layer's channel graph; bottom, the fraction of the layer each keeps (log scale). Bars are the mean
# over seeds, whiskers the min–max. The classifier, dense under every method, is left out (its complete
# graph is the same for all); on a one-channel input RReg's stem is complete too (all kept), X-Net's and the
# random graph's are not. RReg puts its degree on the larger side, so at low degree it keeps more of an
# expanding layer (n_out > n_in) than X-Net, whose degree is on the inputs (official rules both). The cpu
# profile shows each model's densest level: at the floor (one edge per node) every graph is a union of
# stars, disconnected, and a regular one has σ1 = σ2 (gap zero) — no graph there is an expander.

# %%
level = {"degree": spectral_degree} if degrees else None
fig, axes = plt.subplots(2, len(models), figsize=(3.8 * len(models), 5.6), squeeze=False)
numbers, gaps = {}, []
for j, model in enumerate(models):
    at = level or {"density": spectral_density[model]}
    g = stage.layer_gaps(specs, f"{out_dir}/runs", model=model, methods=methods, seeds=seeds, **at)
    gaps.append(g)
    g = stage.sparse_layers(g)  # a layer dense under every method (the classifier) is the same graph for all
    names = list(dict.fromkeys(g.layer))
    for i, col in enumerate(["channel_gap", "kept_fraction"]):
        ylabel = ["spectral gap σ1 − σ2", "fraction of the layer kept"][i]
        means = plots.grouped_bars(axes[i][j], names, stage.layer_series(g, col, methods), ylabel=ylabel)
        axes[i][j].tick_params(axis="x", labelrotation=60, labelsize=6)
        if col == "kept_fraction":
            axes[i][j].set_yscale("log")
        else:
            axes[i][j].set_title(f"{model}, {level_name} {next(iter(at.values())):g}")
            numbers.update({f"{model} {lab} mean gap": float(np.nanmean(v)) for lab, v in means.items()})
    first = g[g.layer_index == 0].groupby("label").kept_fraction.mean()
    numbers.update({f"{model} {lab} first layer kept": v for lab, v in first.items()})
plots.legend_outside(fig)
plots.finish(fig, fig_dir, "layer_spectral_gap", title="Per-layer spectral gap and kept fraction",
             caption_text="Spectral gap of each layer's channel-level graph, and the fraction of the layer kept "
                          "(mean and min-max over seeds).", numbers=numbers, setup=setup)
plt.show()
_ = save_table(pd.concat(gaps), f"{out_dir}/tables/layer_spectral_gap.csv")

# %% [markdown]
# ## How much of the difference is the first layer?
# The official VGG rule keeps the stem sparse, and there the three graph models differ most (see the
# method). Each model of `stem_check` is rerun at its sparsest level with the first layer dense for all
# three methods, from the same initialisations; the bars compare the methods under both rules, and the
# table gives each paired difference (pp, mean over seeds with its 95% t interval). Where a difference
# shrinks with the stem dense, the stem, not the graphs of the deeper layers, carried it. These runs are
# not in `results.csv`: the claims test the official rule.

# %%
if len(stem):
    fig, axes = plt.subplots(1, stem.model.nunique(), figsize=(3.8 * stem.model.nunique(), 3.0), squeeze=False)
    both = pd.concat([table.assign(rule="official rule"), stem.assign(rule="first layer dense")])
    numbers = {}
    for ax, (model, sub) in zip(axes[0], stem.groupby("model", sort=False)):
        at = both[(both.model == model) & (both.level == sub.level.iloc[0]) & (both.method != "dense")]
        rules = ["official rule", "first layer dense"]
        series = {lab: [at[(at.label == lab) & (at.rule == r)].final_test_acc.to_numpy() for r in rules]
                  for lab in methods}
        means = plots.grouped_bars(ax, [r.replace(" ", "\n", 1) for r in rules], series, ylabel="test accuracy")
        ax.set_title(f"{model}, {level_name} {sub.level.iloc[0]:g}")
        numbers.update({f"{model} {lab} acc, {r}": m for lab, ms in means.items() for r, m in zip(rules, ms)})
    plots.legend_outside(fig)
    plots.finish(fig, fig_dir, "stem_check", title="Accuracy with the official first-layer rule and with the first "
                 "layer dense", caption_text="Test accuracy at the sparsest level (mean, min-max over seeds) under "
                 "the official first-layer rule and with the first layer dense for every method.",
                 numbers=numbers, setup=setup_line(dataset, list(stem.model.unique()), params, seeds))
    plt.show()
    effect = stage.stem_effect(table, stem, [("rreg", "xnet"), ("xnet", "random-graph"), ("rreg", "random-graph")])
    _ = save_table(effect, f"{out_dir}/tables/stem_check.csv")
    print(effect.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
else:
    print("No stem_check models in this profile.")

# %% [markdown]
# ## Paper vs ours
# In a paper profile (`published_work: rreg`), the RReg paper's CIFAR table (`pai/compendium/published.csv`) beside our
# mean ± standard deviation over seeds, matched on method, model, dataset and degree; Δ = ours − paper in
# percentage points. The paper's PP% counts every parameter (BN and biases included) and ours the prunable
# weights, so densities are matched through the degree.

# %%
if published_work:
    versus = stage.paper_comparison(table, published_work)
    _ = save_table(versus, f"{out_dir}/tables/paper_vs_ours.csv")
    print(format_table(versus))
else:
    print("No published_work in this profile: the cpu profile has no published counterpart.")

# %% [markdown]
# ## What this notebook finds
# Each claim of the paper, decided by code from the tables above (`pai.compendium.claims`): RReg ≥ X-Net, X-Net ≥
# random and RReg ≥ random are paired differences over seeds at the sparsest half of each model's levels;
# the expansion claim is the within-density partial correlation of the second figure.

# %%
claims = report("expander_sweep", out_dir)
