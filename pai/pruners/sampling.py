"""PAGS and PEGS: sample many masks from a PaI method, keep the best by the full-spectrum criterion.

Hoang, Kundu, Liu & Wang, "Don't just prune by magnitude! Your mask topology is a secret weapon",
NeurIPS 2023.  The procedure follows the first author's dev code (``ScottHoang/dst-ram-pruning``,
``lth_tickets_generation.py``):

* reference mask = the generator's standard mask (here ``pai.prune(model, generator, seed=seed)``);
  it initialises ``best``;
* ``candidates`` more masks from the same generator, candidate ``i`` seeded by
  :func:`candidate_seed` ``(seed, i)``: data-dependent generators (snip, grasp) score on their own
  seeded random mini-batches (the ``seed`` picks the prune subset); deterministic data-free ones
  (synflow, synflow-l2, magnitude) run on a copy of the model with fresh seeded Gaussian noise added
  to the prunable weights (:func:`add_init_noise`); random ones (random, random-erk, phew, npb ...)
  are random by their seed alone;
* every layer of every mask is scored by the full-spectrum coordinate
  ``v = (Δr, λ, IMDB_r, IMDB_λ)`` of :mod:`pai.metrics.spectral` with ``λ`` on the model's *current*
  weights (θ_0 for PAGS, θ_T for PEGS), never the noisy copy's;
* ``select="layerwise"`` (official): for each layer, in candidate order, the candidate's layer
  replaces the best one iff ``IMDB_r(cand) >= IMDB_r(best)`` and ``‖v‖₂(cand) >= ‖v‖₂(best)``, so
  the result is a mosaic of layers from different samples and every layer of it is at least as good
  as the reference's on both numbers.  ``select="global"`` (the reading of the 3rd-party
  ``Memoristor/WideTopo`` ``PAGS_SNIP``): one whole mask, the argmax over {reference, candidates} of
  ``Σ_ℓ ‖v_ℓ‖₂`` (ties to the earliest, the reference first).

PEGS = the same search after ``pretrain_iterations`` (500, the dev code's default) of dense SGD
(lr 0.1, momentum 0.9, Nesterov, weight decay 5e-4, as ``lth_tickets_pretraining.py``) on a copy;
the candidates and λ use θ_T and sparse training should start from θ_T ⊙ m (``return_state=True``).

Density.  Generators whose per-layer counts do not depend on the seed (random, random-erk, random-er,
npb) give every sample the same counts, so the mosaic keeps the density exactly.  For global-threshold
generators (snip, grasp, synflow, magnitude; phew too) layers from different samples have different
counts and the official code lets the total drift (it only prints it).  Here a swap is refused when
it would take the kept count more than ``max_density_drift`` (relative, default 0.01) away from the
reference's, so ``|kept(result) - kept(reference)| <= max_density_drift * kept(reference)`` always
holds; ``max_density_drift=None`` is the official unbounded rule (the density is in ``SamplingResult``).

Cost: one generator call per candidate, and as little scoring as the rule allows.  In layerwise mode a
candidate layer replaces the best one only if its IMDB_r is at least the best's, so each layer is first
checked against a rigorous upper bound of its IMDB_r (:func:`layer_imdb_r_upper`: Rayleigh-Ritz lower
bounds of the degree classes' ``sigma_2``, a few batched Lanczos steps, no full eigen-solve); only a
layer the bound cannot reject is scored exactly, by the same code as before, and compared by the same
rule.  The bound only ever skips layers the rule would reject, so the selection is the one of scoring
everything (the tests pin it).  Global mode needs every norm and scores every layer.  ResNet-18
(torchvision layers, 3x32x32), random-erk, density 0.01, 100 candidates, one thread:
``python -m pai.bench pags`` (numbers in its docstring).

Deviations from the dev code, and why:

* NaN/inf scores (layers too sparse for the metric) count as 0 in the comparisons, as the dev code's
  ``inf_to_zero``; otherwise one invalid layer could never be replaced.
* The density drift of the mosaic is bounded by default (above), so that methods compare at the
  density they claim.
* The reference is the generator's own standard mask (e.g. SNIP on its default prune subset), not a
  special run over the whole training loader, and the candidates use the same options unless
  ``candidate_options`` says otherwise (the dev code scores each candidate on ~4 batches of 100);
  the dev code's population is 2000-3000, ours ``candidates=100``; no snapshots every 10
  candidates (only the final mosaic is returned).
* The noise std is the init's scale of pai's models, Kaiming-normal fan-in ``sqrt(2 / fan_in)`` on
  every layer (the dev code draws its own init's scale: He fan-out for conv, N(0, 0.01) for linear);
  ``noise_scale`` multiplies it (the dev code's ``noise_scaler`` is ignored there, i.e. 1).
* Every random choice is seeded; the dense pre-training draws its batches from a seeded generator
  (no augmentation by default, as ``TrainConfig``), and ``num_classes`` is the data's (the dev code
  hard-codes 100).
"""
from __future__ import annotations

