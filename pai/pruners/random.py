"""Random pruning (uniform / ER / ERK budgets) and the layer-wise shuffle sanity check.

* ``random``: every layer keeps the same fraction of its weights, positions uniform at random —
  the "Rand" baseline of SNIP/GraSP/SynFlow (Tanaka et al., NeurIPS 2020, Fig. 6).
* ``random-erk`` / ``random-er``: layer densities from Erdős–Rényi(-Kernel), Evci et al., ICML 2020,
  Eq. in Sec. 3 ("RigL"), used for random pruning by Liu et al., "The unreasonable effectiveness of
  random pruning", ICLR 2022 (``VITA-Group/Random_Pruning: sparselearning/core.py``); the densities
  and the dense-layer capping live in :mod:`pai.pruners.allocation`.
* ``shuffle``: keep each layer's count of any mask and permute its positions uniformly — the
  layer-wise shuffle of Frankle, Dziugaite, Roy & Carbin, "Pruning neural networks at
  initialization: why are we missing the mark?", ICLR 2021 (Sec. 5), also PHEW's
  ``Prune/Utils.layerwise_randomshuffle``.

Deviations from the official code, all for exactness and reproducibility:

* Counts are exact.  The SynFlow repo thresholds i.i.d. N(0,1) scores globally and the
  Random_Pruning repo keeps each weight by an independent Bernoulli(p_l) draw, so their counts are
  right only in expectation.  Here each layer keeps exactly its integer budget
  (:func:`pai.pruners.allocation.layer_budgets`: largest remainder, global total
  ``round(density * N)``; for ``random`` every layer gets ``floor`` or ``ceil`` of ``density * N_l``),
  the positions a uniform draw without replacement.
* Every draw comes from one ``torch.Generator`` seeded by ``seed`` (the official repos seed only
  torch's global generator, or nothing).  The shuffle uses its own stream derived from ``seed``
  so that shuffling a ``random-erk`` mask made with the same seed does not reproduce it.
* The SynFlow repo's ``--shuffle`` flag is a no-op (its ``Pruner.shuffle`` rebinds a local name);
  this one shuffles.
"""
from __future__ import annotations

import os
from typing import Mapping

import numpy as np
import torch
from torch import nn

from pai.pruners import get, register_pruner
from pai.masks import Mask, check_mask, load_mask, prunable_parameters
from pai.utils.seed import torch_generator
from pai.pruners.allocation import layer_budgets

SHUFFLE_STREAM = 0x5F1  # salt: the shuffle's generator differs from the base method's


def derived_seed(seed: int, stream: int) -> int:
    """An independent 63-bit seed for sub-stream ``stream`` of ``seed`` (numpy's SeedSequence)."""
    return int(np.random.SeedSequence([int(seed) % 2**63, int(stream)]).generate_state(2, np.uint64)[0] >> 1)


def random_positions(shape, count: int, generator: torch.Generator) -> torch.Tensor:
    """A bool tensor of ``shape`` with exactly ``count`` True entries at uniformly random positions."""
    n = int(np.prod(shape)) if len(shape) else 1
    out = torch.zeros(n, dtype=torch.bool)
    if count:  # int32 when it fits: the same permutation and generator state, ~1.8x faster (less memory)
        dtype = torch.int32 if n < 2**31 else torch.int64
        out[torch.randperm(n, generator=generator, dtype=dtype)[:count].long()] = True
    return out.view(*shape)


def random_mask_with_budgets(model: nn.Module, budgets: Mapping[str, int], seed: int) -> Mask:
    g = torch_generator(seed)
    params = prunable_parameters(model)
    return {k: random_positions(tuple(p.shape), budgets[k], g).to(p.device) for k, p in params.items()}


def _random(scheme: str):
    def prune_random(model: nn.Module, density: float, *, seed: int, data=None) -> Mask:
        return random_mask_with_budgets(model, layer_budgets(model, density, scheme), seed)

    return prune_random


register_pruner("random")(_random("uniform"))
register_pruner("random-erk")(_random("erk"))
register_pruner("random-er")(_random("er"))


def shuffle_layerwise(mask: Mapping[str, torch.Tensor], seed: int) -> Mask:
    """Permute the entries of each layer's mask uniformly at random (counts kept per layer)."""
    g = torch_generator(derived_seed(seed, SHUFFLE_STREAM))
    out = {}
    for k, m in mask.items():
        flat = m.detach().reshape(-1).to("cpu", torch.bool)
        out[k] = flat[torch.randperm(flat.numel(), generator=g)].view(m.shape).to(m.device)
    return out


def _explicit_mask(options) -> bool:
    """With ``mask=`` the counts are the mask's: :func:`pai.prune` checks no count against ``density``."""
    return options.get("mask") is not None


@register_pruner("shuffle", density_free=_explicit_mask)
def prune_shuffle(model: nn.Module, density: float, *, seed: int, data=None, base: str = "random-erk",
                  base_options: Mapping | None = None, mask=None, input_shape=None) -> Mask:
    """Layer-wise shuffle of the mask of method ``base`` (run with ``base_options`` at ``density``,
    ``seed``, ``data`` and ``input_shape``), or of an explicit ``mask`` (a Mask or a path written by
    ``save_mask``; ``density`` is then ignored: the counts are the mask's)."""
    if mask is None:
        if base == "shuffle":
            raise ValueError("shuffle: base='shuffle' would recurse; pick another base method")
        fn = get(base)
        if fn.needs_data and data is None:
            raise ValueError(f"shuffle: base method {base!r} is data-dependent: pass data=")
        opts = dict(base_options or {})
        if fn.takes_input_shape:
            opts.setdefault("input_shape", input_shape)
        mask = fn(model, density, seed=seed, data=data, **opts)
    elif isinstance(mask, (str, os.PathLike)):
        mask = load_mask(mask)
    check_mask(model, mask)
    return shuffle_layerwise(mask, seed)
