"""PHEW: Paths with Higher Edge Weights (Patil & Dovrolis, ICML 2021, arXiv:2010.11354).

A data-free pruner that keeps whole input->output paths found by random walks biased towards large
initial weights.  Units are channels (conv) or features (linear).  From the kernel L1 norms
``K[i, j] = sum_rc |W[i, j, r, c]|`` of ``|theta_0|`` a forward walk at input unit ``j`` moves to output
unit ``i`` with ``Q_f(j -> i) = K[i, j] / sum_i' K[i', j]`` (paper Sec. 3, "Q(j, i)"), a backward walk
at output unit ``i`` to input unit ``j`` with ``K[i, j] / sum_j' K[i, j']`` (an all-zero row is uniform),
and in the chosen kernel one weight is enabled with probability ``|w| / K[i, j]``.  Walks alternate
forward (even walks) and backward (odd walks).  Forward walks start round robin at the input units of
the first layer: channels 0, 1, 2, 0, ... of a conv stem, features 0 .. F-1 of a linear first layer
that reads the flattened input (an MLP's pixels).  Backward walks start round robin at the output
classes 0 .. C-1.  Each walk adds at most one weight per layer it visits.

The default is what produced the published numbers: the walk of the official code
(``ShreyasMalakarjunPatil/PHEW``, ``Prune/phew_utils.py::phew_masks``), on identical weights the same
mask distribution (measured: the per-layer kept counts of the official code run on the same weights
agree within seed noise on ResNet-20 at densities 0.01 and 0.1, VGG-16 at 0.01 and LeNet-300-100 at
0.02).  It walks :class:`pai.graph.LayerGraph` with the official moves:

- ``walk="official"`` (default).  The official code reads residual topology from the order of
  ``model.parameters()`` (``[..., conv1, conv2, shortcut]`` per downsampling block).  Its forward walk,
  before a layer ``p`` whose output feeds a projection block (the previous block's last conv), jumps
  with probability 1/2 straight into that block's 1x1 shortcut, with ``p``'s input unit, so ``p`` and
  the block's branch convs are skipped; a walk that does go through ``p`` always enters the branch
  (``conv1``), never the shortcut.  We apply exactly that move wherever it is dimensionally valid
  (``p`` reads as many units as the shortcut); elsewhere (a shortcut fed by a stem with another width,
  as in WRN's first block or ResNet-50's bottlenecks, which the official code does not cover) the
  graph-correct move below is used.  Measured effect on ResNet-20: ``p`` keeps 22% fewer weights than
  under ``walk="graph"`` at density 0.01 (111 vs 142), 15% fewer at 0.1.  The backward walk takes the
  shortcut or the branch with probability 1/2 each and continues at the block's input: this is
  topologically correct and identical in both modes.
- ``walk="graph"``: the residual walk of the real layer graph.  A tensor read by several layers (the
  input of a projection block: its conv1 and its 1x1 shortcut) sends a forward walk to one of them
  uniformly.  Reason: the official jump enables a shortcut weight whose input unit the walk never
  reached, so its paths can be incomplete, and it under-samples the conv before every downsampling
  block; the graph walk keeps every weight on an input->output path.

In both modes a layer that reads a sum of producers (conv1 after a projection block: its conv2 and its
shortcut) sends a backward walk to one of them uniformly, and identity shortcuts (``skip=True`` edges)
are not walked, as in the official code.  A flatten edge maps channel ``c`` to a feature
``c*f + U{0..f-1}`` forward and feature ``u`` to channel ``u // f`` backward, as the official code.

Networks beyond the paper's (any torchvision classifier; the official code walks ResNets, VGGs and
MLPs only).  A grouped or depthwise conv is walked within its groups: a forward walk at input unit ``j``
moves to one of the outputs of ``j``'s group with ``Q_f`` restricted to that block of ``K``, a backward
walk to one of the inputs of its output's group, the true block-diagonal connectivity.  Edges that
concatenate (DenseNet, SqueezeNet), slice (ShuffleNet's ``chunk``) or permute channels (channel shuffle)
carry a unit map (:class:`pai.graph.Edge`): a forward walk at producer unit ``u`` continues at a
consumer unit holding ``u`` (uniformly among them), a backward walk at consumer unit ``v`` at the
producer unit feeding ``v``, and at a branch point a walk picks uniformly among the edges that carry its
unit.  A squeeze-and-excitation branch is a side branch whose output gates the main flow channel by
channel: forward walks may enter it (it reads the block's input) and leave through its gate edge into
the gated channel, so its kept weights lie on input->output walks; backward walks never enter it (the
gate scales a channel, it is not that channel's source).  On pai's own models none of these edges occur
and the walk is unchanged.

Count.  Default as the official loop ``while sum(masks) < T`` with ``T = int(density * N)``: walks run
until the kept count first reaches ``T``, and the last walk's overshoot (at most L-1 weights) is kept.
``exact_count=True`` keeps exactly ``round(density * N)``.  Reason: equal-density comparisons without
the overshoot.  We find the walk at which the sequential loop first reaches the target, then remove the
``e < L`` excess weights added last *among those whose removal keeps every kept weight on an
input->output path*: first weights of kernels holding two or more kept weights (channel connectivity
unchanged), then whole kernels ``i -> j`` whose output ``j`` has another kept kernel in and input ``i``
another kept kernel out.  Only if neither exists (tiny nets) are the newest weights dropped regardless,
with a warning.

Other named options, all from the official repository: ``kernel_conserved`` (its Kernel_PHEW ablation:
a visited kernel is enabled whole), ``nested_from`` (PHEW_Res: keep walking from a sparser mask, so the
result contains it), ``weighting`` ("magnitude" = PHEW, "uniform" = Uniform_PHEW, "inverse" =
Inverse_PHEW, "square" = PHEW2's theta^2).

Deviations from the official code, and why:
- Speed.  The official code samples one hop at a time with ``np.random.choice`` and recounts all masks
  after every walk (189 s for VGG-16 at density 0.01 on 2 cores).  We advance a batch of walks per
  layer with ``searchsorted`` on precomputed row-wise cumulative tables (rows offset by their index,
  float64, so one sorted vector serves all rows), scatter-min walk ids into a per-weight "first walk"
  tensor and choose the next batch size from the observed yield, so nothing in Python runs per weight.
  Walks are numbered as in the sequential loop, so the stopping walk and the mask are those of the
  sequential algorithm.
- Kernel_PHEW in the repo also makes every 1x1 layer dense; we do not.  Bias masks are not produced
  (pai prunes weights only).  Every draw comes from one seeded ``torch.Generator`` (the official code
  seeds neither ``random`` nor ``numpy``).  A target below one weight keeps one walk.
"""
from __future__ import annotations

