"""Iterative synaptic flow pruning: SynFlow and SynFlow-L2 (data-free).

SynFlow — Tanaka, Kunin, Yamins & Ganguli, "Pruning neural networks without any data by
iteratively conserving synaptic flow", NeurIPS 2020, Alg. 1.  Every parameter and
BatchNorm buffer is replaced by its absolute value (the official ``linearize`` takes ``abs`` of the
whole ``state_dict``), the model is put in eval mode, and with the current mask applied

    R = 1ᵀ f(1),   S(θ) = |∂R/∂θ ⊙ θ|,

where ``f(1)`` is the output on one all-ones input of ``model.input_shape``.  With every weight
positive the ReLUs pass everything, so (biases aside) R is the sum over all input→output paths of
the product of |θ| along the path, and S(θ_e) is the total weight of the paths through edge e.
The score is recomputed ``iterations`` (100) times; after step k the mask is re-selected globally at
``density_k = d^(k/n)`` (``schedule="exponential"``, the paper's) or ``1 - (1 - d) k / n``
(``"linear"``) by the selection ``rule`` below.  Weights never change, only the mask.

SynFlow-L2 — as in the PHEW repo (Patil & Dovrolis, ICML 2021; ``Prune/synflowl2_utils.py``):
the same loop on the network with every *parameter* squared (θ ← θ², biases and BN affine included;
buffers untouched, as that repo), R₂ = 1ᵀ f(1), and ``S = |∂R₂/∂(θ²)| · |θ|`` (``variant="phew"``).
``variant="gebhart"``: Gebhart, Saxena & Schrater, "A unified paths perspective for pruning at
initialization", arXiv 2101.10552 (2021), the path-kernel-norm form of SynFlow:
``S = θ ⊙ ∂R₂/∂θ = 2 θ² ∂R₂/∂(θ²)``, which weighs each edge by θ² instead of |θ| (the factor 2 does not
change the ranking).  The two agree on which paths count and differ only in that edge factor; the
PHEW figures use ``"phew"``.  (The Gebhart form is read from the paper's path-kernel definition, not
checked against its code.)  SynFlow-L2's default rule is the PHEW repo's ``"percentile"``
(:func:`percentile_keep`).

Default = the published method: on identical weights it gives the mask of the official code
(``ganguli-lab/Synaptic-Flow`` @ 9dfa57a, ``Pruners/pruners.py::SynFlow`` + ``_global_mask``, the code
behind the paper's figures), checked mask for mask (IoU 1.0) on ResNet-20 and VGG-16 at densities
0.01 and 0.1:

* ``rule="threshold"`` (Alg. 1 and ``_global_mask``): k = int((1-d_k) N), τ = the k-th smallest of
  all N scores (pruned weights score 0 and stay in the pool), keep ``score > τ``.  Every weight tied
  at τ is pruned, so the kept count can fall short of d·N; a pruned weight never returns, so the
  masks along the schedule are nested.
* ``dtype=float32``, the official precision (commit 7de8b51 tried float64 and de91de6 reverted it).
  float64 is not the default because it changes the mask: on identical weights, float64 against
  the official float32 mask gives IoU 1.0 on ResNet-20 (0.01 and 0.1) but 0.90 (0.01) and 0.985
  (0.1) on VGG-16, where float32 rounding decides near-ties.

Named options, and why:

* ``dtype=torch.float64``: path products over many layers under- or overflow float32 (ResNet-50 at
  0.01 keeps no input->output path in float32); float64 scores are exact where float32 collapses.
  :func:`pai.prune` warns about a collapsed mask (empty layers, no path) and names this fix; the
  official code aborts only when the count is 5 or more off (ganguli-lab/Synaptic-Flow GitHub issue
  #12) and says nothing otherwise.
* ``rule="exact"``: keep exactly ``round(d_k · N)`` weights, ties broken by position (earlier layer,
  then lower index; :func:`select_top`).  The threshold rule prunes *all* weights tied at τ, so at
  high compression (or after float32 underflow, where many scores are equal) it keeps fewer
  weights than asked; the exact count makes densities comparable across methods.  It differs from
  the published masks (IoU 0.85 on ResNet-20 at 0.01 in float64).

* ``linearize=True``: every elementwise activation but ReLU (ReLU6, Hardtanh, SiLU, GELU, Hardswish,
  ...; :data:`LINEARIZED`) becomes the identity in the scoring copy, so R is the paper's
  ``1ᵀ (∏ |W|) 1`` on any network.  The official code runs the model's own activations, which on
  positive flows is the identity only for ReLU-like ones: a bounded activation saturates (ReLU6 is
  flat above 6, so its gradient and every score behind it are 0: torchvision's MobileNetV2 keeps no
  weight).  The default keeps the official behaviour, and masks of ReLU networks are unchanged.

Not reproduced: that abort (replaced by the degenerate-mask check of :func:`pai.prune`).
Speed (ResNet-18: ~11 M weights, 100 steps): one copy of the model is made once, pruned weights
are zeroed in it in place, ``torch.autograd.grad`` runs only for the prunable weights, and the
scores, top-k and bookkeeping touch only the still-kept weights (a list of their flat indices), so
the cost per step falls with the density.  The official code backpropagates into every parameter
and thresholds all N scores each step; both give the same scores.
"""
from __future__ import annotations

