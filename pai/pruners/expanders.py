"""Expander-graph masks: X-Net (Prabhu, Varma & Namboodiri, ECCV 2018) and RReg (Stewart, Michieli &
Ozay, "Data-free model pruning at initialization via expanders", CVPR Workshops 2023).

Both see a layer as a channel-level bipartite graph: ``n_in`` input channels (features) on the left,
``n_out`` output channels on the right, an edge = a whole ``kh x kw`` kernel (one weight in a linear
layer).

- ``xnet``: every input node picks ``min(d, n_out)`` distinct random outputs (d-left-regular; the
  ``SamsungLabs/ExpandersPruning`` re-implementation).  ``variant="smaller_side"`` is the original X-Net
  rule (``drimpossible/Deep-Expander-Networks``): the smaller side is d-regular (inputs on a tie).
- ``rreg``: a random biregular graph.  The larger side (outputs on a tie) has degree ``d``, the smaller
  side balanced degrees ``floor(d n_large / n_small)`` (+1 on ``d n_large mod n_small`` random nodes),
  so both degree sums are equal.  ``n_graphs=K`` keeps the best of K graphs by a Monte-Carlo
  vertex-expansion estimate (:func:`expansion_estimate`; the official code uses K = 100).

Degree.  ``degree=d`` gives one d for every layer, as in the papers (d = 3, 15, 30, 60); the ``density``
argument is then ignored and the density follows from d.  A degree at or above the other side's size
saturates to the complete bipartite graph (dense layer), as in both official codes (RReg's d = 60 makes
VGG's 3 -> 64 stem dense); ``d < 1`` is a ``ValueError``.  Without ``degree``, each layer's density
``p_l`` comes from ``allocation`` ("uniform", "erk", "er"; :mod:`pai.pruners.allocation`) and
``d_l = clamp(round(p_l * n_other), 1, n_other)`` on the regular side (xnet: ``n_other = n_out``; rreg:
``n_other = n_small``).  Bound: a layer keeps ``n_reg * d_l`` kernels, within ``n_reg / 2`` kernels
(``n_reg kh kw / 2`` weights) of ``p_l N_l`` whenever ``p_l n_other >= 1/2``; the global density
error is the sum of those (``pai`` tests it).

Deviations from the official code, and why:
- The official RReg builds the configuration model into a simple graph, so parallel edges collapse
  and degrees fall below target.  We repair parallel edges by random double-edge switches
  ``(a, b), (a', b') -> (a, b'), (a', b)`` (accepted only when both new edges are absent), so every
  degree is exactly its target; a layer denser than 1/2 is sampled as the complement of the sparser
  biregular graph, where few parallel edges occur.
- The official code caches one graph per (n_in, n_out, d) on disk, so all layers of one shape share a
  mask across layers, runs and seeds, and no seed is set.  Here every layer draws from its own
  generator derived from (seed, layer index).
- The official expansion estimate draws ``|S| ~ U{1..ceil(n/2) - 1}`` (empty for n = 2); we draw
  ``U{1..max(1, floor(n/2))}``, and all candidate graphs of a layer are scored on the same subsets.
- The official code keeps the stem conv and the classifier dense (ResNets) or the last linear dense
  (VGG); here every prunable layer is sparse unless ``dense_first`` / ``dense_last`` is set (their
  weights then count towards the density budget).
"""
from __future__ import annotations

import math
import warnings
from typing import Dict, Optional, Tuple

import numpy as np
import torch

from ..masks import Mask, prunable_parameters
from ..seed import torch_generator
from . import register_pruner
from .allocation import SCHEMES, layer_densities

VARIANTS = ("input", "smaller_side")


def _layer_generator(seed: int, index: int) -> torch.Generator:
    return torch_generator(int(np.random.SeedSequence([int(seed) % 2**63, index]).generate_state(1)[0]))


def left_regular(n_left: int, n_right: int, d: int, g: torch.Generator) -> torch.Tensor:
    """Biadjacency (n_left x n_right) where every left node has ``min(d, n_right)`` distinct neighbours."""
    d = min(d, n_right)
    pick = torch.topk(torch.rand(n_left, n_right, generator=g), d, dim=1).indices
    return torch.zeros(n_left, n_right, dtype=torch.bool).scatter_(1, pick, True)