import math
import warnings
from typing import Dict, List, Mapping, Optional

import torch

from pai.graph import INPUT, OUTPUT, build_graph
from pai.masks import Mask, check_mask, prunable_parameters
from pai.utils.seed import torch_generator
from pai.pruners import register_pruner

NEVER = torch.iinfo(torch.int64).max  # "first walk" of a weight no walk has picked
WEIGHTINGS = ("magnitude", "uniform", "inverse", "square")
MAX_BATCH = 1 << 16  # walks per batch (bounds memory: ~ MAX_BATCH * layers * 24 bytes)


def _cdf(p: torch.Tensor) -> torch.Tensor:
    """Row-wise cumulative distribution of non-negative rows, each ending at exactly 1 (zero rows uniform)."""
    p = torch.where(p.sum(1, keepdim=True) > 0, p, torch.ones_like(p))
    c = p.cumsum(1)
    return (c / c[:, -1:]).clamp_(max=1.0)


def _row_table(p: torch.Tensor) -> torch.Tensor:
    """Row r's cumulative distribution shifted by r, flattened: one sorted vector for all rows."""
    return (_cdf(p) + torch.arange(p.shape[0], dtype=p.dtype, device=p.device)[:, None]).reshape(-1)


class _Layer:
    def __init__(self, node, weight: torch.Tensor, weighting: str, kernel_conserved: bool):
        # a grouped conv: input unit j reaches only the out_pg outputs of its group (block-diagonal K)
        self.groups = node.groups
        self.n_loc, self.out_pg = node.in_units // node.groups, node.out_units // node.groups
        w = weight.detach().abs().to(torch.float64).reshape(node.out_units, self.n_loc, -1)
        if weighting == "uniform":
            w = torch.ones_like(w)
        elif weighting == "inverse":
            w = torch.where(w > 0, 1.0 / w, torch.zeros_like(w))
        elif weighting == "square":
            w = w * w
        self.node, self.n_in, self.n_out, self.kk = node, node.in_units, node.out_units, w.shape[-1]
        kernel = w.sum(-1)
        if self.groups == 1:
            self.fwd = _row_table(kernel.t().contiguous())  # row j: next output unit
        else:  # row j (global input): the outputs of j's group
            self.fwd = _row_table(kernel.view(self.groups, self.out_pg, self.n_loc).permute(0, 2, 1)
                                  .reshape(self.n_in, self.out_pg))
        self.bwd = _row_table(kernel)  # row i: previous input unit (local to i's group)
        self.pos = None if self.kk == 1 or kernel_conserved else _cdf(w.reshape(-1, self.kk)).float()
        self.unit = self.kk if kernel_conserved else 1  # weights enabled per new index
        # forward / backward moves: non-skip edges (identity shortcuts are not walked)
        # gate edges (a squeeze-and-excitation branch's output) are walked forward, not backward
        self.succ = [_move(e.dst, e) for e in node.succs if not e.skip] or [_move(e.dst, e) for e in node.succs]
        self.pred = [_move(e.src, e) for e in node.preds if not e.skip and not e.gate] or \
            [_move(e.src, e) for e in node.preds if not e.skip] or [_move(e.src, e) for e in node.preds]
        self.jump: List[int] = []  # walk="official": shortcuts a forward walk may jump into (_official_jumps)

    def draw(self, table: torch.Tensor, rows: torch.Tensor, n_cols: int, g) -> torch.Tensor:
        r = torch.rand(rows.shape, generator=g, dtype=torch.float64, device=rows.device)
        idx = torch.searchsorted(table, rows.to(torch.float64) + r, right=True)
        return (idx - rows * n_cols).clamp_(0, n_cols - 1)

    def forward_units(self, units: torch.Tensor, g) -> torch.Tensor:
        """Output unit of a forward hop from input ``units`` (within their group)."""
        local = self.draw(self.fwd, units, self.out_pg, g)
        return local if self.groups == 1 else torch.div(units, self.n_loc, rounding_mode="floor") * self.out_pg + local

    def backward_units(self, units: torch.Tensor, g) -> torch.Tensor:
        """Input unit of a backward hop from output ``units`` (within their group)."""
        local = self.draw(self.bwd, units, self.n_loc, g)
        return local if self.groups == 1 else torch.div(units, self.out_pg, rounding_mode="floor") * self.n_loc + local

    def index(self, kernel: torch.Tensor, g) -> torch.Tensor:
        """Index into ``first``: the kernel, or one weight in it drawn with probability |w| / K."""
        if self.pos is None:
            return kernel
        r = torch.rand((kernel.numel(), 1), generator=g, device=kernel.device)
        pos = torch.searchsorted(self.pos.index_select(0, kernel), r, right=True).squeeze(1).clamp_(max=self.kk - 1)
        return kernel * self.kk + pos


