"""Degenerate-mask checks that :func:`pai.prune` runs on every mask it returns.

A pruner can return a mask that trains to chance without any error: float32 SynFlow on ResNet-50 at
density 0.01 leaves 42 of 53 layers empty and no input->output path (its path products underflow).
The official SynFlow code aborts when the kept count is 5 or more off the target
(``ganguli-lab/Synaptic-Flow: prune.py``); other official code says nothing.  Here every mask is
checked for

* no kept weight at all (always an error: nothing can be trained),
* empty layers (a layer that keeps no weight),
* no input->output path (graph reachability, :func:`pai.metrics.flow.run_flow` in ``"support"``
  mode: one Boolean forward, exact at any depth), and
* a kept count more than 10% off ``round(density * N)``,

and each finding is a :class:`DegenerateMaskWarning` (``degenerate="warn"``, the default: sweeps
reach such masks on purpose, e.g. magnitude pruning at 0.1% density), an error (``"raise"``) or
nothing (``"ignore"``).  The count may deviate by ``max(10% of the target, 1 weight)``: the published
SynFlow rule keeps ``N - int((1-d) N)``, one more than ``round(d N)`` on some small nets.  A pruner
whose count does not follow ``density`` for some options (``shuffle`` of an explicit mask, a fixed
expander degree) carries ``density_free(options) -> bool``.  A pruner may also carry ``degenerate_hint(options, kinds) -> str | None``, a fix
to name in the message for the problem ``kinds`` found (SynFlow in float32 with no path:
``dtype=float64``).
"""
from __future__ import annotations

import warnings
from typing import Callable, List, Mapping, Optional, Tuple

import torch
from torch import nn

from pai.masks import NOTHING_KEPT

MODES = ("warn", "raise", "ignore")
KINDS = ("nothing-kept", "empty-layers", "density", "no-path")
DENSITY_TOLERANCE = 0.10


class DegenerateMaskWarning(UserWarning):
    """A pruner returned a mask with empty layers, no input->output path or a count far off target."""


def has_path(model: nn.Module, mask: Mapping[str, torch.Tensor], input_shape=None) -> Optional[bool]:
    """Whether any input->output path survives ``mask``; ``None`` when it cannot be told (no input
    shape, or a model the flow engine cannot trace)."""
    from pai.metrics.flow import run_flow

    shape = input_shape if input_shape is not None else getattr(model, "input_shape", None)
    if shape is None:
        return None
    weights = {k: m.detach().to("cpu", torch.float32) for k, m in mask.items()}
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # a batch-1 forward: more threads only spin
    try:
        with torch.no_grad():
            out = run_flow(model, "support", weights, tuple(int(s) for s in shape), torch.float32)
    except (ValueError, TypeError, NotImplementedError, RuntimeError):  # untraceable: cannot tell
        return None
    finally:
        torch.set_num_threads(before)
    return bool(out.t.sum() > 0)


def degenerate_problems(model: nn.Module, mask: Mapping[str, torch.Tensor], density: Optional[float],
                        input_shape=None) -> List[Tuple[str, str]]:
    """What is degenerate about ``mask``: ``(kind, description)`` pairs, ``kind`` in :data:`KINDS`
    (empty list: nothing); ``density=None`` skips the count check."""
    sizes = {k: m.numel() for k, m in mask.items()}
    kept = {k: int(m.sum()) for k, m in mask.items()}
    total, n = sum(sizes.values()), sum(kept.values())
    if n == 0:
        return [("nothing-kept", NOTHING_KEPT)]
    problems = []
    empty = [k for k in mask if kept[k] == 0]
    if empty:
        problems.append(("empty-layers", f"{len(empty)} of {len(mask)} layers keep no weight ({', '.join(empty[:3])}"
                        + (", ..." if len(empty) > 3 else "") + ")"))
    target = max(1, round(density * total)) if density is not None else n
    if abs(n - target) > max(DENSITY_TOLERANCE * target, 1):
        problems.append(("density", f"it keeps {n} weights, {n / target - 1:+.0%} off the target {target} "
                                    f"(density {n / total:.3g} for {density:.3g})"))
    if has_path(model, mask, input_shape) is False:
        problems.append(("no-path", "no input->output path survives (the output cannot depend on the input)"))
    return problems


def check_degenerate(model: nn.Module, mask: Mapping[str, torch.Tensor], density: float, method: str,
                     mode: str = "warn", hint: Optional[Callable] = None, options: Optional[dict] = None,
                     input_shape=None, check_count: bool = True) -> None:
    """Warn or raise (``mode``) naming every problem of :func:`degenerate_problems` and the fix
    ``hint(options, kinds)`` suggests; a mask that keeps nothing always raises."""
    if mode not in MODES:
        raise ValueError(f"degenerate must be one of {', '.join(MODES)}, got {mode!r}")
    if mode == "ignore" and any(int(m.sum()) for m in mask.values()):
        return
    problems = degenerate_problems(model, mask, density if check_count else None, input_shape)
    if not problems:
        return
    kinds = [k for k, _ in problems]
    message = (f"pruner {method!r} at density {density:g} returned a degenerate mask: "
               + "; ".join(text for _, text in problems))
    fix = hint(options or {}, kinds) if hint is not None else None
    if fix:
        message += f". Fix: {fix}"
    if mode == "raise" or kinds == ["nothing-kept"]:
        raise ValueError(message)
    warnings.warn(message, DegenerateMaskWarning, stacklevel=3)
