"""Path metrics of a masked network: effective paths, effective nodes, dead weights, path-kernel trace, width.

* Effective paths / nodes / parameters: Pham et al., "Towards data-agnostic pruning at
  initialization: what makes a good sparse mask?" (NPB), NeurIPS 2023, Sec. 3 and
  the official ``pvh1602/NPB`` ``Utils/metrics.py::measure_node_path``.
* Path-kernel trace: Gebhart, Saxena & Schrater, "A unified paths perspective for pruning at
  initialization", arXiv 2101.10552 (2021), as computed by PHEW (Patil & Dovrolis, ICML 2021,
  ``ShreyasMalakarjunPatil/PHEW``, ``Prune/Utils.path_kernel_trace``).
* Width (units with at least one kept weight): PHEW's argument that wide sparse layers train
  better than SynFlow's bottlenecks, and NPB's "node" view.

All run a ``torch.fx`` trace of the model on ``ones(1, *input_shape)`` through
:mod:`pai.metrics.flow` (log-scaled, so ResNet-50 at any density neither overflows nor
underflows), on one torch thread (``flow.one_thread``).  Paths are counted in the spatially
unrolled graph, padding included; max pools stay max, as in NPB's ``copynet``.
"""
from __future__ import annotations

import math
from typing import Dict, Mapping, Optional, Tuple

import numpy as np
import torch
from torch import nn

from pai.graph import build_graph
from pai.masks import Mask, check_mask, prunable_parameters
from pai.metrics.flow import one_thread, run_flow

LN10 = math.log(10.0)
LN2 = math.log(2.0)


def _ldexp(x: float, e: int) -> float:
    try:
        return math.ldexp(x, e)
    except OverflowError:
        return float("inf")


def _shape(model: nn.Module, input_shape) -> Tuple[int, ...]:
    shape = input_shape if input_shape is not None else getattr(model, "input_shape", None)
    if shape is None:
        raise ValueError("path metrics need input_shape=(C, H, W) for a model without .input_shape")
    return tuple(int(s) for s in shape)


def _mask_cpu(model: nn.Module, mask: Mapping[str, torch.Tensor]) -> Mask:
    check_mask(model, mask)
    return {k: m.detach().to("cpu", torch.bool) for k, m in mask.items()}


@one_thread
def effective_paths(model: nn.Module, mask: Mapping[str, torch.Tensor], log10: bool = True, *,
                    input_shape=None, dtype: torch.dtype = torch.float64) -> float:
    """Number of input-output paths of the masked network (NPB's "effective paths").

    Every kept weight counts 1, biases 0, BatchNorm is bypassed, average pools sum: the sum of the
    outputs on an all-ones input is the path count of the unrolled graph.  ``log10`` (the NPB
    figures' axis) returns ``-inf`` when no path survives; otherwise the count itself (``inf`` past
    float64's range).  Deviation from NPB's code: biases are 0, not 1 (no "bias paths"), and
    functional average pools are summed too (NPB patches only pooling modules).
    """
    m = _mask_cpu(model, mask)
    out = run_flow(model, "paths", {k: v.to(dtype) for k, v in m.items()}, _shape(model, input_shape), dtype)
    total = float(out.t.sum())
    if total <= 0:
        return float("-inf") if log10 else 0.0
    if log10:
        return (out.s * LN2 + math.log(total)) / LN10
    return _ldexp(total, out.s)


@one_thread
def effective_mask(model: nn.Module, mask: Mapping[str, torch.Tensor], *, input_shape=None) -> Mask:
    """Kept weights that lie on at least one input-output path (NPB's "effective parameters").

    NPB: a kept weight whose gradient of ``sum(f(ones))`` (all weights 1, float64) is nonzero.  We
    compute the same set as graph reachability in Boolean form (:mod:`pai.metrics.flow`
    ``"support"`` mode, exact in float32 at any depth); the two differ only at max-pool ties,
    where a float gradient reaches one arbitrary window element and reachability reaches all.
    """
    m = _mask_cpu(model, mask)
    leaves = {k: v.to(torch.float32).requires_grad_(True) for k, v in m.items()}
    out = run_flow(model, "support", leaves, _shape(model, input_shape), torch.float32)
    grads = torch.autograd.grad(out.t.sum(), list(leaves.values()), allow_unused=True)
    return {k: (g > 0) & m[k] if g is not None else torch.zeros_like(m[k]) for k, g in zip(leaves, grads)}


def dead_weights(model: nn.Module, mask: Mapping[str, torch.Tensor], *, input_shape=None) -> Mask:
    """Kept weights on no input-output path (``mask & ~effective_mask``): pruning them changes nothing."""
    m = _mask_cpu(model, mask)
    alive = effective_mask(model, m, input_shape=input_shape)
    return {k: m[k] & ~alive[k] for k in m}


def count(m: torch.Tensor) -> int:
    """True entries of a bool tensor (numpy: torch's bool reductions are ~10x slower on CPU)."""
    return int(np.count_nonzero(m.detach().cpu().numpy()))


