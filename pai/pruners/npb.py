"""NPB: Node-Path Balancing pruning at initialization.

Pham, Ta, Liu, Xiang, Le, Wen & Tran-Thanh, "Towards data-agnostic pruning at initialization: what
makes a good sparse mask?", NeurIPS 2023 (Alg. 1; earlier an ICLR 2023 submission on the node-path
balancing perspective); official code ``pvh1602/NPB`` (``Pruners/pruners.py::Optimization_Pruner``,
``Pruners/utils.py``).

Layers get ERK budgets (:func:`pai.pruners.allocation.layer_budgets`) and are solved greedily in
forward order: for layer l, ``P_in`` (per input channel) is the all-ones forward through a float64
copy of the network with every parameter 1, normalisation layers bypassed and average pools summing,
with the masks already chosen for layers < l applied and later layers dense, summed over H, W.  The
per-layer integer program (:mod:`.npb_solver`) picks how many weights each kernel i->j keeps; those
positions are then drawn inside the kernel uniformly at random from a generator seeded by ``seed``
(``scale_weight=True``: the largest |w|).  Projection shortcuts use their own input (the block input)
as ``P_in``, ``K = 1`` and ``beta = shortcut_beta``.

Default = the published method, the official ResNet-20 recipe (``scripts/run.sh``: ERK, α = 0.01,
β = 1, ``--max_p 9``, chunk size 32) with the official code's rules:

* ``path_norm="official"``: the path term's normaliser of ``optimize_layerwise``, including its
  ``np.sort(P)[-0:]`` slice (with less than one full input channel of budget it sums *all* channels);
* ``path_bias=1.0``: every parameter, biases included, is 1 in the ``P_in`` forward (``copynet``);
* ``linear_beta=0.0``: linear layers are solved with β = 0; shortcuts with ``shortcut_beta`` 0.001
  (the function default the official call falls back to) and K = 1;
* ``max_p=9`` with ``max_p_decay=True``: ResNets, after each projection shortcut ``max_p -= 2``
  while ``max_p > 5``; nets without shortcuts, ``max_p -= 2`` at the second and later resolution
  drops (the official VGG hook positions); the first layer and shortcuts are never capped;
* chunking (``chunk_size=32``, ``chunk_above=None`` = the official rule: ``c_out*c_in > 64*32`` for
  a ResNet on 32-px input, else ``128*128``; never the first layer): convs are solved per block of
  ``chunk_size`` outputs, each with the full ``P_in``; linear layers with more than 5120 weights per
  blocks of 10 outputs;
* ``solver="auto"``: the integer program solved exactly by HiGHS (``scipy.optimize.milp``), the
  solver cvxpy 1.3.2 picks for the official ``prob.solve()`` (no cvxpy needed), for every chunk of at
  most ``MILP_MAX_KERNELS`` = 2048 kernels (``c_in * c_out``: every layer of ResNet-20, LeNet-5's
  convs); larger chunks use the fast solver below, because HiGHS needs seconds to minutes per chunk
  there (LeNet-300-100's 784x10 chunks: over 5 CPU-minutes for the first layer; the official code
  pays this).  ``solver="milp"`` forces HiGHS everywhere (the official behaviour, slow on wide layers).

Measured on ResNet-20 (CIFAR-10 shapes) with :mod:`pai.metrics.paths`, seeds 0/1/2: at density 0.01
the official code (cvxpy 1.9 -> HiGHS) keeps 593/577/582 effective nodes and 10^16.9/17.4/16.9 paths
with 2,731-2,768 weights; this default keeps 574/561/574 nodes and 10^17.2/17.3/17.3 paths with
exactly 2,709 weights and no dead weight.  At 0.1: official 701 nodes, 10^34.0-34.1; ours 701 nodes,
10^34.1.

Named options, and why:

* ``solver="fast"`` (everywhere): an exact greedy (:func:`.npb_solver.solve_fast`, O(c_in log c_in)
  per chunk, no MILP): the same optimal objective as HiGHS on every layer (tested on the ``P_in`` of
  real networks), but a different optimum -- it spreads each layer's weights evenly over the output
  channels, where HiGHS's vertex solutions are uneven -- so later layers see a flatter ``P_in`` and
  the mask differs (ResNet-20 @ 0.01: 581 nodes, 10^15.8 paths).  Use it where the MILP is too slow
  (ResNet-18/VGG-16: seconds instead of minutes).
* ``path_norm="max"``: the normaliser the official formula means, the true maximum of ``sum P_i x_i``
  under the budget and kernel cap (fill the highest-P channels); the official slice makes the path
  term ~C_in times smaller on sparse layers, so the node and kernel terms dominate there.
* ``path_bias=0.0``: pure path counts (no "bias paths" from conv biases); ``linear_beta=None``: β on
  linear layers too; ``node_term="paper"``: the paper's P-weighted node term (the code counts
  channels); ``max_p=None``: no cap (k*k); ``chunk_size=None``: whole layers (the fast solver needs
  no chunking).  The pre-change defaults of pai (``path_norm="max", path_bias=0, linear_beta=None,
  max_p=None, chunk_size=None, solver="fast"``) give 193 effective nodes and 10^23.8 paths on
  ResNet-20 @ 0.01 (``path_norm="max"`` alone: 180 nodes, 10^23.3): they maximise paths, not the
  node-path balance the method is about.
* ``finetune=False``: bare Alg. 1 without the official fine-tune pass.

Deviations from the official code that remain, and why:

* Exact counts: each layer keeps exactly its ERK budget (largest-remainder rounding), split exactly
  over its chunks; the official ``ceil`` per layer and chunk, ``int16`` truncation of solver output
  (2.9999 -> 2) and overfilled fine-tune kernels give 2,731 / 2,767 weights for a target of 2,709
  (ResNet-20 @ 0.01).  The official code also leaves the ``c_out % chunk_size`` remainder channels of
  a chunked layer dense (none in ResNet-20/VGG/ResNet-18, whose widths are multiples of 32); here
  the last chunk is just smaller.  ``K <= k*k`` (officially a larger ``max_p`` is kept).
* The fine-tune pass (official ``fine_tune_mask``): kept weights on no input->output path (zero
  gradient of the all-ones output) move to the kernels with the most effective weights, as
  officially, but (a) only to positions that are on a path (the official code fills whole kernels /
  whole shortcut columns, part of which can be dead again), (b) within the same layer, so every layer
  keeps its exact budget (officially the last kernel overfills and leftovers carry to the next
  layer), (c) linear layers too (officially skipped).  Liveness is recomputed before each layer, in
  forward order, as the official per-layer re-check does, because the weights moved in one layer
  open paths through later ones; a dead weight stays only where its layer has no free live position
  left.  ResNet-20 @ 0.01: 368 of 2,709 weights dead after bare Alg. 1, 0 after this pass (with the
  pre-change options 92 stayed dead when liveness came from a single backward pass; now 5).
* Layer order and inputs come from the traced graph (:mod:`pai.graph`), not forward-hook order, so
  the official VGG off-by-one (a conv before a max-pool receives its own output as ``P_in``) is gone;
  all average pools sum (the official code misses functional ones).
* Not implemented: ``--is_node_constraint`` (off by default in the official code).  Positions inside
  a kernel are seeded (official: unseeded ``np.random.shuffle``).

Networks beyond the paper's.  ``P_in`` is counted as :mod:`pai.metrics.flow` counts paths: every
elementwise activation (ReLU6, SiLU, GELU, Hardswish, Sigmoid, ...) acts as ReLU (on the nonnegative
all-ones forward ReLU is the identity, while a literal ReLU6 caps every count at 6), a squeeze-and-
excitation product passes its input unchanged and sends the gradient of the fine-tune pass into the
gate branch too, a functional LayerNorm (ConvNeXt's ``LayerNorm2d``) and stochastic depth are bypassed.
A grouped conv (groups ``G``) is ``G`` independent layer-wise problems, one per group with its inputs'
``P_in`` (no kernel joins two groups), its budget split equally over the groups; see
:func:`_solve_grouped`.

Other options: ``scheme`` (ERK), ``alpha``, ``beta``, ``time_limit`` (s per MILP call), ``threads``,
``stats`` (a dict to receive per layer the objective summed over chunks, K, kept count, seconds, and
``problems``: the per-chunk solver inputs).
"""
from __future__ import annotations

