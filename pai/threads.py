"""The one torch thread limiter: ``with torch_threads(n):`` or ``@torch_threads(1)``.

Small ops on a busy CPU pay an OpenMP fork/join per op; the callers say, with their measurements, why
they run on one thread (DST mask updates, path flows, the NPB solver).  ``None`` keeps the current
setting, so a config's ``threads=None`` means "torch's default".
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, Optional

import torch


@contextmanager
def torch_threads(n: Optional[int]) -> Iterator[None]:
    """Run the block (or the decorated function) with ``n`` torch intra-op threads, then restore them."""
    old = torch.get_num_threads()
    if n is not None and n != old:
        torch.set_num_threads(int(n))
    try:
        yield
    finally:
        if torch.get_num_threads() != old:
            torch.set_num_threads(old)
