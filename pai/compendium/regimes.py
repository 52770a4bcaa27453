"""Training regimes: how a run trains from its pruned mask.  One function each, in a registry.

A regime is ``fn(start: Start, **regime_options) -> Trained``, registered with ``@register_regime``:

- ``static``: train the mask as it is (pruning at initialisation; :func:`pai.train.train`);
- ``dst``: dynamic sparse training (SET / ITOP-Rand / RigL) from the mask (:func:`pai.train.dst.train_dst`);
- ``lth``: lottery-ticket IMP with rewinding from the dense network down to the spec's density
  (:func:`pai.train.lth.lottery_ticket`); ``starts_dense``: the spec's method must be ``dense``.

The regime trains in the run's directory (:class:`pai.train.rundir.RunDir`), so an interrupted run resumes
where it stopped; it returns the training result and the mask the run is measured and recorded with
(the pruned mask, or the lottery ticket).  Trainers are imported when a regime runs, so reading
this registry (spec validation) stays cheap.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Optional

from pai.utils.registry import Registry
from pai.train.rundir import RunDir

REGIMES = Registry("regime")


def register_regime(name: str, *, starts_dense: bool = False) -> Callable:
    """Decorator; ``starts_dense``: the regime makes its own mask from the dense network."""

    def deco(fn):
        fn.starts_dense = starts_dense
        return REGIMES.register(name)(fn)

    return deco


def get_regime(name: str) -> Callable:
    return REGIMES.get(name)


def check_regime_options(name: str, options: Dict[str, Any]) -> None:
    """``ValueError`` for an unknown regime, an option it does not take or a value out of its range,
    before any run starts (the trainer would otherwise refuse it only after pruning)."""
    regime = get_regime(name)
    if name == "static":
        if options:
            raise ValueError(f"the static regime takes no options, got {dict(options)}")
        return
    if name == "dst":
        from pai.train.dst import check_options
    elif name == "lth":
        from pai.train.lth import check_regime_options as check_options
    else:
        check_options = getattr(regime, "check_options", None)
    if check_options is not None:
        check_options(**dict(options))


@dataclass
class Start:
    """What a regime trains from: the spec, its directory, the data, the model at initialisation
    (the regime's own copy: it may train it in place), the pruned mask (None: dense) and the weights
    the mask was chosen on when they are not the initialisation (PEGS: theta_T)."""

    spec: Any  # a pai.compendium.spec.RunSpec (spec imports this module to validate regime names)
    run_dir: RunDir
    data: Any
    model: Any
    mask: Optional[Dict[str, Any]]
    init_state: Optional[Dict[str, Any]] = None
    progress: Optional[bool] = False


@dataclass
class Trained:
    """A regime's outcome: ``result`` is ``TrainResult.to_dict()``; ``mask`` the mask the run is
    measured and recorded with; ``record`` extra fields of ``run.json``."""

    result: Dict[str, Any]
    mask: Optional[Dict[str, Any]]
    record: Dict[str, Any] = field(default_factory=dict)


@register_regime("static")
def static(start: Start) -> Trained:
    """Train the pruned mask as it is: the pruned weights stay exactly 0 (``pai.train``)."""
    from pai.train import train

    result = train(start.spec.train, mask=start.mask, model=start.model, data=start.data,
                   run_dir=start.run_dir.path, progress=start.progress, init_state=start.init_state)
    return Trained(result.to_dict(), start.mask)


@register_regime("dst")
def dst(start: Start, **options) -> Trained:
    """Dynamic sparse training from the pruned mask (Liu et al., ICML 2021; ``pai.train.dst.DynamicSparsity``
    options)."""
    from pai.train.dst import train_dst

    result = train_dst(start.spec.train, mask=start.mask, model=start.model, data=start.data,
                       run_dir=start.run_dir.path, progress=start.progress, init_state=start.init_state, **options)
    return Trained(result.to_dict(), start.mask)


@register_regime("lth", starts_dense=True)
def lth(start: Start, **options) -> Trained:
    """Iterative magnitude pruning to the spec's density with rewinding (Frankle & Carbin, ICLR 2019;
    Frankle et al., ICML 2020); the run is the last round's ticket, saved as the run's mask and weights."""
    from pai.utils.io import save_torch
    from pai.train.lth import lottery_ticket
    from pai.masks import save_mask

    rounds = lottery_ticket(start.spec.train, density_target=start.spec.prune.density, model=start.model,
                            data=start.data, run_dir=start.run_dir.lth, progress=start.progress, **options)
    ticket = rounds[-1]
    save_mask(ticket.mask, start.run_dir.mask, meta={"spec": start.spec.to_dict(), "lth_rounds": len(rounds) - 1})
    save_torch({k: v.detach().to("cpu") for k, v in ticket.result.model.state_dict().items()}, start.run_dir.final)
    summaries = [{k: v for k, v in r.summary().items() if k != "layer_densities"} for r in rounds]
    return Trained(ticket.result.to_dict(), ticket.mask, {"lth_rounds": summaries})