import copy
import math
import time
from typing import List, Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import fx, nn

from pai.pruners import register_pruner
from pai.graph import LayerNode, build_graph, gate_operand
from pai.metrics.flow import ACTIVATION_FUNCTIONS, ACTIVATION_METHODS, ACTIVATION_MODULES, is_stochastic_depth
from pai.masks import Mask, prunable_parameters
from pai.utils.seed import torch_generator
from pai.utils.threads import torch_threads
from pai.pruners.allocation import layer_budgets, round_budgets
from pai.pruners.npb_solver import NODE_TERMS, PATH_NORMS, materialize, npb_objective, refill, solve_fast, solve_milp
from pai.pruners.random import random_positions

SOLVERS = ("auto", "milp", "fast")
MILP_MAX_KERNELS = 64 * 32  # "auto": HiGHS up to this many kernels per chunk (all of ResNet-20), fast beyond
LINEAR_CHUNK, LINEAR_CHUNK_ABOVE = 10, 512 * 10  # official rule for wide linear layers
CHUNK_ABOVE, CHUNK_ABOVE_RESNET32 = 128 * 128, 64 * 32  # official conv rule (ResNet on 32 px: smaller)
_BYPASS = (nn.modules.batchnorm._BatchNorm, nn.GroupNorm, nn.LayerNorm,
           nn.modules.instancenorm._InstanceNorm, nn.modules.dropout._DropoutNd)