import copy
import math
from typing import Dict, List, Sequence

import torch
from torch import nn

from pai.pruners import register_pruner
from pai.masks import Mask, prunable_parameters

SCHEDULES = ("exponential", "linear")
RULES = ("threshold", "percentile", "exact")
VARIANTS = ("phew", "gebhart")
KINDS = ("synflow", *VARIANTS)
SAMPLE_SIZE = 1 << 16  # entries of the sample that brackets the global threshold
DTYPES = {"float32": torch.float32, "float64": torch.float64, "double": torch.float64, "float": torch.float32}


def density_schedule(density: float, iterations: int, schedule: str = "exponential") -> List[float]:
    """The densities after steps 1..n; the last one is ``density``."""
    if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 1:
        raise ValueError(f"iterations must be a positive int, got {iterations!r}")
    n = iterations
    if schedule == "exponential":
        return [density ** (k / n) for k in range(1, n + 1)]
    if schedule == "linear":
        return [1.0 - (1.0 - density) * k / n for k in range(1, n + 1)]
    raise ValueError(f"unknown schedule {schedule!r}; valid: {', '.join(SCHEDULES)}")


def as_dtype(dtype) -> torch.dtype:
    if isinstance(dtype, torch.dtype) and dtype.is_floating_point:
        return dtype
    name = str(dtype).replace("torch.", "")
    if name in DTYPES:
        return DTYPES[name]
    raise ValueError(f"dtype must be torch.float32/float64 or one of {', '.join(DTYPES)}; got {dtype!r}")


# activations that ``linearize=True`` replaces by the identity (ReLU is the identity on positive flows)
LINEARIZED = (nn.ReLU6, nn.Hardtanh, nn.SiLU, nn.GELU, nn.Hardswish, nn.Mish, nn.ELU, nn.CELU, nn.SELU,
              nn.LeakyReLU, nn.Softplus, nn.Sigmoid, nn.Tanh, nn.Hardsigmoid)


def _linearize(net: nn.Module) -> None:
    """Replace every :data:`LINEARIZED` activation module of ``net`` by ``nn.Identity``, in place."""
    for name, m in list(net.named_modules()):
        if isinstance(m, LINEARIZED):
            parent, _, leaf = name.rpartition(".")
            setattr(net.get_submodule(parent) if parent else net, leaf, nn.Identity())


