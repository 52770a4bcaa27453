"""Expander-graph masks: X-Net (Prabhu, Varma & Namboodiri, ECCV 2018), RReg and the "Random" baseline
of Stewart, Michieli & Ozay, "Data-free model pruning at initialization via expanders" (CVPR
Workshops 2023).

Each layer is a channel-level bipartite graph: ``n_in`` input channels (features) on the left, ``n_out``
output channels on the right, an edge = a whole ``kh x kw`` kernel (one weight in a linear layer).
The defaults are what produced the published numbers, the official ``SamsungLabs/ExpandersPruning``
(``src/graph_factory/graph_utils.py``, ``src/model_factory/models``); on identical inputs each gives the
same mask distribution (measured: per-layer kept kernels of the official graph functions and ours agree
within seed noise on VGG-16 and ResNet-20 at d = 3, RReg with its best-of-100 selection too):

- ``xnet``: every input node picks ``min(d, n_out)`` distinct random outputs (d-left-regular, the
  Samsung re-implementation).  ``variant="smaller_side"``: the original X-Net rule
  (``drimpossible/Deep-Expander-Networks``), the smaller side d-regular (inputs on a tie), for
  comparisons with the ECCV paper.
- ``rreg``: the bipartite configuration model with degree ``d`` on the larger side (outputs on a tie)
  and balanced degrees ``floor(d n_large / n_small)`` on the smaller side, +1 on its first
  ``d n_large mod n_small`` nodes; stubs are matched at random and, as the official code builds the
  match into a simple graph, parallel edges collapse (degrees fall below target, much below when ``d``
  nears the smaller side's size: VGG's 3 -> 64 stem keeps ~136 of 192 kernels at d = 3).  The best of
  ``n_graphs = 100`` such graphs by Monte-Carlo vertex expansion is kept
  (:func:`pai.metrics.vertex_expansion`, the official estimate: ``|S| ~ U{1..ceil(n/2)-1}`` per side,
  1000 samples, fresh samples for each candidate).
  Named options: ``exact_degrees=True`` repairs parallel edges by random double-edge switches
  ``(a, b), (a', b') -> (a, b'), (a', b)`` (accepted only when both new edges are absent) so every
  degree is exactly its target (a layer denser than 1/2 is sampled as the complement of the sparser
  graph) and puts the +1 degrees on random nodes.  Reason: collapsed edges make RReg keep fewer
  weights than X-Net at equal ``d``, most in small dense layers, and the first nodes of every layer
  get systematically more edges.  ``n_graphs=1`` skips the selection (fast).
- ``random-graph``: each (input, output) pair is kept independently with probability
  ``min(d, n_out) / n_out`` (official "random").  ``fixed_count=True`` places exactly ``n_in * d``
  kernels (X-Net's count) uniformly.  Reason: the comparison with X-Net then has no edge-count variance.

First and last layers (``dense_first`` / ``dense_last``, default ``None`` = the rule of
:func:`dense_layer_rule`, the same for all three methods): ResNets and WRNs keep the stem conv and the
classifier dense (official ResNet code); VGG keeps the last linear layer dense and sparsifies the stem
(official VGG16-bn code, where at d = 3 RReg's 3 -> 64 stem keeps ~136 of 192 kernels and X-Net's
``3 d`` = 9); the official code has no LeNet or MLP, and for them we keep the classifier
dense (as both official families) and the first layer dense when it is a conv stem (LeNet-5's
1 -> 6 conv: RReg saturates any 1-channel layer to dense, so a sparse stem would compare first-layer
widths, not graphs) and sparse when it is linear (an MLP's 784 -> 300 input layer holds most of its
weights; there all three methods keep ``n_in d`` edges).  A model with a single prunable layer keeps
none dense.  Pass booleans to override; dense layers count towards the density budget.

Degree.  ``degree=d`` gives one d for every sparse layer, as in the papers (d = 3, 15, 30, 60); the
``density`` argument is then ignored and the density follows from d.  For xnet and random-graph a
degree at or above ``n_out`` gives the complete bipartite graph, as in the official code; RReg's
collapsed configuration model approaches it as ``d`` grows (``exact_degrees=True``: complete at
``d >= n_small``); ``d < 1`` is a ``ValueError``.  Without ``degree`` (not in the official code), each
layer's density ``p_l`` comes from ``allocation`` ("uniform", "erk", "er"; :mod:`pai.pruners.allocation`) and
``d_l = clamp(round(p_l * n_other), 1, n_other)`` on the regular side (xnet: ``n_other = n_out``; rreg:
``n_other = n_small``).  A layer then keeps ``n_reg * d_l`` kernels (in expectation for random-graph,
at most that for rreg with collapsed edges), within ``n_reg / 2`` kernels of ``p_l N_l`` whenever
``p_l n_other >= 1/2``.

Deviations from the official code, and why: it caches one graph per (n_in, n_out, d) on disk, so all
layers of one shape share a mask across layers, runs and seeds, and it sets no seed; here every layer
draws from its own generator derived from (seed, layer index), so layers are independent and a seed
fixes the mask.  Its expansion estimate raises on a side of at most 2 nodes; there we keep the first
candidate.
"""
from __future__ import annotations

