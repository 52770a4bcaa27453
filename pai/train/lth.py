"""Lottery-ticket rewinding: iterative magnitude pruning (IMP), the "pruning after training" baseline.

Frankle & Carbin, "The lottery ticket hypothesis", ICLR 2019 (Alg. 1: train, prune p% of the
remaining weights by |w|, reset the survivors to their initial values, repeat), with rewinding to
iteration k of Frankle, Dziugaite, Roy & Carbin, "Linear mode connectivity and the lottery ticket
hypothesis", ICML 2020 (k = 0 is the original reset).  Conventions of ``facebookresearch/open_lth``
(``pruning/sparse_global.py``): 20 % of the remaining weights per round, all prunable layers, one
global magnitude threshold (``scope="global"``) or the same fraction in every layer
(``scope="layer"``, Frankle & Carbin's conv-net variant without their lower output-layer rate).

Round 0 trains the starting mask (dense by default) from ``theta_0``; round r >= 1 keeps the
largest ``|w|`` of round r-1's *trained* weights among its kept ones, loads ``theta_k`` (the whole
``state_dict``: biases and BN too, as open_lth) and retrains with the smaller mask.

Deviations, and why:

* exact counts: round r keeps ``round(kept_0 * (1 - rate)^r)`` weights (globally, or per layer
  for ``scope="layer"``), computed from the start rather than compounded, so the density is
  ``(1 - rate)^r`` within one weight (per layer); open_lth's threshold rule keeps every tie and
  floors the count each round.  Ties in ``|w|`` are broken by position (deterministic).
* with ``density_target`` the last round prunes straight to the target (fewer than 20 % if needed).
* rewinding to ``k > 0``: the weights after k optimizer steps of round 0 are restored, but each
  retraining runs the full schedule from step 0 with a fresh optimizer (``pai.train`` has no
  mid-run start); open_lth resumes at step k with the learning-rate schedule there.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence

import torch

from pai.train.config import TrainConfig
from pai.data import load_for
from pai.utils.io import load_torch, save_json, save_torch
from pai.masks import (Mask, density, kept_layer_densities, ones_mask, prunable_parameters, save_mask, topk_global,
                    topk_layer)
from pai.models import initial_model
from pai.train.rundir import RunDir
from pai.train import train

SCOPES = ("global", "layer")


@dataclass
class TicketRound:
    """One IMP round: the mask it trained (``round`` 0 = the starting mask) and the training result."""

    round: int
    mask: Mask = field(repr=False)
    result: Any = field(repr=False)  # pai.train.TrainResult

    @property
    def density(self) -> float:
        return density(self.mask)

    def summary(self) -> Dict[str, Any]:
        return {"round": self.round, "density": self.density, "layer_densities": kept_layer_densities(self.mask),
                "best_test_acc": self.result.best_test_acc, "final_test_acc": self.result.final_test_acc}


def keep_counts(start: Mapping[str, torch.Tensor], factor: float, scope: str = "global"):
    """Weights kept at ``factor`` times the starting count: an int (global) or ``{layer: int}``."""
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {SCOPES}, got {scope!r}")
    if scope == "global":
        return round(sum(int(m.sum()) for m in start.values()) * factor)
    return {k: round(int(m.sum()) * factor) for k, m in start.items()}


@torch.no_grad()
def magnitude_prune(weights: Mapping[str, torch.Tensor], mask: Mapping[str, torch.Tensor], keep,
                    scope: str = "global") -> Mask:
    """Keep the ``keep`` largest ``|w|`` among the kept weights (never revive a pruned one)."""
    scores = {k: weights[k].detach().abs().double().masked_fill(~mask[k].to(weights[k].device), -math.inf)
              for k in mask}
    if scope == "global":
        if keep > sum(int(m.sum()) for m in mask.values()):
            raise ValueError(f"cannot keep {keep} weights: only {sum(int(m.sum()) for m in mask.values())} are kept")
        out = topk_global(scores, keep)
    elif scope == "layer":
        out = {k: topk_layer(s, keep[k]) for k, s in scores.items()}
    else:
        raise ValueError(f"scope must be one of {SCOPES}, got {scope!r}")
    return {k: v.cpu() & mask[k].cpu() for k, v in out.items()}


def rewound_state(rewind: Mapping[str, torch.Tensor], mask: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """``theta_k`` with the pruned weights zeroed: the state a round starts from after ``apply_mask``."""
    return {k: (v * mask[k].to(v.device, v.dtype)) if k in mask else v.clone() for k, v in rewind.items()}


def num_rounds(rate: float, start_density: float, density_target: float) -> int:
    """Fewest rounds of pruning ``rate`` that reach ``density_target`` from ``start_density``."""
    if not 0.0 < density_target <= start_density:
        raise ValueError(f"density_target must be in (0, {start_density}] (the starting density), "
                         f"got {density_target}")
    return max(0, math.ceil(math.log(density_target / start_density) / math.log(1.0 - rate) - 1e-9))


def lottery_ticket(config, *, rounds: Optional[int] = None, density_target: Optional[float] = None,
                   rate: float = 0.2, scope: str = "global", rewind_iteration: int = 0, mask: Optional[Mask] = None,
                   model=None, data=None, run_dir=None, progress: Optional[bool] = None,
                   callbacks: Optional[Sequence] = None) -> List[TicketRound]:
    """Iterative magnitude pruning with rewinding; returns ``rounds + 1`` :class:`TicketRound`.

    Give ``rounds`` or ``density_target`` (the density is relative to all prunable weights).
    ``mask`` is the starting mask (dense if None).  With ``run_dir`` each round trains in
    ``run_dir/round_NN/`` (resumable, reused when finished) next to its ``mask.pt``, ``theta_k``
    goes to ``run_dir/rewind.pt`` and a summary of the rounds so far to ``run_dir/lth.json``.
    """
    cfg = TrainConfig.coerce(config)
    _check_options(rate, scope, rewind_iteration)
    if data is None:
        data = load_for(cfg)
    template = initial_model(cfg.model, data.shape, cfg.seed) if model is None else model
    start = (ones_mask(template) if mask is None
             else {k: torch.as_tensor(v).to(torch.bool).cpu() for k, v in mask.items()})
    d0 = density(start)
    if (rounds is None) == (density_target is None):
        raise ValueError("give exactly one of rounds and density_target")
    if rounds is None:
        rounds = num_rounds(rate, d0, float(density_target))
    if not isinstance(rounds, int) or rounds < 0:
        raise ValueError(f"rounds must be an int >= 0, got {rounds!r}")
    floor = 0.0 if density_target is None else float(density_target) / d0
    files = RunDir(run_dir) if run_dir is not None else None
    rewind = _Rewind(rewind_iteration, template, files)
    options = {"rate": rate, "scope": scope, "rewind_iteration": rewind_iteration, "rounds": rounds,
               "density_target": density_target, "start_density": d0}
    out: List[TicketRound] = []
    current = start
    for r in range(rounds + 1):
        sub = None if files is None else files.round(r)
        if r > 0:
            if rewind.state is None:
                raise ValueError(f"rewind_iteration={rewind_iteration} exceeds the {out[0].result.meta['steps']} "
                                 "steps of the first training (or its run_dir lacks rewind.pt)")
            keep = keep_counts(start, max((1.0 - rate) ** r, floor), scope)
            current = magnitude_prune(prunable_parameters(out[-1].result.model), current, keep, scope)
        if sub is not None:
            save_mask(current, sub.mask, meta={"round": r, "rate": rate, "scope": scope,
                                               "rewind_iteration": rewind_iteration})
        extra = [rewind] if r == 0 and rewind.state is None else []
        dense = r == 0 and mask is None  # no mask at all: round 0 is exactly a plain dense run
        result = train(cfg, mask=None if dense else current, data=data, run_dir=None if sub is None else sub.path,
                       model=copy.deepcopy(template) if model is not None else None, progress=progress,
                       init_state=None if r == 0 else rewind.state, callbacks=[*extra, *(callbacks or ())])
        out.append(TicketRound(r, current, result))
        if files is not None:
            save_json({"options": options, "rounds": [t.summary() for t in out]}, files.lth_summary)
    return out


def check_regime_options(*, rate: float = 0.2, scope: str = "global", rewind_iteration: int = 0) -> None:
    """The options the ``lth`` regime (:mod:`pai.compendium.regimes`) passes on, checked before a run starts (the
    density target comes from the spec; an unknown option is a ``TypeError`` made a ``ValueError``)."""
    if isinstance(rate, bool) or not isinstance(rate, (int, float)):
        raise ValueError(f"rate must be a number, got {rate!r}")
    _check_options(rate, scope, rewind_iteration)


def _check_options(rate: float, scope: str, rewind_iteration: int) -> None:
    if not 0.0 < rate < 1.0:
        raise ValueError(f"rate (fraction of the remaining weights pruned per round) must be in (0, 1), got {rate}")
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {SCOPES}, got {scope!r}")
    if not isinstance(rewind_iteration, int) or rewind_iteration < 0:
        raise ValueError(f"rewind_iteration must be an int >= 0 (0 = the initialization), got {rewind_iteration!r}")


class _Rewind:
    """``theta_k``: the initialisation (k = 0), else ``rewind.pt`` of an earlier call, else captured
    as a trainer callback after k optimizer steps of round 0 (and saved to ``rewind.pt``)."""

    def __init__(self, k: int, template: torch.nn.Module, files: Optional[RunDir]):
        self.k, self.files, self.state = k, files, None
        if k == 0:
            self.state = {n: v.detach().to("cpu", copy=True) for n, v in template.state_dict().items()}
        elif files is not None and files.rewind.is_file():
            saved = load_torch(files.rewind, what="rewind weights", fix=f"delete it (or {files.path}) to redo the run")
            if saved["rewind_iteration"] != k:
                raise ValueError(f"{files.rewind} holds theta_{saved['rewind_iteration']}, not "
                                 f"theta_{k}; use another run_dir or delete it")
            self.state = saved["state"]

    def __call__(self, event: str, state) -> None:
        if event == "step_end" and state.step == self.k and self.state is None:
            self.state = {n: v.detach().to("cpu", copy=True) for n, v in state.model.state_dict().items()}
            if self.files is not None:
                save_torch({"rewind_iteration": self.k, "state": self.state}, self.files.rewind)