import copy
import math
import warnings
from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from pai.pruners import get, register_pruner
from pai.masks import Mask, masks_equal, num_kept, prunable_parameters
from pai.utils.progress import progress_reporter
from pai.utils.seed import seed_everything, torch_generator

SELECT = ("layerwise", "global")
NOISY_GENERATORS = frozenset({"synflow", "synflow-l2", "magnitude"})  # deterministic given the weights
SHAPE_ONLY = frozenset({"random", "random-erk", "random-er"})  # read the layer shapes only, change nothing
SELF = frozenset({"pags", "pegs"})
CANDIDATE_STREAM = 0x9A65  # salts of the seed sub-streams: candidates, their noise, pre-training
NOISE_STREAM = 0x9A66
PRETRAIN_STREAM = 0x9A67

Scores = Tuple[float, float]  # (‖v‖₂, IMDB_r) of one layer


@dataclass
class SamplingResult:
    """What a search found.  ``source[layer]`` is 0 for the reference, ``i`` for candidate ``i``."""

    mask: Mask
    source: Dict[str, int]
    scores: Dict[str, Scores]  # of the selected layers
    reference_scores: Dict[str, Scores]
    candidate_seeds: List[int]
    density: float
    totals: List[float] = field(default_factory=list)  # Σ_ℓ ‖v_ℓ‖₂ per sample (global mode)


def candidate_seed(seed: int, i: int, stream: int = CANDIDATE_STREAM) -> int:
    """Independent 63-bit seed of candidate ``i`` of a search seeded by ``seed`` (numpy SeedSequence)."""
    ss = np.random.SeedSequence([int(seed) % 2**63, int(stream), int(i)])
    return int(ss.generate_state(2, np.uint64)[0] >> 1)


def layer_scores(weight: torch.Tensor, mask: torch.Tensor) -> Scores:
    """``(‖v‖₂, IMDB_r)`` of one layer, NaN/inf mapped to 0 (the dev code's ``inf_to_zero``)."""
    full_spectrum, full_spectrum_norm = _spectrum_fns()
    coord = full_spectrum(weight.detach(), mask)
    return _finite(full_spectrum_norm(coord)), _finite(coord[2])


def _spectrum_fns():
    from pai.metrics.spectral import full_spectrum, full_spectrum_norm  # lazy: scipy loads only to score

    return full_spectrum, full_spectrum_norm


def layer_imdb_r(mask: torch.Tensor) -> float:
    """``IMDB_r`` of one layer alone, NaN/inf mapped to 0: equal, bit for bit, to ``layer_scores(w, mask)[1]``.

    IMDB_r reads only the mask's degree classes and their binary ``sigma_2``, so the weights, the whole
    layer's solves and the weighted class solves (about half of a layer's eigen-solves) are skipped; the
    classes and their solves are the same calls on the same matrices as in the full score.
    """
    from pai.metrics.bipartite import unrolled_csr
    from pai.metrics.ramanujan import imdb, layer_spectrum

    ls = layer_spectrum(unrolled_csr(None, mask), weighted=False, only_valid="neurips", whole=False)
    return _finite(imdb(ls, "neurips", normalized=False))


def layer_imdb_r_upper(mask: torch.Tensor, below: Optional[float] = None) -> float:
    """A number ``>=`` :func:`layer_imdb_r` (:func:`pai.metrics.ramanujan.imdb_upper_bound`; 0 where that is 0);
    the tighter stages are skipped once it is under ``below``."""
    from pai.metrics.bipartite import unrolled_csr
    from pai.metrics.ramanujan import imdb_upper_bound

    return _finite(imdb_upper_bound(unrolled_csr(None, mask), "neurips", normalized=False, below=below))


