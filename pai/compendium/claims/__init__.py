"""The claims scoreboard: every claim of the four works, decided by code from the stage result tables.

Each claim (``@register_claim`` in :mod:`.expanders`, :mod:`.spectrum`, :mod:`.phew`, :mod:`.npb`) is a
function of the tables that returns an effect oriented so that positive is the paper's direction, with
its 95% interval and the test behind it; :func:`pai.compendium.claims.engine.decide` turns it into a verdict by one
rule:

    holds if the 95% interval lies above 0; contradicted if it lies below 0; inconclusive otherwise, or
    when the data give no interval (missing table or column, too few pairs, all pairs collapsed) - with
    the reason.  No minimum effect size; no multiplicity correction.

The rule is applied per model (stratum) first, then the per-model verdicts are combined by one rule
(``COMBINE``: holds on at least one model and contradicted on none, and so on).  A model whose quantity
is undefined (NaN; a layer without a valid Ramanujan gap) for more than ``UNDEFINED_SHARE`` of its
units is "undefined at this density" and neither holds nor is contradicted.  Every figure or table that
shows a claim's comparison reads :func:`comparison_table` / :func:`correlation_table`, the functions the
claim itself reads.

Intervals: paired comparisons use a Student t interval over (model, density, seed) pairs (three seeds
give a percentile bootstrap no room to cover; it is reported in the notes); correlations use Fisher's z
on the partial correlation *within* (model, density) cells; differences of correlations use a paired
bootstrap over runs.  Collapsed runs (final accuracy ≤ 1.5 × chance, ``pai.metrics.stats.collapsed``):
pairs where both collapsed are excluded, pairs where one collapsed are kept and counted, correlations
exclude them.  "Low density" / "high sparsity" is the sparsest half of each model's levels.  A
method's variants (``pai.compendium.variants``) are tested as rows of their own beside the faithful default.

API::

    evaluate(tables) -> [ClaimResult]            tables = {stage: {name: DataFrame}} (load_runs("runs"))
    report(stage, "runs/<stage>" | {"results": df, "geometry": geo})   a notebook's last cell
    python -m pai.claims figures/CLAIMS.md [--runs runs]                writes CLAIMS.md + CLAIMS.json

Input tables, ``runs/<stage>/<name>.csv`` (every CSV of a stage is read; one with a ``run_id`` column is
also joined onto ``results`` by run id):

- ``results.csv`` (``pai.compendium.runs.write_tables``): ``run_id, model, dataset, method, target_density,
  seed, prune_seed, density, final_test_acc, regime`` and the mask metrics ``expansion,
  channel_spectral_gap, delta_r_norm, lambda, log10_paths, effective_nodes,
  log10_path_kernel_trace``, option columns ``opt_*`` (``opt_degree``, ``opt_generator``; variant
  options), ITOP's ``moving_distance``.
- ``geometry.csv`` (:func:`geometry_table` of ``pai.compendium.experiments.mask_geometry`` rows): ``model, method,
  target_density, seed, log10_paths, ln_effective_nodes, log10_path_kernel_trace,
  mean_width_fraction, min_width_fraction``.
- any ``<name>.csv`` with ``run_id`` and extra columns, e.g. full_spectrum's
  ``moving_distance.csv`` (``run_id, moving_distance, moving_distance_drop, valid_layers, layers`` of the
  static and ITOP runs: the faithful and the ``invalid="drop"`` readings, and the layers whose Δr is
  valid at both ends, the units the undefined rule counts).

What each claim reads (stage: claim ids -> columns beyond model, method, target_density, seed):

- expander_sweep/results: ``rreg_ge_xnet, xnet_ge_random, rreg_ge_random`` -> dataset, final_test_acc
  (opt_degree in the degree profile); ``accuracy_rises_with_expansion`` -> expansion (and
  channel_spectral_gap, reported).
- full_spectrum/results: ``itop_distance_tracks_accuracy`` -> regime, moving_distance (dst rows; with
  moving_distance_drop a second row, and valid_layers/layers for the undefined rule);
  ``distance_beats_delta_r, distance_beats_lambda`` -> regime, moving_distance of the static
  population runs, delta_r_norm, lambda; ``pags_ge_generator, pegs_ge_pags`` -> opt_generator,
  final_test_acc.
- phew_path_kernel/results: ``phew_ge_synflow_sparse, phew_ge_synflow_l2_sparse`` -> final_test_acc;
  phew_path_kernel/geometry (else results): ``phew_trace_above_random`` -> log10_path_kernel_trace;
  ``phew_wider_than_synflow_l2, phew_wider_than_synflow`` -> mean_width_fraction (geometry only).
- every stage's results with synflow and magnitude or snip: ``synflow_avoids_collapse`` ->
  final_test_acc, log10_paths or effective_nodes (at every level, over the runs where the baseline
  collapsed: at chance or disconnected).
- every stage's results with runs of a plugin's pruner (a ``plugin`` column, :mod:`.plugins`):
  ``plugin_ge_random_<stage>`` -> final_test_acc; one row per such method, none without.
- node_path_balance/geometry (else results): ``npb_nearest_balance`` -> log10_paths,
  ln_effective_nodes (results: effective_nodes); node_path_balance/results:
  ``npb_ge_baselines_sparse`` -> final_test_acc.
"""
from pai.compendium.claims import expanders, literature, npb, phew, plugins, spectrum  # noqa: F401  (registering is importing)
from pai.compendium.claims.engine import (CLAIMS, COMBINE, CONTRADICTED, HOLDS, INCONCLUSIVE, LEVEL, RULE, UNDEFINED, UNDEFINED_SHARE, Claim,
                     ClaimResult, Evidence, MissingData, StratumResult, combine, decide, evaluate, register_claim)
from pai.compendium.claims.report import markdown, report, to_json, write
from pai.compendium.claims.tables import POOLED, STAGES, comparison_table, correlation_table, geometry_table, load_runs, load_stage

__all__ = ["CLAIMS", "COMBINE", "CONTRADICTED", "HOLDS", "INCONCLUSIVE", "LEVEL", "RULE", "UNDEFINED",
           "UNDEFINED_SHARE", "Claim", "ClaimResult", "Evidence", "MissingData", "StratumResult", "combine",
           "decide", "evaluate", "register_claim", "markdown", "report", "to_json", "write", "POOLED", "STAGES",
           "comparison_table", "correlation_table", "geometry_table", "load_runs", "load_stage"]
