"""One call seeds every random number generator a run can touch (python, numpy, torch).

The official PHEW and NPB code seed only torch, so their walks and kernel placements are not
reproducible; every pai pruner seeds through here and, where it samples, uses an explicit
``torch.Generator`` / ``numpy.random.Generator`` derived from the seed.
"""
from __future__ import annotations

import contextlib
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


@contextlib.contextmanager
def preserved_rng():
    """Run a block without disturbing the caller's global RNG streams: the python, numpy, torch CPU
    and (when CUDA is already initialised) CUDA states are saved on entry and restored on exit, so
    code that reseeds inside (``pai.prune``) does not make the caller's later draws repeat."""
    py, npy, cpu = random.getstate(), np.random.get_state(), torch.get_rng_state()
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() and torch.cuda.is_initialized() else None
    try:
        yield
    finally:
        random.setstate(py)
        np.random.set_state(npy)
        torch.set_rng_state(cpu)
        if cuda is not None:
            torch.cuda.set_rng_state_all(cuda)
