"""The per-layer part of Node-Path Balancing: the integer program, two solvers, and the weight mask
(``materialize`` kernel counts; ``refill``, the fine-tune pass).

Pham, Ta, Liu, Xiang, Le, Wen & Tran-Thanh, "Towards data-agnostic pruning at initialization: what
makes a good sparse mask?", NeurIPS 2023 (the layer-wise problem of Alg. 1); official code
``pvh1602/NPB: Pruners/utils.py::optimize_layerwise``.  For a layer (or an output chunk of one)
with ``c_in`` inputs, ``c_out`` outputs, per-input path counts ``P`` and budget ``n``, choose an
integer kernel-count matrix ``M`` (``c_in x c_out``, ``0 <= M_ij <= K``, ``sum M <= n``; ``M_ij`` =
kept weights of kernel i->j) maximising ``alpha*A + (1-alpha)*B + beta*R`` with

* ``A`` node term: the fraction of the ``c_in + c_out`` channels with at least one kept weight (the
  official code; ``node_term="paper"`` is the paper's ``sum_i min(P_i sum_j M_ij, 1) + sum_j
  min(sum_i P_i M_ij, 1)`` with raw path counts, i.e. only channels that carry a path count);
* ``B`` path term: ``sum_ij P_i M_ij / maxpath``.  The official normaliser (``official_maxpath=True``,
  the pruner's default ``path_norm="official"``) computes ``min_out_node = int(n / (c_out K))`` full
  channels and a remainder, and sums ``np.sort(P)[-min_out_node:]``; when ``min_out_node`` is 0 the
  slice ``[-0:]`` is the *whole* vector, so maxpath = ``sum(P) c_out K + remainder max(P)``.
  ``path_norm="max"`` is the value the formula means: the best ``sum P_i x_i`` under the budget, i.e.
  filling the highest-P channels (``remainder max(P)`` in that case);
* ``R`` = #non-empty kernels / n.  (The official code writes ``(n - #empty kernels) / n``, which is
  ``R`` minus a constant: same maximiser; ours is >= 0 so that solver ratios mean something.)

The paper's ``P_in``-weighted node term, as written, with the raw (integer) path counts of the
all-ones forward, only stops counting channels whose path count is 0; a third-party variant that
normalises ``P`` by its maximum is not offered (the fast solver would not be exact for it).

``solve_milp`` is the exact program (``scipy.optimize.milp``/HiGHS; binary indicators for the node
and kernel terms; the official code reaches the same HiGHS through cvxpy).  ``solve_fast`` is exact
too, in O(c_in log c_in + c_in*c_out): the objective depends on ``M`` only through the row sums
``x_i`` once every row spreads its weights over ``min(x_i, c_out)`` kernels and rows are laid out
cyclically over the columns (then #covered columns = ``min(c_out, sum_i min(x_i, c_out))``).  In
units of weight each row's value is concave (first weight: node + kernel + path; up to ``c_out``:
kernel + path; beyond: path only) and the column term is a concave function of the number of
kernels, so the function is laminar concave, hence M-natural-concave (Murota, "Discrete Convex
Analysis", SIAM 2003), and taking the ``n`` best units greedily is optimal.  The tests check it
against the MILP on random layers (equal objective, to HiGHS' tolerance).
"""
from __future__ import annotations

import math
import warnings

import numpy as np
import torch

NODE_TERMS = ("count", "paper")
PATH_NORMS = ("official", "max")  # the path term's normaliser: see max_path


