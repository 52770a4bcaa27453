"""A pruner of your own, in the compendium without editing pai: keep the largest |w| of every layer.

Put this folder on PYTHONPATH and list the module in a stage's params (README, "Your own method"):
    plugins: [my_pruner]
    methods: [random-erk, layer-magnitude]
"""
import torch

from pai.masks import prunable_parameters
from pai.pruners import register_pruner


@register_pruner("layer-magnitude")
def layer_magnitude(model, density, *, seed, data=None):
    mask = {}
    for name, w in prunable_parameters(model).items():  # every layer keeps the same fraction, its largest |w|
        keep = torch.zeros(w.numel(), dtype=torch.bool, device=w.device)
        keep[w.detach().abs().flatten().topk(max(1, round(density * w.numel()))).indices] = True
        mask[name] = keep.view_as(w)
    return mask
