"""One call seeds every random number generator a run can touch (python, numpy, torch).

The official PHEW and NPB code seed only torch, so their walks and kernel placements are not
reproducible; every pai pruner seeds through here and, where it samples, uses an explicit
``torch.Generator`` / ``numpy.random.Generator`` derived from the seed.
"""
from __future__ import annotations

import random

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def torch_generator(seed: int, device: str | torch.device = "cpu") -> torch.Generator:
    g = torch.Generator(device=device)
    g.manual_seed(int(seed))
    return g


def numpy_generator(seed: int) -> np.random.Generator:
    return np.random.default_rng(int(seed))