class FlowNet:
    """A private copy of ``model`` (eval mode, ``dtype``) for flow scores: |·| of every state entry
    (``kind="synflow"``) or θ² of every parameter (``"phew"``, ``"gebhart"``), the all-ones input,
    and the flat indices of the still-kept weights of each layer (``idx``); ``linearize``: the
    non-ReLU activations replaced by the identity (module docstring)."""

    def __init__(self, model: nn.Module, kind: str = "synflow", dtype=torch.float32,
                 input_shape: Sequence[int] | None = None, linearize: bool = False):
        if kind not in KINDS:
            raise ValueError(f"unknown flow score {kind!r}; valid: {', '.join(KINDS)}")
        shape = input_shape or getattr(model, "input_shape", None)
        if shape is None:
            raise ValueError("SynFlow needs the input shape: build the model with pai.models.create_model "
                             "or pass input_shape=(C, H, W)")
        self.kind = kind
        self.net = copy.deepcopy(model).to(as_dtype(dtype)).eval()
        if linearize:
            _linearize(self.net)
        with torch.no_grad():
            if kind == "synflow":  # the official linearize: |·| on every state_dict entry, buffers too
                for t in self.net.state_dict().values():
                    if t.is_floating_point():
                        t.abs_()
            else:  # PHEW's SynFlow-L2: parameters squared, buffers as they are
                for p in self.net.parameters():
                    p.square_()
        for p in self.net.parameters():
            p.requires_grad_(False)
        self.weights = prunable_parameters(self.net)
        for w in self.weights.values():
            w.requires_grad_(True)
        # compact per-layer state of the kept weights: flat index, value in the flow net (|θ| or θ²)
        self.idx = {k: torch.arange(w.numel(), device=w.device) for k, w in self.weights.items()}
        self.val = {k: w.detach().reshape(-1).clone() for k, w in self.weights.items()}
        w0 = next(iter(self.weights.values()))
        self.x = torch.ones((1, *[int(s) for s in shape]), dtype=w0.dtype, device=w0.device)

    @property
    def total(self) -> int:
        return sum(w.numel() for w in self.weights.values())

    def num_kept(self) -> int:
        return sum(i.numel() for i in self.idx.values())

    def restrict(self, mask: Mask) -> None:
        """Prune (zero) every weight outside ``mask``."""
        self.keep({k: mask[k].to(i.device).reshape(-1)[i] for k, i in self.idx.items()})

    def keep(self, chosen: Dict[str, torch.Tensor]) -> None:
        """Keep the kept weights where ``chosen`` (bool over each layer's kept list) is True."""
        with torch.no_grad():
            for k, w in self.weights.items():
                sel = chosen[k]
                if bool(sel.all()):
                    continue
                # one scatter over the old kept list zeroes the newly pruned weights
                w.detach().view(-1).index_copy_(0, self.idx[k], self.val[k] * sel)
                pos = sel.nonzero().squeeze(1)
                self.idx[k], self.val[k] = self.idx[k].index_select(0, pos), self.val[k].index_select(0, pos)

    def compact_scores(self) -> Dict[str, torch.Tensor]:
        """Scores of the kept weights of each layer, in index order (pruned weights score 0)."""
        with torch.enable_grad():
            g = torch.autograd.grad(self.net(self.x).sum(), list(self.weights.values()))
        out = {}
        with torch.no_grad():
            for (k, w), gk in zip(self.weights.items(), g):
                i = self.idx[k]
                s = gk.reshape(-1) if i.numel() == w.numel() else gk.reshape(-1).index_select(0, i)
                if self.kind == "synflow":  # |∂R/∂θ ⊙ θ| with θ the (kept) |θ|
                    s = s.mul_(self.val[k]).abs_()
                elif self.kind == "phew":  # |∂R₂/∂(θ²)| · |θ|
                    s = s.abs_().mul_(self.val[k].sqrt())
                else:  # gebhart: θ ⊙ ∂R₂/∂θ = 2 θ² ∂R₂/∂(θ²), the 2 dropped
                    s = s.mul_(self.val[k])
                out[k] = s.nan_to_num_(nan=0.0, posinf=math.inf, neginf=-math.inf)  # f32 overflow
        return out

    def mask(self) -> Mask:
        out = {}
        for k, w in self.weights.items():
            m = torch.zeros(w.numel(), dtype=torch.bool, device=w.device)
            out[k] = m.index_fill_(0, self.idx[k], True).view(w.shape)
        return out