def _first_occurrence(x: torch.Tensor) -> torch.Tensor:
    s, order = torch.sort(x, stable=True)
    first = torch.ones_like(s, dtype=torch.bool)
    first[1:] = s[1:] != s[:-1]
    return torch.empty_like(first).scatter_(0, order, first)


def simple_bipartite(deg_left: torch.Tensor, deg_right: torch.Tensor, g: torch.Generator,
                     max_rounds: int = 500, max_restarts: int = 20) -> torch.Tensor:
    """A random simple bipartite graph with exactly the given degrees (configuration model + switches).

    Stubs are matched by a random permutation; each parallel edge is then switched with a random
    partner edge when both new edges are absent, all proposals of a round at once (proposals sharing
    a partner or a new edge are dropped), which strictly lowers the number of parallel edges.
    """
    n_l, n_r = len(deg_left), len(deg_right)
    if int(deg_left.sum()) != int(deg_right.sum()):
        raise ValueError("simple_bipartite: the degree sums of the two sides differ")
    if 2 * int(deg_left.sum()) > n_l * n_r:  # dense: sample the complement, which is sparser
        return ~simple_bipartite(n_r - deg_left, n_l - deg_right, g, max_rounds, max_restarts)
    a_stub = torch.repeat_interleave(torch.arange(n_l), deg_left)
    b_stub = torch.repeat_interleave(torch.arange(n_r), deg_right)
    n_edges = len(a_stub)
    for _ in range(max_restarts):
        a, b = a_stub, b_stub[torch.randperm(n_edges, generator=g)]
        for _ in range(max_rounds):
            key = a * n_r + b
            skey = torch.sort(key).values
            dup = torch.nonzero(~_first_occurrence(key)).squeeze(1)
            if not len(dup):
                return torch.zeros(n_l, n_r, dtype=torch.bool).index_put_((a, b), torch.tensor(True))
            q = torch.randint(n_edges, (len(dup),), generator=g)
            k1, k2 = a[dup] * n_r + b[q], a[q] * n_r + b[dup]

            def absent(k):
                return skey[torch.searchsorted(skey, k).clamp_(max=n_edges - 1)] != k

            is_dup = torch.zeros(n_edges, dtype=torch.bool)
            is_dup[dup] = True
            ok = absent(k1) & absent(k2) & (a[dup] != a[q]) & (b[dup] != b[q]) & ~is_dup[q]
            dup, q, k1, k2 = dup[ok], q[ok], k1[ok], k2[ok]
            keep = _first_occurrence(q)
            new = torch.cat([k1, k2])
            unique_new = _first_occurrence(new) & _first_occurrence(new.flip(0)).flip(0)
            keep &= unique_new[:len(k1)] & unique_new[len(k1):]
            dup, q = dup[keep], q[keep]
            b = b.clone()
            b[dup], b[q] = b[q], b[dup]
    raise RuntimeError(f"simple_bipartite: could not remove parallel edges ({n_l} x {n_r}, "
                       f"{n_edges} edges) after {max_restarts} restarts")


def biregular(n_left: int, n_right: int, d: int, g: torch.Generator) -> torch.Tensor:
    """RReg's graph: the larger side (right on a tie) d-regular, the smaller side within one of balanced;
    complete bipartite when ``d >= n_small``."""
    left_large = n_left > n_right
    n_large, n_small = (n_left, n_right) if left_large else (n_right, n_left)
    if d >= n_small:
        return torch.ones(n_left, n_right, dtype=torch.bool)
    base, rem = divmod(d * n_large, n_small)
    small = torch.full((n_small,), base, dtype=torch.int64)
    small[torch.randperm(n_small, generator=g)[:rem]] += 1
    large = torch.full((n_large,), d, dtype=torch.int64)
    return simple_bipartite(large, small, g) if left_large else simple_bipartite(small, large, g)


