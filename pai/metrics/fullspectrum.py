"""The NeurIPS'23 full-spectrum coordinate of a layer, its norm (the PAGS criterion) and distances.

Hoang, Kundu, Liu & Wang, "Don't just prune by magnitude! Your mask topology is a secret weapon",
NeurIPS 2023; definitions from the first author's dev code (``ScottHoang/dst-ram-pruning``,
``sparselearning/ramanujan.py::total_spectrum_measurement``):

``v = (Delta_r, lambda, iterative Delta_r, iterative lambda)`` on the unrolled biadjacency with
the ``neurips`` rule of :mod:`pai.metrics.ramanujan` (raw, un-normalised ``Delta_r``; classes of
>= 2 nodes weighted by the Cheeger-like ``c_d``), weights ``|w * m|``.  The dev code writes ``inf``
for an invalid layer and 0 for a layer without a valid class, then maps ``inf -> 0`` before the
norm; ``invalid=0.0`` (default) reproduces that, ``invalid=float("nan")`` keeps ICLR-style NaN.
"""
from __future__ import annotations

import math
from typing import Dict, Mapping, NamedTuple, Optional, Sequence, Union

import numpy as np
import torch
from torch import nn

from pai.masks import check_mask, prunable_parameters
from pai.metrics.bipartite import layer_groups, unrolled_csr
from pai.metrics.ramanujan import delta_r, imdb, imdb_lambda, lam, layer_spectrum

FIELDS = ("delta_r", "lam", "it_delta_r", "it_lam")


class FullSpectrum(NamedTuple):
    delta_r: float  # Ramanujan gap of the mask
    lam: float  # weighted spectral gap sigma_1 - sigma_2 of |W * M|
    it_delta_r: float  # mean c_d * Delta_r over the degree classes
    it_lam: float  # mean c_d * lambda over the degree classes

    def norm(self) -> float:
        return full_spectrum_norm(self)


def full_spectrum(weight: torch.Tensor, mask: Optional[torch.Tensor] = None, rule: str = "neurips",
                  invalid: float = 0.0, groups: int = 1) -> FullSpectrum:
    """The coordinate of one layer (``mask`` defaults to ``weight != 0``; ``groups``: a grouped conv's,
    whose graph is block-diagonal, :mod:`pai.metrics.bipartite`)."""
    ls = layer_spectrum(unrolled_csr(weight, mask if mask is not None else weight != 0, groups=groups),
                        only_valid=rule)
    vals = (delta_r(ls, rule, normalized=False), lam(ls, rule), imdb(ls, rule, normalized=False),
            imdb_lambda(ls, rule))
    return FullSpectrum(*(invalid if math.isnan(v) else float(v) for v in vals))


def full_spectrum_norm(coord: Union[Sequence[float], Mapping[str, Sequence[float]]]) -> float:
    """``||v||_2`` of a coordinate: the dev code's per-layer "magnitude" that PAGS/PEGS maximise.

    Given ``{layer: coordinate}``, the mean of the layer norms (NaN layers ignored), the dev
    code's network-level score (``mean(layer_full_spectrum)``).
    """
    if isinstance(coord, Mapping):
        norms = [full_spectrum_norm(c) for c in coord.values()]
        norms = [n for n in norms if not math.isnan(n)]
        return float(np.mean(norms)) if norms else float("nan")
    return float(np.linalg.norm(np.asarray(coord, dtype=np.float64)))


def full_spectrum_distance(c1, c2) -> float:
    """Plain l2 distance of two coordinates, or of two ``{layer: coordinate}`` dicts over the same layers
    (the norm of the layer-stacked difference).  NaN entries propagate; the moving distance of a run,
    with its handling of invalid layers, is :func:`moving_distance`."""
    if isinstance(c1, Mapping) or isinstance(c2, Mapping):
        if not (isinstance(c1, Mapping) and isinstance(c2, Mapping)) or c1.keys() != c2.keys():
            raise ValueError("full_spectrum_distance needs two coordinates or two dicts over the same layers")
        a = np.concatenate([np.asarray(c1[k], dtype=np.float64) for k in c1])
        b = np.concatenate([np.asarray(c2[k], dtype=np.float64) for k in c1])
    else:
        a, b = np.asarray(c1, dtype=np.float64), np.asarray(c2, dtype=np.float64)
        if a.shape != b.shape:
            raise ValueError(f"coordinates of different lengths: {a.shape} vs {b.shape}")
    return float(np.linalg.norm(a - b))


MOVING_INVALID = ("zero", "drop")