import math
from typing import Dict, Optional, Tuple

import numpy as np
import torch

from pai.masks import Mask, prunable_parameters
from pai.utils.seed import torch_generator
from pai.pruners import register_pruner
from pai.pruners.allocation import SCHEMES, target_layer_densities

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


def configuration_graph(deg_left: torch.Tensor, deg_right: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """The bipartite configuration model built into a simple graph (networkx's
    ``bipartite.configuration_model(..., create_using=nx.Graph())``): stubs matched by a random
    permutation, parallel edges collapsed into one."""
    if int(deg_left.sum()) != int(deg_right.sum()):
        raise ValueError("configuration_graph: the degree sums of the two sides differ")
    a = torch.repeat_interleave(torch.arange(len(deg_left)), deg_left)
    b = torch.repeat_interleave(torch.arange(len(deg_right)), deg_right)
    b = b[torch.randperm(len(b), generator=g)]
    return torch.zeros(len(deg_left), len(deg_right), dtype=torch.bool).index_put_((a, b), torch.tensor(True))


def biregular(n_left: int, n_right: int, d: int, g: torch.Generator, exact: bool = False) -> torch.Tensor:
    """RReg's graph: the larger side (right on a tie) of degree d, the smaller side balanced.
    ``exact=False``: the official graph (+1 degrees on the first nodes, parallel edges collapsed, so a
    degree above the other side's size just collapses more: VGG's 3 -> 64 stem keeps ~136 of 192 kernels
    at d = 3); ``exact=True``: +1 degrees on random nodes, every degree exact, complete bipartite when
    ``d >= n_small``."""
    left_large = n_left > n_right
    n_large, n_small = (n_left, n_right) if left_large else (n_right, n_left)
    if exact and d >= n_small:
        return torch.ones(n_left, n_right, dtype=torch.bool)
    base, rem = divmod(d * n_large, n_small)
    small = torch.full((n_small,), base, dtype=torch.int64)
    small[torch.randperm(n_small, generator=g)[:rem] if exact else slice(0, rem)] += 1
    large = torch.full((n_large,), d, dtype=torch.int64)
    build = simple_bipartite if exact else configuration_graph
    return build(large, small, g) if left_large else build(small, large, g)


def candidate_seed(seed: int, index: int, candidate: int) -> int:
    """Seed of the expansion samples that score candidate graph ``candidate`` of layer ``index``."""
    return int(np.random.SeedSequence([int(seed) % 2**63, index, 1 + candidate]).generate_state(1)[0])


def best_expander(draw, n_graphs: int, samples: int, seed: int, index: int) -> torch.Tensor:
    """The candidate of largest :func:`pai.metrics.vertex_expansion` among ``n_graphs`` draws (fresh
    samples per candidate, as the official code); the first one if no side has 3 nodes or more."""
    from pai.metrics.spectral import vertex_expansion

    best, best_score = None, -math.inf
    for c in range(n_graphs):
        cand = draw()
        if n_graphs == 1:
            return cand
        score = vertex_expansion(cand, samples, seed=candidate_seed(seed, index, c))
        if best is None or score > best_score:  # NaN (no admissible subset) never beats the first
            best, best_score = cand, score
    return best


def dense_layer_rule(model) -> Tuple[bool, bool]:
    """``(dense_first, dense_last)`` shared by xnet, rreg and random-graph (module docstring): official
    for ResNets/WRNs (both dense) and VGG (last only); LeNet/MLP: last, and first iff it is a conv."""
    arch = str(getattr(model, "arch", "")).lower()
    params = prunable_parameters(model)
    if len(params) == 1:  # a single layer is both: nothing to keep dense
        return False, False
    residual = arch.startswith(("resnet", "wrn")) or any(n.split(".")[-1] == "shortcut"
                                                         for n, _ in model.named_modules())
    if residual:
        return True, True
    if arch.startswith("vgg"):
        return False, True
    return next(iter(params.values())).dim() == 4, True


def _resolve_dense(model, dense_first, dense_last) -> Tuple[bool, bool]:
    rule = dense_layer_rule(model)
    return (rule[0] if dense_first is None else bool(dense_first),
            rule[1] if dense_last is None else bool(dense_last))


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
        widths = [other_side(params[k]) for k in sparse]
        if sparse and degree >= max(widths):
            raise ValueError(f"degree {degree} is at least the width of every sparse layer, so the mask would be "
                             f"dense (a degenerate mask): choose a degree below {max(widths)}")
        return {**out, **{k: int(degree) for k in sparse}}
    allocation = allocation or "uniform"
    if allocation not in SCHEMES:
        raise ValueError(f"unknown allocation {allocation!r}; valid: {', '.join(SCHEMES)}")
    total = sum(p.numel() for p in params.values())
    n_sparse = sum(params[k].numel() for k in sparse)
    budget = density * total - (total - n_sparse)
    if budget <= 0:
        raise ValueError(f"density {density} is too low to keep {sorted(dense)} dense (the first/last-layer "
                         f"rule of dense_layer_rule); pass dense_first=False / dense_last=False to sparsify them")
    if not sparse or budget >= n_sparse:
        return {k: None for k in names}
    dens = target_layer_densities({k: tuple(params[k].shape) for k in sparse}, budget / n_sparse, allocation)
    for k in sparse:
        n_other = other_side(params[k])
        out[k] = min(n_other, max(1, round(dens[k] * n_other)))
    return out


def _density_free(options: dict) -> bool:
    """With ``degree=`` the degree, not ``density``, sets the count: :func:`pai.prune` checks no count."""
    return options.get("degree") is not None


def _degenerate_hint(options: dict, kinds) -> str | None:
    """Why a graph misses the target density, named by :func:`pai.prune`'s degenerate-mask check."""
    if "density" in kinds:
        return ("a regular graph keeps at least one edge per node (and the dense first/last layers of "
                "dense_layer_rule), so very sparse small layers stay denser: compare methods at the density kept")
    return None


def _to_mask(adj: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Channel biadjacency (in x out) -> weight-shaped mask (each edge a whole kernel)."""
    m = adj.t()
    return m.reshape(*m.shape, *([1] * (weight.dim() - 2))).expand(weight.shape).contiguous().to(weight.device)


def _sides(p) -> Tuple[int, int]:
    return p.shape[1], p.shape[0]  # (n_in, n_out)


@register_pruner("xnet", revision=2, revision_note="the official first/last-layer rule became the default",
                 density_free=_density_free, degenerate_hint=_degenerate_hint)
def xnet(model, density: float, *, seed: int, data=None, degree=None, allocation=None,
         variant: str = "input", dense_first: Optional[bool] = None, dense_last: Optional[bool] = None) -> Mask:
    """X-Net mask (module docstring): each node of the regular side (inputs, or the smaller side with
    ``variant="smaller_side"``) keeps d random kernels; first/last layers by :func:`dense_layer_rule`."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown xnet variant {variant!r}; valid: {', '.join(VARIANTS)}")
    params = prunable_parameters(model)
    dense_first, dense_last = _resolve_dense(model, dense_first, dense_last)

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
    return mask


@register_pruner("rreg", revision=2, density_free=_density_free, degenerate_hint=_degenerate_hint,
                 revision_note="the official collapsed configuration model, best of 100, and first/last-layer "
                               "rule became the default")
def rreg(model, density: float, *, seed: int, data=None, degree=None, allocation=None,
         n_graphs: int = 100, expansion_samples: int = 1000, exact_degrees: bool = False,
         dense_first: Optional[bool] = None, dense_last: Optional[bool] = None) -> Mask:
    """RReg mask (module docstring): per layer the best of ``n_graphs`` random biregular channel graphs
    by vertex expansion; official collapsed parallel edges unless ``exact_degrees=True``."""
    if isinstance(n_graphs, bool) or not isinstance(n_graphs, int) or n_graphs < 1:
        raise ValueError(f"n_graphs must be an integer >= 1, got {n_graphs!r}")
    params = prunable_parameters(model)
    dense_first, dense_last = _resolve_dense(model, dense_first, dense_last)
    degs = _degrees(params, density, degree, allocation, dense_first, dense_last, lambda p: min(_sides(p)))
    mask = {}
    for i, (k, p) in enumerate(params.items()):
        n_in, n_out = _sides(p)
        g = _layer_generator(seed, i)
        if degs[k] is None or (exact_degrees and degs[k] >= min(n_in, n_out)) or min(n_in, n_out) == 1:
            adj = torch.ones(n_in, n_out, dtype=torch.bool)  # (a 1-node side is complete under any d)
        else:
            adj = best_expander(lambda: biregular(n_in, n_out, degs[k], g, exact_degrees), n_graphs,
                                expansion_samples, seed, i)
        mask[k] = _to_mask(adj, p)
    return mask


@register_pruner("random-graph", density_free=_density_free, degenerate_hint=_degenerate_hint, revision=2,
                 revision_note="the official Bernoulli graph and first/last-layer rule became the default")
def random_graph(model, density: float, *, seed: int, data=None, degree=None, allocation=None,
                 fixed_count: bool = False, dense_first: Optional[bool] = None,
                 dense_last: Optional[bool] = None) -> Mask:
    """The RReg paper's "Random" model at the channel level (module docstring): each kernel kept with
    probability ``d / n_out`` (official), or exactly ``n_in * d`` kernels placed uniformly (``fixed_count``)."""
    params = prunable_parameters(model)
    dense_first, dense_last = _resolve_dense(model, dense_first, dense_last)
    degs = _degrees(params, density, degree, allocation, dense_first, dense_last, lambda p: _sides(p)[1])
    mask = {}
    for i, (k, p) in enumerate(params.items()):
        n_in, n_out = _sides(p)
        g = _layer_generator(seed, i)
        if degs[k] is None or degs[k] >= n_out:
            adj = torch.ones(n_in * n_out, dtype=torch.bool)
        elif fixed_count:
            adj = torch.zeros(n_in * n_out, dtype=torch.bool)
            adj[torch.randperm(n_in * n_out, generator=g)[:n_in * degs[k]]] = True
        else:
            adj = torch.rand(n_in * n_out, generator=g, dtype=torch.float64) < degs[k] / n_out
        mask[k] = _to_mask(adj.view(n_in, n_out), p)
    return mask
