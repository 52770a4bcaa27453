"""Threads: the one torch thread limiter ``with torch_threads(n):``, and the OpenMP wait policy.

Small ops on a busy CPU pay an OpenMP fork/join per op; the callers say, with their measurements, why
they run on one thread (DST mask updates, path flows, the NPB solver).  ``None`` keeps the current
setting, so a config's ``threads=None`` means "torch's default".

:func:`passive_wait`: OpenMP threads that finish a parallel region spin, waiting for the next one
(``OMP_WAIT_POLICY=ACTIVE``-like default of GNU OpenMP).  On a machine where another job holds a core,
the spinning threads steal the cores the working ones need: pruning ResNet-20 with SynFlow at density
0.01 next to one busy process on a shared 2-core machine took 110 s (median of 2; CPU 40 s) with torch's
default threads, 3.7 s (CPU 2.7 s) with ``OMP_WAIT_POLICY=PASSIVE`` and 10 s (CPU 2.4 s) on one thread
(``python -m pai.bench threads``).  OpenMP reads the variable once, when torch loads it, so the entry points (``python -m
pai``, ``python -m pai.notebook`` and the kernels it starts, the Makefile) set it before torch is
imported; a value already in the environment is kept.  This module imports torch only when used.
"""
from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from typing import Iterator, MutableMapping, Optional

WAIT_POLICY = "PASSIVE"


def passive_wait(env: Optional[MutableMapping[str, str]] = None) -> bool:
    """Set ``OMP_WAIT_POLICY=PASSIVE`` in ``env`` (default ``os.environ``) unless it is set already.
    Returns whether the policy now in ``env`` is passive and, for this process's environment, whether it
    can still take effect (False once torch is imported: its OpenMP runtime has read the variable)."""
    target = os.environ if env is None else env
    target.setdefault("OMP_WAIT_POLICY", WAIT_POLICY)
    passive = target["OMP_WAIT_POLICY"].upper() == WAIT_POLICY
    return passive and (env is not None or "torch" not in sys.modules)


@contextmanager
def torch_threads(n: Optional[int]) -> Iterator[None]:
    """Run the block (or the decorated function) with ``n`` torch intra-op threads, then restore them."""
    import torch

    old = torch.get_num_threads()
    if n is not None and n != old:
        torch.set_num_threads(int(n))
    try:
        yield
    finally:
        if torch.get_num_threads() != old:
            torch.set_num_threads(old)