def moving_distance(start: Mapping[str, Sequence[float]], end: Mapping[str, Sequence[float]],
                    invalid: str = "zero") -> Dict[str, object]:
    """The full-spectrum "l2-moving distance" of a subnetwork (Hoang, Kundu, Liu & Wang, NeurIPS 2023),
    the one function every caller uses (static runs in :mod:`pai.compendium.experiments`, DST in :mod:`pai.train.dst`).

    **Our reading.**  The abstract speaks of a subnetwork's "L2-distance from its original
    initialization" in the full-spectrum coordinate system; the authors' dev code
    (``ScottHoang/dst-ram-pruning``: ``itop_tickets_analysis.py``) compares the coordinates of a mask at
    its trained weights with those at the original init, and its coordinate maps ``inf`` (an invalid
    layer or part) to 0 (``ramanujan.py::total_spectrum_measurement``).  So per layer
    ``d_l = || v_l(end) - v_l(start) ||_2`` over ``v = (Delta_r, lambda, IMDB_r, IMDB_lambda)``, with NaN
    (undefined) entries read as 0 (``invalid="zero"``, the dev code; every layer counts), and the
    network value is the mean of ``d_l`` over layers, as every network score of the dev code is a mean
    over layers.  ``start``/``end`` are ``{layer: coordinate}`` over the same layers: for a trained
    fixed mask, ``(m, theta_0)`` and ``(m, theta_T)``; for DST, ``(m_0, theta_0)`` and ``(m_T, theta_T)``.

    ``invalid="drop"``: a layer counts iff its graph is valid (``Delta_r`` defined) at both ends; other
    NaN entries still count as 0.  Reason: an invalid layer has no coordinate, so zeros make a DST layer
    that crosses the validity threshold look like movement, and dilute the mean with layers that
    cannot move.

    Returns ``{"per_layer": {layer: d_l (NaN if dropped)}, "mean", "sum", "stacked": sqrt(sum d_l^2)
    (the dev code's layer-stacked norm), "valid_layers": layers with Delta_r defined at both ends}``.
    """
    if invalid not in MOVING_INVALID:
        raise ValueError(f"invalid must be one of {MOVING_INVALID}, got {invalid!r}")
    if start.keys() != end.keys():
        raise ValueError("moving_distance needs two coordinate maps over the same layers")
    per, valid_layers = {}, 0
    for k in start:
        x, y = np.asarray(start[k], dtype=np.float64), np.asarray(end[k], dtype=np.float64)
        valid = not (np.isnan(x[0]) or np.isnan(y[0]))
        valid_layers += valid
        x, y = (np.nan_to_num(v, nan=0.0, posinf=0.0, neginf=0.0) for v in (x, y))
        per[k] = float(np.linalg.norm(x - y)) if valid or invalid == "zero" else math.nan
    kept = [d for d in per.values() if not math.isnan(d)]
    return {"per_layer": per, "mean": float(np.mean(kept)) if kept else math.nan, "sum": float(np.sum(kept)),
            "stacked": float(np.sqrt(np.sum(np.square(kept)))), "valid_layers": valid_layers}


def network_full_spectrum(model: nn.Module, mask: Mapping[str, torch.Tensor], *, rule: str = "neurips",
                          invalid: float = 0.0, layers: Optional[Sequence[str]] = None,
                          weights: Optional[Mapping[str, torch.Tensor]] = None) -> Dict[str, FullSpectrum]:
    """``{layer: FullSpectrum}`` over the prunable layers (or ``layers``), weights from ``model``.

    ``weights`` overrides the model's (e.g. theta_0 for the "anchor" coordinate); the mask is
    checked against the model first (``ValueError`` naming the layer).
    """
    check_mask(model, mask)
    params = prunable_parameters(model)
    names = list(params) if layers is None else list(layers)
    unknown = [n for n in names if n not in params]
    if unknown:
        raise KeyError(f"unknown layer {unknown[0]!r}; prunable layers: {', '.join(params)}")
    src = params if weights is None else weights
    groups = layer_groups(model)
    return {n: full_spectrum(src[n].detach().cpu(), mask[n].cpu(), rule, invalid, groups[n]) for n in names}


def full_spectrum_summary(coords: Mapping[str, Sequence[float]]) -> Dict[str, float]:
    """Means over layers (NaN ignored) of each coordinate and of the layer norms."""
    arr = np.asarray([list(c) for c in coords.values()], dtype=np.float64).reshape(-1, len(FIELDS))
    out = {}
    for i, f in enumerate(FIELDS):
        col = arr[:, i][~np.isnan(arr[:, i])]
        out[f] = float(col.mean()) if len(col) else float("nan")
    out["norm"] = full_spectrum_norm(coords)
    return out
