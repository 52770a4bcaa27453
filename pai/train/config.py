"""``TrainConfig``: everything that defines a training run, and its one coercion ``TrainConfig.coerce``.

Recipe defaults are the CIFAR recipe of Liu et al., "The Unreasonable Effectiveness of Random
Pruning", ICLR 2022 (``VITA-Group/Random_Pruning``): SGD lr 0.1, momentum 0.9, Nesterov, wd 5e-4,
batch 128, ``MultiStepLR`` x0.1 at 50 % and 75 % of the epochs.  ``milestones`` are *fractions*
of ``epochs`` (floored like their ``int(epochs/2), int(epochs*3/4)``) so one config serves any
length; the official code takes absolute epochs.
"""
from __future__ import annotations

import dataclasses
import difflib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

from pai.utils.errors import UserError
from pai.utils.io import load_json, load_yaml

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
        """Every field checked, so a bad value is one clear error before any work (``UserError``)."""
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.type == "float":  # YAML 1.1 reads "5e-4" as a string; ints are floats too
                setattr(self, f.name, _number(f.name, value))
            elif f.type == "bool" and not isinstance(value, bool):  # "no" would count as True
                raise UserError(f"{f.name} must be true or false, got {value!r}")
            elif f.type == "str" and not isinstance(value, str):
                raise UserError(f"{f.name} must be a string, got {value!r}")
        if not isinstance(self.milestones, (list, tuple)):
            raise UserError(f"milestones must be a list of fractions of the epochs, got {self.milestones!r}")
        self.milestones = tuple(_number("milestones", m) for m in self.milestones)
        self._check_ranges()

    def _check_ranges(self) -> None:
        if self.schedule not in SCHEDULES:
            raise UserError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        for name in ("epochs", "batch_size", "eval_batch_size", "eval_every"):
            if not _is_int(getattr(self, name)) or getattr(self, name) < 1:
                raise UserError(f"{name} must be a positive int, got {getattr(self, name)!r}")
        for name in ("train_subset", "test_subset", "threads", "image_size"):
            value = getattr(self, name)
            if value is not None and (not _is_int(value) or value < 1):
                raise UserError(f"{name} must be none or an int >= 1, got {value!r}")
        if not _is_int(self.seed) or self.seed < 0:
            raise UserError(f"seed must be an int >= 0, got {self.seed!r}")
        bounds = {"lr": (0.0, math.inf, False), "momentum": (0.0, 1.0, True), "weight_decay": (0.0, math.inf, True),
                  "gamma": (0.0, math.inf, False), "label_smoothing": (0.0, 1.0, True)}
        for name, (low, high, low_ok) in bounds.items():
            value = getattr(self, name)
            if not (math.isfinite(value) and (value >= low if low_ok else value > low) and value < high):
                span = f"{'[' if low_ok else '('}{low:g}, {high:g})"
                raise UserError(f"{name} must be a finite number in {span}, got {value!r}")
        if any(not 0.0 <= m <= 1.0 for m in self.milestones):
            raise UserError(f"milestones are fractions of the epochs in [0, 1], got {self.milestones}")
        if not (self.device == "auto" or self.device == "cpu" or self.device.startswith("cuda")):
            raise UserError(f"device must be 'auto', 'cpu' or 'cuda[:N]', got {self.device!r}")

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
            raise UserError(f"unknown TrainConfig key(s) {unknown}{_close(unknown, valid)}; valid keys: {', '.join(valid)}")
        return cls(**d)

    @classmethod
    def from_file(cls, path: str | Path) -> "TrainConfig":
        """Read a ``.yaml``/``.yml``/``.json`` file holding one mapping of config keys."""
        path = Path(path)
        if path.suffix in (".yaml", ".yml"):
            d = load_yaml(path, what="config file") or {}
        elif path.suffix == ".json":
            d = load_json(path, what="config file", fix="fix the file")
        else:
            raise UserError(f"config file must end in .yaml, .yml or .json, got {path.name}")
        if not isinstance(d, dict):
            raise UserError(f"config file {path} must hold a mapping of TrainConfig keys, got {type(d).__name__}")
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
        if self.device.startswith("cuda"):
            if not torch.cuda.is_available():
                raise UserError(f"device {self.device!r} asked for, but torch sees no CUDA GPU "
                                f"(torch.cuda.is_available() is False); use --device cpu (or auto)")
            index = torch.device(self.device).index
            if index is not None and index >= torch.cuda.device_count():
                raise UserError(f"device {self.device!r} asked for, but only {torch.cuda.device_count()} "
                                f"CUDA GPU(s) are visible; use cuda:0..{torch.cuda.device_count() - 1}")
        return torch.device(self.device)


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(name: str, value) -> float:
    """``value`` as a float: a number or a numeric string (YAML 1.1's "5e-4"); never a bool."""
    if isinstance(value, bool):
        raise UserError(f"{name} must be a number, got {value!r}")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise UserError(f"{name} must be a number, got {value!r}") from None


def _close(unknown: Sequence[str], valid: Sequence[str]) -> str:
    """`` (did you mean 'epochs'?)`` for the first unknown name close to a valid one."""
    for name in unknown:
        match = difflib.get_close_matches(name, valid, n=1)
        if match:
            return f" (did you mean {match[0]!r} for {name!r}?)"
    return ""
