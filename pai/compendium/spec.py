"""``RunSpec``: what one run is (train config, pruning, regime), and its stable id (open_lth's ``desc.py``).

A run is "prune at initialisation, then train through a regime"::

    RunSpec(train=TrainConfig(model="lenet5", dataset="fashion-mnist", seed=0, ...),
            prune=PruneSpec(method="rreg", density=0.05, seed=0, options={}),
            regime="static",            # or "dst", "lth" (pai.compendium.regimes)
            regime_options={},
            metrics=True,               # measure the mask's graph/path metrics
            plugins=None)               # modules of the user's own pruner/model (pai.compendium.plugins); None: found

Its JSON form (:meth:`RunSpec.to_dict`) is what ``spec.json`` and ``run.json`` hold and what the id
hashes::

    {"train": {every TrainConfig field}, "metrics": true,
     "prune": {"method": ..., "density": ..., "seed": ..., "options": {...}},
     "regime": {"kind": "dst", "options": {...}},      # absent for static runs
     "plugins": ["my_pruner"]}                          # absent unless a plugin provides the method or model

:func:`run_id` is the md5 of the canonical JSON (sorted keys, no spaces) with the spec version, minus
the fields that say how to run (``threads``, ``data_root``); a test pins ids of several specs, so a
change of this format is a deliberate ``SPEC_VERSION`` bump, never an accident.  A plain mapping
(a spec written by hand, or read back from ``run.json``) hashes exactly as given.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Dict, Mapping, Optional, Tuple

from pai.train.config import HOW_TO_RUN, TrainConfig

SPEC_VERSION = 1  # bump only when the meaning of a spec changes: it enters every hash


@dataclass(frozen=True)
class PruneSpec:
    """How the starting mask is made: ``pai.prune(model, method, density, seed=seed, **options)``."""

    method: str = "dense"
    density: float = 1.0  # fraction of weights kept
    seed: int = 0
    options: Dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        object.__setattr__(self, "density", float(self.density))
        object.__setattr__(self, "seed", int(self.seed))
        object.__setattr__(self, "options", dict(self.options or {}))

    def to_dict(self) -> Dict[str, Any]:
        return {"method": self.method, "density": self.density, "seed": self.seed, "options": dict(self.options)}


@dataclass(frozen=True)
class RunSpec:
    """One run; build it with :func:`make_spec` or :func:`pai.compendium.params.grid`, run it with :func:`pai.compendium.runs.run_one`."""

    train: TrainConfig
    prune: PruneSpec = field(default_factory=PruneSpec)
    regime: str = "static"
    regime_options: Dict[str, Any] = field(default_factory=dict)
    metrics: bool = True
    # the plugin modules (pai.compendium.plugins) a worker imports before this run; None: those that registered the
    # method, its generator and the model in this process.  Empty for pai's own, so their ids are unchanged
    plugins: Optional[Tuple[str, ...]] = None

    def __post_init__(self):
        from pai.compendium.plugins import check_names, providers
        from pai.compendium.regimes import get_regime  # the registry is light; regimes import their trainers lazily

        object.__setattr__(self, "train", TrainConfig.coerce(self.train))
        if not isinstance(self.prune, PruneSpec):
            object.__setattr__(self, "prune", PruneSpec(**self.prune))
        object.__setattr__(self, "regime_options", dict(self.regime_options or {}))
        object.__setattr__(self, "metrics", bool(self.metrics))
        plugins = (providers(self.prune.method, self.prune.options, self.train.model) if self.plugins is None
                   else check_names(self.plugins, "spec plugins"))
        object.__setattr__(self, "plugins", tuple(plugins))
        regime = get_regime(self.regime)
        if getattr(regime, "starts_dense", False) and self.prune.method != "dense":
            raise ValueError(f"the {self.regime} regime starts from the dense network: method must be 'dense'")
        if self.regime == "static" and self.regime_options:
            raise ValueError(f"the static regime takes no options, got {self.regime_options}")

    @property
    def id(self) -> str:
        return run_id(self)

    def to_dict(self) -> Dict[str, Any]:
        """The JSON form (``spec.json``); the ``regime`` key is absent for static runs, as it always was."""
        out = {"train": self.train.to_dict(), "metrics": self.metrics, "prune": self.prune.to_dict()}
        if self.regime != "static":
            out["regime"] = {"kind": self.regime, "options": dict(self.regime_options)}
        if self.plugins:
            out["plugins"] = list(self.plugins)
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "RunSpec":
        regime = d.get("regime") or {"kind": "static"}
        return cls(train=TrainConfig.from_dict(dict(d["train"])), prune=PruneSpec(**d["prune"]),
                   regime=regime["kind"], regime_options=regime.get("options", {}), metrics=d.get("metrics", True),
                   plugins=d.get("plugins") or ())

    @classmethod
    def coerce(cls, spec: "RunSpec | Mapping[str, Any]") -> "RunSpec":
        return spec if isinstance(spec, cls) else cls.from_dict(spec)

    def replace(self, **changes) -> "RunSpec":
        """A copy with fields replaced; ``prune=dict(...)`` updates only the prune fields named."""
        if isinstance(changes.get("prune"), Mapping):
            changes["prune"] = dataclasses.replace(self.prune, **changes["prune"])
        new = dataclasses.replace(self, **changes)
        if "plugins" not in changes and _uses(new) != _uses(self):  # another method or model: found anew
            new = dataclasses.replace(new, plugins=None)
        return new


def _uses(s: RunSpec) -> tuple:
    return s.prune.method, s.prune.options.get("generator"), s.train.model


def as_dict(spec: "RunSpec | Mapping[str, Any]") -> Dict[str, Any]:
    """The JSON form of a spec: ``to_dict()`` of a ``RunSpec``, a mapping as it is."""
    return spec.to_dict() if isinstance(spec, RunSpec) else dict(spec)


def canonical(spec: "RunSpec | Mapping[str, Any]") -> str:
    return json.dumps(as_dict(spec), sort_keys=True, separators=(",", ":"), default=str)


def run_id(spec: "RunSpec | Mapping[str, Any]") -> str:
    """Stable 16-hex-digit id of a spec (md5 of its canonical JSON and the spec version)."""
    spec = as_dict(spec)
    if any(k in spec.get("train", {}) for k in HOW_TO_RUN):
        spec = {**spec, "train": {k: v for k, v in spec["train"].items() if k not in HOW_TO_RUN}}
    payload = f"v{SPEC_VERSION}:" + "".join(f"{m}@r{r}:" for m, r in revisions(spec)) + canonical(spec)
    return hashlib.md5(payload.encode()).hexdigest()[:16]


def revisions(spec: Mapping[str, Any]) -> list:
    """``(method, revision)`` of the pruners a spec runs whose default changed (``pai.pruners.revised``):
    the method and a meta-pruner's ``generator``.  Empty for every other spec, whose id is unchanged."""
    from pai.pruners import revision_of

    prune = spec.get("prune", {})
    methods = [prune.get("method", "dense"), (prune.get("options") or {}).get("generator")]
    return [(m, revision_of(m)) for m in methods if isinstance(m, str) and revision_of(m) > 1]


def make_spec(*, model: str, dataset: str, method: str = "dense", density: float = 1.0, prune_seed: int = 0,
              prune_options: Dict[str, Any] | None = None, metrics: bool = True, regime: str = "static",
              regime_options: Dict[str, Any] | None = None, plugins=None, **train) -> RunSpec:
    """A spec from flat keyword arguments (anything else is a ``TrainConfig`` field).

    ``regime``: ``static`` (train the pruned mask as it is), ``dst`` (dynamic sparse training from it,
    :func:`pai.train.dst.train_dst` options) or ``lth`` (lottery-ticket IMP down to ``density``,
    :func:`pai.train.lth.lottery_ticket` options; ``method`` must be ``dense``)."""
    return RunSpec(train=TrainConfig.from_dict({"model": model, "dataset": dataset, **train}),
                   prune=PruneSpec(method, density, prune_seed, prune_options or {}),
                   regime=regime, regime_options=regime_options or {}, metrics=metrics, plugins=plugins)
