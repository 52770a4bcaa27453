"""Statistics that decide claims: paired method comparisons, correlations with intervals, partial
correlations that control for density, and the collapsed-run rule.

The NeurIPS'23 paper (Hoang et al.) reports Pearson r between its full-spectrum coordinate and
accuracy; the ICLR'23 code reports none (its figures are dual-axis line plots).  Every function
drops pairs where either value is NaN or infinite (an invalid layer or a collapsed network is
"no measurement", not a number) and reports ``n``, the pairs actually used.

- ``pearson``, ``spearman``, ``correlation`` (ρ, p, n and a Fisher z interval), ``bootstrap_ci``;
- ``partial_correlation(x, y, covariates=, groups=)``: ρ with density (or any grouping) partialled out;
- ``correlation_difference(y, x1, x2)``: ``|ρ(y,x1)| - |ρ(y,x2)|`` with a paired bootstrap interval;
- from :mod:`.paired` (re-exported here): ``paired_difference(a, b)`` / ``mean_interval(d)``, the mean
  paired difference with a t interval (the one verdicts use; see :func:`mean_interval` for why not the
  bootstrap at 3 seeds) and a bootstrap beside it; ``chance_accuracy``, ``collapsed``: a run at chance
  (``acc <= chance · 1.5``) is flagged.
"""
from __future__ import annotations

import warnings
from typing import NamedTuple, Tuple

import numpy as np
from scipy import stats as sps

from pai.metrics.paired import (COLLAPSE_MARGIN, NUM_CLASSES, Paired, _check_level, chance_accuracy,  # noqa: F401
                     collapsed, mean_interval, paired_difference)

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


# --------------------------------------------------------------------------------------------------
# Correlations with an interval, and partial correlations that take density (or any grouping) out.

class CorrelationCI(NamedTuple):
    """``rho`` with two-sided ``p_value``, ``n`` observations, ``k`` covariates partialled out (group
    indicators count one each after the first) and a ``level`` interval ``(low, high)``."""
    rho: float
    p_value: float
    n: int
    low: float
    high: float
    k: int


def fisher_interval(r: float, n: int, *, k: int = 0, level: float = 0.95, method: str = "pearson") -> Interval:
    """Fisher z interval: ``tanh(atanh r ± z_{level} · se)`` with ``se = 1/√(n-3-k)`` for Pearson and
    ``√(1.06/(n-3-k))`` for Spearman (Fieller, Hartley & Pearson 1957); ``k`` partialled covariates
    (Fisher 1924).  NaN when ``n - k <= 3``."""
    _check_level(level)
    if method not in STATS:
        raise ValueError(f"unknown stat {method!r}; valid: {', '.join(STATS)}")
    dof = n - 3 - k
    if dof <= 0 or not np.isfinite(r):
        return Interval(float("nan"), float("nan"))
    se = np.sqrt((1.06 if method == "spearman" else 1.0) / dof)
    z = np.arctanh(np.clip(r, -1 + 1e-15, 1 - 1e-15))
    q = sps.norm.ppf(0.5 + level / 2)
    return Interval(float(np.tanh(z - q * se)), float(np.tanh(z + q * se)))


def _design(n: int, covariates, groups) -> np.ndarray:
    """Columns to partial out: an intercept (or one indicator per group) and the covariates."""
    cols = []
    if groups is not None:
        g = np.asarray(groups, dtype=object).ravel()
        if g.size != n:
            raise ValueError(f"groups has {g.size} entries for {n} observations")
        _, codes = np.unique(g.astype(str), return_inverse=True)
        cols.append(np.eye(codes.max() + 1)[codes])
    else:
        cols.append(np.ones((n, 1)))
    if covariates is not None:
        cols.append(np.asarray(covariates, dtype=np.float64).reshape(n, -1))
    return np.hstack(cols)


def _residualize(v: np.ndarray, X: np.ndarray) -> np.ndarray:
    coef, *_ = np.linalg.lstsq(X, v, rcond=None)
    return v - X @ coef