class _Captured(Exception):
    def __init__(self, value: torch.Tensor):
        self.value = value


def _sum_pool2d(x, *args, **kwargs):
    kwargs = dict(kwargs)
    names = ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad")
    kwargs.update(zip(names, args[:5]))
    kwargs["divisor_override"] = 1  # a sum over the window, padding counted as zeros
    return F.avg_pool2d(x, **kwargs)


def _window_sizes(size: int, out: int) -> torch.Tensor:
    i = torch.arange(out)
    return (torch.div((i + 1) * size + out - 1, out, rounding_mode="floor")
            - torch.div(i * size, out, rounding_mode="floor"))


def _sum_adaptive_pool2d(x, output_size, *args, **kwargs):
    y = F.adaptive_avg_pool2d(x, output_size)
    oh, ow = y.shape[-2:]
    cells = _window_sizes(x.shape[-2], oh)[:, None] * _window_sizes(x.shape[-1], ow)[None, :]
    return y * cells.to(y)


def _mean_as_sum(x, *args, **kwargs):
    return torch.sum(x, *args, **kwargs)


class _SumPool(nn.Module):
    def __init__(self, pool: nn.Module):
        super().__init__()
        self.pool = pool

    def forward(self, x):
        if isinstance(self.pool, nn.AvgPool2d):
            p = self.pool
            return _sum_pool2d(x, p.kernel_size, p.stride, p.padding, p.ceil_mode, p.count_include_pad)
        return _sum_adaptive_pool2d(x, self.pool.output_size)


_SUM_FUNCTIONS = {F.avg_pool2d: _sum_pool2d, F.adaptive_avg_pool2d: _sum_adaptive_pool2d,
                  torch.mean: _mean_as_sum}


def _gate_product(x, gate):
    """``x`` in value; the gradient also reaches the gate branch (a squeeze-and-excitation side branch,
    :mod:`pai.metrics.flow`), so its weights on input->gate paths are live."""
    return x * (1 + gate - gate.detach())


def _path_rewrite(gm: fx.GraphModule, node: fx.Node, modules) -> bool:
    """Rewrite ``node`` for path counting as :mod:`pai.metrics.flow` reads it: an elementwise activation
    becomes ReLU (ReLU6 would cap the counts at 6), a functional LayerNorm and stochastic depth are
    bypassed (gating products: :func:`_gate_product`).  Returns whether it rewrote ``node``."""
    target = node.target
    act = (node.op == "call_module" and isinstance(modules.get(target), ACTIVATION_MODULES)) or \
        (node.op == "call_function" and target in ACTIVATION_FUNCTIONS) or \
        (node.op == "call_method" and target in ACTIVATION_METHODS)
    bypass = (node.op == "call_function" and (target is F.layer_norm or is_stochastic_depth(node)))
    if act or bypass:
        if act:
            with gm.graph.inserting_after(node):
                new = gm.graph.call_function(torch.relu, (node.args[0],))
        else:
            new = node.args[0]
        node.replace_all_uses_with(new)
        gm.graph.erase_node(node)
        return True
    return False