def random_subsets(n: int, samples: int, g: torch.Generator) -> torch.Tensor:
    """``samples`` random subsets (rows of a bool matrix) of ``{0..n-1}``, sizes ~ U{1..max(1, n // 2)}."""
    size = torch.randint(1, max(1, n // 2) + 1, (samples, 1), generator=g)
    rank = torch.rand(samples, n, generator=g).argsort(1).argsort(1)
    return rank < size


def neighbourhood_ratios(adj: torch.Tensor, subsets: torch.Tensor) -> torch.Tensor:
    """``|N(S)| / |S|`` for each subset S (rows of ``subsets``) of the left side of ``adj``."""
    reach = (subsets.float() @ adj.float()) > 0
    return reach.sum(1).float() / subsets.sum(1).float()


def expansion_estimate(adj: torch.Tensor, samples: int = 1000, g: Optional[torch.Generator] = None,
                       subsets: Optional[Tuple[torch.Tensor, torch.Tensor]] = None) -> float:
    """Monte-Carlo vertex expansion (RReg's graph score): the mean of ``|N(S)|/|S|`` over random subsets
    of each side with ``|S| <= n/2``, averaged over the two sides."""
    if subsets is None:
        g = g if g is not None else torch_generator(0)
        subsets = (random_subsets(adj.shape[0], samples, g), random_subsets(adj.shape[1], samples, g))
    left = neighbourhood_ratios(adj, subsets[0]).mean()
    right = neighbourhood_ratios(adj.t(), subsets[1]).mean()
    return float((left + right) / 2)


def _degrees(params, density: float, degree, allocation, dense_first: bool, dense_last: bool,
             other_side) -> Dict[str, Optional[int]]:
    """Per layer: the regular side's degree, or None for a dense layer."""
    names = list(params)
    dense = {names[0]} if dense_first else set()
    dense |= {names[-1]} if dense_last else set()
    sparse = [k for k in names if k not in dense]
    out: Dict[str, Optional[int]] = {k: None for k in dense}
    if degree is not None:
        if allocation is not None:
            raise ValueError("give either degree= (one degree for every layer) or allocation=, not both")
        if isinstance(degree, bool) or not isinstance(degree, (int, np.integer)) or degree < 1:
            raise ValueError(f"degree must be an integer >= 1, got {degree!r}")
        return {**out, **{k: int(degree) for k in sparse}}
    allocation = allocation or "uniform"
    if allocation not in SCHEMES:
        raise ValueError(f"unknown allocation {allocation!r}; valid: {', '.join(SCHEMES)}")
    total = sum(p.numel() for p in params.values())
    n_sparse = sum(params[k].numel() for k in sparse)
    budget = density * total - (total - n_sparse)
    if budget <= 0:
        raise ValueError(f"density {density} is too low to keep {sorted(dense)} dense")
    if not sparse or budget >= n_sparse:
        return {k: None for k in names}
    dens = layer_densities({k: tuple(params[k].shape) for k in sparse}, budget / n_sparse, allocation)
    for k in sparse:
        n_other = other_side(params[k])
        out[k] = min(n_other, max(1, round(dens[k] * n_other)))
    return out


def _check_density(mask: Mask, density: float, degree, method: str) -> Mask:
    """Warn when the graph cannot reach the target (a degree of at least 1 per regular node keeps very
    sparse small layers denser): comparisons at "equal density" must then use the density kept."""
    if degree is None:
        kept = sum(int(m.sum()) for m in mask.values())
        total = sum(m.numel() for m in mask.values())
        if abs(kept - density * total) > 0.1 * density * total:
            warnings.warn(f"{method}: kept {kept / total:.4g} of the weights for a target density of {density:g} "
                          "(every node keeps at least one edge); compare methods at the density kept",
                          stacklevel=3)
    return mask


def _to_mask(adj: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Channel biadjacency (in x out) -> weight-shaped mask (each edge a whole kernel)."""
    m = adj.t()
    return m.reshape(*m.shape, *([1] * (weight.dim() - 2))).expand(weight.shape).contiguous().to(weight.device)


def _sides(p) -> Tuple[int, int]:
    return p.shape[1], p.shape[0]  # (n_in, n_out)


@register_pruner("xnet")
def xnet(model, density: float, *, seed: int, data=None, degree=None, allocation=None,
         variant: str = "input", dense_first: bool = False, dense_last: bool = False) -> Mask:
    """X-Net mask: each node of the regular side (inputs, or the smaller side) keeps d random kernels."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown xnet variant {variant!r}; valid: {', '.join(VARIANTS)}")
    params = prunable_parameters(model)

    def outputs_regular(p):
        n_in, n_out = _sides(p)
        return variant == "smaller_side" and n_in > n_out

    degs = _degrees(params, density, degree, allocation, dense_first, dense_last,
                    lambda p: _sides(p)[0] if outputs_regular(p) else _sides(p)[1])
    mask = {}
    for i, (k, p) in enumerate(params.items()):
        n_in, n_out = _sides(p)
        if degs[k] is None:
            adj = torch.ones(n_in, n_out, dtype=torch.bool)
        elif outputs_regular(p):
            adj = left_regular(n_out, n_in, degs[k], _layer_generator(seed, i)).t()
        else:
            adj = left_regular(n_in, n_out, degs[k], _layer_generator(seed, i))
        mask[k] = _to_mask(adj, p)
    return _check_density(mask, density, degree, "xnet")


@register_pruner("rreg")
def rreg(model, density: float, *, seed: int, data=None, degree=None, allocation=None,
         n_graphs: int = 1, expansion_samples: int = 1000, dense_first: bool = False,
         dense_last: bool = False) -> Mask:
    """RReg mask: a random biregular channel graph per layer (best of ``n_graphs`` by expansion)."""
    if isinstance(n_graphs, bool) or not isinstance(n_graphs, int) or n_graphs < 1:
        raise ValueError(f"n_graphs must be an integer >= 1, got {n_graphs!r}")
    params = prunable_parameters(model)
    degs = _degrees(params, density, degree, allocation, dense_first, dense_last, lambda p: min(_sides(p)))
    mask = {}
    for i, (k, p) in enumerate(params.items()):
        n_in, n_out = _sides(p)
        g = _layer_generator(seed, i)
        if degs[k] is None or degs[k] >= min(n_in, n_out):
            adj = torch.ones(n_in, n_out, dtype=torch.bool)
        elif n_graphs == 1:
            adj = biregular(n_in, n_out, degs[k], g)
        else:
            subsets = (random_subsets(n_in, expansion_samples, g), random_subsets(n_out, expansion_samples, g))
            best = -math.inf
            for _ in range(n_graphs):
                cand = biregular(n_in, n_out, degs[k], g)
                score = expansion_estimate(cand, subsets=subsets)
                if score > best:
                    best, adj = score, cand
        mask[k] = _to_mask(adj, p)
    return _check_density(mask, density, degree, "rreg")


@register_pruner("random-graph")
def random_graph(model, density: float, *, seed: int, data=None, degree=None, allocation=None,
                 dense_first: bool = False, dense_last: bool = False) -> Mask:
    """The RReg paper's "Random" model at the channel level: per layer the same number of kernels as
    ``xnet`` keeps (``n_in * d``), placed uniformly at random (Erdős–Rényi with a fixed edge count).

    The official code keeps each pair independently with probability ``d / n_out``, so its edge count
    matches X-Net's only in expectation; fixing the count removes that variance from the comparison.
    """
    params = prunable_parameters(model)
    degs = _degrees(params, density, degree, allocation, dense_first, dense_last, lambda p: _sides(p)[1])
    mask = {}
    for i, (k, p) in enumerate(params.items()):
        n_in, n_out = _sides(p)
        edges = n_in * n_out if degs[k] is None else n_in * min(degs[k], n_out)
        order = torch.randperm(n_in * n_out, generator=_layer_generator(seed, i))
        adj = torch.zeros(n_in * n_out, dtype=torch.bool)
        adj[order[:edges]] = True
        mask[k] = _to_mask(adj.view(n_in, n_out), p)
    return _check_density(mask, density, degree, "random-graph")
