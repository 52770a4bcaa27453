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
# # Node-path balancing: effective paths vs effective nodes
#
# **Question.** Pham et al. (*Towards Data-Agnostic Pruning at Initialization: What Makes a Good Sparse
# Mask?*, NeurIPS 2023; ICLR 2023 submission "an effective node-path balancing perspective") describe a
# sparse network by two numbers: its *effective paths* (input-to-output paths of kept weights) and its
# *effective nodes* (channels on at least one such path). SynFlow-like pruners maximise paths and lose
# nodes; random pruning keeps nodes and loses paths; good masks balance both, and **NPB** solves for that
# balance layer by layer.
#
# **Method.** Every pruner's mask is measured at initialisation with `pai.metrics.effective_paths` (log10,
# computed in log space) and `pai.metrics.effective_nodes` (ln, as the paper plots it) across densities;
# then each mask is trained (`pai.runs.sweep`).

# %% tags=["parameters"]
dataset = "fashion-mnist"
model = "lenet5"
methods = ["random-erk", "snip", "synflow", "phew", "npb"]
densities = [0.1, 0.03, 0.01]
geometry_densities = [0.3, 0.1, 0.03, 0.01, 0.003]
seeds = [0, 1]
epochs = 3
train_subset = 15000
test_subset = None
batch_size = 128
lr = 0.05
weight_decay = 5e-4
schedule = "cosine"
executor = "local"
workers = 2
out_dir = "runs/node_path_balance"
fig_dir = "figures/node_path_balance"

# %%
import matplotlib.pyplot as plt
import numpy as np

from pai import plots
from pai.experiments import mask_geometry_grid, setup_line
from pai.params import stage_params
from pai.runs import sweep, write_tables

plots.style()
params = stage_params(globals())
geometry = mask_geometry_grid([model], methods, geometry_densities, dataset, seeds=seeds[:1],
                              train={"train_subset": train_subset})
specs = params.grid(methods=methods, densities=densities) + params.grid(methods=["dense"])
results = sweep(specs, f"{out_dir}/runs", executor=executor, workers=workers)
table = write_tables(results, out_dir)
geometry[["method", "density", "ln_effective_nodes", "log10_paths"]].head(10)

# %% [markdown]
# ## Effective paths vs effective nodes
# The NPB paper's main plot: each point one mask; the marker size grows with density.

# %%
fig, ax = plt.subplots(figsize=(4.8, 3.4))
numbers = {}
sizes = {d: 12 + 60 * i / max(1, len(geometry_densities) - 1) for i, d in enumerate(sorted(geometry_densities))}
for m in methods:
    sub = geometry[geometry.method == m].sort_values("density")
    ax.plot(sub.ln_effective_nodes, sub.log10_paths, color=plots.color(m), lw=0.8, alpha=0.6)
    ax.scatter(sub.ln_effective_nodes, sub.log10_paths, s=[sizes[d] for d in sub.density], color=plots.color(m),
               label=m, edgecolors="black", linewidths=0.3)
    for _, row in sub.iterrows():
        numbers[f"{m} @ {row.density:g}: ln nodes / log10 paths"] = f"{row.ln_effective_nodes:.2f} / {row.log10_paths:.2f}"
ax.set_xlabel("ln(effective nodes)")
ax.set_ylabel("log10(effective paths)")
ax.legend(fontsize=7)
plots.finish(fig, fig_dir, "paths_vs_nodes", title="Effective paths vs effective nodes",
             caption_text=f"Each pruner's masks on {model} at densities {', '.join(map(str, geometry_densities))} "
                          "(larger markers: denser).", numbers=numbers,
             setup=f"{dataset}; {model} at initialisation, seed {seeds[0]}.")
plt.show()

# %% [markdown]
# ## Accuracy vs density

# %%
fig, ax = plt.subplots(figsize=(4.2, 3.0))
sparse = table[table.method != "dense"]
plots.density_curves(ax, sparse.to_dict("records"), y="final_test_acc", methods=methods, ylabel="test accuracy")
ax.axhline(table[table.method == "dense"].final_test_acc.mean(), color="#333333", ls="--", lw=1, label="dense")
ax.legend(fontsize=7)
numbers = {f"{m} acc @ {d:g}": float(sparse[(sparse.method == m) & np.isclose(sparse.target_density, d)]
                                     .final_test_acc.mean()) for m in methods for d in densities}
plots.finish(fig, fig_dir, "accuracy_vs_density", title="Accuracy vs density (with NPB)",
             caption_text="Final test accuracy of each pruner's mask against density.", numbers=numbers,
             setup=setup_line(dataset, model, params, seeds))
plt.show()

# %% [markdown]
# ## What the figures show at this scale
# Whether NPB sits between the path-maximising (SynFlow) and node-keeping (random) masks — balancing
# both — and how its accuracy compares, is in `figures/README.md`.
