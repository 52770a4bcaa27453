"""Graph and path metrics of a pruned network: every quantity the Ramanujan, full-spectrum, RReg,
NPB and PHEW papers plot, exact and fast.  Names below are a stable API (pruners such as PAGS/PEGS,
the notebooks and dynamic sparse training call them).

Layer graphs (:mod:`.bipartite`) -- a layer is a bipartite graph inputs x outputs:
    ``biadjacency(weight, mask, encoding="channel"|"unrolled", weighted=False, groups=1)``  dense tensor
    ``unrolled_csr(weight, mask, groups=1)``  sparse float64 ``|w*m|`` with the mask as pattern
    ``layer_groups(model)``  ``{layer: groups}``: a grouped conv's graph is block-diagonal (pass ``groups``;
    every function below that takes the model does)
    ``drop_isolated(B)``, ``degrees(B)``

Spectra (:mod:`.spectral`, engine in :mod:`.linalg`):
    ``top_singular_values(B, k=2)``  float64, via the Gram matrix of the smaller side
    ``spectral_gap(B, normalized=False)``  sigma_1 - sigma_2, or 1 - sigma_2/sigma_1 of D^-1/2 B D^-1/2
    ``vertex_expansion(B, samples=1000, seed=0, reduce="mean"|"min")``  RReg's Monte-Carlo estimate (the one
    estimator: figures and RReg's best-of-K selection)

Ramanujan metrics (:mod:`.ramanujan`; ``rule="iclr"`` ICLR'23 code, ``"neurips"`` NeurIPS'23 dev code;
NaN -- never 0 -- for an invalid layer):
    ``ramanujan_gap(B_bin, normalized=True, rule="iclr", bound="degree"|"spectral")``  Delta_r
    ``iterative_ramanujan_gap(B_bin, normalized=None, rule="iclr")``  IMDB over degree classes
    ``weighted_spectral_gap(B_abs, rule=None)``  lambda = sigma_1 - sigma_2 of |W*M|
    ``iterative_weighted_spectral_gap(B_abs, B_bin=None, rule="neurips")``
    ``narc(B_bin)``  ICLR's normalized random coefficient
    ``layer_spectrum(S)``  all of the above's ingredients for one layer, computed once

Full-spectrum coordinate (:mod:`.fullspectrum`, NeurIPS'23):
    ``full_spectrum(weight, mask, rule="neurips", invalid=0.0) -> FullSpectrum(delta_r, lam,
    it_delta_r, it_lam)``; ``full_spectrum_norm(coord)`` (the PAGS criterion; a dict -> mean over
    layers); ``moving_distance(start, end, invalid="zero"|"drop")`` (the l2 "moving distance" of a run,
    our reading in its docstring); ``full_spectrum_distance(c1, c2)`` (plain l2 of two coordinates);
    ``network_full_spectrum(model, mask) -> {layer: FullSpectrum}``; ``full_spectrum_summary(coords)``

Paths (:mod:`.paths`, engine :mod:`.flow`; all-ones input, log scale, exact counts; every entry point takes
``input_shape=(C, H, W)``, default ``model.input_shape``; any torchvision classifier: elementwise
activations pass as ReLU, squeeze-and-excitation gates as side branches, grouped convs block-diagonal,
concatenation/chunk/channel shuffle move units, and anything else is refused in one line naming it):
    ``effective_paths(model, mask, log10=True)``  NPB
    ``effective_mask(model, mask)``, ``dead_weights(model, mask)``  kept weights on / off every path
    ``effective_nodes(model, mask) -> {"total", "layers", "params"}``  NPB
    ``path_kernel_trace(model, mask, log=True)``  PHEW / Gebhart et al. (log10)
    ``layer_width(mask, groups=None) -> {layer: {"out", "in", "out_total", "in_total"}}``

Statistics (:mod:`.stats`): ``pearson(x, y)``, ``spearman(x, y)`` -> ``(rho, p_value, n)`` (NaN
pairs dropped); ``bootstrap_ci(x, y, stat="pearson", n_boot=1000, seed=0, level=0.95) -> (low, high)``;
``correlation(x, y)`` and ``partial_correlation(x, y, covariates=, groups=)`` -> ``(rho, p_value, n, low,
high, k)`` (Fisher z interval); ``correlation_difference(y, x1, x2)``.  Comparisons (:mod:`.paired`,
also importable from :mod:`.stats`): ``paired_difference(a, b)``, ``mean_interval(d)`` -> ``(mean, low,
high, n, sd, p_value, boot_low, boot_high)`` (t interval); ``chance_accuracy``, ``collapsed``.

Tables (:mod:`.summary`): ``layer_metrics(model, mask) -> [row per layer]``,
``network_metrics(model, mask, include=("spectral", "expansion", "paths", "kernel")) -> dict``,
``run_metrics(model, mask, init_state=None)`` (a run's ``metrics.json``: the summary and
``channel_spectral_gap(mask)``).
Command line: ``python -m pai metrics --mask FILE --model M --dataset D`` (:mod:`.cli`).
"""
from pai.metrics.bipartite import ENCODINGS, biadjacency, degrees, drop_isolated, layer_groups, unrolled_csr
from pai.metrics.fullspectrum import (FullSpectrum, full_spectrum, full_spectrum_distance, full_spectrum_norm,
                           full_spectrum_summary, moving_distance, network_full_spectrum)
from pai.metrics.linalg import top_singular_values
from pai.metrics.paths import dead_weights, effective_mask, effective_nodes, effective_paths, layer_width, path_kernel_trace
from pai.metrics.ramanujan import (RULES, iterative_ramanujan_gap, iterative_weighted_spectral_gap, layer_spectrum, narc,
                        ramanujan_gap, weighted_spectral_gap)
from pai.metrics.spectral import spectral_gap, vertex_expansion
from pai.metrics.paired import chance_accuracy, collapsed, mean_interval, paired_difference
from pai.metrics.stats import bootstrap_ci, correlation, correlation_difference, partial_correlation, pearson, spearman
from pai.metrics.summary import INCLUDE, channel_spectral_gap, layer_metrics, network_metrics, run_metrics

__all__ = [
    "ENCODINGS", "biadjacency", "degrees", "drop_isolated", "unrolled_csr", "layer_groups",
    "top_singular_values", "spectral_gap", "vertex_expansion",
    "RULES", "ramanujan_gap", "iterative_ramanujan_gap", "weighted_spectral_gap",
    "iterative_weighted_spectral_gap", "narc", "layer_spectrum",
    "FullSpectrum", "full_spectrum", "full_spectrum_norm", "full_spectrum_distance", "moving_distance",
    "network_full_spectrum", "full_spectrum_summary",
    "effective_paths", "effective_mask", "dead_weights", "effective_nodes", "path_kernel_trace", "layer_width",
    "pearson", "spearman", "bootstrap_ci", "correlation", "partial_correlation", "correlation_difference",
    "paired_difference", "mean_interval", "chance_accuracy", "collapsed",
    "INCLUDE", "layer_metrics", "network_metrics", "run_metrics", "channel_spectral_gap",
]