class LazyScores(Mapping):
    """``{layer: (‖v‖₂, IMDB_r)}`` of one mask, each layer scored on first access (then cached);
    :meth:`imdb_r` gives IMDB_r alone at about half the cost.  The layerwise rule reads IMDB_r first
    and the norm only when IMDB_r passes, so most candidate layers are never fully scored."""

    def __init__(self, weights: Mapping[str, torch.Tensor], mask: Mapping[str, torch.Tensor]):
        self.weights, self.mask = weights, mask
        self._full: Dict[str, Scores] = {}
        self._imdb_r: Dict[str, float] = {}

    def __getitem__(self, k: str) -> Scores:
        if k not in self._full:
            with _one_blas_thread():
                self._full[k] = layer_scores(self.weights[k], self.mask[k])
        return self._full[k]

    def imdb_r(self, k: str) -> float:
        if k in self._full:
            return self._full[k][1]
        if k not in self._imdb_r:
            with _one_blas_thread():
                self._imdb_r[k] = layer_imdb_r(self.mask[k])
        return self._imdb_r[k]

    def imdb_r_at_least(self, k: str, threshold: float) -> bool:
        """``self.imdb_r(k) >= threshold``, decided by :func:`layer_imdb_r_upper` alone when that bound is
        already below ``threshold`` (the same answer, without the large class solves)."""
        if k not in self._full and k not in self._imdb_r:
            with _one_blas_thread():
                if layer_imdb_r_upper(self.mask[k], below=threshold) < threshold:
                    return False
            # the bound is tight: a layer it does not reject nearly always passes, and then its norm is
            # needed too, so score it in full at once rather than IMDB_r first
            return self[k][1] >= threshold
        return self.imdb_r(k) >= threshold

    def __iter__(self):
        return iter(self.weights)

    def __len__(self) -> int:
        return len(self.weights)


def network_scores(weights: Mapping[str, torch.Tensor], mask: Mapping[str, torch.Tensor],
                   lazy: bool = False) -> Mapping[str, Scores]:
    """Every layer's ``(‖v‖₂, IMDB_r)``; ``lazy=True``: a :class:`LazyScores` that scores on demand."""
    if lazy:
        return LazyScores(weights, mask)
    with _one_blas_thread():
        return {k: layer_scores(weights[k], mask[k]) for k in weights}


def _one_blas_thread():
    """Limit OpenBLAS to one thread while scoring.

    The metrics solve hundreds of <= 512x512 eigenproblems per mask, where threads gain nothing;
    on a busy 2-core box a multi-threaded OpenBLAS thrashed (ResNet-18: 34-49 s per mask instead
    of ~0.5 s CPU).  The metrics' own controller (:func:`pai.metrics.linalg.single_thread_blas`) is
    created once, after scipy's LAPACK is loaded; a fresh ``threadpool_limits`` scans the loaded
    libraries each time (~8 ms, paid per scored layer before).
    """
    _spectrum_fns()  # loads scipy's LAPACK
    from pai.metrics.linalg import single_thread_blas

    return single_thread_blas()


def _count(m: torch.Tensor) -> int:
    """Kept entries of a bool mask (numpy on the CPU: a bool ``sum()`` is ~20x slower there)."""
    return int(np.count_nonzero(m.numpy())) if m.device.type == "cpu" else int(torch.count_nonzero(m))


def _finite(x) -> float:
    x = float(x)
    return x if math.isfinite(x) else 0.0


def dominates(cand: Scores, best: Scores) -> bool:
    """The official greedy rule: at least as good on IMDB_r and on ‖v‖₂."""
    return cand[1] >= best[1] and cand[0] >= best[0]


@torch.no_grad()
def add_init_noise(model: nn.Module, seed: int, scale: float = 1.0) -> None:
    """Add N(0, (scale·sqrt(2/fan_in))²) noise to every prunable weight, in place (Kaiming-normal scale)."""
    g = torch_generator(seed)
    for p in prunable_parameters(model).values():
        std = scale * math.sqrt(2.0 / max(1, p[0].numel()))
        p.add_(torch.randn(p.shape, generator=g, dtype=torch.float32).mul_(std).to(p.device, p.dtype))