class PathNet:
    """The float64 all-ones path-counting copy of a model (NPB's ``copynet``, cleaned up).

    ``input_paths(layer)`` runs the forward only until ``layer`` and returns its input summed over
    every dim but the channel: the number of input->layer paths through each input channel.
    """

    def __init__(self, model: nn.Module, input_shape, bias: float = 0.0):
        gm = fx.symbolic_trace(copy.deepcopy(model)).to("cpu", torch.float64).eval()
        modules = dict(gm.named_modules())
        for node in list(gm.graph.nodes):  # gates first: their sigmoid is rewritten below
            g = gate_operand(node, modules)
            if g is not None:
                node.op, node.target = "call_function", _gate_product
                node.args, node.kwargs = (node.args[1 - g], node.args[g]), {}
        for node in list(gm.graph.nodes):
            if _path_rewrite(gm, node, modules):  # activations, gates, functional norms, stochastic depth
                continue
            if node.op == "call_module":
                mod = gm.get_submodule(node.target)
                if isinstance(mod, _BYPASS):
                    node.replace_all_uses_with(node.args[0])
                    gm.graph.erase_node(node)
                elif isinstance(mod, (nn.AvgPool2d, nn.AdaptiveAvgPool2d)):
                    parent, _, leaf = node.target.rpartition(".")
                    setattr(gm.get_submodule(parent) if parent else gm, leaf, _SumPool(mod))
            elif node.op == "call_function" and node.target in _SUM_FUNCTIONS:
                node.target = _SUM_FUNCTIONS[node.target]
            elif node.op == "call_method" and node.target == "mean":
                node.op, node.target = "call_function", _mean_as_sum
        gm.graph.lint()
        gm.recompile()
        with torch.no_grad():
            for name, p in gm.named_parameters():
                p.fill_(bias if name.rpartition(".")[2] == "bias" else 1.0)
        self.net, self._target = gm, None
        self.x = torch.ones((1, *input_shape), dtype=torch.float64)

    def _hook(self, module_name: str):
        def hook(_module, inputs):
            if self._target == module_name:
                raise _Captured(inputs[0])
        return hook

    def input_paths(self, layer: LayerNode) -> np.ndarray:
        module = self.net.get_submodule(layer.module_name)
        handle = module.register_forward_pre_hook(self._hook(layer.module_name))
        self._target = layer.module_name
        try:
            with torch.no_grad():
                self.net(self.x)
        except _Captured as c:
            t = c.value
        else:
            raise RuntimeError(f"layer {layer.name!r} was not reached by the forward pass")
        finally:
            handle.remove()
            self._target = None
        dims = [d for d in range(t.dim()) if d != (1 if layer.kind == "conv" else t.dim() - 1)]
        return t.sum(dim=dims).numpy()

    def set_mask(self, layer: LayerNode, mask: torch.Tensor) -> None:
        with torch.no_grad():
            self.net.get_submodule(layer.module_name).weight.copy_(mask.to(torch.float64))

    def live(self, layers: List[LayerNode]) -> Mask:
        """Positions where a weight lies (or would lie) on an input->output path:
        ``d(sum out)/dw != 0``, from one backward through the current masks."""
        weights = {l.name: self.net.get_submodule(l.module_name).weight for l in layers}
        for w in weights.values():
            w.requires_grad_(True)
            w.grad = None
        with torch.enable_grad():
            self.net(self.x).sum().backward()
        return {k: w.grad != 0 for k, w in weights.items()}


def _chunks(layer: LayerNode, first: bool, chunk_size: Optional[int], chunk_above: int) -> List[slice]:
    c_out, c_in = layer.out_units, layer.in_units
    size = None
    if chunk_size is not None and not first:
        if layer.kind == "conv" and c_out * c_in > chunk_above:
            size = chunk_size
        elif layer.kind == "linear" and c_out * c_in > LINEAR_CHUNK_ABOVE:
            size = LINEAR_CHUNK
    size = size or c_out
    return [slice(s, min(s + size, c_out)) for s in range(0, c_out, size)]


def _solve_layer(layer: LayerNode, P: np.ndarray, budget: int, parts: List[slice], cap: int, alpha: float,
                 beta: float, solver: str, time_limit, kw: dict):
    """Kernel counts ``M`` (c_in x c_out; a grouped conv: c_in / groups x c_out, the weight's layout) of one
    layer, chunk by chunk, the budget split exactly."""
    if layer.groups > 1:
        return _solve_grouped(layer, P, budget, cap, alpha, beta, solver, time_limit, kw)
    k2 = layer.kernel[0] * layer.kernel[1]
    sizes = {i: (s.stop - s.start) * layer.in_units * k2 for i, s in enumerate(parts)}
    total = sum(sizes.values())
    n_parts = round_budgets({i: budget * v / total for i, v in sizes.items()}, sizes, budget)
    M = np.zeros((layer.in_units, layer.out_units), dtype=np.int64)
    objective, used_K, problems = 0.0, 0, []
    for i, s in enumerate(parts):
        c_out, n = s.stop - s.start, n_parts[i]
        # at least ceil(n / kernels) per kernel so the budget fits; never above k*k (official: can)
        K = min(k2, max(cap, math.ceil(n / (layer.in_units * c_out))))
        used_K = max(used_K, K)
        use = solver if solver != "auto" else ("milp" if layer.in_units * c_out <= MILP_MAX_KERNELS else "fast")
        if use == "fast":
            M[:, s] = solve_fast(P, c_out, K, n, alpha, beta, **kw)
        else:
            M[:, s] = solve_milp(P, c_out, K, n, alpha, beta, time_limit=time_limit, **kw)
        objective += npb_objective(M[:, s], P, K, n, alpha, beta, **kw)
        problems.append(dict(P=P, c_out=c_out, K=K, n=n, alpha=alpha, beta=beta, solver=use, **kw))
    return M, objective, used_K, problems


