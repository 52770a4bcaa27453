"""Per-layer table and network summary of every graph and path metric (the rows the figures read).

``layer_metrics`` computes each layer's unrolled spectra once (:func:`pai.metrics.ramanujan.
layer_spectrum`) and reads both rule sets off it; ``network_metrics`` aggregates the way the
papers do: ICLR'23 means over *valid* layers (``rm_norm_mean``, ``irm_norm_mean``,
``random_factor_mean``, ``perc_ram_by_rm``), NeurIPS'23 the mean over layers of the
full-spectrum norm (invalid -> 0, as its dev code), NPB log10 paths and effective nodes, PHEW
the log10 path-kernel trace, RReg the mean sampled expansion of the channel graphs.
"""
from __future__ import annotations

import copy
import math
from typing import Dict, Iterable, List, Mapping, Optional

import numpy as np
import torch
from torch import nn

from pai.masks import check_mask, check_materialized, prunable_parameters
from pai.metrics import paths as P
from pai.metrics.bipartite import biadjacency, layer_groups, unrolled_csr
from pai.metrics.ramanujan import delta_r, imdb, imdb_lambda, lam, layer_spectrum, narc_of
from pai.metrics.spectral import spectral_gap, vertex_expansion

INCLUDE = ("spectral", "expansion", "paths", "kernel")
NAN = float("nan")


def _include(include: Optional[Iterable[str]]) -> set:
    chosen = set(INCLUDE if include is None else include)
    bad = chosen - set(INCLUDE)
    if bad:
        raise ValueError(f"unknown metric group {sorted(bad)[0]!r}; valid: {', '.join(INCLUDE)}")
    return chosen


def _zero_nan(x: float) -> float:
    return 0.0 if math.isnan(x) else x


def layer_metrics(model: nn.Module, mask: Mapping[str, torch.Tensor], *, include: Optional[Iterable[str]] = None,
                  expansion_samples: int = 1000, seed: int = 0, input_shape=None,
                  alive: Optional[Mapping[str, torch.Tensor]] = None) -> List[Dict]:
    """One dict per prunable layer, in forward order.

    Keys: ``layer, shape, kept, total, density, width_out, width_in`` always; with ``"spectral"``:
    ``d_left, d_right`` (mean unrolled degrees over non-isolated nodes), ``sigma1, sigma2, gap``
    (mask), ``delta_r, delta_r_norm, imdb, narc`` (ICLR rule, NaN when invalid), ``lambda,
    it_delta_r, it_lambda`` (NeurIPS rule, NaN when invalid) and ``fs_norm`` (the NeurIPS
    coordinate's norm, invalid parts -> 0); ``"expansion"``: ``expansion`` (channel graph, RReg
    estimate); ``"paths"``: ``eff_weights, dead_weights, eff_in, eff_out`` (``alive``: a
    precomputed :func:`pai.metrics.paths.effective_mask`).
    """
    chosen = _include(include)
    check_materialized(model)
    check_mask(model, mask)
    params = prunable_parameters(model)
    groups = layer_groups(model)
    widths = P.layer_width(mask, groups)
    if "paths" in chosen and alive is None:
        alive = P.effective_mask(model, mask, input_shape=input_shape)
    elif "paths" not in chosen:
        alive = None
    rows = []
    for name, p in params.items():
        m = mask[name].detach().to("cpu", torch.bool)
        kept = P.count(m)
        row = {"layer": name, "shape": tuple(m.shape), "kept": kept, "total": m.numel(),
               "density": kept / m.numel(), "width_out": widths[name]["out"], "width_in": widths[name]["in"]}
        if "spectral" in chosen:
            ls = layer_spectrum(unrolled_csr(p.detach().cpu(), m, groups=groups[name]))
            coord = [delta_r(ls, "neurips", False), lam(ls, "neurips"), imdb(ls, "neurips"),
                     imdb_lambda(ls, "neurips")]
            row.update(d_left=ls.graph.d_left, d_right=ls.graph.d_right, sigma1=ls.s1_bin, sigma2=ls.s2_bin,
                       gap=ls.s1_bin - ls.s2_bin, delta_r=delta_r(ls, "iclr", False),
                       delta_r_norm=delta_r(ls, "iclr", True), imdb=imdb(ls, "iclr"), narc=narc_of(ls),
                       it_delta_r=coord[2], it_lambda=coord[3],
                       fs_norm=float(np.linalg.norm([_zero_nan(c) for c in coord])))
            row["lambda"] = coord[1]
        if "expansion" in chosen:
            row["expansion"] = vertex_expansion(biadjacency(None, m, "channel", groups=groups[name]),
                                                expansion_samples, seed)
        if alive is not None:
            eff = P.count(alive[name])
            out_u, in_u = P._units(alive[name], groups[name])
            row.update(eff_weights=eff, dead_weights=kept - eff, eff_out=out_u, eff_in=in_u)
        rows.append(row)
    return rows