def flow_scores(model: nn.Module, mask: Mask | None = None, *, kind: str = "synflow", dtype=torch.float64,
                input_shape: Sequence[int] | None = None) -> Dict[str, torch.Tensor]:
    """One scoring pass (``kind`` = ``"synflow"``, ``"phew"`` or ``"gebhart"``) with the weights
    outside ``mask`` (default: none) pruned; full-shape scores, 0 at pruned weights.  The model
    itself is not modified.  float64 by default: this is a measurement, not the pruner (whose
    default is the official float32)."""
    fn = FlowNet(model, kind, dtype, input_shape)
    if mask is not None:
        fn.restrict(mask)
    out = {}
    for (k, w), s in zip(fn.weights.items(), fn.compact_scores().values()):
        out[k] = torch.zeros(w.numel(), dtype=s.dtype, device=s.device).index_copy_(0, fn.idx[k], s).view(w.shape)
    return out


def kth_largest(parts: Sequence[torch.Tensor], k: int) -> torch.Tensor:
    """The ``k``-th largest entry of the 1-d tensors ``parts`` together (1 <= k <= total; no NaN).

    A strided sample brackets the answer; one pass per part counts the entries above the bracket
    and gathers the few inside it, where ``kthvalue`` finishes.  This avoids concatenating and
    partially sorting all N scores (~0.2 s for ResNet-18's 11 M float64 scores, 100 times); the
    full ``kthvalue`` is only the fallback when the bracket misses.
    """
    total = sum(p.numel() for p in parts)
    stride = max(1, total // SAMPLE_SIZE)
    sample = torch.cat([p[::stride] for p in parts])
    m = sample.numel()
    r = k * m / total  # expected rank of the answer inside the sample, from the top
    for width in (6.0, 48.0):
        margin = width * math.sqrt(r * (1.0 - r / m) + 1.0) + 4 * width
        top, bottom = int(r - margin), int(r + margin) + 1
        hi = torch.kthvalue(sample, m - top + 1).values if top >= 1 else None
        lo = torch.kthvalue(sample, m - bottom + 1).values if bottom <= m else None
        above, inside = 0, []
        for p in parts:
            sel = torch.ones_like(p, dtype=torch.bool) if lo is None else p >= lo
            if hi is not None:
                above += int((p > hi).sum())
                sel &= p <= hi
            inside.append(p[sel])
        cand = torch.cat(inside)
        if above < k <= above + cand.numel():
            return torch.kthvalue(cand, cand.numel() - (k - above) + 1).values
    flat = torch.cat(list(parts))
    return torch.kthvalue(flat, flat.numel() - k + 1).values


def select_top(scores: Dict[str, torch.Tensor], keep: int) -> Dict[str, torch.Tensor]:
    """Bool over each 1-d score tensor: the ``keep`` highest overall, ties by position (earlier
    layer, then lower index) — the result of :func:`pai.masks.topk_flat` on the
    concatenation, without building it."""
    parts = list(scores.values())
    n = sum(p.numel() for p in parts)
    if keep >= n or keep <= 0:
        return {key: torch.full_like(p, keep > 0, dtype=torch.bool) for key, p in scores.items()}
    tau = kth_largest(parts, keep)
    above = {key: p > tau for key, p in scores.items()}
    need = keep - sum(int(a.sum()) for a in above.values())
    ties = {key: p == tau for key, p in scores.items()}
    if need == sum(int(t.sum()) for t in ties.values()):
        return {key: above[key] | ties[key] for key in scores}
    for key in scores:  # a partial tie at tau: the first ``need`` tied entries, in order
        t = ties[key]
        take = t & (torch.cumsum(t, 0) <= need)
        above[key] |= take
        need -= int(take.sum())
    return above


def official_keep(scores: Dict[str, torch.Tensor], total: int, density: float) -> Dict[str, torch.Tensor]:
    """The SynFlow repo's ``_global_mask`` on the kept weights' scores (the other weights are
    pruned, score 0): k = int((1-d)·total), τ = the k-th smallest score, keep ``score > τ``."""
    k = int((1.0 - density) * total)
    parts = list(scores.values())
    if k < 1:
        return {key: torch.ones_like(p, dtype=torch.bool) for key, p in scores.items()}
    size = sum(p.numel() for p in parts)
    zeros = total - size
    below = sum(int((p < 0).sum()) for p in parts)
    at_zero = sum(int((p == 0).sum()) for p in parts)
    if k <= below:
        tau = kth_largest(parts, size - k + 1)
    elif k <= below + at_zero + zeros:
        tau = parts[0].new_zeros(())
    else:
        tau = kth_largest(parts, size - (k - zeros) + 1)
    return {key: p > tau for key, p in scores.items()}


def percentile_keep(scores: Dict[str, torch.Tensor], total: int, density: float) -> Dict[str, torch.Tensor]:
    """The PHEW repo's SynFlow-L2 rule (``Prune/synflowl2_utils.py``) on the kept weights' scores (the
    other weights are pruned, score 0): τ = ``np.percentile(all N scores, 100 (1-d))`` (linear
    interpolation between the order statistics at rank ``(1-d)(N-1)``), keep ``score > τ``.  τ is
    interpolated in float64 (numpy's float32 lerp can differ in the last bit).  At density 1 all are
    kept (the PHEW code would drop the minimum; the SynFlow repo's ``k < 1`` guard keeps all)."""
    if density >= 1.0:
        return {key: torch.ones_like(p, dtype=torch.bool) for key, p in scores.items()}
    parts = list(scores.values())
    size = sum(p.numel() for p in parts)
    zeros = total - size  # pruned weights: the smallest scores (all scores are >= 0)

    def ascending(r: int) -> float:  # the r-th smallest (0-indexed) of all ``total`` scores
        return 0.0 if r < zeros else float(kth_largest(parts, size - (r - zeros)))

    pos = (1.0 - density) * (total - 1)
    lo = int(math.floor(pos))
    frac = pos - lo
    a = ascending(lo)
    tau = a if frac == 0 or lo + 1 >= total else a + (ascending(lo + 1) - a) * frac
    return {key: p.double() > tau for key, p in scores.items()}


def iterative_flow(model: nn.Module, density: float, *, kind: str, iterations: int = 100,
                   schedule: str = "exponential", dtype=torch.float32, rule: str = "threshold",
                   input_shape: Sequence[int] | None = None, linearize: bool = False) -> Mask:
    """The SynFlow loop (Alg. 1) with score ``kind`` and selection ``rule``; returns the final mask."""
    if rule not in RULES:
        raise ValueError(f"unknown SynFlow rule {rule!r}; valid: {', '.join(RULES)}")
    densities = density_schedule(density, iterations, schedule)
    fn = FlowNet(model, kind, dtype, input_shape, linearize)
    total = fn.total
    # squeeze-and-excitation: x * gate(x) squares the all-ones flow at every block (elsewhere an empty score
    # is float32's under/overflow, which the degenerate-mask hint answers with dtype=float64)
    gates = sorted({type(m).__name__ for m in model.modules() if "SqueezeExcitation" in type(m).__name__})
    for d in densities:
        scores = fn.compact_scores()
        if gates and not any(bool((torch.isfinite(s) & (s > 0)).any()) for s in scores.values()):
            raise ValueError(_no_score_message(model, kind, gates))
        if rule == "threshold":
            fn.keep(official_keep(scores, total, d))
        elif rule == "percentile":
            fn.keep(percentile_keep(scores, total, d))
        else:
            fn.keep(select_top(scores, round(d * total)))
    return fn.mask()


def _no_score_message(model: nn.Module, kind: str, gates: Sequence[str]) -> str:
    """Why a flow gave no finite positive score on a network with squeeze-and-excitation gates."""
    return (f"the {kind} flow cannot score {type(model).__name__}: every score is 0 or not finite, the all-ones flow "
            f"overflowed through its {', '.join(gates)} gates (x * gate(x) squares it at every block, float64 "
            f"too); use a method that does not multiply flows (e.g. snip, grasp, phew, npb)")


def _degenerate_hint(options: dict, kinds) -> str | None:
    """The fix :func:`pai.prune` names when a SynFlow mask is degenerate: float32 under/overflow
    shows as no path or a short count (ties at 0 or inf); a short count alone as threshold ties."""
    float32 = as_dtype(options.get("dtype", torch.float32)) == torch.float32
    tips = []
    if float32 and {"no-path", "density", "nothing-kept"} & set(kinds):
        tips.append("SynFlow's path products under- or overflow float32 on deep networks: pass "
                    "dtype=float64 (CLI: --option dtype=float64)")
    if not options.get("linearize") and {"no-path", "empty-layers", "nothing-kept"} & set(kinds):
        tips.append("a bounded activation (ReLU6, Hardtanh, Sigmoid) saturates the all-ones flow and zeroes "
                    "the scores behind it: pass linearize=True")
    if "density" in kinds and options.get("rule", "threshold") != "exact":
        tips.append("the published rule prunes every weight tied at the threshold: rule='exact' keeps "
                    "the exact count")
    return "; ".join(tips) or None


@register_pruner("synflow", needs_input_shape=True, revision=2, degenerate_hint=_degenerate_hint,
                 revision_note="the official strict-threshold rule in float32 became the default "
                               "(was an exact count in float64)")
def prune_synflow(model: nn.Module, density: float, *, seed: int, data=None, iterations: int = 100,
                  schedule: str = "exponential", dtype=torch.float32, rule: str = "threshold",
                  input_shape: Sequence[int] | None = None, linearize: bool = False) -> Mask:
    """SynFlow (Tanaka et al., NeurIPS 2020, Alg. 1); defaults = the official code, options: see the
    module docstring (``dtype=float64`` for deep nets, ``rule="exact"`` for exact counts, ``linearize=True``
    for activations other than ReLU)."""
    return iterative_flow(model, density, kind="synflow", iterations=iterations, schedule=schedule,
                          dtype=dtype, rule=rule, input_shape=input_shape, linearize=linearize)


@register_pruner("synflow-l2", needs_input_shape=True, revision=2, degenerate_hint=_degenerate_hint,
                 revision_note="the PHEW repo's percentile rule in float32 became the default "
                               "(was an exact count in float64)")
def prune_synflow_l2(model: nn.Module, density: float, *, seed: int, data=None, variant: str = "phew",
                     iterations: int = 100, schedule: str = "exponential", dtype=torch.float32,
                     rule: str = "percentile", input_shape: Sequence[int] | None = None,
                     linearize: bool = False) -> Mask:
    """SynFlow-L2 as in the PHEW repo (``Prune/synflowl2_utils.py``, the code behind the PHEW paper's
    SynFlow-L2 numbers): the exponential schedule, eval mode, float32 and its selection rule,
    ``rule="percentile"`` (τ = ``np.percentile`` of all scores, keep ``score > τ``; the SynFlow repo's
    ``"threshold"`` differs from it by at most one weight per step).  ``variant="gebhart"``: the
    path-kernel form.  Options (``dtype=float64``, ``rule="exact"``) as for ``synflow``."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown SynFlow-L2 variant {variant!r}; valid: {', '.join(VARIANTS)}")
    return iterative_flow(model, density, kind=variant, iterations=iterations, schedule=schedule,
                          dtype=dtype, rule=rule, input_shape=input_shape, linearize=linearize)