def _units(m: torch.Tensor, groups: int = 1) -> Tuple[int, int]:
    """(output units, input units) with at least one True entry of a Linear/Conv mask (a grouped conv's
    input units counted per group: its weight's axis 1 is local to each output's group)."""
    a = m.detach().cpu().numpy()
    flat = a.reshape(a.shape[0], a.shape[1], -1).any(-1)
    if groups > 1:
        return int(np.count_nonzero(flat.any(1))), int(np.count_nonzero(flat.reshape(groups, -1, a.shape[1]).any(1)))
    return int(np.count_nonzero(flat.any(1))), int(np.count_nonzero(flat.any(0)))


@one_thread
def effective_nodes(model: nn.Module, mask: Mapping[str, torch.Tensor], *, input_shape=None,
                    alive: Optional[Mapping[str, torch.Tensor]] = None) -> Dict:
    """Effective nodes: units touched by at least one effective weight (NPB Sec. 3.1).

    Per layer ``{"in": input channels/features, "out": output channels/features}`` with an
    effective weight.  ``total`` follows NPB's ``measure_node_path``: the effective *inputs* of
    every layer that is not a projection shortcut (each hidden unit counted once, as the input of
    the layer it feeds), plus the effective *outputs* of the layers feeding the logits (NPB: "FC
    effective inputs + FC effective outputs"; identical on their single-FC models, and it counts
    each unit of an MLP once).  NPB plots ``ln(total)``.  ``params`` = effective weight count.
    ``alive``: a precomputed :func:`effective_mask` of this mask.
    """
    if alive is None:
        alive = effective_mask(model, mask, input_shape=input_shape)
    graph = build_graph(model, _shape(model, input_shape))
    layers, total = {}, 0
    for layer in graph:
        out_u, in_u = _units(alive[layer.name], layer.groups)
        layers[layer.name] = {"in": in_u, "out": out_u}
        if not layer.is_shortcut:
            total += layers[layer.name]["in"]
    total += sum(layers[graph[i].name]["out"] for i in graph.last_layers())
    return {"total": total, "layers": layers, "params": sum(count(a) for a in alive.values())}


@one_thread
def path_kernel_trace(model: nn.Module, mask: Mapping[str, torch.Tensor], log: bool = True, *,
                      input_shape=None, dtype: torch.dtype = torch.float64) -> float:
    """Trace of the path kernel, ``Tr = sum_w dR/d(theta_w^2)`` (PHEW's ``path_kernel_trace``).

    Every parameter is squared (weights masked, biases and BatchNorm affine too), the network
    runs in eval mode on ones, ``R = sum f(x)``, and ``Tr`` sums the gradients w.r.t. the squared
    kept weights.  With nonnegative flows ``R = sum_paths prod theta_e^2`` and ``Tr = sum_e
    ||d pi / d theta_e||^2``, the trace of Gebhart et al.'s path kernel.  ``log`` returns
    ``log10(Tr)`` (``-inf`` when no path survives, NaN if a trained network makes ``Tr <= 0``).
    PHEW computes it in float32 and overflows on deep networks; we carry the log scale.
    """
    m = _mask_cpu(model, mask)
    prunable = prunable_parameters(model)
    leaves = {k: ((p.detach().cpu().to(dtype) ** 2) * m[k]).requires_grad_(True) for k, p in prunable.items()}
    skip = {id(p) for p in prunable.values()}
    params = {n: p.detach().cpu().to(dtype) ** 2 for n, p in model.named_parameters() if id(p) not in skip}
    out = run_flow(model, "kernel", leaves, _shape(model, input_shape), dtype, params=params)
    grads = torch.autograd.grad(out.t.sum(), list(leaves.values()), allow_unused=True)
    scaled = sum(float((g * m[k]).sum()) for k, g in zip(leaves, grads) if g is not None)
    if scaled == 0:
        return float("-inf") if log else 0.0
    if scaled < 0:
        return float("nan") if log else -_ldexp(-scaled, out.s)
    return (out.s * LN2 + math.log(scaled)) / LN10 if log else _ldexp(scaled, out.s)


def layer_width(mask: Mapping[str, torch.Tensor], groups: Optional[Mapping[str, int]] = None
                ) -> Dict[str, Dict[str, int]]:
    """Per layer: output and input units with at least one kept weight, and their totals (``groups``:
    ``{layer: groups}`` of grouped convs, :func:`pai.metrics.bipartite.layer_groups`; default 1)."""
    out = {}
    for k, m in mask.items():
        m = m.detach().to("cpu", torch.bool)
        if m.dim() not in (2, 4):
            raise ValueError(f"layer {k!r}: expected a Linear or Conv2d mask, got shape {tuple(m.shape)}")
        g = (groups or {}).get(k, 1)
        o, i = _units(m, g)
        out[k] = {"out": o, "in": i, "out_total": m.shape[0], "in_total": m.shape[1] * g}
    return out