def max_path(P: np.ndarray, c_out: int, K: int, n: int, official: bool = False) -> float:
    """The path term's normaliser: fill the highest-P input channels with ``c_out*K`` weights each
    (``official=True``: with less than one full channel of budget, the official ``[-0:]`` slice adds
    every channel's ``P * c_out * K``; ``pvh1602/NPB: Pruners/utils.py::optimize_layerwise``)."""
    P = np.sort(np.asarray(P, dtype=np.float64))[::-1]
    cap = c_out * K
    full = min(n // cap, P.size)
    rest = n - full * cap
    if official and full == 0:  # the official ``np.sort(P)[-0:]`` is the whole vector
        return float(P.sum() * cap + rest * P[0])
    return float(P[:full].sum() * cap + (rest * P[full] if full < P.size else 0.0))


def npb_objective(M, P_in, K: int, n: int, alpha: float, beta: float, *, node_term: str = "count",
                  official_maxpath: bool = False) -> float:
    """``alpha*A + (1-alpha)*B + beta*R`` of a kernel-count matrix ``M`` (``c_in x c_out``)."""
    M = np.asarray(M, dtype=np.float64)
    P = np.asarray(P_in, dtype=np.float64)
    c_in, c_out = M.shape
    rows, cols = M.sum(1), M.sum(0)
    if node_term == "count":
        nodes = (rows >= 1).sum() + (cols >= 1).sum()
    elif node_term == "paper":
        # min(P x, 1) equals min(min(P, 1) x, 1) for integer x, without overflow for huge P
        p = np.minimum(P, 1.0)
        nodes = np.minimum(p * rows, 1.0).sum() + np.minimum(p @ M, 1.0).sum()
    else:
        raise ValueError(f"unknown node_term {node_term!r}; valid: {', '.join(NODE_TERMS)}")
    mp = max_path(P, c_out, K, n, official_maxpath)
    path = float(P @ rows) / mp if mp > 0 else 0.0
    kernels = float((M > 0).sum()) / n if n > 0 else 0.0
    return float(alpha * nodes / (c_in + c_out) + (1 - alpha) * path + beta * kernels)


def _check(P, c_out: int, K: int, n: int):
    P = np.asarray(P, dtype=np.float64).reshape(-1)
    if P.size == 0 or c_out < 1 or K < 1:
        raise ValueError(f"empty layer: c_in={P.size}, c_out={c_out}, K={K}")
    if not np.all(np.isfinite(P)) or np.any(P < 0):
        raise ValueError("path counts P_in must be finite and non-negative "
                         "(an overflow of the float64 all-ones forward gives inf)")
    if not 0 <= n <= P.size * c_out * K:
        raise ValueError(f"budget n={n} outside [0, c_in*c_out*K={P.size * c_out * K}]")
    return P


def layout(x: np.ndarray, order: np.ndarray, c_out: int) -> np.ndarray:
    """Kernel-count matrix with row sums ``x``: each row spreads over ``min(x_i, c_out)`` kernels,
    rows taken in ``order`` continue cyclically where the previous one stopped, so the covered
    columns are ``min(c_out, sum min(x_i, c_out))``."""
    x = np.asarray(x, dtype=np.int64)
    base, rem = x // c_out, x % c_out
    offset = np.zeros_like(x)
    offset[order] = (np.cumsum(rem[order]) - rem[order]) % c_out
    cyc = (np.arange(c_out)[None, :] - offset[:, None]) % c_out
    return base[:, None] + (cyc < rem[:, None])


def solve_fast(P, c_out: int, K: int, n: int, alpha: float, beta: float, *, node_term: str = "count",
               official_maxpath: bool = False) -> np.ndarray:
    """Optimal ``M`` by the greedy over weight units (see the module docstring).

    Exact for ``node_term="count"`` and for the paper's node term when every non-zero ``P_i >= 1``
    (path counts of the all-ones forward are integers); with fractional ``P`` the paper's node term
    is approximated (each row/column counted as ``min(P_i, 1)`` from its first weight on).
    """
    P = _check(P, c_out, K, n)
    if node_term not in NODE_TERMS:
        raise ValueError(f"unknown node_term {node_term!r}; valid: {', '.join(NODE_TERMS)}")
    c_in = P.size
    order = np.lexsort((np.arange(c_in), -P))  # rows by P descending, ties by index
    rank = np.empty(c_in, dtype=np.int64)
    rank[order] = np.arange(c_in)
    if n == 0:
        return np.zeros((c_in, c_out), dtype=np.int64)
    mp = max_path(P, c_out, K, n, official_maxpath)
    w = (1 - alpha) * P / mp if mp > 0 else np.zeros(c_in)
    node = np.ones(c_in) if node_term == "count" else np.minimum(P, 1.0)
    unit = alpha / (c_in + c_out)
    r = beta / n
    # Blocks of equal-valued units per row: 0 = first weight, 1 = more kernels, 2 = more weights
    # in the same kernels.  Columns: block 0/1 units open kernels, the first c_out of those (on
    # rows with node > 0) each cover one more output column.
    rows = np.concatenate([np.arange(c_in)] * 3)
    kind = np.repeat(np.arange(3), c_in)
    count = np.concatenate([np.ones(c_in, np.int64), np.full(c_in, c_out - 1, np.int64),
                            np.full(c_in, c_out * (K - 1), np.int64)])
    value = np.concatenate([unit * node + w + r, w + r, w])
    keep = count > 0
    rows, kind, count, value = rows[keep], kind[keep], count[keep], value[keep]
    # split the kernel-opening units into the c_out best (column bonus) and the rest
    opens = np.flatnonzero((kind < 2) & (node[rows] > 0))
    o = opens[np.lexsort((kind[opens], rank[rows[opens]], -value[opens]))]
    before = np.cumsum(count[o]) - count[o]
    boosted = np.clip(c_out - before, 0, count[o])
    rest = count[o] - boosted
    split = rest > 0
    rows = np.concatenate([rows, rows[o][split]])
    kind = np.concatenate([kind, kind[o][split]])
    value = np.concatenate([value, value[o][split]])
    count = np.concatenate([count, rest[split]])
    count[o] = boosted
    value[o] += unit * node[rows[o]]
    # take the n best units; ties: higher-P row, then earlier block
    s = np.lexsort((kind, rank[rows], -value))
    before = np.cumsum(count[s]) - count[s]
    taken = np.clip(n - before, 0, count[s])
    x = np.bincount(rows[s], weights=taken, minlength=c_in).astype(np.int64)
    return layout(x, order, c_out)


def fix_budget(M: np.ndarray, P, K: int, n: int) -> np.ndarray:
    """Make ``sum M == n`` after a solver left budget unused (zero-value units) or rounding overshot:
    add to empty kernels of the highest-P rows first, then to any kernel with room; remove from the
    lowest-P rows' fullest kernels."""
    M = np.clip(np.rint(M), 0, K).astype(np.int64)
    P = np.asarray(P, dtype=np.float64)
    c_in, c_out = M.shape
    gap = n - int(M.sum())
    if gap == 0:
        return M
    rank = np.empty(c_in, np.int64)
    rank[np.lexsort((np.arange(c_in), -P))] = np.arange(c_in)
    flat = M.reshape(-1)
    r = np.repeat(rank, c_out)
    if gap > 0:  # empty kernels first (raise R), then rows by P
        room = K - flat
        s = np.lexsort((r, flat > 0))
        add = np.clip(gap - (np.cumsum(room[s]) - room[s]), 0, room[s])
        flat[s] += add
    else:
        s = np.lexsort((-flat, -r))
        sub = np.clip(-gap - (np.cumsum(flat[s]) - flat[s]), 0, flat[s])
        flat[s] -= sub
    return flat.reshape(c_in, c_out)


def solve_milp(P, c_out: int, K: int, n: int, alpha: float, beta: float, *, node_term: str = "count",
               official_maxpath: bool = False, time_limit: float | None = None,
               mip_rel_gap: float | None = None) -> np.ndarray:
    """The exact integer program with ``scipy.optimize.milp`` (HiGHS).

    Variables ``[M (c_in*c_out, integer 0..K), z (kernel non-empty), u (row covered), v (column
    covered)]`` with ``z_ij <= M_ij``, ``u_i <= sum_j M_ij``, ``v_j <= sum_i M_ij`` (for the paper's
    node term ``u``, ``v`` are continuous in [0, 1] with ``min(P, 1)`` coefficients) and
    ``sum M <= n``.  ``time_limit`` (s) bounds one call; the best solution found is used.
    """
    from scipy import sparse
    from scipy.optimize import Bounds, LinearConstraint, milp

    P = _check(P, c_out, K, n)
    if node_term not in NODE_TERMS:
        raise ValueError(f"unknown node_term {node_term!r}; valid: {', '.join(NODE_TERMS)}")
    c_in = P.size
    m = c_in * c_out
    if n == 0:
        return np.zeros((c_in, c_out), dtype=np.int64)
    mp = max_path(P, c_out, K, n, official_maxpath)
    w = (1 - alpha) * P / mp if mp > 0 else np.zeros(c_in)
    unit = alpha / (c_in + c_out)
    cost = -np.concatenate([np.repeat(w, c_out), np.full(m, beta / n), np.full(c_in + c_out, unit)])
    coef = np.ones(c_in) if node_term == "count" else np.minimum(P, 1.0)
    i_idx, j_idx = np.divmod(np.arange(m), c_out)
    zi, ui, vi = m + np.arange(m), 2 * m + np.arange(c_in), 2 * m + c_in + np.arange(c_out)
    # rows: 0 budget | 1..m  z - M <= 0 | c_in  u - coef*rowsum <= 0 | c_out  v - coef@M <= 0
    r_budget = np.zeros(m, np.int64)
    r_z = 1 + np.arange(m)
    r_u, r_v = 1 + m + i_idx, 1 + m + c_in + j_idx
    data = np.concatenate([np.ones(m), -np.ones(m), np.ones(m), -coef[i_idx], np.ones(c_in),
                           -coef[i_idx], np.ones(c_out)])
    row = np.concatenate([r_budget, r_z, r_z, r_u, 1 + m + np.arange(c_in), r_v,
                          1 + m + c_in + np.arange(c_out)])
    col = np.concatenate([np.arange(m), np.arange(m), zi, np.arange(m), ui, np.arange(m), vi])
    A = sparse.csr_array((data, (row, col)), shape=(1 + m + c_in + c_out, 2 * m + c_in + c_out))
    upper = np.concatenate([[n], np.zeros(m + c_in + c_out)])
    integrality = np.concatenate([np.ones(2 * m), np.full(c_in + c_out, 1 if node_term == "count" else 0)])
    ub = np.concatenate([np.full(m, K), np.ones(m + c_in + c_out)])
    options = {}
    if time_limit is not None:
        options["time_limit"] = float(time_limit)
    if mip_rel_gap is not None:
        # HiGHS also stops at an absolute gap of 1e-6; scipy passes this option through verbatim
        options.update(mip_rel_gap=float(mip_rel_gap), mip_abs_gap=float(mip_rel_gap))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Unrecognized options", RuntimeWarning)
        res = milp(cost, constraints=LinearConstraint(A, -np.inf, upper), integrality=integrality,
                   bounds=Bounds(np.zeros_like(ub), ub), options=options)
    if res.x is None:  # no feasible point within the time limit: M = 0 is feasible, refill below
        return fix_budget(np.zeros((c_in, c_out)), P, K, n)
    return fix_budget(res.x[:m].reshape(c_in, c_out), P, K, n)


def materialize(M: np.ndarray, shape, generator: torch.Generator, weight: torch.Tensor | None = None
                ) -> torch.Tensor:
    """Weight mask from kernel counts ``M`` (``c_in x c_out``): kernel (i -> j) keeps ``M_ij`` of
    its positions, uniformly at random, or the largest ``|weight|`` ones (ties: lower position)."""
    counts = torch.as_tensor(M.T.copy(), dtype=torch.int64)  # (c_out, c_in)
    c_out, c_in = counts.shape
    k = math.prod(shape[2:]) if len(shape) > 2 else 1
    if k == 1:
        return (counts > 0).reshape(shape)
    flat = counts.reshape(-1)
    out = (flat >= k)[:, None].repeat(1, k)  # full kernels; empty ones stay False
    part = torch.nonzero((flat > 0) & (flat < k)).squeeze(1)  # only these need a draw
    if weight is None:
        keys = torch.rand((part.numel(), k), generator=generator)
    else:
        keys = -weight.detach().abs().to("cpu", torch.float64).reshape(-1, k)[part]
    rank = torch.argsort(torch.argsort(keys, dim=-1, stable=True), dim=-1)
    out[part] = rank < flat[part, None]
    return out.reshape(shape)


def refill(layer, mask: torch.Tensor, live: torch.Tensor, generator: torch.Generator
           ) -> torch.Tensor:
    """NPB's fine-tune pass for one layer (official ``fine_tune_mask``): the count of kept weights off
    every input->output path moves to free live positions of the kernels with the most effective
    weights (1x1 convs and linear layers: of the input channels with the most), at seeded random
    positions inside the last group; the count is unchanged."""
    effective = mask & live
    free = int(mask.sum()) - int(effective.sum())
    if free <= 0:
        return mask
    c_out, c_in = layer.out_units, layer.in_units // getattr(layer, "groups", 1)
    eff = effective.reshape(c_out * c_in, -1)
    if eff.shape[1] == 1 and c_in != layer.in_units:  # grouped 1x1: groups = (global) input channels
        group = (torch.arange(c_out)[:, None] // (c_out // layer.groups) * c_in + torch.arange(c_in)).reshape(-1)
        score = torch.bincount(group, weights=effective.reshape(-1).to(torch.float64), minlength=layer.in_units)
    elif eff.shape[1] == 1:  # groups = input channels
        group, score = torch.arange(c_in).repeat(c_out), effective.reshape(c_out, c_in).sum(0)
    else:  # groups = kernels
        group, score = torch.arange(c_out * c_in).repeat_interleave(eff.shape[1]), eff.sum(1)
    rank = torch.empty_like(score)
    rank[torch.argsort(-score, stable=True)] = torch.arange(score.numel())
    flat = effective.reshape(-1).clone()
    # live free positions by group rank; then, if they run out, the old ineffective ones back
    cand = torch.nonzero(~mask.reshape(-1) & live.reshape(-1)).squeeze(1)
    old = torch.nonzero(mask.reshape(-1) & ~live.reshape(-1)).squeeze(1)
    noise = torch.rand(cand.numel() + old.numel(), generator=generator, dtype=torch.float64)
    key = torch.cat([rank[group[cand]].to(torch.float64), torch.full((old.numel(),), float(score.numel()))])
    pick = torch.cat([cand, old])[torch.argsort(key + noise)[:free]]
    flat[pick] = True
    return flat.reshape(mask.shape)
