"""Stage tables in, evidence out: loading ``runs/<stage>/*.csv``, pairing runs, and the three kinds of
evidence every claim is built from (a paired accuracy comparison, a paired mask-metric comparison, a
within-density correlation).

Pairing key: ``(model, dataset, level, seed, prune_seed)``, the columns present.  ``level`` is the
target density (``target_density``; ``density`` in a geometry table, where it is the target passed to
the pruner) or, in the degree profile, the degree (``opt_degree``).  Both methods of a pair share the
initialisation (the notebooks seed the model by ``seed``).  ``label`` (``pai.variants.label_row``)
names the faithful method by its plain name and each variant by its own, so variants never pair by
accident.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Dict, List, Sequence

import numpy as np
import pandas as pd

from ..metrics.stats import chance_accuracy, collapsed, paired_difference, partial_correlation, pearson
from ..variants import base_of, label_row
from .engine import STAGES, Evidence, MissingData

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
    """``pai.experiments.mask_geometry`` dicts as a flat table for ``geometry.csv``: the target density as
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
                              "without a registered label (pai.variants.register_variant)?")
        cols = {value: suffix}
        if "collapsed" in sub.columns:
            cols["collapsed"] = f"collapsed_{suffix}"
        sides.append(sub[keys + list(cols)].rename(columns=cols))
    return sides[0].merge(sides[1], on=keys, how="inner")


def _design(pr: pd.DataFrame, stages: Sequence[str]) -> Dict:
    return {"models": sorted(map(str, pr["model"].unique())),
            "densities": sorted(float(v) for v in pr["level"].unique()),
            "seeds": sorted(int(s) for s in pr["seed"].unique()) if "seed" in pr else [],
            "stages": list(stages)}


def _ci_note(res, unit: str) -> List[str]:
    if not (math.isfinite(res.boot_low) and math.isfinite(res.boot_high)):
        return []
    return [f"bootstrap over pairs (reported, not used): [{res.boot_low:.3g}, {res.boot_high:.3g}] {unit}"]


def accuracy_comparison(df: pd.DataFrame, a: str, b: str, *, stages: Sequence[str], variant=None,
                        extra_keys: Sequence[str] = ()) -> Evidence:
    """Final accuracy of ``a`` minus ``b`` in percentage points, paired.  Pairs where both collapsed
    (at chance) say nothing about either method and are excluded; pairs where one collapsed are kept
    (a collapse is that method's loss) and counted, with the effect without them in the notes."""
    pr = pairs(df, a, b, "final_test_acc", extra_keys=extra_keys).dropna(subset=["a", "b"])
    if len(pr) == 0:
        raise MissingData(f"no (model, density, seed) with both {a!r} and {b!r}")
    both = pr["collapsed_a"] & pr["collapsed_b"]
    only_a, only_b = pr["collapsed_a"] & ~both, pr["collapsed_b"] & ~both
    kept = pr[~both]
    if len(kept) == 0:
        raise MissingData(f"all {len(pr)} pairs of {a!r} and {b!r} at chance (collapsed)")
    res = paired_difference(100 * kept["a"], 100 * kept["b"])
    notes = [f"{int(both.sum())} of {len(pr)} pairs excluded: both at chance"] if both.any() else []
    if only_a.any() or only_b.any():
        clean = kept[~(only_a | only_b)[~both]]
        r2 = paired_difference(100 * clean["a"], 100 * clean["b"])
        without = f"{r2.mean:+.3g} [{r2.low:.3g}, {r2.high:.3g}] pp" if r2.n >= 2 else "too few pairs left"
        notes.append(f"kept: {int(only_a.sum())} pairs where only {a} collapsed, {int(only_b.sum())} where only "
                     f"{b} did; without them {without} (n = {r2.n})")
    notes += _ci_note(res, "pp")
    return Evidence(f"accuracy({a}) − accuracy({b})", res.mean, res.low, res.high, res.n,
                    "paired t over (model, density, seed) pairs, 95%", unit="percentage points",
                    notes=notes, variant=variant, **_design(kept, stages))


def metric_comparison(df: pd.DataFrame, a: str, b: str, column: str, *, unit: str, stages: Sequence[str],
                      variant=None) -> Evidence:
    """A mask metric (at initialisation) of ``a`` minus ``b``, paired; non-finite pairs are dropped and
    counted (a disconnected mask has no log-trace)."""
    pr = pairs(df, a, b, column)
    if len(pr) == 0:
        raise MissingData(f"no (model, density, seed) with both {a!r} and {b!r}")
    finite = np.isfinite(pr["a"].astype(float)) & np.isfinite(pr["b"].astype(float))
    kept = pr[finite]
    if len(kept) == 0:
        raise MissingData(f"{column} is not finite for any pair of {a!r} and {b!r}")
    res = paired_difference(kept["a"], kept["b"])
    notes = [f"{int((~finite).sum())} pairs dropped: {column} not finite"] if (~finite).any() else []
    notes += _ci_note(res, unit)
    return Evidence(f"{column}({a}) − {column}({b})", res.mean, res.low, res.high, res.n,
                    "paired t over (model, density, seed) pairs, 95%", unit=unit, notes=notes, variant=variant,
                    **_design(kept, stages))


def within_correlation(df: pd.DataFrame, x: str, *, y: str = "final_test_acc", stages: Sequence[str],
                       sign: int = 1) -> Evidence:
    """Pearson ρ of ``x`` with ``y`` within each (model, level), pooled: the partial correlation with one
    indicator per cell, so density alone cannot produce it.  Collapsed runs are excluded (counted);
    the pooled-over-densities ρ is in the notes for comparison.  ``sign=-1`` when the claim is negative."""
    ok = df[np.isfinite(df[x].astype(float)) & np.isfinite(df[y].astype(float))]
    gone = int(ok["collapsed"].sum()) if "collapsed" in ok else 0
    ok = ok[~ok["collapsed"]] if "collapsed" in ok else ok
    if len(ok) == 0:
        raise MissingData(f"no run with finite {x} and {y}")
    cells = ok["model"].astype(str) + "|" + ok["level"].astype(str)
    r = partial_correlation(ok[x], ok[y], groups=cells)
    pooled = pearson(ok[x], ok[y])
    notes = [f"pooled over densities (confounded by density): ρ = {pooled.rho:.3g} (n = {pooled.n})",
             f"{r.k + 1} (model, density) cells partialled out"]
    if gone:
        notes.insert(0, f"{gone} collapsed runs excluded (at chance)")
    return Evidence(f"within-density ρ({x}, {y})" if sign > 0 else f"−ρ({x}, {y}) within density",
                    sign * r.rho, *sorted((sign * r.low, sign * r.high)), r.n,
                    "Fisher z on the within-density partial correlation, 95%", unit="Pearson ρ",
                    n_min=r.k + 5, notes=notes, **_design(ok, stages))


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