def _solve_grouped(layer: LayerNode, P: np.ndarray, budget: int, cap: int, alpha: float, beta: float, solver: str,
                   time_limit, kw: dict):
    """A grouped conv: every group is its own layer-wise problem (its inputs' ``P``, its outputs), since
    no kernel joins two groups; the budget is split equally over the (equal-sized) groups (largest
    remainders), and ``solver="auto"`` uses the exact fast solver (a depthwise conv has one problem per
    channel: HiGHS' set-up per problem would dominate).  A depthwise group (one input, one output) has
    one solution, its kernel keeps the whole group budget; its objective is not computed (NaN in
    ``stats``)."""
    G, k2 = layer.groups, layer.kernel[0] * layer.kernel[1]
    c_in, c_out = layer.in_units // G, layer.out_units // G
    n_parts = round_budgets({g: budget / G for g in range(G)}, {g: c_in * c_out * k2 for g in range(G)}, budget)
    use = "fast" if solver == "auto" else solver
    M = np.zeros((c_in, layer.out_units), dtype=np.int64)
    if c_in == 1 and c_out == 1:  # depthwise: one kernel per group, which keeps the group's whole budget
        M[0] = [n_parts[g] for g in range(G)]
        return M, float("nan"), int(M.max(initial=0)), []
    objective, used_K, problems = 0.0, 0, []
    for g in range(G):
        n, Pg, cols = n_parts[g], P[g * c_in:(g + 1) * c_in], slice(g * c_out, (g + 1) * c_out)
        K = min(k2, max(cap, math.ceil(n / (c_in * c_out))))
        used_K = max(used_K, K)
        if use == "fast":
            M[:, cols] = solve_fast(Pg, c_out, K, n, alpha, beta, **kw)
        else:
            M[:, cols] = solve_milp(Pg, c_out, K, n, alpha, beta, time_limit=time_limit, **kw)
        objective += npb_objective(M[:, cols], Pg, K, n, alpha, beta, **kw)
        problems.append(dict(P=Pg, c_out=c_out, K=K, n=n, alpha=alpha, beta=beta, solver=use, **kw))
    return M, objective, used_K, problems


def _check_options(solver, node_term, path_norm, chunk_size, max_p, max_p_decay, alpha, beta):
    if solver not in SOLVERS:
        raise ValueError(f"unknown NPB solver {solver!r}; valid: {', '.join(SOLVERS)}")
    if node_term not in NODE_TERMS:
        raise ValueError(f"unknown NPB node_term {node_term!r}; valid: {', '.join(NODE_TERMS)}")
    if path_norm not in PATH_NORMS:
        raise ValueError(f"unknown NPB path_norm {path_norm!r}; valid: {', '.join(PATH_NORMS)}")
    if chunk_size is not None and (not isinstance(chunk_size, int) or chunk_size < 1):
        raise ValueError(f"chunk_size must be None or a positive int, got {chunk_size!r}")
    if max_p is not None and (not isinstance(max_p, int) or max_p < 1):
        raise ValueError(f"max_p must be None or a positive int, got {max_p!r}")
    if not 0.0 <= alpha <= 1.0 or beta < 0:
        raise ValueError(f"need 0 <= alpha <= 1 and beta >= 0, got alpha={alpha}, beta={beta}")


@register_pruner("npb", needs_input_shape=True, revision=2,
                 revision_note="the official normaliser, options and MILP solver became the default")
