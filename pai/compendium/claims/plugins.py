"""A researcher's own methods on the scoreboard: each pruner a plugin adds (:mod:`pai.compendium.plugins`) against
random pruning at equal density, in every stage that trained it.

A plugin's runs carry the module that registered their pruner in the ``plugin`` column of
``results.csv`` (:func:`pai.compendium.tables.flatten_result`).  For each such method the claim compares its final
accuracy with the stage's random baseline (the first of :data:`RANDOM` the stage ran) at the same
model, density and seed: the same paired test as every accuracy claim.  A stage without plugin runs gives
no row, so the scoreboard of pai's own methods is unchanged; :data:`CLAIM_IDS` are the claims that may
give none.
"""
from __future__ import annotations

import pandas as pd

from pai.compendium.claims.engine import STAGES, MissingData, register_claim
from pai.compendium.claims.tables import accuracy_comparison, table

RANDOM = ("random", "random-erk", "random-er", "random-graph")  # the baseline, the first a stage ran
CLAIM_IDS = tuple(f"plugin_ge_random_{stage}" for stage in STAGES)


def plugin_methods(results: pd.DataFrame) -> list:
    """The labels of the runs whose pruner a plugin registered, in table order."""
    if "plugin" not in results.columns:
        return []
    rows = results[results["plugin"].notna() & (results["plugin"].astype(str) != "")]
    col = "label" if "label" in rows.columns else "method"
    return list(dict.fromkeys(rows[col]))


def plugin_vs_random(tables, stage: str) -> list:
    """One row per plugin method of ``stage`` (none when it has none): accuracy minus random's, paired."""
    raw = tables.get(stage, {}).get("results")
    if raw is None or not plugin_methods(raw):
        return []
    df = table(tables, stage, columns=("final_test_acc",))
    df = df[df["method"] != "dense"]
    baseline = next((r for r in RANDOM if r in set(df["label"])), None)
    out = []
    for method in plugin_methods(df):
        if baseline is None:
            raise MissingData(f"no random baseline ({', '.join(RANDOM)}) to compare {method!r} with")
        ev = accuracy_comparison(df, method, baseline, stages=[stage], variant=method)
        ev.notes.insert(0, f"plugin module: {', '.join(sorted(set(df[df['label'] == method]['plugin'])))}")
        out.append(ev)
    return out


def _register(stage: str) -> None:
    @register_claim(f"plugin_ge_random_{stage}", title="Your method ≥ random at equal density", stage=stage,
                    work="Methods added through plugins (pai.compendium.plugins)", source="this compendium's runs",
                    needs=f"runs/{stage}/results.csv: plugin, model, dataset, method, target_density, seed, "
                          "final_test_acc",
                    statement="A pruner added through a plugin is at least as accurate as random pruning at the "
                              "same model, density and seed.",
                    paper_reason="a method of the user's, not of a paper: no published number")
    def claim(tables):
        return plugin_vs_random(tables, stage)


for _stage in STAGES:
    _register(_stage)
