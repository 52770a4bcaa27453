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
# Mask?*, NeurIPS 2023; earlier an ICLR 2023 submission on "an effective node-path balancing
# perspective") describe a sparse network by two numbers: its *effective paths* (input-to-output paths
# of kept weights) and its *effective nodes* (channels on at least one such path). SynFlow-like pruners
# keep paths and lose nodes; random pruning keeps nodes and loses paths. The paper claims that good
# masks balance both, that **NPB** (which solves for that balance layer by layer) sits nearest the
# balance, and that it is the most accurate at extreme sparsity.
#
# **Method.** Every pruner prunes the same initialisation per seed (paired), **every layer prunable**
# (the stem, the shortcut convolutions and the classifier included, as in the NPB code). Each mask is measured
# at initialisation with `pai.metrics.effective_paths` (log10, exact, in log space) and
# `pai.metrics.effective_nodes` (ln, the official `measure_node_path` count) at more densities than are
# trained; then the masks at the training densities are trained (`pai.compendium.runs.sweep`). Methods are the
# faithful defaults (`npb`: the official code's path normaliser, α, β, `max_p` and chunk size, see
# `pai.pruners.npb`; SNIP scored with BatchNorm in eval mode, as the SynFlow code NPB forks does) with the
# corrected variants beside them: **npb (paper normaliser)** (the path term's true maximum, as the
# paper's formula reads) and **phew (graph walk)** (walks the residual graph where the official PHEW walk
# jumps over a downsampling conv; it differs only on residual nets).

# %% tags=["parameters"]
dataset = "fashion-mnist"
model = "resnet20-w0.5"
methods = ["random-erk", "snip", "synflow", "phew", "npb", "npb (paper normaliser)"]
densities = [0.01, 0.003]
variant_methods = ["phew (graph walk)"]
variant_densities = [0.003]
method_options = {}
geometry_densities = [0.3, 0.1, 0.03, 0.01, 0.003]
seeds = [0, 1, 2]
epochs = 6
train_subset = 10000
test_subset = None
image_size = 14
eval_every = 6
batch_size = 128
lr = 0.05
weight_decay = 5e-4
schedule = "cosine"
published_work = None
plugins = []  # modules registering your own pruners or models (README: "Your own method")
executor = "local"
workers = 2
out_dir = "runs/node_path_balance"
fig_dir = "figures/node_path_balance"

# %%
import matplotlib.pyplot as plt

from pai.compendium import plots
from pai.compendium.claims import report
from pai.compendium.experiments import setup_line
from pai.compendium.params import stage_params
from pai.compendium.published import format_table
from pai.compendium.runs import sweep, write_tables
from pai.compendium.stages import node_path
from pai.compendium.tables import save_table
from pai.compendium.variants import add_labels

plots.style()
params = stage_params(globals())
labels = list(dict.fromkeys(methods + variant_methods))
opts = {"method_options": method_options}
specs = (params.grid(methods=methods, densities=densities, **opts)
         + params.grid(methods=variant_methods, densities=variant_densities, **opts)
         + params.grid(methods=["dense"]))
results = sweep(specs, f"{out_dir}/runs", executor=executor, workers=workers)
table = add_labels(write_tables(results, out_dir))
table.reindex(columns=["label", "target_density", "seed", "density", "final_test_acc", "log10_paths", "effective_nodes"])

# %% [markdown]
# ## Where does each pruner's mask sit between paths and nodes?
# The NPB paper's main plot: every mask at initialisation, on every seed (no training, so it spans more
# densities than are trained). Balance means many paths *and* many nodes: the upper right.

# %%
geometry = node_path.geometry(model, labels, geometry_densities, dataset, seeds=seeds,
                              data_subset=train_subset, image_size=image_size, method_options=method_options,
                              executor=executor, workers=workers)
save_table(geometry, f"{out_dir}/tables/geometry.csv")
fig, ax = plt.subplots(figsize=(6.4, 3.8))
numbers = node_path.draw_paths_vs_nodes(ax, geometry, labels)
plots.finish(fig, fig_dir, "paths_vs_nodes", title="Effective paths vs effective nodes",
             caption_text=f"Each pruner's masks on {model} at initialisation, densities "
                          f"{', '.join(map(str, geometry_densities))} (marker area: density, key beside); "
                          "mean over seeds with min-max bars, every layer prunable. SNIP in eval mode (as the "
                          "SynFlow/NPB code); variants share their method's colour.",
             numbers=numbers, setup=f"{dataset}; {model} at initialisation"
                                    + (f", {image_size} px" if image_size else "")
                                    + f"; seeds {', '.join(map(str, seeds))}.")
plt.show()

# %% [markdown]
# The paper's picture has SynFlow high (paths) and left (few nodes), random ERK right (nodes) and low
# (paths), and NPB up and to the right of both. How far each mask is from the best of both worlds in its
# (density, seed) cell is computed by the `npb_nearest_balance` claim below, from `tables/geometry.csv`.

# %% [markdown]
# ## Is NPB the most accurate at extreme sparsity?
# Final test accuracy against the density each mask actually keeps, with the dense network's accuracy
# as the dashed line.

# %%
fig, ax = plt.subplots(figsize=(5.0, 3.4))
sparse = table[table.method != "dense"]
plots.density_curves(ax, sparse.to_dict("records"), y="final_test_acc", methods=labels, by="label",
                     ylabel="final test accuracy")
ax.axhline(table[table.method == "dense"].final_test_acc.mean(), color=plots.color("dense"), ls="--", lw=1,
           label="dense")
plots.place_legend(ax, fontsize=7)
plots.finish(fig, fig_dir, "accuracy_vs_density", title="Accuracy vs density (with NPB)",
             caption_text="Final test accuracy of each pruner's mask against the density it keeps: mean over "
                          "seeds, band min-max; every layer prunable; SNIP in eval mode. Variants beside their "
                          f"method: {', '.join(variant_methods) or 'none'} at "
                          f"{', '.join(map(str, variant_densities))}; npb (paper normaliser) at every density.",
             numbers=node_path.accuracy_numbers(table, labels), setup=setup_line(dataset, model, params, seeds))
plt.show()

# %% [markdown]
# ## Our numbers beside the paper's
# Under a paper profile (`published_work: npb`), the faithful runs beside the paper's main-figure points
# (`pai/compendium/published.csv`; the paper's Iter-SNIP has no pai counterpart). The cpu profile trains
# Fashion-MNIST, which the paper never ran, so there is nothing to compare.

# %%
if published_work:
    paper = node_path.paper_table(table, published_work)
    save_table(paper, f"{out_dir}/tables/paper_vs_ours.csv")
    print(format_table(paper))
else:
    print("published_work is None: no paper-vs-ours table (cpu profile, Fashion-MNIST).")

# %% [markdown]
# ## What this notebook finds
# The claims of Pham et al., decided by code from `results.csv` and `tables/geometry.csv` (the rule is
# printed with them). This stage's SynFlow and SNIP runs also feed the pooled "SynFlow avoids layer
# collapse" claim of `figures/CLAIMS.md`.

# %%
claims = report("node_path_balance", out_dir)