def _finite_rows(x, y, covariates, groups):
    x = np.asarray(x, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(f"x and y differ in length: {x.size} vs {y.size}")
    ok = np.isfinite(x) & np.isfinite(y)
    cov = None
    if covariates is not None:
        cov = np.asarray(covariates, dtype=np.float64)
        cov = cov.reshape(x.size, -1)
        ok &= np.isfinite(cov).all(axis=1)
        cov = cov[ok]
    grp = None if groups is None else np.asarray(groups, dtype=object).ravel()[ok]
    return x[ok], y[ok], cov, grp


def partial_correlation(x, y, *, covariates=None, groups=None, method: str = "pearson",
                        level: float = 0.95) -> CorrelationCI:
    """Correlation of ``x`` and ``y`` after removing what ``covariates`` (columns, e.g. log10 density)
    and ``groups`` (labels, e.g. the density level: one indicator each) explain linearly.

    Both are regressed on the design by least squares and the residuals correlated; the p-value uses
    ``t = r √(df/(1-r²))`` with ``df = n - 2 - k`` and the interval Fisher's z with ``n - k`` (``k`` the
    design's rank minus one), which equals the t-test of ``x``'s coefficient in ``y ~ x + design``.
    Grouping by density level is the within-density estimate pooled over levels: every level's own
    mean is removed, so a relation density alone produces (denser -> larger metric and higher
    accuracy) cannot appear.  ``method="spearman"`` ranks ``x``, ``y`` and the covariates first.
    Rows with any non-finite value are dropped; NaN (not an error) when too few remain.
    """
    if method not in STATS:
        raise ValueError(f"unknown stat {method!r}; valid: {', '.join(STATS)}")
    _check_level(level)
    x, y, cov, grp = _finite_rows(x, y, covariates, groups)
    n = int(x.size)
    nan = float("nan")
    if method == "spearman" and n:
        x, y = sps.rankdata(x), sps.rankdata(y)
        cov = None if cov is None else sps.rankdata(cov, axis=0)
    X = _design(n, cov, grp) if n else np.ones((0, 1))
    k = int(np.linalg.matrix_rank(X)) - 1 if n else 0
    if n - k < 4:
        return CorrelationCI(nan, nan, n, nan, nan, k)
    rx, ry = _residualize(x, X), _residualize(y, X)
    den = np.sqrt((rx @ rx) * (ry @ ry))
    scale = max(float(np.abs(x).max()), float(np.abs(y).max()), 1.0)
    if den <= (1e-12 * scale) ** 2 * n:  # nothing left to correlate once the design is removed
        return CorrelationCI(nan, nan, n, nan, nan, k)
    r = float(np.clip((rx @ ry) / den, -1.0, 1.0))
    dof = n - 2 - k
    t = r * np.sqrt(dof / max(1e-300, 1 - r * r))
    p = float(2 * sps.t.sf(abs(t), dof))
    lo, hi = fisher_interval(r, n, k=k, level=level, method=method)
    return CorrelationCI(r, p, n, lo, hi, k)


def correlation(x, y, *, method: str = "pearson", level: float = 0.95) -> CorrelationCI:
    """ρ, p (scipy), n and a Fisher z interval; see :func:`partial_correlation` to control for density."""
    if method not in STATS:
        raise ValueError(f"unknown stat {method!r}; valid: {', '.join(STATS)}")
    rho, p, n = (pearson if method == "pearson" else spearman)(x, y)
    if method == "pearson" and np.isfinite(rho) and n > 3:  # scipy's Fisher z interval (n - 3 degrees)
        xs, ys = _pairs(x, y)
        lo, hi = sps.pearsonr(xs, ys).confidence_interval(confidence_level=level)
        return CorrelationCI(rho, p, n, float(lo), float(hi), 0)
    lo, hi = fisher_interval(rho, n, level=level, method=method)  # Spearman's 1.06 factor: no scipy counterpart
    return CorrelationCI(rho, p, n, lo, hi, 0)


class CorrelationGap(NamedTuple):
    """``|ρ(y, x1)| - |ρ(y, x2)|`` on the same rows, with a paired bootstrap interval."""
    estimate: float
    low: float
    high: float
    n: int
    rho1: float
    rho2: float


def correlation_difference(y, x1, x2, *, covariates=None, groups=None, method: str = "pearson",
                           level: float = 0.95, n_boot: int = 4000, seed: int = 0) -> CorrelationGap:
    """Is ``x1`` more strongly correlated with ``y`` than ``x2`` is?  ``|ρ1| - |ρ2|`` over rows where
    all three are finite, after partialling out ``covariates``/``groups`` as
    :func:`partial_correlation` does (once, on the full sample), with a percentile bootstrap interval
    resampling rows (both correlations on the same resample, so their dependence is kept).  The
    sampling distribution of a difference of absolute correlations has no simple closed form; with
    the tens of runs a population sweep gives, the bootstrap is adequate.  NaN below 6 rows."""
    if method not in STATS:
        raise ValueError(f"unknown stat {method!r}; valid: {', '.join(STATS)}")
    _check_level(level)
    y = np.asarray(y, dtype=np.float64).ravel()
    x1 = np.asarray(x1, dtype=np.float64).ravel()
    x2 = np.asarray(x2, dtype=np.float64).ravel()
    if not (y.shape == x1.shape == x2.shape):
        raise ValueError("y, x1 and x2 differ in length")
    ok = np.isfinite(y) & np.isfinite(x1) & np.isfinite(x2)
    cov = None
    if covariates is not None:
        cov = np.asarray(covariates, dtype=np.float64).reshape(y.size, -1)
        ok &= np.isfinite(cov).all(axis=1)
        cov = cov[ok]
    grp = None if groups is None else np.asarray(groups, dtype=object).ravel()[ok]
    y, x1, x2 = y[ok], x1[ok], x2[ok]
    n = int(y.size)
    nan = float("nan")
    if n < 6:
        return CorrelationGap(nan, nan, nan, n, nan, nan)
    if method == "spearman":
        y, x1, x2 = sps.rankdata(y), sps.rankdata(x1), sps.rankdata(x2)
        cov = None if cov is None else sps.rankdata(cov, axis=0)
    X = _design(n, cov, grp)
    y, x1, x2 = (_residualize(v, X) for v in (y, x1, x2))
    r1 = _rowwise_pearson(x1[None], y[None])[0]
    r2 = _rowwise_pearson(x2[None], y[None])[0]
    idx = np.random.default_rng(seed).integers(0, n, size=(n_boot, n))
    g = np.abs(_rowwise_pearson(x1[idx], y[idx])) - np.abs(_rowwise_pearson(x2[idx], y[idx]))
    g = g[np.isfinite(g)]
    if not np.isfinite(r1) or not np.isfinite(r2) or g.size == 0:
        return CorrelationGap(nan, nan, nan, n, float(r1), float(r2))
    alpha = (1 - level) / 2
    lo, hi = np.quantile(g, [alpha, 1 - alpha])
    return CorrelationGap(float(abs(r1) - abs(r2)), float(lo), float(hi), n, float(r1), float(r2))
