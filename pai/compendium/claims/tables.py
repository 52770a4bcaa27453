"""Stage tables in, evidence out: loading ``runs/<stage>/*.csv``, pairing runs, and the three kinds of
evidence every claim is built from (a paired accuracy comparison, a paired mask-metric comparison, a
within-density correlation).

Pairing key: ``(model, dataset, level, seed, prune_seed)``, the columns present.  ``level`` is the
target density (``target_density``; ``density`` in a geometry table, where it is the target passed to
the pruner) or, in the degree profile, the degree (``opt_degree``).  Both methods of a pair share the
initialisation (the notebooks seed the model by ``seed``).  ``label`` (``pai.compendium.variants.label_row``)
names the faithful method by its plain name and each variant by its own, so variants never pair by
accident.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Dict, List, Sequence

import numpy as np
import pandas as pd

from pai.metrics.stats import chance_accuracy, collapsed, mean_interval, partial_correlation, pearson
from pai.compendium.variants import base_of, label_row
from pai.compendium.claims.engine import STAGES, Evidence, MissingData

KEYS = ("model", "dataset", "level", "seed", "prune_seed")


def merge_by_run(results: pd.DataFrame, extra: pd.DataFrame) -> pd.DataFrame:
    """Columns of ``extra`` joined onto ``results`` by ``run_id`` (values in ``extra`` win where given)."""
    out = results.copy()
    extra = extra.drop_duplicates("run_id", keep="last").set_index("run_id")
    for col in extra.columns:
        mapped = out["run_id"].map(extra[col])
        out[col] = mapped.combine_first(out[col]) if col in out.columns else mapped
    return out


def load_stage(path: str | Path) -> Dict[str, pd.DataFrame]:
    """Every ``<path>/*.csv`` and ``<path>/tables/*.csv`` (the extra tables a notebook saves, a DVC out of
    its stage) by file stem; tables with a ``run_id`` column (e.g. a notebook's ``moving_distance.csv``)
    are also merged into ``results``."""
    files = sorted(Path(path).glob("*.csv")) + sorted((Path(path) / "tables").glob("*.csv"))
    tables = {p.stem: pd.read_csv(p) for p in files}
    if "results" in tables:
        for name, t in list(tables.items()):
            if name != "results" and "run_id" in t.columns:
                tables["results"] = merge_by_run(tables["results"], t)
    return tables


def load_runs(root: str | Path = "runs", stages: Sequence[str] = STAGES) -> Dict[str, Dict[str, pd.DataFrame]]:
    """``{stage: load_stage(root/stage)}`` for the stages that have a folder."""
    return {s: load_stage(Path(root) / s) for s in stages if (Path(root) / s).is_dir()}


def geometry_table(rows: Sequence[Dict]) -> pd.DataFrame:
    """``pai.compendium.experiments.mask_geometry`` dicts as a flat table for ``geometry.csv``: the target density as
    ``target_density``, per-layer widths summarised as ``mean_width_fraction``/``min_width_fraction``
    (the per-layer lists are dropped: a CSV cell holds one number), and each row's variant ``label``
    (from its method and ``opt_*`` columns, as the scoreboard names it)."""
    flat = []
    for r in rows:
        r = dict(r)
        widths = np.asarray(r.pop("width_fraction", []), float)
        r.pop("layers", None)
        r["target_density"] = r.pop("density")
        r["mean_width_fraction"] = float(widths.mean()) if widths.size else math.nan
        r["min_width_fraction"] = float(widths.min()) if widths.size else math.nan
        r["label"] = label_row(r)
        flat.append(r)
    return pd.DataFrame(flat)


def prepare(df: pd.DataFrame) -> pd.DataFrame:
    """Add ``label``, ``level``, ``collapsed`` (final accuracy at chance, ``pai.metrics.stats.collapsed``)
    and ``disconnected`` (no input-output path: ``log10_paths`` is -inf or no effective node)."""
    df = df.copy()
    if "method" in df.columns:
        df["label"] = [label_row(r) for r in df.to_dict("records")]
    target = df["target_density"] if "target_density" in df.columns else df.get("density")
    if target is None:
        raise MissingData("no target_density (or density) column")
    df["level"] = target.astype(float)
    if "opt_degree" in df.columns:
        deg = pd.to_numeric(df["opt_degree"], errors="coerce")
        df.loc[deg.notna(), "level"] = deg[deg.notna()]
    if "final_test_acc" in df.columns:
        if "dataset" not in df.columns:
            raise MissingData("no dataset column: chance accuracy (the collapse rule) is unknown")
        try:
            chance = np.asarray([chance_accuracy(d) for d in df["dataset"]], float)
        except KeyError as e:
            raise MissingData(f"{e.args[0]} (pai.metrics.paired.NUM_CLASSES)") from None
        df["collapsed"] = collapsed(df["final_test_acc"], chance)
    disc = np.zeros(len(df), bool)
    if "log10_paths" in df.columns:
        disc |= np.isneginf(pd.to_numeric(df["log10_paths"], errors="coerce").to_numpy())
    if "effective_nodes" in df.columns:
        disc |= pd.to_numeric(df["effective_nodes"], errors="coerce").to_numpy() == 0
    df["disconnected"] = disc
    return df


def table(tables: Dict, stage: str, name: str = "results", columns: Sequence[str] = ()) -> pd.DataFrame:
    """The prepared table ``name`` of ``stage``; MissingData naming what is absent."""
    t = tables.get(stage, {}).get(name)
    if t is None or len(t) == 0:
        raise MissingData(f"no runs/{stage}/{name}.csv")
    absent = [c for c in columns if c not in t.columns or pd.to_numeric(t[c], errors="coerce").notna().sum() == 0]
    if absent:
        raise MissingData(f"runs/{stage}/{name}.csv has no {', '.join(absent)} values")
    return prepare(t)


def sparsest(df: pd.DataFrame, fraction: float = 0.5) -> pd.DataFrame:
    """Rows at the ⌈fraction·k⌉ lowest of each model's k levels of pruned runs: "low density" / "high
    sparsity" (the dense baseline is no level and is left out)."""
    keep = []
    pruned = df[df["method"] != "dense"] if "method" in df.columns else df
    for _, sub in pruned.groupby("model"):
        levels = sorted(sub["level"].dropna().unique())
        keep.append(sub[sub["level"].isin(levels[:max(1, math.ceil(fraction * len(levels)))])])
    return pd.concat(keep) if keep else df.iloc[:0]


def labels_of(df: pd.DataFrame, base: str) -> List[str]:
    """Labels present of ``base`` and its variants, the faithful default first."""
    found = [lab for lab in dict.fromkeys(df["label"]) if base_of(lab) == base]
    return sorted(found, key=lambda lab: (lab != base, lab))


def pair_keys(df: pd.DataFrame) -> List[str]:
    """The pairing columns ``df`` has (a column with no value at all, e.g. no prune seed, is left out)."""
    return [k for k in KEYS if k in df.columns and df[k].notna().any()]


def pairs(df: pd.DataFrame, a: str, b: str, value: str, *, extra_keys: Sequence[str] = ()) -> pd.DataFrame:
    """One row per pairing key with both labels: ``a``, ``b`` (``value``), ``collapsed_a/_b``."""
    keys = pair_keys(df) + list(extra_keys)
    sides = []
    for lab, suffix in ((a, "a"), (b, "b")):
        sub = df[df["label"] == lab]
        dup = sub.duplicated(keys)
        if dup.any():
            raise MissingData(f"{int(dup.sum())} duplicate rows of {lab!r} for one {tuple(keys)}: a variant "
                              "without a registered label (pai.compendium.variants.register_variant)?")
        cols = {value: suffix}
        if "collapsed" in sub.columns:
            cols["collapsed"] = f"collapsed_{suffix}"
        sides.append(sub[keys + list(cols)].rename(columns=cols))
    return sides[0].merge(sides[1], on=keys, how="inner")


POOLED = "all models"  # the stratum label of a row pooled over the models (reported, not the verdict)
# Per-run unit counts of a quantity that is a mean over layers: (defined units, all units).  The moving
# distance reads an invalid layer (no Ramanujan gap) as 0, so a run can be "finite" from one layer.
UNITS = {"moving_distance": ("valid_layers", "layers")}


def undefined_fraction(df: pd.DataFrame, column: str) -> np.ndarray:
    """Per row, the share of its units whose ``column`` is undefined: 1 for a NaN/inf value, else
    ``1 - defined/all`` for a quantity with unit counts (:data:`UNITS`, when the table has them), else 0."""
    v = pd.to_numeric(df[column], errors="coerce").to_numpy(np.float64)
    frac = (~np.isfinite(v)).astype(np.float64)
    cols = UNITS.get(column)
    if cols and all(c in df.columns for c in cols):
        ok_, all_ = (pd.to_numeric(df[c], errors="coerce").to_numpy(np.float64) for c in cols)
        with np.errstate(invalid="ignore", divide="ignore"):
            share = np.where(all_ > 0, 1 - ok_ / all_, np.nan)
        frac = np.where(np.isfinite(v) & np.isfinite(share), share, frac)
    return frac


def _undefined_reason(share: float, what: str) -> str:
    from pai.compendium.claims.engine import UNDEFINED_SHARE

    if share > UNDEFINED_SHARE:
        return (f"{what} is undefined for {share:.0%} of the units (more than {UNDEFINED_SHARE:.0%}): no verdict "
                "at this density")
    return ""


def _design(pr: pd.DataFrame, stages: Sequence[str]) -> Dict:
    return {"models": sorted(map(str, pr["model"].unique())),
            "densities": sorted(float(v) for v in pr["level"].unique()),
            "seeds": sorted(int(s) for s in pr["seed"].unique()) if "seed" in pr else [],
            "stages": list(stages)}


def _ci_note(res, unit: str) -> List[str]:
    if not (math.isfinite(res.boot_low) and math.isfinite(res.boot_high)):
        return []
    return [f"bootstrap over pairs (reported, not used): [{res.boot_low:.3g}, {res.boot_high:.3g}] {unit}"]


def paired_rows(df: pd.DataFrame, a: str, b: str, value: str = "final_test_acc", *, extra_keys: Sequence[str] = (),
                collapse: bool = True) -> pd.DataFrame:
    """:func:`pairs` with the collapsed-run rule applied, once for every claim and figure: ``defined`` (both
    values finite), ``both_collapsed`` (excluded: a pair at chance says nothing about either method),
    ``only_a``/``only_b`` (kept and counted: a collapse is that method's loss) and ``kept``."""
    pr = pairs(df, a, b, value, extra_keys=extra_keys)
    pr["defined"] = np.isfinite(pr["a"].astype(float)) & np.isfinite(pr["b"].astype(float))
    ca = pr["collapsed_a"].astype(bool) if collapse and "collapsed_a" in pr else pd.Series(False, index=pr.index)
    cb = pr["collapsed_b"].astype(bool) if collapse and "collapsed_b" in pr else pd.Series(False, index=pr.index)
    pr["both_collapsed"] = pr["defined"] & ca & cb
    pr["only_a"] = pr["defined"] & ca & ~cb
    pr["only_b"] = pr["defined"] & cb & ~ca
    pr["kept"] = pr["defined"] & ~pr["both_collapsed"]
    return pr


COMPARISON_COLUMNS = ["stratum", "a", "b", "pairs", "undefined", "both_collapsed", "only_a", "only_b", "n", "mean",
                      "low", "high", "sd", "p_value", "boot_low", "boot_high", "n_clean", "mean_clean", "low_clean",
                      "high_clean", "undefined_share", "levels", "seeds"]


def comparison_table(df: pd.DataFrame, a: str, b: str, value: str = "final_test_acc", *, by: str = "model",
                     scale: float = 100.0, extra_keys: Sequence[str] = (), collapse: bool = True,
                     pooled: bool = True) -> pd.DataFrame:
    """The paired comparison ``a − b`` of ``value`` (times ``scale``: accuracy in percentage points) per
    stratum ``by`` (each model), and pooled over them (``stratum`` = :data:`POOLED`, last): the one
    computation behind every comparison claim and every figure or table that shows one.

    Per stratum: ``pairs`` found, ``undefined`` (a value not finite) and ``undefined_share``, the
    collapsed-run counts of :func:`paired_rows`, the kept pairs' mean difference with its 95% Student t
    interval (``n``, ``mean``, ``low``, ``high``, ``sd``, ``p_value``; ``pai.metrics.stats.mean_interval``)
    and the bootstrap beside it, and the same without the pairs where one run collapsed (``*_clean``)."""
    pr = paired_rows(df, a, b, value, extra_keys=extra_keys, collapse=collapse)
    pr["diff"] = scale * (pr["a"].astype(float) - pr["b"].astype(float))
    groups = [(str(k), g) for k, g in pr.groupby(by, sort=True)] if by in pr.columns else []
    if pooled or not groups:
        groups.append((POOLED, pr))
    rows = []
    for name, g in groups:
        kept = g[g["kept"]]
        res = mean_interval(kept["diff"])
        clean = kept[~(kept["only_a"] | kept["only_b"])]
        r2 = mean_interval(clean["diff"])
        rows.append({"stratum": name, "a": a, "b": b, "pairs": len(g), "undefined": int((~g["defined"]).sum()),
                     "both_collapsed": int(g["both_collapsed"].sum()), "only_a": int(g["only_a"].sum()),
                     "only_b": int(g["only_b"].sum()), "n": res.n, "mean": res.mean, "low": res.low,
                     "high": res.high, "sd": res.sd, "p_value": res.p_value, "boot_low": res.boot_low,
                     "boot_high": res.boot_high, "n_clean": r2.n, "mean_clean": r2.mean, "low_clean": r2.low,
                     "high_clean": r2.high,
                     "undefined_share": float((~g["defined"]).mean()) if len(g) else math.nan,
                     "levels": sorted(float(v) for v in kept["level"].unique()) if "level" in kept else [],
                     "seeds": sorted(int(v) for v in kept["seed"].unique()) if "seed" in kept else []})
    return pd.DataFrame(rows, columns=COMPARISON_COLUMNS)


def _comparison_evidence(row, *, effect: str, unit: str, short: str, variant, stages, models) -> Evidence:
    """One :func:`comparison_table` row as evidence (notes: the collapsed and undefined counts)."""
    a, b = row["a"], row["b"]
    notes = []
    if row["both_collapsed"]:
        notes.append(f"{row['both_collapsed']} of {row['pairs']} pairs excluded: both at chance")
    if row["only_a"] or row["only_b"]:
        without = (f"{row['mean_clean']:+.3g} [{row['low_clean']:.3g}, {row['high_clean']:.3g}] {short}"
                   if row["n_clean"] >= 2 else "too few pairs left")
        notes.append(f"kept: {row['only_a']} pairs where only {a} collapsed, {row['only_b']} where only {b} did; "
                     f"without them {without} (n = {row['n_clean']})")
    if row["undefined"]:
        notes.append(f"{row['undefined']} of {row['pairs']} pairs dropped: a value not finite")
    if math.isfinite(row["boot_low"]) and math.isfinite(row["boot_high"]):
        notes.append(f"bootstrap over pairs (reported, not used): [{row['boot_low']:.3g}, {row['boot_high']:.3g}] "
                     f"{short}")
    return Evidence(effect, row["mean"], row["low"], row["high"], int(row["n"]),
                    "paired t over (model, density, seed) pairs, 95%", unit=unit, notes=notes, variant=variant,
                    models=models, densities=list(row["levels"]), seeds=list(row["seeds"]), stages=list(stages),
                    stratum=row["stratum"], undefined_share=float(row["undefined_share"]),
                    undefined=_undefined_reason(float(row["undefined_share"]), effect))


def comparison_evidence(comp: pd.DataFrame, *, effect: str, unit: str, short: str, stages: Sequence[str],
                        variant=None) -> Evidence:
    """The pooled row of a :func:`comparison_table` as evidence, with one stratum per model."""
    rows = comp.to_dict("records")
    strata = [_comparison_evidence(r, effect=effect, unit=unit, short=short, variant=variant, stages=stages,
                                   models=[r["stratum"]]) for r in rows if r["stratum"] != POOLED]
    if not any(r["pairs"] for r in rows):
        raise MissingData(f"no (model, density, seed) with both {rows[0]['a']!r} and {rows[0]['b']!r}")
    pooled = [r for r in rows if r["stratum"] == POOLED][0]
    if pooled["n"] == 0 and pooled["both_collapsed"]:
        raise MissingData(f"all {pooled['pairs']} pairs of {pooled['a']!r} and {pooled['b']!r} at chance (collapsed)")
    if pooled["n"] == 0:
        raise MissingData(f"no pair of {pooled['a']!r} and {pooled['b']!r} with finite values")
    ev = _comparison_evidence(pooled, effect=effect, unit=unit, short=short, variant=variant, stages=stages,
                              models=[s.stratum for s in strata])
    ev.stratum, ev.strata = None, strata
    ev.undefined = ""  # the verdict is per model; the pooled row is reported only
    return ev


def accuracy_comparison(df: pd.DataFrame, a: str, b: str, *, stages: Sequence[str], variant=None,
                        extra_keys: Sequence[str] = ()) -> Evidence:
    """Final accuracy of ``a`` minus ``b`` in percentage points, paired, per model and pooled
    (:func:`comparison_table`).  Pairs where both collapsed (at chance) say nothing about either method
    and are excluded; pairs where one collapsed are kept (a collapse is that method's loss) and counted,
    with the effect without them in the notes."""
    comp = comparison_table(df, a, b, "final_test_acc", extra_keys=extra_keys)
    return comparison_evidence(comp, effect=f"accuracy({a}) − accuracy({b})", unit="percentage points",
                               short="pp", stages=stages, variant=variant)


def metric_comparison(df: pd.DataFrame, a: str, b: str, column: str, *, unit: str, stages: Sequence[str],
                      variant=None) -> Evidence:
    """A mask metric (at initialisation) of ``a`` minus ``b``, paired, per model and pooled; non-finite
    pairs are dropped and counted (a disconnected mask has no log-trace), and a model where most are
    is undefined."""
    comp = comparison_table(df, a, b, column, scale=1.0, collapse=False)
    return comparison_evidence(comp, effect=f"{column}({a}) − {column}({b})", unit=unit, short=unit,
                               stages=stages, variant=variant)


CORRELATION_COLUMNS = ["stratum", "x", "y", "runs", "collapsed", "n", "rho", "low", "high", "p_value", "cells",
                       "pooled_rho", "pooled_n", "undefined_share", "excluded_levels", "levels", "seeds"]


def correlation_table(df: pd.DataFrame, x: str, *, y: str = "final_test_acc", by: str = "model",
                      pooled: bool = True) -> pd.DataFrame:
    """Pearson ρ of ``x`` with ``y`` *within* each (model, level) cell, per stratum ``by`` (each model) and
    pooled over them (:data:`POOLED`, last): the partial correlation with one indicator per cell, so
    density alone cannot produce it (``pai.metrics.stats.partial_correlation``, Fisher z interval).  The
    one computation behind every within-density correlation claim and figure.

    Collapsed runs are excluded (counted).  A level where ``x`` is undefined for more than
    ``UNDEFINED_SHARE`` of the units (:func:`undefined_fraction`: NaN runs, invalid layers) is left out
    (``excluded_levels``); ``undefined_share`` is over the stratum's runs.  ``pooled_rho``: ρ pooled over
    densities, confounded by density, for comparison."""
    from pai.compendium.claims.engine import UNDEFINED_SHARE

    live = df[~df["collapsed"]] if "collapsed" in df.columns else df
    live = live.assign(_undef=undefined_fraction(live, x))
    groups = [(str(k), g) for k, g in live.groupby(by, sort=True)] if by in live.columns else []
    if pooled or not groups:
        groups.append((POOLED, live))
    rows = []
    for name, g in groups:
        cell_share = g.groupby(["model", "level"])["_undef"].transform("mean") if len(g) else g["_undef"]
        excluded = sorted(float(v) for v in g.loc[cell_share > UNDEFINED_SHARE, "level"].unique())
        use = g[cell_share <= UNDEFINED_SHARE] if len(g) else g
        defined = sorted(float(v) for v in use["level"].unique())
        if len(use) == 0:  # every level undefined: ρ over all of them, shown beside the "undefined" verdict
            use = g
        ok = use[np.isfinite(use[x].astype(float)) & np.isfinite(use[y].astype(float))]
        cells = ok["model"].astype(str) + "|" + ok["level"].astype(str)
        r = partial_correlation(ok[x], ok[y], groups=cells) if len(ok) else None
        pooled_r = pearson(ok[x], ok[y]) if len(ok) else None
        rows.append({"stratum": name, "x": x, "y": y, "runs": len(g),
                     "collapsed": int(df["collapsed"].sum()) if "collapsed" in df.columns and name == POOLED else
                     int(df.loc[df[by].astype(str) == name, "collapsed"].sum()) if "collapsed" in df.columns else 0,
                     "n": r.n if r else 0, "rho": r.rho if r else math.nan, "low": r.low if r else math.nan,
                     "high": r.high if r else math.nan, "p_value": r.p_value if r else math.nan,
                     "cells": (r.k + 1) if r else 0, "pooled_rho": pooled_r.rho if pooled_r else math.nan,
                     "pooled_n": pooled_r.n if pooled_r else 0,
                     "undefined_share": float(g["_undef"].mean()) if len(g) else math.nan,
                     "excluded_levels": excluded,
                     "levels": [v for v in defined if v in set(ok["level"].astype(float))],
                     "seeds": sorted(int(v) for v in ok["seed"].unique()) if "seed" in ok else []})
    return pd.DataFrame(rows, columns=CORRELATION_COLUMNS)


def _correlation_evidence(row, *, sign: int, stages, models, what: str) -> Evidence:
    x, y = row["x"], row["y"]
    notes = [f"pooled over densities (confounded by density): ρ = {row['pooled_rho']:.3g} (n = {row['pooled_n']})",
             f"{row['cells']} (model, density) cells partialled out"]
    if row["collapsed"]:
        notes.insert(0, f"{row['collapsed']} collapsed runs excluded (at chance)")
    undefined = ""
    if row["excluded_levels"]:
        levels = ", ".join(f"{v:g}" for v in row["excluded_levels"])
        notes.append(f"left out: density {levels} ({what} undefined for more than half of the units there)")
        if not row["levels"]:
            undefined = (f"{what} is undefined for {row['undefined_share']:.0%} of the units at density {levels} "
                         "(more than half): no verdict at this density")
    lo, hi = sorted((sign * row["low"], sign * row["high"]))
    return Evidence(f"within-density ρ({x}, {y})" if sign > 0 else f"−ρ({x}, {y}) within density",
                    sign * row["rho"], lo, hi, int(row["n"]), "Fisher z on the within-density partial correlation, 95%",
                    unit="Pearson ρ", n_min=int(row["cells"]) + 4 if row["cells"] else 5, notes=notes, models=models,
                    densities=list(row["levels"]) or list(row["excluded_levels"]), seeds=list(row["seeds"]),
                    stages=list(stages), stratum=row["stratum"], undefined=undefined,
                    undefined_share=float(row["undefined_share"]))


def within_correlation(df: pd.DataFrame, x: str, *, y: str = "final_test_acc", stages: Sequence[str],
                       sign: int = 1, what: str = "") -> Evidence:
    """Pearson ρ of ``x`` with ``y`` within each (model, level), per model and pooled
    (:func:`correlation_table`).  Collapsed runs are excluded (counted); the pooled-over-densities ρ is in
    the notes for comparison.  ``sign=-1`` when the claim is negative."""
    ok = df[np.isfinite(pd.to_numeric(df[x], errors="coerce")) & np.isfinite(pd.to_numeric(df[y], errors="coerce"))]
    if len(ok) == 0 or (("collapsed" in ok) and ok["collapsed"].all()):
        raise MissingData(f"no run with finite {x} and {y}")
    corr = correlation_table(df, x, y=y)
    rows = corr.to_dict("records")
    what = what or x
    strata = [_correlation_evidence(r, sign=sign, stages=stages, models=[r["stratum"]], what=what)
              for r in rows if r["stratum"] != POOLED]
    ev = _correlation_evidence(rows[-1], sign=sign, stages=stages, models=[s.stratum for s in strata], what=what)
    ev.stratum, ev.strata, ev.undefined = None, strata, ""
    return ev


def across_variants(df: pd.DataFrame, a: str, b: str, compare) -> List[Evidence]:
    """``compare(label_a, label_b) -> Evidence`` for the faithful pair ``(a, b)`` first, then every
    variant of either present (``Evidence.variant`` names them), so each variant is its own row."""
    labs_a, labs_b = labels_of(df, a), labels_of(df, b)
    for base, labs in ((a, labs_a), (b, labs_b)):
        if base not in labs:
            raise MissingData(f"no runs of {base!r}")
    main = compare(a, b)
    out = [main]
    for la in labs_a:
        for lb in labs_b:
            if (la, lb) == (a, b):
                continue
            try:
                ev = compare(la, lb)
            except MissingData as e:
                main.notes.append(f"variant {la} vs {lb}: {e}")
                continue
            ev.variant = f"{la} vs {lb}"
            out.append(ev)
    return out
