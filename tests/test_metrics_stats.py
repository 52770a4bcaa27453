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


# --- paired differences, correlation intervals, partial correlations, collapse -----------------------
from pai.metrics.stats import (chance_accuracy, collapsed, correlation, correlation_difference,  # noqa: E402
                               fisher_interval, mean_interval, paired_difference, partial_correlation)


def test_paired_difference_matches_scipy_paired_t():
    rng = np.random.default_rng(3)
    a = rng.normal(0.8, 0.02, size=9)
    b = a - 0.01 + rng.normal(0, 0.005, size=9)
    res = paired_difference(a, b)
    ref = sps.ttest_rel(a, b)
    ci = ref.confidence_interval(0.95)
    assert res.n == 9 and res.mean == pytest.approx(np.mean(a - b), rel=1e-12)
    assert (res.low, res.high) == pytest.approx((ci.low, ci.high), rel=1e-10)
    assert res.p_value == pytest.approx(ref.pvalue, rel=1e-9)
    assert res.sd == pytest.approx(np.std(a - b, ddof=1))
    assert res.boot_low < res.mean < res.boot_high
    assert paired_difference(a, b, seed=1) == paired_difference(a, b, seed=1)  # seeded bootstrap


def test_mean_interval_level_small_n_and_degenerate_cases():
    d = np.array([0.3, -0.1, 0.5])
    r95, r99 = mean_interval(d), mean_interval(d, level=0.99)
    half = sps.t.ppf(0.975, 2) * d.std(ddof=1) / np.sqrt(3)  # closed form, df = 2
    assert (r95.low, r95.high) == pytest.approx((d.mean() - half, d.mean() + half))
    assert r99.low < r95.low and r99.high > r95.high
    # at n = 3 the percentile bootstrap cannot leave the range of the data; t can
    assert r95.boot_low >= d.min() - 1e-12 and r95.boot_high <= d.max() + 1e-12 and r95.low < d.min()
    assert math.isnan(mean_interval([0.2]).low) and mean_interval([0.2]).n == 1
    assert mean_interval([np.nan, np.inf]).n == 0
    same = mean_interval([0.02, 0.02, 0.02])
    assert (same.low, same.high, same.sd) == (0.02, 0.02, 0.0)
    with pytest.raises(ValueError, match="length"):
        paired_difference([1, 2], [1, 2, 3])
    with pytest.raises(ValueError, match="level"):
        mean_interval(d, level=0)


def test_correlation_interval_is_scipys_fisher_interval():
    x, y = _data(n=30, seed=4)
    c = correlation(x, y)
    ref = sps.pearsonr(x, y)
    ci = ref.confidence_interval(0.95)
    assert (c.rho, c.p_value, c.n, c.k) == (pytest.approx(ref[0]), pytest.approx(ref[1]), 30, 0)
    assert (c.low, c.high) == pytest.approx((ci.low, ci.high), rel=1e-9)
    s = correlation(x, y, method="spearman")
    z, se = np.arctanh(s.rho), np.sqrt(1.06 / 27)
    assert (s.low, s.high) == pytest.approx((np.tanh(z - 1.959963985 * se), np.tanh(z + 1.959963985 * se)))
    assert all(math.isnan(v) for v in fisher_interval(0.5, 3))


def _ols_t(y, X):
    """t statistic of every coefficient of y ~ X (closed form)."""
    coef, *_ = np.linalg.lstsq(X, y, rcond=None)
    resid = y - X @ coef
    dof = len(y) - X.shape[1]
    cov = resid @ resid / dof * np.linalg.inv(X.T @ X)
    return coef / np.sqrt(np.diag(cov)), dof