def _mean(rows: List[Dict], key: str) -> float:
    vals = [r[key] for r in rows if key in r and not math.isnan(r[key])]
    return float(np.mean(vals)) if vals else NAN


def network_metrics(model: nn.Module, mask: Mapping[str, torch.Tensor], *, include: Optional[Iterable[str]] = None,
                    expansion_samples: int = 1000, seed: int = 0, input_shape=None,
                    rows: Optional[List[Dict]] = None) -> Dict[str, float]:
    """Network summary (pass ``rows`` from :func:`layer_metrics` to avoid recomputing them).

    ``density, kept, layers``; ``"spectral"``: ``delta_r_norm, imdb, narc`` (means over valid
    layers), ``valid_layers``, ``perc_ramanujan`` (share of valid layers with ``Delta_r > 0``),
    ``fs_norm, lambda, it_lambda``; ``"expansion"``: ``expansion``; ``"paths"``:
    ``log10_paths, effective_nodes, effective_params, dead_weights``; ``"kernel"``:
    ``log10_path_kernel_trace``.
    """
    chosen = _include(include)
    check_materialized(model)
    check_mask(model, mask)
    alive = P.effective_mask(model, mask, input_shape=input_shape) if "paths" in chosen else None
    if rows is None:
        rows = layer_metrics(model, mask, include=chosen - {"kernel"}, expansion_samples=expansion_samples,
                             seed=seed, input_shape=input_shape, alive=alive)
    kept, total = sum(r["kept"] for r in rows), sum(r["total"] for r in rows)
    out = {"density": kept / max(total, 1), "kept": kept, "layers": len(rows)}
    if "spectral" in chosen:
        valid = [r for r in rows if not math.isnan(r["delta_r"])]
        out.update(delta_r_norm=_mean(rows, "delta_r_norm"), imdb=_mean(rows, "imdb"), narc=_mean(rows, "narc"),
                   valid_layers=len(valid),
                   perc_ramanujan=(sum(r["delta_r"] > 0 for r in valid) / len(valid)) if valid else NAN,
                   fs_norm=_mean(rows, "fs_norm"), it_lambda=_mean(rows, "it_lambda"))
        out["lambda"] = _mean(rows, "lambda")
    if "expansion" in chosen:
        out["expansion"] = _mean(rows, "expansion")
    if "paths" in chosen:
        nodes = P.effective_nodes(model, mask, input_shape=input_shape, alive=alive)
        out.update(log10_paths=P.effective_paths(model, mask, input_shape=input_shape),
                   effective_nodes=nodes["total"], effective_params=nodes["params"],
                   dead_weights=kept - nodes["params"])
    if "kernel" in chosen:
        out["log10_path_kernel_trace"] = P.path_kernel_trace(model, mask, input_shape=input_shape)
    return out


def channel_spectral_gap(mask: Mapping[str, torch.Tensor], groups: Optional[Mapping[str, int]] = None) -> float:
    """Mean over layers of sigma1 - sigma2 of the channel-level biadjacency (an edge = a non-empty kernel),
    the graph RReg and X-Net build (Stewart et al., CVPRW 2023); NaN layers are left out.  ``groups``:
    ``{layer: groups}`` of grouped convs (:func:`pai.metrics.bipartite.layer_groups`; default 1)."""
    groups = groups or {}
    gaps = [spectral_gap(biadjacency(None, m, "channel", groups=groups.get(k, 1))) for k, m in mask.items()]
    gaps = [g for g in gaps if not math.isnan(g)]
    return sum(gaps) / len(gaps) if gaps else math.nan


def run_metrics(model: nn.Module, mask: Mapping[str, torch.Tensor],
                init_state: Optional[Mapping[str, torch.Tensor]] = None, *, input_shape=None) -> Dict:
    """What a run records of its mask (``metrics.json``): :func:`network_metrics` and the channel
    spectral gap, on ``model``'s weights or, given, on ``init_state`` (the weights the mask was chosen
    on: PEGS' theta_T); ``model`` is left as it is."""
    if init_state is not None:
        model = copy.deepcopy(model)
        model.load_state_dict(init_state)
    out = network_metrics(model, mask, input_shape=input_shape)
    out["channel_spectral_gap"] = channel_spectral_gap(mask, layer_groups(model))
    return out