def _move(layer: int, e):
    """A walk move along edge ``e`` to ``layer``: ``(layer, flatten, unit map)``; the map (None: plain) is
    ``(units, order, sorted units)`` of :attr:`pai.graph.Edge.units` for forward lookups."""
    if e.units is None:
        return layer, e.flatten, None
    order = torch.argsort(e.units, stable=True)
    return layer, e.flatten, (e.units, order, e.units[order].contiguous())


def _route(moves, units, wids, queue, g, forward: bool) -> None:
    """Send each walk along one of ``moves`` (uniformly), mapping units through flatten edges."""
    if any(mp is not None for _, _, mp in moves):
        return _route_mapped(moves, units, wids, queue, g, forward)
    pick = torch.randint(len(moves), units.shape, generator=g, device=units.device) if len(moves) > 1 else None
    for m, (layer, f, _) in enumerate(moves):
        sel = slice(None) if pick is None else pick == m
        if layer == OUTPUT or layer == INPUT:  # both are -1: the walk has ended
            continue
        u, w = units[sel], wids[sel]
        if f > 1:
            u = u * f + torch.randint(f, u.shape, generator=g, device=u.device) if forward else u // f
        queue[layer].append((u, w))


def _route_mapped(moves, units, wids, queue, g, forward: bool) -> None:
    """:func:`_route` where some edge maps units (concatenation, chunk, channel shuffle): each walk takes
    one of the moves that carry its unit, uniformly; a walk no move carries ends."""
    dev = units.device
    found = []
    for layer, f, mp in moves:
        if mp is None or layer == OUTPUT:
            found.append((torch.ones_like(units, dtype=torch.bool), None, None))
        elif forward:  # consumer units holding producer unit u: a run of the sorted map
            vals, order, sorted_units = mp[0].to(dev), mp[1].to(dev), mp[2].to(dev)
            lo = torch.searchsorted(sorted_units, units)
            hi = torch.searchsorted(sorted_units, units, right=True)
            found.append((hi > lo, lo, hi))
        else:
            vals = mp[0].to(dev)
            found.append((vals[units] >= 0, None, None))
    acc = torch.stack([a for a, _, _ in found])
    k = (torch.rand(units.shape, generator=g, dtype=torch.float64, device=dev) * acc.sum(0)).long()
    choose = acc & (acc.long().cumsum(0) - 1 == k[None])
    for (layer, f, mp), (_, lo, hi), sel in zip(moves, found, choose):
        if layer == OUTPUT or layer == INPUT or not bool(sel.any()):
            continue
        u, w = units[sel], wids[sel]
        if mp is None:
            if f > 1:
                u = u * f + torch.randint(f, u.shape, generator=g, device=dev) if forward else u // f
        elif forward:
            lo, hi = lo[sel], hi[sel]
            pos = lo + (torch.rand(u.shape, generator=g, dtype=torch.float64, device=dev) * (hi - lo)).long()
            u = mp[1].to(dev)[pos]
        else:
            u = mp[0].to(dev)[u]
        queue[layer].append((u, w))


