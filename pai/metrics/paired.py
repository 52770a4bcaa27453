"""Comparing two methods run by run, and the rule that flags a collapsed run.

A comparison pairs the two methods' runs that share a model, a density and a seed (hence an
initialisation) and works on the differences: the seed-to-seed spread both methods share drops out.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy import stats as sps


def _check_level(level: float) -> None:
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")


# A network pruned past its breaking point trains to chance accuracy; its number means "the run failed",
# not a point on the accuracy scale, and averaged in it drags a mean by tens of points.
NUM_CLASSES = {"fashion-mnist": 10, "mnist": 10, "digits": 10, "cifar10": 10, "cifar100": 100,
               "tiny-imagenet": 200}
COLLAPSE_MARGIN = 0.5  # collapsed: accuracy <= chance * (1 + margin), i.e. <= 0.15 on ten classes


def chance_accuracy(dataset: str | int) -> float:
    """1 / number of classes (``dataset`` a name from ``NUM_CLASSES`` or a class count)."""
    classes = dataset if isinstance(dataset, (int, np.integer)) else NUM_CLASSES.get(str(dataset))
    if classes is None:
        raise KeyError(f"unknown dataset {dataset!r}; valid: {', '.join(NUM_CLASSES)} or a class count")
    return 1.0 / int(classes)


def collapsed(accuracy, chance: float, margin: float = COLLAPSE_MARGIN) -> np.ndarray:
    """True where a run sits at chance: ``accuracy <= chance * (1 + margin)``.  A relative margin keeps
    the rule meaningful from 10 to 200 classes (0.15 on Fashion-MNIST, 0.0075 on Tiny-ImageNet, where
    SynFlow's 7% at 99.9% sparsity is learning).  NaN accuracy is not collapsed (it is missing)."""
    acc = np.asarray(accuracy, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return np.isfinite(acc) & (acc <= chance * (1.0 + margin))


class Paired(NamedTuple):
    """Mean of paired differences with its Student-t interval (the one verdicts use) and, beside it, a
    percentile bootstrap interval; ``sd`` of the differences; two-sided p of the paired t-test."""
    mean: float
    low: float
    high: float
    n: int
    sd: float
    p_value: float
    boot_low: float
    boot_high: float


def mean_interval(diff, *, level: float = 0.95, n_boot: int = 10000, seed: int = 0) -> Paired:
    """Mean of ``diff`` (non-finite values dropped) with a t interval and a bootstrap interval.

    The t interval ``mean ± t_{n-1} sd/√n`` is exact for normal differences and keeps its coverage at
    3–10 pairs, where a percentile bootstrap cannot: resampling 3 values, the bootstrap interval is
    never wider than their range, and undercovers badly.  The bootstrap (seeded, vectorised) is reported
    beside it for larger n.  Identical differences give a zero-width interval at their value.
    """
    _check_level(level)
    d = np.asarray(diff, dtype=np.float64).ravel()
    d = d[np.isfinite(d)]
    n = int(d.size)
    nan = float("nan")
    if n == 0:
        return Paired(nan, nan, nan, 0, nan, nan, nan, nan)
    mean = float(d.mean())
    if n == 1:
        return Paired(mean, nan, nan, 1, nan, nan, nan, nan)
    sd = float(d.std(ddof=1))
    if sd == 0.0:  # every pair differs by the same amount: no spread to put an interval on
        return Paired(mean, mean, mean, n, 0.0, 1.0 if mean == 0 else 0.0, mean, mean)
    low, high = sps.t.interval(level, n - 1, loc=mean, scale=sd / np.sqrt(n))
    p = float(2 * sps.t.sf(abs(mean) / (sd / np.sqrt(n)), n - 1))
    idx = np.random.default_rng(seed).integers(0, n, size=(n_boot, n))
    boot = d[idx].mean(axis=1)
    alpha = (1 - level) / 2
    blo, bhi = np.quantile(boot, [alpha, 1 - alpha])
    return Paired(mean, float(low), float(high), n, sd, p, float(blo), float(bhi))


def paired_difference(a, b, *, level: float = 0.95, n_boot: int = 10000, seed: int = 0) -> Paired:
    """``a - b`` pair by pair (equal-length arrays, aligned on the pairing key), then
    :func:`mean_interval`.  A pair with a non-finite member is dropped."""
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"a and b differ in length: {a.size} vs {b.size}")
    return mean_interval(a - b, level=level, n_boot=n_boot, seed=seed)
