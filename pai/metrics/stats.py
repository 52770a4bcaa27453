"""Statistics that decide claims: paired method comparisons, correlations with intervals, partial
correlations that control for density, and the collapsed-run rule.

The NeurIPS'23 paper (Hoang et al.) reports Pearson r between its full-spectrum coordinate and
accuracy; the ICLR'23 code reports none (its figures are dual-axis line plots).  Every function
drops pairs where either value is NaN or infinite (an invalid layer or a collapsed network is
"no measurement", not a number) and reports ``n``, the pairs actually used.

- ``pearson``, ``spearman``, ``correlation`` (ρ, p, n and a Fisher z interval), ``bootstrap_ci``;
- ``partial_correlation(x, y, covariates=, groups=)``: ρ with density (or any grouping) partialled out;
- ``correlation_difference(y, x1, x2)``: ``|ρ(y,x1)| - |ρ(y,x2)|`` with a paired bootstrap interval;
- ``paired_difference(a, b)`` / ``mean_interval(d)``: mean paired difference, t interval (the one
  verdicts use; see :func:`mean_interval` for why not the bootstrap at 3 seeds), bootstrap beside it;
- ``chance_accuracy``, ``collapsed``: a run at chance (``acc <= chance · 1.5``) is flagged.
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


# --------------------------------------------------------------------------------------------------
# Collapsed runs.  A network pruned past its breaking point trains to chance accuracy; its number is
# "the run failed", not a point on the accuracy scale, and averaging it in drags a mean by tens of points.

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


# --------------------------------------------------------------------------------------------------
# Paired comparisons of two methods: one difference per (model, density, seed), the two runs sharing
# the initialisation.  Pairing removes the seed-to-seed spread both methods share.

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
    half = sps.t.ppf(0.5 + level / 2, n - 1) * sd / np.sqrt(n)
    p = float(2 * sps.t.sf(abs(mean) / (sd / np.sqrt(n)), n - 1))
    idx = np.random.default_rng(seed).integers(0, n, size=(n_boot, n))
    boot = d[idx].mean(axis=1)
    alpha = (1 - level) / 2
    blo, bhi = np.quantile(boot, [alpha, 1 - alpha])
    return Paired(mean, float(mean - half), float(mean + half), n, sd, p, float(blo), float(bhi))


def paired_difference(a, b, *, level: float = 0.95, n_boot: int = 10000, seed: int = 0) -> Paired:
    """``a - b`` pair by pair (equal-length arrays, aligned on the pairing key), then
    :func:`mean_interval`.  A pair with a non-finite member is dropped."""
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"a and b differ in length: {a.size} vs {b.size}")
    return mean_interval(a - b, level=level, n_boot=n_boot, seed=seed)


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


def _check_level(level: float) -> None:
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")


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
    lo, hi = fisher_interval(rho, n, level=level, method=method)
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
