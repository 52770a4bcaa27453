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
# # PHEW: paths with higher edge weights, the path kernel, and layer width
#
# **Question.** Patil & Dovrolis (*PHEW*, ICML 2021) build a sparse network data-free by magnitude-biased
# random walks. Their argument: the trace of the path kernel (Gebhart et al., ICLR 2021), which predicts
# fast convergence, grows with the number of paths and their weight products, so PHEW's paths should give
# a larger trace than random ones; SynFlow-L2 maximises the trace outright but makes narrow layers, while
# PHEW's randomised walks keep layers wide. Claims checked here: PHEW ≥ SynFlow at high sparsity, a larger
# path-kernel trace than random, wider layers than SynFlow(-L2), faster early training.
#
# **Method.** `pai.prune` makes every mask; `pai.metrics.path_kernel_trace` (θ → θ², ones input, the sum
# of ∂R/∂θ² in log scale) and `pai.metrics.layer_width` measure it at initialisation; `pai.runs.sweep`
# trains it.

# %% tags=["parameters"]
dataset = "fashion-mnist"
model = "lenet-300-100"
conv_model = "lenet5"
methods = ["phew", "synflow", "synflow-l2", "snip", "random"]
densities = [0.1, 0.03, 0.01, 0.005]
seeds = [0, 1]
epochs = 5
train_subset = None
test_subset = None
batch_size = 128
lr = 0.05
weight_decay = 5e-4
schedule = "cosine"
width_density = 0.01
curve_epochs = 3
executor = "local"
workers = 2
out_dir = "runs/phew_path_kernel"
fig_dir = "figures/phew_path_kernel"

# %%
import matplotlib.pyplot as plt
import numpy as np

from pai import plots
from pai.experiments import geometry_table, setup_line, training_curves
from pai.params import stage_params
from pai.runs import sweep, write_tables

plots.style()
params = stage_params(globals())
specs = params.grid(methods=methods, densities=densities) + params.grid(methods=["dense"])
results = sweep(specs, f"{out_dir}/runs", executor=executor, workers=workers)
table = write_tables(results, out_dir)
geometry = geometry_table([model, conv_model], methods, densities, dataset, seed=seeds[0],
                          data_subset=params.get("train_subset"))
geometry[["model", "method", "density", "log10_path_kernel_trace", "log10_paths"]].head(10)

# %% [markdown]
# ## Path kernel trace vs density
# log10 of the trace of the path kernel at initialisation (higher: faster expected convergence).

# %%
fig, axes = plt.subplots(1, 2, figsize=(7, 2.9))
numbers = {}
for ax, net in zip(axes, (model, conv_model)):
    sub = geometry[geometry.model == net]
    plots.density_curves(ax, sub.to_dict("records"), y="log10_path_kernel_trace", methods=methods,
                         ylabel="log10 path kernel trace")
    ax.set_title(net)
    for m in methods:
        v = sub[(sub.method == m) & np.isclose(sub.density, min(densities))].log10_path_kernel_trace
        numbers[f"{net} {m} log10 trace @ {min(densities)}"] = float(v.mean())
axes[0].legend(fontsize=7)
plots.finish(fig, fig_dir, "path_kernel_trace", title="Path kernel trace vs density",
             caption_text="Trace of the path kernel (Gebhart et al. 2021) of each pruner's mask at initialisation.",
             numbers=numbers, setup=f"{dataset}; masks at initialisation, seed {seeds[0]}.")
plt.show()

# %% [markdown]
# ## Layer width at one density
# Units (output channels / features) with at least one kept incoming weight, per layer.

# %%
fig, axes = plt.subplots(1, 2, figsize=(7, 2.9))
numbers = {}
for ax, net in zip(axes, (model, conv_model)):
    sub = geometry[(geometry.model == net) & np.isclose(geometry.density, width_density)]
    for i, m in enumerate(methods):
        row = sub[sub.method == m].iloc[0]
        widths = np.asarray(row.width_fraction)
        x = np.arange(len(widths)) + (i - len(methods) / 2) * 0.8 / len(methods)
        ax.bar(x, widths, width=0.8 / len(methods), color=plots.color(m), label=m)
        numbers[f"{net} {m} mean width fraction"] = float(widths.mean())
    ax.set_xticks(np.arange(len(widths)), [n.replace(".weight", "") for n in row.layers], rotation=45, fontsize=7)
    ax.set_ylabel("fraction of units kept")
    ax.set_title(f"{net}, density {width_density}")
axes[0].legend(fontsize=7)
plots.finish(fig, fig_dir, "layer_width", title="Layer width",
             caption_text=f"Fraction of each layer's output units with at least one kept weight at density "
                          f"{width_density}.", numbers=numbers, setup=f"{dataset}; seed {seeds[0]}.")
plt.show()

# %% [markdown]
# ## Accuracy vs density, and convergence in the first epochs

# %%
fig, axes = plt.subplots(1, 2, figsize=(7.2, 2.9))
sparse = table[table.method != "dense"]
plots.density_curves(axes[0], sparse.to_dict("records"), y="final_test_acc", methods=methods,
                     ylabel="test accuracy")
axes[0].axhline(table[table.method == "dense"].final_test_acc.mean(), color="#333333", ls="--", lw=1,
                label="dense")
axes[0].set_title(model)
axes[0].legend(fontsize=7)
numbers = {f"{m} acc @ {min(densities)}": float(sparse[(sparse.method == m) & np.isclose(
    sparse.target_density, min(densities))].final_test_acc.mean()) for m in methods}
for method, hist in training_curves(results, methods=methods, density=width_density, seed=seeds[0],
                                   epochs=curve_epochs).items():
    axes[1].plot([h["epoch"] for h in hist], [h["train_loss"] for h in hist], marker="o", ms=3,
                 color=plots.color(method), label=method)
    numbers[f"{method} train loss after epoch 1"] = hist[0]["train_loss"]
axes[1].set_xlabel("epoch")
axes[1].set_ylabel("training loss")
axes[1].set_title(f"density {width_density}, seed {seeds[0]}")
axes[1].legend(fontsize=7)
plots.finish(fig, fig_dir, "accuracy_and_convergence", title="Accuracy vs density and early training loss",
             caption_text="Left: final test accuracy against density. Right: training loss in the first epochs.",
             numbers=numbers, setup=setup_line(dataset, model, params, seeds))
plt.show()

# %% [markdown]
# ## What the figures show at this scale
# See `figures/README.md` for the numbers: PHEW vs SynFlow accuracy at the sparsest density, PHEW's trace
# against random, and the width gap between PHEW and SynFlow-L2.