def npb(model: nn.Module, density: float, *, seed: int, data=None, scheme: str = "erk",
        alpha: float = 0.01, beta: float = 1.0, shortcut_beta: float = 0.001, linear_beta: Optional[float] = 0.0,
        max_p: Optional[int] = 9, max_p_decay: bool = True, node_term: str = "count", path_norm: str = "official",
        path_bias: float = 1.0, solver: str = "auto", time_limit: Optional[float] = None,
        chunk_size: Optional[int] = 32, chunk_above: Optional[int] = None, scale_weight: bool = False,
        finetune: bool = True, threads: Optional[int] = 1, stats: Optional[dict] = None,
        input_shape=None) -> Mask:
    """Node-Path Balancing mask at ``density`` (fraction of weights kept); defaults = the official
    ResNet-20 recipe and rules, options and deviations: see the module docstring.

    ``threads``: torch threads while pruning (None: leave as set).  The path forwards are batch-1
    and latency-bound: on a busy 2-core machine two OpenMP threads made them ~40x slower than one.
    ``input_shape``: one input's (C, H, W) for the graph trace (default ``model.input_shape``).
    """
    _check_options(solver, node_term, path_norm, chunk_size, max_p, max_p_decay, alpha, beta)
    with torch_threads(threads):  # restored on exit
        params = prunable_parameters(model)
        graph = build_graph(model, input_shape)
        budgets = layer_budgets(model, density, scheme)
        paths = PathNet(model, graph.input_shape, bias=float(path_bias))
        gen = torch_generator(seed)
        first_layers = set(graph.first_layers())
        has_shortcuts = any(l.is_shortcut for l in graph)
        if chunk_above is None:  # official: ResNet-20's rule for any ResNet class on 32-px input
            chunk_above = CHUNK_ABOVE_RESNET32 if has_shortcuts and graph.input_shape[1] == 32 else CHUNK_ABOVE
        masks: Mask = {}
        drops, prev_h = 0, None
        for layer in graph:
            if layer.name in masks:
                raise ValueError(f"layer {layer.name!r} is called more than once in forward; NPB needs each "
                                 "prunable module used once")
            t0 = time.perf_counter()
            first = layer.index in first_layers
            if layer.kind == "conv" and not has_shortcuts and max_p_decay and max_p is not None:
                if prev_h is not None and layer.in_spatial[0] < prev_h:
                    drops += 1
                    if drops >= 2:
                        max_p = max(1, max_p - 2)
                prev_h = layer.in_spatial[0]
            P = paths.input_paths(layer)
            k2 = layer.kernel[0] * layer.kernel[1]
            cap = k2 if (first or layer.is_shortcut or max_p is None) else max_p
            if layer.is_shortcut:
                b = shortcut_beta
            elif layer.kind == "linear" and linear_beta is not None:
                b = linear_beta
            else:
                b = beta
            parts = _chunks(layer, first, chunk_size, chunk_above)
            kw = dict(node_term=node_term, official_maxpath=path_norm == "official")
            M, objective, used_K, problems = _solve_layer(layer, P, budgets[layer.name], parts, cap, alpha, b,
                                                          solver, time_limit, kw)
            weight = params[layer.name] if scale_weight else None
            mask = materialize(M, layer.shape, gen, weight)
            paths.set_mask(layer, mask)
            masks[layer.name] = mask
            if layer.is_shortcut and max_p_decay and max_p is not None and max_p > 5:
                max_p -= 2
            if stats is not None:
                stats[layer.name] = {"objective": objective, "chunks": len(parts), "K": used_K,
                                     "kept": int(mask.sum()), "seconds": time.perf_counter() - t0,
                                     "problems": problems}
        if finetune:
            _finetune(graph, paths, masks, gen)
        out = {k: masks[k].to(params[k].device) for k in masks}
        for name, p in params.items():  # a prunable module the forward never calls: random placement
            if name not in out:
                out[name] = random_positions(tuple(p.shape), budgets[name], gen).to(p.device)
        return out


def _finetune(graph, paths: PathNet, masks: Mask, gen: torch.Generator) -> None:
    """The fine-tune pass, layer by layer in forward order: recompute which positions lie on an
    input->output path (one backward through the current masks) whenever the layer has dead weights,
    move them (:func:`.npb_solver.refill`), and update the path network before the next layer."""
    layers = list(graph)
    live = paths.live(layers)
    for layer in layers:
        dead = masks[layer.name] & ~live[layer.name]
        if not bool(dead.any()):
            continue
        live = paths.live(layers)  # the layers before this one changed: their new paths count here
        masks[layer.name] = refill(layer, masks[layer.name], live[layer.name], gen)
        paths.set_mask(layer, masks[layer.name])
