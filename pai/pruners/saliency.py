"""Single-shot saliency pruners: magnitude, SNIP and GraSP (global top-k of one score).

* ``magnitude``: score ``|θ|`` (the "Mag" baseline of Tanaka et al., NeurIPS 2020, Sec. 6;
  Han et al., NeurIPS 2015 applied at initialisation).  ``scope="global"`` (one threshold over all
  layers, as the SynFlow repo) or ``"layer"`` (every layer keeps the same fraction).
* ``snip``: Lee, Ajanthan & Torr, "SNIP: single-shot network pruning based on connection
  sensitivity", ICLR 2019: the connection sensitivity ``s = |∂L/∂c| = |g ⊙ θ|`` (c the mask).  As
  the SynFlow repo, the gradient of the mean cross-entropy is summed over the batches before ``|·|``;
  the normalisation by ``Σ s`` does not change the ranking and is skipped.
* ``grasp``: Wang, Zhang & Grosse, "Picking winning tickets before training by preserving gradient
  flow", ICLR 2020: ``S(-θ) = -θ ⊙ Hg``, remove the highest.  Equivalently (the SynFlow repo's
  convention since commit ``e329c2e``) score ``(Hg) ⊙ θ`` and keep the highest.  Logits are divided by
  the temperature T = 200; ``g`` is the gradient summed over the batches without a graph, ``Hg`` is
  accumulated batch by batch as ``∇_θ (g_stop · ∇_θ L)``, both over the prunable weights only.

Prune set, as the SynFlow repo (``prune_dataset_ratio=10``, batch 256): ``samples_per_class *
num_classes`` training images drawn at random by ``seed`` (not class-balanced unless
``class_balanced=True``).

Mode (SNIP and GraSP): ``train_mode=False`` (default) scores with BatchNorm in eval mode (running
statistics), as the SynFlow repo does for every pruner (``prune_loop``: ``model.eval()`` unless
``--prune-train-mode``), so it produced the SynFlow paper's SNIP/GraSP numbers and the NPB paper's
(NPB forks that code).  ``train_mode=True`` scores with batch statistics, as the PHEW repo does
(``ShreyasMalakarjunPatil/PHEW @ c4a0d40: Prune/snip_utils.py``, ``grasp_utils.py``: ``net.train()``),
the mode behind the PHEW paper's baselines.  A notebook reproducing a paper passes that paper's mode.

Deviations: no train-time augmentation on the prune set (the SynFlow repo draws it from the
augmented training loader; we score the normalised images as they are, so a seed fixes the scores);
the subset comes from an explicit generator rather than torch's global one; exact global top-k
(ties by position) instead of ``score > kthvalue``.
"""
from __future__ import annotations


from contextlib import contextmanager
from typing import Dict, Iterator, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from pai.pruners import register_pruner
from pai.masks import Mask, prunable_parameters, topk_global, topk_layerwise
from pai.utils.seed import torch_generator
from pai.pruners.allocation import layer_budgets

SCOPES = ("global", "layer")
BATCH_SIZE = 256


def _keep(model: nn.Module, density: float) -> int:
    return round(density * sum(p.numel() for p in prunable_parameters(model).values()))


def select(model: nn.Module, scores, density: float, scope: str = "global") -> Mask:
    """Keep the highest scores: one global top-k, or the same fraction in every layer."""
    if scope == "global":
        return topk_global(scores, _keep(model, density))
    if scope == "layer":
        return topk_layerwise(scores, layer_budgets(model, density, "uniform"))
    raise ValueError(f"unknown scope {scope!r}; valid: {', '.join(SCOPES)}")


@register_pruner("magnitude")
def prune_magnitude(model: nn.Module, density: float, *, seed: int, data=None, scope: str = "global") -> Mask:
    scores = {k: p.detach().abs() for k, p in prunable_parameters(model).items()}
    return select(model, scores, density, scope)


# ---- the prune set ---------------------------------------------------------------------------

def _num_classes(data, model: nn.Module) -> int:
    n = getattr(data, "num_classes", None) or getattr(model, "num_classes", None)
    return int(n) if n else int(data.y_train.max()) + 1


def prune_subset(data, num_classes: int, samples_per_class: int = 10, class_balanced: bool = False,
                 seed: int = 0) -> Tuple[torch.Tensor, torch.Tensor]:
    """``samples_per_class * num_classes`` training examples drawn by ``seed`` without replacement
    (exactly ``samples_per_class`` of each class when ``class_balanced``)."""
    x, y = getattr(data, "x_train", None), getattr(data, "y_train", None)
    if x is None or y is None:
        raise ValueError("data must have x_train and y_train tensors (e.g. pai.data.load_dataset(...))")
    if samples_per_class < 1:
        raise ValueError(f"samples_per_class must be >= 1, got {samples_per_class}")
    g = torch_generator(seed)
    if class_balanced:
        idx = []
        for c in range(num_classes):
            members = torch.nonzero(y.cpu() == c).flatten()
            if len(members) < samples_per_class:
                raise ValueError(f"class {c} has {len(members)} training examples, "
                                 f"fewer than samples_per_class={samples_per_class}")
            idx.append(members[torch.randperm(len(members), generator=g)[:samples_per_class]])
        idx = torch.cat(idx)
    else:
        idx = torch.randperm(len(y), generator=g)[:samples_per_class * num_classes]
    idx = idx.to(y.device)
    return x[idx], y[idx]


