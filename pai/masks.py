"""Masks: ``{parameter name: bool tensor}`` over the prunable weights of a model.

The convention of open_lth's ``Mask`` and of ``torch.ao.pruning``: keys are the fully qualified
parameter names exactly as ``model.named_parameters()`` gives them (``features.0.weight``).
Prunable = the weight of every ``nn.Conv2d`` and ``nn.Linear``, including the first layer, the
classifier and 1x1 shortcuts; never a bias or a BatchNorm parameter (the default of SynFlow,
PHEW, NPB and Random-pruning code alike).

``density`` is always the fraction of weights *kept*.  Masks from scores: :func:`topk_global` (exact
counts, ties by position) and the SynFlow repo's threshold rule :func:`threshold_mask_official`.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Dict, Iterable, Mapping

import torch
from torch import nn

from pai.utils.io import load_torch, save_torch

Mask = Dict[str, torch.Tensor]
PRUNABLE_TYPES = (nn.Conv2d, nn.Linear)


def prunable_modules(model: nn.Module) -> Dict[str, nn.Module]:
    """``{weight name: module}`` for every Conv2d/Linear, in registration (= forward) order."""
    out = {}
    for name, module in model.named_modules():
        if isinstance(module, PRUNABLE_TYPES):
            # parametrize moves the weight; report the name the user sees either way
            out[f"{name}.weight" if name else "weight"] = module
    return out


def prunable_parameters(model: nn.Module) -> Dict[str, nn.Parameter]:
    """``{weight name: Parameter}`` of the prunable weights, in forward order.

    A weight shared by several modules (tied weights) is refused: each prunable layer must own its
    weight.  Pruning it once would still leave two layers of the network graph with one mask, so the
    per-layer quantities everything here rests on (layer densities, ERK/allocation budgets, the
    bipartite graph of each layer, path counts) would count the tensor twice or describe a layer that
    has no weight of its own; refusing is the one answer that cannot report a wrong density."""
    params = dict(model.named_parameters())
    out = {}
    for key, module in prunable_modules(model).items():
        if key in params:
            out[key] = params[key]
        else:  # parametrized or torch-pruned module: the trainable tensor lives elsewhere
            out[key] = _original_weight(module)
    if not out:
        raise ValueError(f"{type(model).__name__} has no prunable (Conv2d/Linear) layer")
    owner: Dict[int, str] = {}
    for key, p in out.items():
        if id(p) in owner:
            from pai.utils.errors import UserError

            raise UserError(f"{type(model).__name__}: {owner[id(p)]!r} and {key!r} share one weight tensor (tied "
                            f"weights); pai prunes and counts each layer's own weight, so untie them (give each "
                            f"module its own nn.Parameter, e.g. a copy) before pruning, training or measuring")
        owner[id(p)] = key
    return out


def check_materialized(model: nn.Module, what: str = "model") -> None:
    """Refuse a model whose parameters or buffers are on the meta device (shapes, no values)."""
    for name, t in [*model.named_parameters(), *model.named_buffers()]:
        if t.is_meta:
            from pai.utils.errors import UserError

            raise UserError(f"{what} {type(model).__name__} has {name!r} on the meta device (a shape without "
                            f"values); materialise it first: model.to_empty(device='cpu'), then initialise or "
                            f"load_state_dict")


def _original_weight(module: nn.Module) -> nn.Parameter:
    if hasattr(module, "parametrizations") and "weight" in module.parametrizations:
        return module.parametrizations.weight.original
    if hasattr(module, "weight_orig"):
        return module.weight_orig
    return module.weight


def ones_mask(model: nn.Module) -> Mask:
    return {k: torch.ones_like(p, dtype=torch.bool) for k, p in prunable_parameters(model).items()}


def num_kept(mask: Mapping[str, torch.Tensor]) -> int:
    return int(sum(int(m.sum()) for m in mask.values()))


def num_total(mask: Mapping[str, torch.Tensor]) -> int:
    return int(sum(m.numel() for m in mask.values()))


def density(mask: Mapping[str, torch.Tensor]) -> float:
    """Global fraction of prunable weights kept."""
    return num_kept(mask) / max(1, num_total(mask))


def kept_layer_densities(mask: Mapping[str, torch.Tensor]) -> Dict[str, float]:
    """The fraction of weights each layer of ``mask`` actually keeps (the targets a pruner aims at
    are :func:`pai.pruners.allocation.target_layer_densities`)."""
    return {k: float(m.sum()) / m.numel() for k, m in mask.items()}


NOTHING_KEPT = "it keeps no weight at all (every entry is 0)"
MASK_VALUES_FIX = ("a mask is bool, or numbers that are exactly 0 or 1: write it with pai.masks.save_mask "
                   "(or threshold it yourself, e.g. m > 0.5)")


def check_mask_values(mask: Mapping[str, torch.Tensor], what: str = "mask", empty_ok: bool = False) -> None:
    """Raise :class:`pai.utils.errors.UserError` naming the tensor unless every entry of ``mask`` is bool or
    exactly 0/1 (a -1, a NaN or a 0.3 is not "kept": it is refused, not interpreted), and, unless
    ``empty_ok``, unless at least one weight is kept (the refusal :func:`pai.prune` gives).  Bool
    tensors cost one ``any()``."""
    from pai.utils.errors import UserError

    if not isinstance(mask, Mapping) or not mask:
        raise UserError(f"{what} is not a mask: a non-empty mapping of weight names to 0/1 tensors, got "
                        f"{'an empty mapping' if isinstance(mask, Mapping) else type(mask).__name__}")
    anything = False
    for k, m in mask.items():
        if not torch.is_tensor(m):
            try:
                m = torch.as_tensor(m)
            except (TypeError, ValueError, RuntimeError):
                raise UserError(f"{what}: entry {k!r} is a {type(m).__name__}, not a tensor; "
                                f"{MASK_VALUES_FIX}") from None
        if m.is_meta:
            raise UserError(f"{what}: tensor {k!r} is on the meta device (no values); {MASK_VALUES_FIX}")
        if m.dtype != torch.bool:
            if m.is_complex():
                raise UserError(f"{what}: tensor {k!r} is complex ({m.dtype}); {MASK_VALUES_FIX}")
            ok = m.eq(0).logical_or_(m.eq(1))  # NaN is neither
            if not bool(ok.all()):
                bad = ~ok
                value = m[bad].reshape(-1)[0].item()
                raise UserError(f"{what}: tensor {k!r} holds {value!r} ({str(m.dtype).replace('torch.', '')}, "
                                f"{int(bad.sum())} of {m.numel()} entries not 0/1); {MASK_VALUES_FIX}")
        anything = anything or bool(m.any())
    if not anything and not empty_ok:
        raise UserError(f"{what} is degenerate: {NOTHING_KEPT}; nothing can be trained or measured: prune "
                        f"at a density that keeps weights (python -m pai prune)")


def check_mask(model: nn.Module, mask: Mapping[str, torch.Tensor], what: str = "mask",
               empty_ok: bool = False) -> None:
    """Raise ``ValueError`` naming the layer when ``mask`` does not fit ``model``, or holds values that
    are not 0/1, or (unless ``empty_ok``) keeps no weight (:func:`check_mask_values`)."""
    check_mask_values(mask, what, empty_ok=empty_ok)
    params = prunable_parameters(model)
    missing = [k for k in params if k not in mask]
    extra = [k for k in mask if k not in params]
    if missing:
        raise ValueError(f"mask has no entry for prunable layer {missing[0]!r}"
                         + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
    if extra:
        raise ValueError(f"mask has an entry {extra[0]!r} that is not a prunable layer of "
                         f"{type(model).__name__}")
    for k, p in params.items():
        if tuple(mask[k].shape) != tuple(p.shape):
            raise ValueError(f"mask for layer {k!r} has shape {tuple(mask[k].shape)}, "
                             f"the weight has shape {tuple(p.shape)}")


def validate_density(density: float) -> float:
    density = float(density)
    if not (0.0 < density <= 1.0):
        raise ValueError(f"density must be in (0, 1] (fraction of weights kept), got {density}")
    return density


# ---- exact top-k masks with deterministic ties (score-based pruners, IMP, DST) ----------------

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


@torch.no_grad()
def apply_mask(model: nn.Module, mask: Mapping[str, torch.Tensor]) -> None:
    """Zero the pruned weights in place (one multi-tensor kernel)."""
    params = prunable_parameters(model)
    keys = [k for k in params if k in mask]
    weights = [params[k] for k in keys]
    torch._foreach_mul_(weights, [mask[k].to(device=w.device, dtype=w.dtype) for k, w in zip(keys, weights)])


def mask_to(mask: Mapping[str, torch.Tensor], device) -> Mask:
    return {k: m.to(device) for k, m in mask.items()}


def clone_mask(mask: Mapping[str, torch.Tensor]) -> Mask:
    return {k: m.clone() for k, m in mask.items()}


def masks_equal(a: Mapping[str, torch.Tensor], b: Mapping[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k].cpu(), b[k].cpu()) for k in a)


def save_mask(mask: Mapping[str, torch.Tensor], path: str | os.PathLike, meta: dict | None = None) -> Path:
    """Atomically write ``{"mask": ..., "meta": ...}`` (bool tensors on CPU)."""
    payload = {"mask": {k: m.detach().to("cpu", torch.bool) for k, m in mask.items()},
               "meta": dict(meta or {}), "density": density(mask)}
    return save_torch(payload, path)


MASK_FIX = "write it again with `python -m pai prune ... --out FILE` (or pai.masks.save_mask)"


def _load_payload(path: str | os.PathLike) -> dict:
    """The payload of a mask file: ``{"mask": {name: tensor}, "meta": ...}`` or a bare ``{name: tensor}``;
    a missing, empty, truncated or foreign file is a :class:`pai.utils.errors.UserError` naming it."""
    from pai.utils.errors import UserError

    payload = load_torch(path, what="mask file", fix=MASK_FIX)
    mask = payload.get("mask") if isinstance(payload, dict) and "mask" in payload else payload
    if (not isinstance(mask, dict) or not mask
            or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in mask.items())):
        raise UserError(f"mask file {path} holds no mask (a mapping of weight names to tensors); {MASK_FIX}")
    return payload if isinstance(payload, dict) and "mask" in payload else {"mask": mask, "meta": {}}


def load_mask(path: str | os.PathLike, model: nn.Module | None = None) -> Mask:
    """Read a mask written by ``save_mask``; with ``model`` given, check that it fits.  Every value must
    be 0/1 and one at least 1 (:func:`check_mask_values`): it is checked before the bool conversion,
    which would read a -1, a NaN or a 0.3 as "kept"."""
    raw = _load_payload(path)["mask"]
    check_mask_values(raw, f"mask file {path}")
    mask = {k: v.to(torch.bool) for k, v in raw.items()}
    if model is not None:
        check_mask(model, mask)
    return mask


def load_mask_meta(path: str | os.PathLike) -> dict:
    meta = _load_payload(path).get("meta", {})
    return meta if isinstance(meta, dict) else {}


# ---- adapters into plain PyTorch ------------------------------------------------------------

def to_torch_prune(model: nn.Module, mask: Mapping[str, torch.Tensor]) -> nn.Module:
    """Attach the mask with ``torch.nn.utils.prune.custom_from_mask`` (``weight_orig`` + hook)."""
    from torch.nn.utils import prune

    check_mask(model, mask)
    for key, module in prunable_modules(model).items():
        prune.custom_from_mask(module, "weight", mask[key].to(module.weight.device))
    return model


class _MaskParametrization(nn.Module):
    def __init__(self, mask: torch.Tensor):
        super().__init__()
        self.register_buffer("mask", mask)

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return weight * self.mask.to(weight.dtype)


def to_parametrize(model: nn.Module, mask: Mapping[str, torch.Tensor]) -> nn.Module:
    """Attach the mask with ``torch.nn.utils.parametrize`` (the original stays the same Parameter)."""
    from torch.nn.utils import parametrize

    check_mask(model, mask)
    for key, module in prunable_modules(model).items():
        parametrize.register_parametrization(module, "weight", _MaskParametrization(mask[key].to(module.weight.device)))
    return model


def from_model(model: nn.Module) -> Mask:
    """Read a mask back from a model in any of the three forms (pruned, parametrized, zeros)."""
    out = {}
    for key, module in prunable_modules(model).items():
        if hasattr(module, "weight_mask"):
            out[key] = module.weight_mask.detach().bool().clone()
        elif hasattr(module, "parametrizations") and "weight" in module.parametrizations:
            out[key] = module.parametrizations.weight[0].mask.detach().bool().clone()
        else:
            out[key] = module.weight.detach() != 0
    return out


def layer_table(mask: Mapping[str, torch.Tensor]) -> Iterable[tuple[str, tuple, int, int, float]]:
    """Rows ``(name, shape, kept, total, density)`` for printing."""
    for k, m in mask.items():
        kept = int(m.sum())
        yield k, tuple(m.shape), kept, m.numel(), kept / m.numel()


# ---- sanity checks of a pruner's choice within layers -----------------------------------------

SHUFFLES = ("layer",)


def layer_shuffle(mask: Mapping[str, torch.Tensor], seed: int) -> Mask:
    """``mask`` with the kept positions of each layer permuted uniformly at random: every layer keeps
    exactly as many weights as before, so the layer-wise densities are unchanged and only which weights
    a pruner chose within a layer is forgotten.  The sanity check of Frankle, Dziugaite, Roy & Carbin,
    "Pruning neural networks at initialization: why are we missing the mark?" (ICLR 2021, Sec. 5,
    "randomly shuffling the mask within each layer"): a method that passes it carries no information
    beyond its per-layer densities.

    Deterministic: one ``torch.Generator`` seeded with ``seed`` draws one permutation per layer, in
    the mask's key order.  A tensor holding anything but 0/1 (or False/True) is refused with a
    ``ValueError`` naming the layer: a score or a soft mask is not a mask to shuffle."""
    gen = torch.Generator().manual_seed(int(seed))
    out = {}
    for name, m in mask.items():
        if m.dtype != torch.bool and not bool(((m == 0) | (m == 1)).all()):
            bad = m[(m != 0) & (m != 1)].flatten()[0].item()
            raise ValueError(f"mask layer {name!r} holds {bad!r}: a mask is 0/1 (bool); layer_shuffle refuses "
                             "anything else")
        flat = m.detach().reshape(-1).to("cpu", torch.bool)
        perm = torch.randperm(flat.numel(), generator=gen)
        out[name] = flat[perm].view(m.shape).to(m.device)  # position i takes the bit of a uniform other one
    return out
