"""``TrainConfig``: everything that defines a training run, and its one coercion ``TrainConfig.coerce``.

Recipe defaults are the CIFAR recipe of Liu et al., "The Unreasonable Effectiveness of Random
Pruning", ICLR 2022 (``VITA-Group/Random_Pruning``): SGD lr 0.1, momentum 0.9, Nesterov, wd 5e-4,
batch 128, ``MultiStepLR`` x0.1 at 50 % and 75 % of the epochs.  ``milestones`` are *fractions*
of ``epochs`` (floored like their ``int(epochs/2), int(epochs*3/4)``) so one config serves any
length; the official code takes absolute epochs.
"""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Tuple

# how to run, not what is computed: changing them must not invalidate a finished run (nor its id)
HOW_TO_RUN = ("data_root", "threads")
SCHEDULES = ("multistep", "cosine", "constant")
# fields added after run ids were in use: left out of ``to_dict`` (so of every run id) at their default
OMITTED_AT_DEFAULT = ("image_size", "eval_every")


@dataclass
class TrainConfig:
    """Everything that defines a run.  ``threads`` and ``data_root`` say how to run, not what."""

    model: str = "lenet-300-100"
    dataset: str = "fashion-mnist"
    epochs: int = 10
    batch_size: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    schedule: str = "multistep"
    milestones: Tuple[float, ...] = (0.5, 0.75)  # fractions of ``epochs`` where lr *= gamma
    gamma: float = 0.1
    label_smoothing: float = 0.0
    augment: bool = False  # random crop (padding 4) + horizontal flip
    seed: int = 0
    device: str = "auto"  # "auto" = cuda when available, else cpu
    threads: Optional[int] = None  # CPU threads; None keeps torch's default (all cores, or OMP_NUM_THREADS)
    compile: bool = False  # torch.compile (slower than eager on CPU for these small nets)
    bf16: bool = True  # bf16 autocast, CUDA only
    channels_last: bool = True  # CUDA only (on CPU it was neutral on real data: python -m pai.bench train)
    train_subset: Optional[int] = None
    test_subset: Optional[int] = None
    eval_batch_size: int = 1024
    eval_every: int = 1  # evaluate after every k-th epoch and the last (others: test_acc None)
    data_root: Optional[str] = None
    image_size: Optional[int] = None  # area-average the images to this size on load (pai.data.load_dataset)

    def __post_init__(self):
        self.milestones = tuple(float(m) for m in self.milestones)
        for f in dataclasses.fields(self):
            if f.type == "float":  # YAML 1.1 reads "5e-4" as a string
                setattr(self, f.name, float(getattr(self, f.name)))
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        for name in ("epochs", "batch_size", "eval_batch_size", "eval_every"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive int, got {getattr(self, name)!r}")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be an int >= 0, got {self.seed!r}")
        if any(not 0.0 <= m <= 1.0 for m in self.milestones):
            raise ValueError(f"milestones are fractions of the epochs in [0, 1], got {self.milestones}")
        if not (self.device == "auto" or self.device == "cpu" or self.device.startswith("cuda")):
            raise ValueError(f"device must be 'auto', 'cpu' or 'cuda[:N]', got {self.device!r}")
        if self.image_size is not None and (isinstance(self.image_size, bool) or not isinstance(self.image_size, int)
                                            or self.image_size < 1):
            raise ValueError(f"image_size must be None or a positive int, got {self.image_size!r}")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"threads must be None or >= 1, got {self.threads}")

    def lr_at(self, epoch: int) -> float:
        """The learning rate of 0-based ``epoch``: multistep = ``MultiStepLR``, cosine = ``CosineAnnealingLR``
        (``eta_min=0``), both stepped per epoch.  A milestone never falls on epoch 0
        (``max(1, int(f * epochs))``): the official flooring would start a 1-epoch run at ``lr * gamma**2``.
        """
        if self.schedule == "constant":
            return self.lr
        if self.schedule == "cosine":
            return self.lr * 0.5 * (1.0 + math.cos(math.pi * epoch / self.epochs))
        return self.lr * self.gamma ** sum(epoch >= max(1, int(m * self.epochs)) for m in self.milestones)

    def to_dict(self) -> Dict[str, Any]:
        d = dataclasses.asdict(self)
        d["milestones"] = list(self.milestones)
        defaults = {f.name: f.default for f in dataclasses.fields(self)}
        return {k: v for k, v in d.items() if not (k in OMITTED_AT_DEFAULT and v == defaults[k])}

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> "TrainConfig":
        valid = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(d) - set(valid))
        if unknown:
            raise ValueError(f"unknown TrainConfig key(s) {unknown}; valid keys: {', '.join(valid)}")
        return cls(**d)

    @classmethod
    def from_file(cls, path: str | Path) -> "TrainConfig":
        """Read a ``.yaml``/``.yml``/``.json`` file holding one mapping of config keys."""
        path = Path(path)
        with open(path) as f:
            if path.suffix in (".yaml", ".yml"):
                import yaml

                d = yaml.safe_load(f) or {}
            elif path.suffix == ".json":
                d = json.load(f)
            else:
                raise ValueError(f"config file must end in .yaml, .yml or .json, got {path.name}")
        if not isinstance(d, dict):
            raise ValueError(f"{path} must hold a mapping of TrainConfig keys, got {type(d).__name__}")
        return cls.from_dict(d)

    @classmethod
    def coerce(cls, config: "TrainConfig | Mapping[str, Any]") -> "TrainConfig":
        """``config`` itself if it is a ``TrainConfig``, else ``from_dict`` of the mapping."""
        return config if isinstance(config, cls) else cls.from_dict(dict(config))

    def torch_device(self):
        """The device ``device`` names (``auto``: CUDA when available, else the CPU)."""
        import torch

        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return torch.device(self.device)
