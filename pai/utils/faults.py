"""Fault-injection points for the crash tests: ``PAI_FAULT=<point>:<n>`` kills this process with
SIGKILL the ``n``-th time it reaches ``fault_point(<point>)``, so a test can ``kill -9`` a run at a
chosen place instead of guessing a time.  Unset (always, outside tests) it costs one dictionary look-up.

Points: ``epoch_end`` (after an epoch's checkpoint is written), ``before_rename`` (a temp file is
complete but not yet renamed onto its target: :func:`pai.utils.io.atomic_write`), ``pruned`` (the mask of a
run is written), ``run_done`` (a run's ``run.json`` is written).
"""
from __future__ import annotations

import os
import signal

_counts: dict = {}


def fault_point(name: str) -> None:
    spec = os.environ.get("PAI_FAULT")
    if not spec:
        return
    point, _, n = spec.rpartition(":")
    if point != name:
        return
    _counts[name] = _counts.get(name, 0) + 1
    if _counts[name] == int(n or 1):
        os.kill(os.getpid(), signal.SIGKILL)