def _official_jumps(graph, layers: List["_Layer"]) -> None:
    """The official forward move at projection blocks (module docstring): ``p.jump`` lists the shortcuts
    that a walk about to enter ``p`` jumps into with probability 1/2; ``p``'s own output then never
    enters them."""
    for s in graph:
        if not s.is_shortcut:
            continue
        for e in s.preds:
            p = graph[e.src] if e.src != INPUT else None
            if e.skip or p is None or p.is_shortcut or p.in_units != s.in_units or e.flatten != 1 \
                    or e.units is not None or e.gate or p.groups != 1:
                continue
            layers[p.index].jump.append(s.index)
            layers[p.index].succ = [m for m in layers[p.index].succ if m[0] != s.index]


def _start(targets, k, wids, queue, g, n_units) -> None:
    """Round-robin start units ``k mod n`` (``n`` the start layer's units), each walk at one of ``targets``."""
    pick = torch.randint(len(targets), k.shape, generator=g, device=k.device) if len(targets) > 1 else None
    for m, layer in enumerate(targets):
        sel = slice(None) if pick is None else pick == m
        queue[layer].append((k[sel] % n_units(layer), wids[sel]))


def _walk_batch(layers: List["_Layer"], first, w0: int, n_pairs: int, g):
    """Walks ``w0 .. w0 + 2 n_pairs - 1`` (even: forward, odd: backward); returns the visits."""
    dev = first[0].device
    visits = []
    k = torch.arange(n_pairs, device=dev) + w0 // 2  # ordinal among walks of one direction
    for forward in (True, False):
        wids = 2 * k + (0 if forward else 1)
        queue: Dict[int, list] = {i: [] for i in range(len(layers))}
        if forward:  # a flattened first layer starts at its input features, a conv at its channels
            starts = [i for i, l in enumerate(layers) if any(m[0] == INPUT for m in l.pred)]
            _start(starts, k, wids, queue, g, lambda i: layers[i].n_in)
        else:
            ends = [i for i, l in enumerate(layers) if any(m[0] == OUTPUT for m in l.succ)]
            _start(ends, k, wids, queue, g, lambda i: layers[i].n_out)
        for i in (range(len(layers)) if forward else reversed(range(len(layers)))):
            if not queue[i]:
                continue
            lay = layers[i]
            units, w = (torch.cat(t) for t in zip(*queue[i]))
            if forward and lay.jump:  # the official code's jump into the next block's shortcut
                hop = torch.rand(units.shape, generator=g, device=dev) < 0.5
                _route([(j, 1, None) for j in lay.jump], units[hop], w[hop], queue, g, True)
                units, w = units[~hop], w[~hop]
            if forward:
                out_u, in_u = lay.forward_units(units, g), units
            else:
                out_u, in_u = units, lay.backward_units(units, g)
            idx = lay.index(out_u * lay.n_loc + (in_u if lay.groups == 1 else in_u % lay.n_loc), g)
            first[i].scatter_reduce_(0, idx, w, reduce="amin")
            visits.append((i, idx, w))
            _route(lay.succ if forward else lay.pred, out_u if forward else in_u, w, queue, g, forward)
    return visits