def test_partial_correlation_matches_closed_forms():
    rng = np.random.default_rng(5)
    z = rng.normal(size=50)
    x = z + rng.normal(size=50)
    y = z + 0.3 * x + rng.normal(size=50)
    r = partial_correlation(x, y, covariates=z)
    rxy, rxz, ryz = (sps.pearsonr(*p)[0] for p in ((x, y), (x, z), (y, z)))
    closed = (rxy - rxz * ryz) / np.sqrt((1 - rxz ** 2) * (1 - ryz ** 2))
    assert r.rho == pytest.approx(closed, rel=1e-10) and r.n == 50 and r.k == 1
    t, dof = _ols_t(y, np.column_stack([np.ones(50), x, z]))  # the partial r's test is x's OLS t-test
    assert r.p_value == pytest.approx(2 * sps.t.sf(abs(t[1]), dof), rel=1e-8)
    assert (r.low, r.high) == pytest.approx(fisher_interval(closed, 50, k=1))
    plain = partial_correlation(x, y)  # no covariate: plain Pearson, scipy's p
    assert (plain.rho, plain.p_value) == (pytest.approx(rxy), pytest.approx(sps.pearsonr(x, y)[1]))
    sp = partial_correlation(x, y, covariates=z, method="spearman")  # Pearson partial on ranks
    ranks = [sps.rankdata(v) for v in (x, y, z)]
    assert sp.rho == pytest.approx(partial_correlation(*ranks[:2], covariates=ranks[2]).rho)


def test_within_group_correlation_removes_a_confound_density_alone_makes():
    """Across densities metric and accuracy both rise with density; within a density they are unrelated
    (then negatively related): the pooled ρ is large, the within-density estimate is not."""
    rng = np.random.default_rng(6)
    level = np.repeat([0.01, 0.03, 0.1, 0.3], 12)
    metric = np.log10(level) + rng.normal(0, 0.1, level.size)
    acc = 0.5 + 0.1 * np.log10(level) + rng.normal(0, 0.01, level.size)
    assert correlation(metric, acc).rho > 0.9
    within = partial_correlation(metric, acc, groups=level)
    assert within.k == 3 and within.low < 0 < within.high
    # the group estimate is the Pearson r of the within-group deviations, with 3 df spent on the means
    dm = lambda v: v - np.array([v[level == g].mean() for g in level])  # noqa: E731
    assert within.rho == pytest.approx(sps.pearsonr(dm(metric), dm(acc))[0], rel=1e-10)
    acc2 = acc - 0.05 * (metric - np.log10(level))  # now a real within-density (negative) relation
    assert partial_correlation(metric, acc2, groups=level).high < 0
    assert math.isnan(partial_correlation([1, 2, 3], [1, 2, 4], groups=[0, 0, 1]).rho)


def test_correlation_difference_bootstrap():
    rng = np.random.default_rng(7)
    y = rng.normal(size=80)
    strong = y + rng.normal(0, 0.3, 80)
    weak = y + rng.normal(0, 3.0, 80)
    gap = correlation_difference(y, strong, weak)
    assert gap.rho1 == pytest.approx(sps.pearsonr(strong, y)[0])
    assert gap.estimate == pytest.approx(abs(gap.rho1) - abs(gap.rho2)) and gap.low > 0 and gap.n == 80
    assert correlation_difference(y, weak, strong).high < 0
    neg = correlation_difference(y, -strong, weak)  # |ρ|: a strong negative relation is strong too
    assert neg.estimate == pytest.approx(gap.estimate)
    assert correlation_difference(y, strong, weak, seed=3) == correlation_difference(y, strong, weak, seed=3)
    assert math.isnan(correlation_difference(y[:5], strong[:5], weak[:5]).estimate)


def test_collapse_rule():
    assert chance_accuracy("fashion-mnist") == 0.1 and chance_accuracy(200) == 0.005
    flags = collapsed([0.1, 0.149, 0.151, np.nan, 0.85], chance_accuracy("fashion-mnist"))
    assert flags.tolist() == [True, True, False, False, False]
    assert collapsed([0.07], chance_accuracy("tiny-imagenet")).tolist() == [False]  # learning at 200 classes
    with pytest.raises(KeyError, match="dataset"):
        chance_accuracy("imagenet-22k")