def search(model: nn.Module, density: float, *, seed: int, data=None, generator: str = "random-erk",
           candidates: int = 100, select: str = "layerwise", generator_options: Mapping | None = None,
           candidate_options: Mapping | None = None, noise: Optional[bool] = None, noise_scale: float = 1.0,
           max_density_drift: Optional[float] = 0.01, progress: Optional[bool] = None) -> SamplingResult:
    """The PAGS search on ``model`` as it is (its weights give λ); the model is left unchanged.

    ``generator_options`` go to every generator call, ``candidate_options`` (merged on top) only to
    the candidates (e.g. a smaller prune set for SNIP).  ``noise=None`` adds weight noise for the
    deterministic generators only (``NOISY_GENERATORS``).

    Long on purpose: the candidate loop shares the reference mask, the per-layer scores, the kept
    counts and the drift budget with its set-up; split apart, each piece would take all of them.
    """
    if generator in SELF:
        raise ValueError(f"generator {generator!r} would recurse; pick a base PaI method")
    if select not in SELECT:
        raise ValueError(f"unknown select {select!r}; valid: {', '.join(SELECT)}")
    if isinstance(candidates, bool) or not isinstance(candidates, int) or candidates < 0:
        raise ValueError(f"candidates must be an int >= 0, got {candidates!r}")
    if max_density_drift is not None and not max_density_drift >= 0:
        raise ValueError(f"max_density_drift must be None or >= 0, got {max_density_drift!r}")
    fn = get(generator)
    if getattr(fn, "needs_data", False) and data is None:
        raise ValueError(f"generator {generator!r} is data-dependent: pass data=pai.data.load_dataset(...)")
    noise = generator in NOISY_GENERATORS if noise is None else bool(noise)
    base_opts = dict(generator_options or {})
    cand_opts = {**base_opts, **dict(candidate_options or {})}

    weights = {k: p.detach() for k, p in prunable_parameters(model).items()}
    work = copy.deepcopy(model)  # generators may touch weights and modes; the caller's model never is
    modes = {name: m.training for name, m in model.named_modules()}

    def run(s: int, opts: Mapping, noisy_seed: Optional[int], fresh: bool = True) -> Mask:
        if fresh:  # the copy is already the model's state (shape-only generators never touch it)
            work.load_state_dict(model.state_dict())
            for name, m in work.named_modules():
                m.training = modes[name]
        if noisy_seed is not None:
            add_init_noise(work, noisy_seed, noise_scale)
        seed_everything(s)  # as pai.prune does, for generators that use the global RNGs
        mask = fn(work, density, seed=s, data=data, **opts)
        return {k: mask[k].detach().bool() for k in weights}

    best = run(seed, base_opts, None)
    ref_scores = network_scores(weights, best)
    scores, source = dict(ref_scores), {k: 0 for k in weights}
    kept_ref = num_kept(best)
    kept = {k: _count(m) for k, m in best.items()}
    slack = None if max_density_drift is None else max_density_drift * kept_ref
    totals = [sum(s[0] for s in ref_scores.values())]
    seeds = [candidate_seed(seed, i) for i in range(1, candidates + 1)]
    bar = progress_reporter(candidates, progress, f"pags/{generator}", unit="mask", interval=30.0, leave=False)
    try:
        for i, s in enumerate(seeds, start=1):
            mask = run(s, cand_opts, candidate_seed(seed, i, NOISE_STREAM) if noise else None,
                       fresh=noise or generator not in SHAPE_ONLY)
            if i == 1 and not noise and masks_equal(mask, best):
                warnings.warn(f"pags: generator {generator!r} gave the reference mask again with another "
                              "seed; it looks deterministic, pass noise=True to perturb the weights")
            cand = network_scores(weights, mask, lazy=select == "layerwise")
            if select == "global":
                totals.append(sum(c[0] for c in cand.values()))
                if totals[-1] > max(totals[:-1]):
                    best, scores, source = mask, cand, {k: i for k in weights}
            else:
                total = sum(kept.values())
                for k in weights:
                    n = _count(mask[k])
                    if slack is not None and abs(total - kept[k] + n - kept_ref) > slack:
                        continue
                    if n == kept[k] == mask[k].numel():  # both dense: the same layer, the same scores (a tie)
                        best[k], source[k] = mask[k], i
                        continue
                    # dominates() with its IMDB_r test first: a layer that fails it is never fully scored
                    if cand.imdb_r_at_least(k, scores[k][1]) and dominates(cand[k], scores[k]):
                        best[k], scores[k], source[k] = mask[k], cand[k], i
                        total += n - kept[k]
                        kept[k] = n
            bar.update()
            bar.set_postfix(swapped=sum(v > 0 for v in source.values()))
    finally:
        bar.close()
    best = {k: m.clone() for k, m in best.items()}
    return SamplingResult(best, source, scores, ref_scores, seeds, num_kept(best) / sum(m.numel() for m in best.values()),
                          totals if select == "global" else [])