WALKS = ("official", "graph")


@register_pruner("phew", needs_input_shape=True, revision=2,
                 revision_note="the official walk (downsampling jump) and count became the default")
def phew(model, density: float, *, seed: int, data=None, walk: str = "official", exact_count: bool = False,
         kernel_conserved: bool = False, nested_from: Optional[Mapping[str, torch.Tensor]] = None,
         weighting: str = "magnitude", input_shape=None) -> Mask:
    """PHEW mask (module docstring): the official walk and count by default; ``walk="graph"`` for the
    graph-correct residual walk, ``exact_count=True`` for exactly ``round(density * N)`` weights.

    Long on purpose: the walk loop adapts its batch size to the rate new weights are found and stops
    at the walk that reaches the target, with state (first-visit stamps, counts) it shares with the
    set-up and the trim."""
    if weighting not in WEIGHTINGS:
        raise ValueError(f"phew: unknown weighting {weighting!r}; valid: {', '.join(WEIGHTINGS)}")
    if walk not in WALKS:
        raise ValueError(f"phew: unknown walk {walk!r}; valid: {', '.join(WALKS)}")
    graph = build_graph(model, input_shape)
    params = prunable_parameters(model)
    total = sum(p.numel() for p in params.values())
    target = round(density * total) if exact_count else max(1, int(density * total))  # official: int()
    if target >= total:
        return {k: torch.ones_like(p, dtype=torch.bool) for k, p in params.items()}
    layers = [_Layer(n, params[n.name], weighting, kernel_conserved) for n in graph]
    if walk == "official":
        _official_jumps(graph, layers)
    dev = params[graph[0].name].device
    g = torch_generator(seed, dev)
    first = [torch.full((l.n_out * l.n_loc * (l.kk // l.unit),), NEVER, dtype=torch.int64, device=dev)
             for l in layers]
    if nested_from is not None:
        check_mask(model, nested_from)
        for l, f in zip(layers, first):
            m = nested_from[l.node.name].to(dev).reshape(l.n_out * l.n_loc, -1)
            f[(m.any(1) if kernel_conserved else m.reshape(-1))] = -1
    kept = sum(int((f < 0).sum()) * l.unit for l, f in zip(layers, first))
    if kept > target:
        raise ValueError(f"phew: nested_from keeps {kept} weights, more than the target {target} "
                         f"(density {density}); nest sparser masks into denser ones")
    kept = _run_walks(layers, first, kept, target, weighting, g)
    first_w = [f.repeat_interleave(l.unit) if l.unit > 1 else f for l, f in zip(layers, first)]
    if exact_count and kept > target:
        _trim(layers, first_w, kept - target)
    return {l.node.name: (f != NEVER).reshape(params[l.node.name].shape) for l, f in zip(layers, first_w)}


def _run_walks(layers, first, kept: int, target: int, weighting: str, g) -> int:
    """Walk in batches until the sequential loop would first reach ``target``; later walks are undone
    (in ``first``, in place).  Returns the kept count, overshoot of the last walk included."""
    dev = first[0].device
    w0, stalled = 0, 0
    batch = min(MAX_BATCH, 2 * max(1, math.ceil((target - kept) / sum(l.unit for l in layers))))
    while kept < target:
        visits = _walk_batch(layers, first, w0, batch // 2, g)
        new = torch.zeros(batch, dtype=torch.int64, device=dev)
        for i, idx, w in visits:
            fresh = w[first[i][idx] == w] - w0
            new += torch.bincount(fresh, minlength=batch) * layers[i].unit
        cum = kept + new.cumsum(0)
        hit = torch.nonzero(cum >= target)
        if len(hit):
            last = w0 + int(hit[0])
            for f in first:
                f.masked_fill_(f > last, NEVER)
            return int(cum[int(hit[0])])
        gained, kept, w0 = int(new.sum()), int(cum[-1]), w0 + batch
        stalled = stalled + 1 if gained == 0 else 0
        if stalled >= 5 and batch == MAX_BATCH:
            raise RuntimeError(f"phew: {5 * MAX_BATCH} walks found no new weight ({kept} of {target} kept); "
                               f"zero-magnitude weights are never drawn with weighting={weighting!r}")
        rate = max(gained, 1) / batch  # weights per walk, falling as the mask fills
        batch = min(MAX_BATCH, 2 * math.ceil(0.6 * (target - kept) / rate + 8))
    return kept


def _trim(layers, first_w, excess: int) -> None:
    """Un-keep ``excess`` weights, newest first, without breaking any input->output path (in place).

    Long on purpose: three passes of the same newest-first rule over the same per-layer stamps
    (weights of kernels that keep others, then whole kernels whose channels stay connected, then,
    if still over, the newest weights)."""
    # 1) weights of kernels that keep >= 2 weights: the channel graph does not change
    found = []
    for li, (l, f) in enumerate(zip(layers, first_w)):
        if l.kk == 1:
            continue
        kept = f != NEVER
        count = kept.view(-1, l.kk).sum(1)
        idx = torch.nonzero(kept & (f >= 0) & (count.repeat_interleave(l.kk) >= 2)).squeeze(1)
        if not len(idx):
            continue
        idx = idx[torch.topk(f[idx] * f.numel() + idx, min(len(idx), excess * l.kk)).indices]
        kern = idx // l.kk  # idx is newest first; rank each weight among its kernel's candidates
        order = torch.sort(kern, stable=True).indices
        ks = kern[order]
        rank = torch.empty_like(order)
        rank[order] = torch.arange(len(ks), device=ks.device) - torch.searchsorted(ks, ks)
        ok = rank < count[kern] - 1
        found += [(int(a), li, int(b)) for a, b in zip(f[idx[ok]][:excess].tolist(), idx[ok][:excess].tolist())]
    for _, li, i in sorted(found, reverse=True)[:excess]:
        first_w[li][i] = NEVER
    excess -= min(excess, len(found))
    # 2) whole kernels i -> j with another kept kernel into j and another out of i (in the same layer)
    while excess > 0:
        best = None
        for li, (l, f) in enumerate(zip(layers, first_w)):
            fk = f.view(l.n_out, l.n_loc, l.kk)
            count = (fk != NEVER).sum(-1)
            on = count > 0
            # kept kernels out of each input channel (a grouped conv: counted within the input's group)
            outs = on.sum(0, keepdim=True) if l.groups == 1 else \
                on.view(l.groups, l.out_pg, l.n_loc).sum(1, keepdim=True).expand(-1, l.out_pg, -1).reshape(on.shape)
            newest = torch.where(fk != NEVER, fk, torch.full_like(fk, -2)).amax(-1)
            nested = torch.where(fk != NEVER, fk, torch.zeros_like(fk)).amin(-1) < 0
            ok = on & ~nested & (count <= excess) & (on.sum(1, keepdim=True) >= 2) & (outs >= 2)
            if ok.any():
                score = torch.where(ok, newest, torch.full_like(newest, -3))
                k = int(score.argmax())
                cand = (int(score.view(-1)[k]), li, k)
                best = cand if best is None or cand > best else best
        if best is None:
            break
        _, li, k = best
        l = layers[li]
        block = first_w[li][k * l.kk:(k + 1) * l.kk]
        excess -= int((block != NEVER).sum())
        block.fill_(NEVER)
    if excess > 0:  # 3) nothing removable keeps all paths intact: drop the newest weights anyway
        warnings.warn(f"phew: removed {excess} weight(s) that leave a path incomplete, to keep the exact count")
        found = []
        for li, f in enumerate(first_w):
            idx = torch.nonzero((f >= 0) & (f != NEVER)).squeeze(1)
            idx = idx[torch.topk(f[idx] * f.numel() + idx, min(len(idx), excess)).indices]
            found += [(int(a), li, int(b)) for a, b in zip(f[idx].tolist(), idx.tolist())]
        for _, li, i in sorted(found, reverse=True)[:excess]:
            first_w[li][i] = NEVER
