"""pai.metrics.stats: Pearson/Spearman against scipy, NaN handling, bootstrap intervals."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from pai.metrics.stats import bootstrap_ci, pearson, spearman


def _data(n=40, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    return x, 0.6 * x + rng.normal(size=n)


def test_pearson_and_spearman_match_scipy():
    x, y = _data()
    r = pearson(x, y)
    ref = sps.pearsonr(x, y)
    assert r.rho == pytest.approx(ref[0], rel=1e-12) and r.p_value == pytest.approx(ref[1], rel=1e-9)
    assert r.n == 40
    s = spearman(x, y)
    ref = sps.spearmanr(x, y)
    assert s.rho == pytest.approx(ref[0], rel=1e-12) and s.p_value == pytest.approx(ref[1], rel=1e-9)


def test_nan_pairs_are_dropped_and_counted():
    x, y = _data()
    x2, y2 = x.copy(), y.copy()
    x2[3], y2[7], x2[9] = np.nan, np.inf, -np.inf
    keep = np.ones(40, bool)
    keep[[3, 7, 9]] = False
    r = pearson(x2, y2)
    assert r.n == 37 and r.rho == pytest.approx(sps.pearsonr(x[keep], y[keep])[0], rel=1e-12)
    rho, p, n = spearman(list(x2), list(y2))  # plain lists and tuple unpacking work
    assert n == 37 and rho == pytest.approx(sps.spearmanr(x[keep], y[keep])[0], rel=1e-12)


def test_undefined_cases_are_nan_not_errors():
    assert math.isnan(pearson([1, 2], [3, 4]).rho) and pearson([1, 2], [3, 4]).n == 2
    assert math.isnan(pearson([1, 1, 1, 1], [1, 2, 3, 4]).rho)
    with pytest.raises(ValueError, match="length"):
        pearson([1, 2, 3], [1, 2])


def test_bootstrap_interval():
    x, y = _data(n=60, seed=1)
    lo, hi = bootstrap_ci(x, y, n_boot=2000, seed=0)
    r = pearson(x, y).rho
    assert lo < r < hi and 0 < hi - lo < 0.6
    assert bootstrap_ci(x, y, n_boot=500, seed=5) == bootstrap_ci(x, y, n_boot=500, seed=5)
    assert bootstrap_ci(x, y, n_boot=500, seed=5) != bootstrap_ci(x, y, n_boot=500, seed=6)
    lo99, hi99 = bootstrap_ci(x, y, n_boot=2000, seed=0, level=0.99)
    assert lo99 <= lo and hi99 >= hi
    slo, shi = bootstrap_ci(x, y, stat="spearman", n_boot=1000)
    assert slo < spearman(x, y).rho < shi
    assert all(math.isnan(v) for v in bootstrap_ci([1, 2], [2, 3]))
    with pytest.raises(ValueError, match="stat"):
        bootstrap_ci(x, y, stat="kendall")
    with pytest.raises(ValueError, match="level"):
        bootstrap_ci(x, y, level=1.5)
