"""Layer-wise density allocation: uniform, ER and ERK (Liu et al., ICLR 2022; Evci et al., ICML 2020).

ERK (Erdős–Rényi-Kernel) gives layer l a density proportional to
``r_l = (c_out + c_in + k_h + k_w) / (c_out * c_in * k_h * k_w)`` (ER drops the kernel terms), scaled by
one ε so that the kept count is ``density * N``.  A layer whose density would exceed 1 is made dense and
ε re-solved over the rest (the loop of ``VITA-Group/Random_Pruning: sparselearning/core.py``; without it,
as in TimDettmers/sparse_learning#20, the real density falls short of the target).

Unlike the official code, which samples every weight by an independent Bernoulli(p_l) draw (so counts
are exact only in expectation), :func:`layer_budgets` turns densities into exact integer counts by the
largest-remainder rule, so the global count is ``round(density * N)`` exactly.
"""
from __future__ import annotations

import math
from typing import Dict, Mapping, Sequence, Tuple

import torch
from torch import nn

from pai.masks import prunable_parameters, validate_density

SCHEMES = ("uniform", "erk", "er")


def layer_shapes(model_or_shapes) -> Dict[str, Tuple[int, ...]]:
    if isinstance(model_or_shapes, nn.Module):
        return {k: tuple(p.shape) for k, p in prunable_parameters(model_or_shapes).items()}
    return {k: tuple(v.shape) if isinstance(v, torch.Tensor) else tuple(v) for k, v in model_or_shapes.items()}


def _raw_score(shape: Sequence[int], kernel_term: bool) -> float:
    dims = shape if kernel_term else shape[:2]
    return sum(dims) / math.prod(dims)


def target_layer_densities(model_or_shapes, density: float, scheme: str = "erk") -> Dict[str, float]:
    """Per-layer target densities ``{weight name: p_l}`` with ``sum p_l N_l = density * sum N_l``
    (what a mask keeps is :func:`pai.masks.kept_layer_densities`)."""
    density = validate_density(density)
    shapes = layer_shapes(model_or_shapes)
    if scheme == "uniform":
        return {k: density for k in shapes}
    if scheme not in SCHEMES:
        raise ValueError(f"unknown allocation scheme {scheme!r}; valid: {', '.join(SCHEMES)}")
    sizes = {k: math.prod(s) for k, s in shapes.items()}
    raw = {k: _raw_score(s, kernel_term=(scheme == "erk")) for k, s in shapes.items()}
    dense: set = set()
    while True:
        free = [k for k in shapes if k not in dense]
        if not free:
            return {k: 1.0 for k in shapes}
        rhs = sum(density * sizes[k] for k in free) - sum((1 - density) * sizes[k] for k in dense)
        eps = rhs / sum(raw[k] * sizes[k] for k in free)
        top = max(raw[k] for k in free)
        if eps * top > 1:
            dense |= {k for k in free if raw[k] == top}  # every layer tied at the max, as the official loop
            continue
        return {k: (1.0 if k in dense else eps * raw[k]) for k in shapes}


def layer_budgets(model_or_shapes, density: float, scheme: str = "erk") -> Dict[str, int]:
    """Exact kept-weight counts per layer: largest-remainder rounding of ``p_l N_l`` to a total of
    ``round(density * N)``, each count within [0, N_l]."""
    shapes = layer_shapes(model_or_shapes)
    dens = target_layer_densities(shapes, density, scheme)
    return round_budgets({k: dens[k] * math.prod(s) for k, s in shapes.items()},
                         {k: math.prod(s) for k, s in shapes.items()},
                         round(validate_density(density) * sum(math.prod(s) for s in shapes.values())))


def round_budgets(real: Mapping[str, float], sizes: Mapping[str, int], total: int) -> Dict[str, int]:
    """Integer counts close to ``real`` summing to ``total`` (largest remainder, capped by ``sizes``)."""
    counts = {k: min(sizes[k], max(0, math.floor(v))) for k, v in real.items()}
    missing = total - sum(counts.values())
    order = sorted(real, key=lambda k: (-(real[k] - math.floor(real[k])), k))
    while missing > 0:
        progressed = False
        for k in order:
            if missing == 0:
                break
            if counts[k] < sizes[k]:
                counts[k] += 1
                missing -= 1
                progressed = True
        if not progressed:
            break
    return counts