def _batches(x: torch.Tensor, y: torch.Tensor, device) -> Iterator[Tuple[torch.Tensor, torch.Tensor]]:
    for i in range(0, len(y), BATCH_SIZE):
        yield x[i:i + BATCH_SIZE].to(device), y[i:i + BATCH_SIZE].to(device)


def _setup(model: nn.Module, data, seed: int, samples_per_class: int, class_balanced: bool,
           train_mode: bool):
    if data is None:
        raise ValueError("this pruner is data-dependent: pass data=pai.data.load_dataset(...)")
    x, y = prune_subset(data, _num_classes(data, model), samples_per_class, class_balanced, seed)
    model.train(train_mode)
    weights = prunable_parameters(model)
    w0 = next(iter(weights.values()))
    return weights, list(_batches(x.to(w0.dtype), y, w0.device))


@contextmanager
def _grads_on(params):
    """Gradients for ``params`` even if frozen or under ``no_grad``; the flags are restored."""
    flags = [p.requires_grad for p in params]
    try:
        with torch.enable_grad():
            for p in params:
                p.requires_grad_(True)
            yield
    finally:
        for p, f in zip(params, flags):
            p.requires_grad_(f)


def snip_scores(model: nn.Module, data, *, seed: int = 0, samples_per_class: int = 10,
                class_balanced: bool = False, train_mode: bool = False) -> Dict[str, torch.Tensor]:
    """``|g ⊙ θ|`` with ``g`` the gradient of the cross-entropy summed over the prune-set batches."""
    weights, batches = _setup(model, data, seed, samples_per_class, class_balanced, train_mode)
    params = list(weights.values())
    grads = [torch.zeros_like(w) for w in params]
    with _grads_on(params):
        for xb, yb in batches:
            torch._foreach_add_(grads, torch.autograd.grad(F.cross_entropy(model(xb), yb), params))
    return {k: (g * w.detach()).abs() for k, g, w in zip(weights, grads, params)}


class _HardSigmoid(nn.Module):
    """``relu6(x + 3) / 6``: the value of ``nn.Hardsigmoid``, through ops that torch can differentiate twice
    (it has no derivative of ``hardsigmoid_backward``); its second derivative is 0, as the original's is
    almost everywhere."""

    def forward(self, x):
        return F.relu6(x + 3.0) / 6.0


class _HardSwish(_HardSigmoid):
    def forward(self, x):
        return x * super().forward(x)


@contextmanager
def _twice_differentiable(model: nn.Module):
    """Swap ``nn.Hardsigmoid`` / ``nn.Hardswish`` (MobileNetV3's gates and activations) for the same
    functions written with ``relu6`` while GraSP takes its Hessian-gradient product; put them back after."""
    swapped = []
    for name, m in list(model.named_modules()):
        twin = _HardSwish if isinstance(m, nn.Hardswish) else _HardSigmoid if isinstance(m, nn.Hardsigmoid) else None
        if twin is not None:
            parent, _, leaf = name.rpartition(".")
            owner = model.get_submodule(parent) if parent else model
            swapped.append((owner, leaf, m))
            setattr(owner, leaf, twin())
    try:
        yield
    finally:
        for owner, leaf, m in swapped:
            setattr(owner, leaf, m)


def grasp_scores(model: nn.Module, data, *, seed: int = 0, samples_per_class: int = 10,
                 class_balanced: bool = False, train_mode: bool = False,
                 temperature: float = 200.0) -> Dict[str, torch.Tensor]:
    """``(H g) ⊙ θ`` over the prunable weights, logits divided by ``temperature`` (keep the highest)."""
    weights, batches = _setup(model, data, seed, samples_per_class, class_balanced, train_mode)
    params = list(weights.values())
    g_stop = [torch.zeros_like(w) for w in params]
    hg = [torch.zeros_like(w) for w in params]
    with _grads_on(params), _twice_differentiable(model):
        for xb, yb in batches:
            loss = F.cross_entropy(model(xb) / temperature, yb)
            torch._foreach_add_(g_stop, torch.autograd.grad(loss, params))
        for xb, yb in batches:
            g = torch.autograd.grad(F.cross_entropy(model(xb) / temperature, yb), params, create_graph=True)
            dot = sum((a * b).sum() for a, b in zip(g_stop, g))
            torch._foreach_add_(hg, torch.autograd.grad(dot, params))
    return {k: h * w.detach() for k, h, w in zip(weights, hg, params)}


@register_pruner("snip", needs_data=True)
def prune_snip(model: nn.Module, density: float, *, seed: int, data=None, samples_per_class: int = 10,
               class_balanced: bool = False, train_mode: bool = False) -> Mask:
    scores = snip_scores(model, data, seed=seed, samples_per_class=samples_per_class,
                         class_balanced=class_balanced, train_mode=train_mode)
    return topk_global(scores, _keep(model, density))


@register_pruner("grasp", needs_data=True)
def prune_grasp(model: nn.Module, density: float, *, seed: int, data=None, samples_per_class: int = 10,
                class_balanced: bool = False, train_mode: bool = False, temperature: float = 200.0) -> Mask:
    scores = grasp_scores(model, data, seed=seed, samples_per_class=samples_per_class,
                          class_balanced=class_balanced, train_mode=train_mode, temperature=temperature)
    return topk_global(scores, _keep(model, density))