def _with_shape(generator: str, generator_options: Mapping | None, input_shape) -> Mapping | None:
    """``generator_options`` with ``input_shape`` for a generator that traces the network."""
    if input_shape is None or generator in SELF or not get(generator).takes_input_shape:
        return generator_options
    return {"input_shape": input_shape, **dict(generator_options or {})}


@register_pruner("pags", forwards=(search,))
def prune_pags(model: nn.Module, density: float, *, seed: int, data=None, generator: str = "random-erk",
               candidates: int = 100, select: str = "layerwise", generator_options: Mapping | None = None,
               input_shape=None, **options) -> Mask:
    """PAGS (NeurIPS 2023): best-of-``candidates`` masks of ``generator`` by the full spectrum at θ_0.
    Further ``options``: see :func:`search`; ``input_shape`` goes to a generator that traces."""
    return search(model, density, seed=seed, data=data, generator=generator, candidates=candidates, select=select,
                  generator_options=_with_shape(generator, generator_options, input_shape), **options).mask


def pretrain_dense(model: nn.Module, data, iterations: int, *, seed: int, batch_size: int = 128,
                   lr: float = 0.1, momentum: float = 0.9, weight_decay: float = 5e-4,
                   augment: bool = False) -> nn.Module:
    """A trained copy of ``model``: ``iterations`` dense SGD steps (Nesterov) on ``data``'s training
    split, batches from a generator seeded by ``seed``, on the model's device."""
    from pai.data import augment as augment_batch, iterate_batches

    if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 0:
        raise ValueError(f"pretrain_iterations must be an int >= 0, got {iterations!r}")
    if getattr(data, "x_train", None) is None or getattr(data, "y_train", None) is None:
        raise ValueError("data must have x_train and y_train tensors (e.g. pai.data.load_dataset(...))")
    net = copy.deepcopy(model)
    net.train()
    device = next(net.parameters()).device
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay,
                          nesterov=momentum > 0)
    g = torch_generator(candidate_seed(seed, 0, PRETRAIN_STREAM))  # CPU: same batches on any device
    step = 0
    while step < iterations:
        for xb, yb in iterate_batches(data.x_train, data.y_train, batch_size, shuffle=True, generator=g):
            xb, yb = xb.to(device), yb.to(device)
            if augment and xb.dim() == 4:
                xb = augment_batch(xb, generator=g)
            loss = F.cross_entropy(net(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            if step == iterations:
                break
    for p in net.parameters():
        p.grad = None
    return net


@register_pruner("pegs", needs_data=True, returns_state=True, forwards=(search,))
def prune_pegs(model: nn.Module, density: float, *, seed: int, data=None, generator: str = "random-erk",
               candidates: int = 100, select: str = "layerwise", generator_options: Mapping | None = None,
               pretrain_iterations: int = 500, pretrain_batch_size: int = 128, pretrain_lr: float = 0.1,
               pretrain_augment: bool = False, return_state: bool = False, input_shape=None, **options):
    """PEGS (NeurIPS 2023): PAGS on θ_T after ``pretrain_iterations`` dense SGD steps.

    Returns the mask, or ``(mask, state_dict of θ_T on the CPU)`` with ``return_state=True`` (sparse
    training then starts from θ_T ⊙ m).  The model itself is not changed.  ``input_shape`` goes to a
    generator that traces."""
    if data is None:
        raise ValueError("pruner 'pegs' is data-dependent (dense pre-training): pass data=pai.data.load_dataset(...)")
    net = pretrain_dense(model, data, pretrain_iterations, seed=seed, batch_size=pretrain_batch_size,
                         lr=pretrain_lr, augment=pretrain_augment)
    modes = dict(model.named_modules())
    for name, m in net.named_modules():
        m.training = modes[name].training  # the generators see the caller's train/eval modes
    mask = search(net, density, seed=seed, data=data, generator=generator, candidates=candidates, select=select,
                  generator_options=_with_shape(generator, generator_options, input_shape), **options).mask
    if not return_state:
        return mask
    return mask, {k: v.detach().to("cpu", copy=True) for k, v in net.state_dict().items()}
