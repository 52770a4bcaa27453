"""Shared pieces of score-based pruners: exact top-k masks with deterministic ties."""
from __future__ import annotations

from typing import Dict, Mapping

import torch

from ..masks import Mask


def topk_global(scores: Mapping[str, torch.Tensor], keep: int) -> Mask:
    """Keep the ``keep`` highest scores over all layers together (one global threshold).

    Exact count, unlike the official ``score > kthvalue`` rule of the SynFlow code which prunes every
    weight tied at the threshold (GitHub ganguli-lab/Synaptic-Flow#12).  Ties are broken by position
    (earlier layer, then lower flat index), so the result is deterministic.
    """
    keys = list(scores)
    flat = torch.cat([scores[k].detach().reshape(-1).to(torch.float64) for k in keys])
    out = topk_flat(flat.cpu(), keep)
    masks, start = {}, 0
    for k in keys:
        n = scores[k].numel()
        masks[k] = out[start:start + n].view(scores[k].shape).to(scores[k].device)
        start += n
    return masks


def topk_flat(flat: torch.Tensor, keep: int) -> torch.Tensor:
    """Bool vector marking the ``keep`` highest entries of a 1-d tensor, ties by lower index.

    Same result as a stable sort on ``-flat`` but O(N): one ``kthvalue`` gives the threshold,
    everything above it is kept and the ties at it are filled in index order (a full sort of the
    11 M ResNet-18 scores takes ~2 s on a CPU core, ``kthvalue`` ~0.2 s; SynFlow selects 100 times).
    NaN ranks lowest, as it does after the sort.
    """
    n = flat.numel()
    keep = int(max(0, min(keep, n)))
    if keep == 0 or keep == n:
        return torch.full((n,), keep == n, dtype=torch.bool, device=flat.device)
    flat = torch.nan_to_num(flat, nan=-float("inf"), posinf=float("inf"), neginf=-float("inf"))
    tau = torch.kthvalue(flat, n - keep + 1).values
    above = flat > tau
    ties = flat == tau
    need = keep - int(above.sum())
    return above | (ties & (torch.cumsum(ties, 0) <= need))


def topk_layer(score: torch.Tensor, keep: int) -> torch.Tensor:
    """Keep the ``keep`` highest entries of one tensor (ties by position)."""
    return topk_global({"w": score}, keep)["w"]


def topk_layerwise(scores: Mapping[str, torch.Tensor], budgets: Mapping[str, int]) -> Dict[str, torch.Tensor]:
    return {k: topk_layer(scores[k], budgets[k]) for k in scores}


def threshold_mask_official(scores: Mapping[str, torch.Tensor], density: float) -> Mask:
    """The SynFlow repo's rule, for faithful mode: ``k = int((1-d) N)``, ``tau = kthvalue(all, k)``,
    keep ``score > tau`` (ties at tau are pruned, so the count can fall short)."""
    flat = torch.cat([s.detach().reshape(-1) for s in scores.values()])
    k = int((1.0 - density) * flat.numel())
    if k < 1:
        return {n: torch.ones_like(s, dtype=torch.bool) for n, s in scores.items()}
    tau = torch.kthvalue(flat.cpu(), k).values
    return {n: s.detach() > tau.to(s.device) for n, s in scores.items()}
