"""Correlation statistics for "metric vs accuracy" figures: Pearson, Spearman, bootstrap intervals.

The NeurIPS'23 paper (Hoang et al.) reports Pearson r between its full-spectrum coordinate and
accuracy; the ICLR'23 code reports none (its figures are dual-axis line plots).  Every function
drops pairs where either value is NaN or infinite (an invalid layer or a collapsed network is
"no measurement", not a number) and reports ``n``, the pairs actually used.
"""
from __future__ import annotations

import warnings
from typing import NamedTuple, Tuple

import numpy as np
from scipy import stats as sps

STATS = ("pearson", "spearman")


class Correlation(NamedTuple):
    rho: float
    p_value: float
    n: int


class Interval(NamedTuple):
    low: float
    high: float


def _pairs(x, y) -> Tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(f"x and y differ in length: {x.size} vs {y.size}")
    ok = np.isfinite(x) & np.isfinite(y)
    return x[ok], y[ok]


def _constant(a: np.ndarray) -> bool:
    return a.size == 0 or bool(np.all(a == a[0]))


def _correlate(fn, x, y) -> Correlation:
    x, y = _pairs(x, y)
    n = int(x.size)
    if n < 3 or _constant(x) or _constant(y):  # undefined, not an error: NaN with the count
        return Correlation(float("nan"), float("nan"), n)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = fn(x, y)
    return Correlation(float(res[0]), float(res[1]), n)


def pearson(x, y) -> Correlation:
    """Pearson's r, two-sided p-value (``scipy.stats.pearsonr``) and n, NaN pairs dropped."""
    return _correlate(sps.pearsonr, x, y)


def spearman(x, y) -> Correlation:
    """Spearman's rho, two-sided p-value (``scipy.stats.spearmanr``) and n, NaN pairs dropped."""
    return _correlate(sps.spearmanr, x, y)


def _rowwise_pearson(X: np.ndarray, Y: np.ndarray) -> np.ndarray:
    X = X - X.mean(1, keepdims=True)
    Y = Y - Y.mean(1, keepdims=True)
    den = np.sqrt((X * X).sum(1) * (Y * Y).sum(1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (X * Y).sum(1) / den, np.nan)


def bootstrap_ci(x, y, stat: str = "pearson", n_boot: int = 1000, seed: int = 0,
                 level: float = 0.95) -> Interval:
    """Percentile bootstrap interval of Pearson r or Spearman rho (pairs resampled with replacement).

    Vectorised: all ``n_boot`` resamples are drawn at once from a seeded numpy Generator, so the
    interval repeats bit for bit.  Resamples whose statistic is undefined (a constant resample)
    are left out; NaN when fewer than 3 pairs or no defined resample.
    """
    if stat not in STATS:
        raise ValueError(f"unknown stat {stat!r}; valid: {', '.join(STATS)}")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    x, y = _pairs(x, y)
    n = x.size
    if n < 3:
        return Interval(float("nan"), float("nan"))
    idx = np.random.default_rng(seed).integers(0, n, size=(n_boot, n))
    X, Y = x[idx], y[idx]
    if stat == "spearman":
        X, Y = sps.rankdata(X, axis=1), sps.rankdata(Y, axis=1)
    r = _rowwise_pearson(X, Y)
    r = r[np.isfinite(r)]
    if r.size == 0:
        return Interval(float("nan"), float("nan"))
    alpha = (1 - level) / 2
    lo, hi = np.quantile(r, [alpha, 1 - alpha])
    return Interval(float(lo), float(hi))
