"""The seed works' published numbers (``pai/compendium/published.csv``) and the "paper vs ours" table.

Works (``work`` column):

* ``rreg``: Stewart, Michieli & Ozay, "Data-free model pruning at initialization via expanders", CVPR
  Workshops 2023 -- the CIFAR-10/100 table (VGG-16, degrees 3/15/30/60), the Tiny-ImageNet table
  (degree 3) and the equal-parameter table below it; seeds not stated (the official scripts run seed 0 only).
* ``ramanujan``: Hoang, Liu, Marculescu & Wang, "Revisiting pruning at initialization through the lens
  of Ramanujan graph", ICLR 2023 -- PaI baselines at density 0.01 from the
  official logs (VITA-Group/ramanujan-on-pai ``summary-*.csv``).
* ``npb``: Pham et al., "Towards data-agnostic pruning at initialization: what makes a good sparse
  mask?", NeurIPS 2023 (node-path balancing) -- the main figure's accuracies (ResNet-20/CIFAR-10, VGG-19/CIFAR-100,
  ResNet-18/Tiny-ImageNet at sparsities 68.38/90/96.84/99%).
* ``synflow``: Tanaka, Kunin, Yamins & Ganguli, "Pruning neural networks without any data by
  iteratively conserving synaptic flow", NeurIPS 2020 -- Fig. 6 from the official result arrays
  (ganguli-lab/Synaptic-Flow ``Results/data/Accuracy_CompRatio``): SynFlow's whole curves, all five
  methods at compressions 10^1, 10^2, 10^3.
* ``mge-snn``: Cunegatti, Farina, Bucur & Iacca, "Understanding sparse neural networks from their topology
  via multipartite graph representations", TMLR 2024 -- ResNet-20 / CIFAR-10 at sparsity 90/95/98%
  (160 epochs, 3 seeds): SNIP, GraSP, SynFlow, ERK, RigL and ITOP, the mean and sample standard deviation
  over seeds of the ``accuracy`` column of the official repository's
  ``graph_data/graph_metrics/unrolled/unrolled.csv`` (one row per trained network).

Columns: ``method`` and ``model`` are ``pai`` registry names (``dense`` for the unpruned net;
``iter-snip`` and ``wrn-18`` have no ``pai`` counterpart), ``paper_method``/``paper_model`` the labels
as printed.  ``density`` is the fraction kept, converted from the printed quantity kept verbatim in
``original_sparsity`` (sparsity s% -> 1 - s/100, compression c -> 10^-c, RReg's "PP" = % of parameters
remaining -> PP/100); ``density_basis`` says what it is a fraction of ("prunable" conv/linear weights,
or RReg's "all-params", BN and biases included).  ``degree`` is RReg's per-layer degree d.
``metric``: ``final_test_acc`` (last epoch), ``best_test_acc`` (best epoch; SynFlow's ``np.max``),
``test_acc_at_best_val``, or ``test_acc`` when the paper does not say.  ``value`` and ``spread`` are
in percent; ``spread_kind`` says what the spread is.  ``derived`` marks a number not printed but
implied by printed ones (``note`` says how).  ``source`` is the public origin: a repository and the
file in it (``owner/name, path``), or the paper and its table or figure; ``via`` a public copy it was
read from when not the source itself (empty: read from the source).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Iterable, Optional, Sequence

import pandas as pd

PUBLISHED_CSV = Path(__file__).with_name("published.csv")
WORKS = ("rreg", "ramanujan", "npb", "synflow", "mge-snn")
# Our results-table column compared with each published metric (papers that do not say -> final epoch).
OURS_METRIC = {"final_test_acc": "final_test_acc", "best_test_acc": "best_test_acc",
               "test_acc_at_best_val": "final_test_acc", "test_acc": "final_test_acc"}


def load_published(work: Optional[str | Iterable[str]] = None, *, method=None, model=None, dataset=None,
                   metric=None, include_derived: bool = True, path: str | Path = PUBLISHED_CSV) -> pd.DataFrame:
    """The published numbers, filtered: each filter is a value or a list of values of that column."""
    table = pd.read_csv(path, dtype={"degree": "Int64", "n_seeds": "Int64", "derived": int, "via": str})
    text = [c for c in table.columns if table[c].dtype == object or pd.api.types.is_string_dtype(table[c])]
    table[text] = table[text].fillna("")
    table["derived"] = table["derived"].astype(bool)
    for column, wanted in (("work", work), ("method", method), ("model", model), ("dataset", dataset),
                           ("metric", metric)):
        if wanted is not None:
            wanted = [wanted] if isinstance(wanted, str) else list(wanted)
            unknown = set(wanted) - set(table[column])
            if column == "work" and unknown:
                raise ValueError(f"unknown work(s) {sorted(unknown)}; valid: {', '.join(WORKS)}")
            table = table[table[column].isin(wanted)]
    if not include_derived:
        table = table[~table["derived"]]
    return table.reset_index(drop=True)


def _degree_column(ours: pd.DataFrame) -> Optional[str]:
    return next((c for c in ("degree", "opt_degree") if c in ours.columns), None)


def _density_column(ours: pd.DataFrame) -> str:
    for column in ("target_density", "density"):
        if column in ours.columns:
            return column
    raise ValueError("our results table needs a 'target_density' or 'density' column")


def paper_vs_ours(ours: pd.DataFrame, published: Optional[pd.DataFrame] = None, *, work=None, rtol: float = 0.02,
                  scale: float = 100.0, ours_metric: Optional[str] = None, keep_unmatched: bool = False) -> pd.DataFrame:
    """One row per published number that our runs reproduce: paper value, our mean and spread over seeds,
    the number of seeds and ``delta`` = ours - paper (percentage points).

    ``ours`` is a results table (``pai.compendium.runs.write_tables``): columns ``model``, ``dataset``, ``method``,
    ``seed``, a density (``target_density`` -- the requested one -- if present, else ``density``), the
    accuracy columns, and for RReg-style runs a degree (``degree`` or ``opt_degree``).  A published row
    matches our rows with the same ``method``, ``model`` and ``dataset`` and

    - the same degree, if the published row gives one (the density then follows from it, and RReg's PP
      counts BN and biases while ours counts prunable weights only);
    - otherwise a density within ``rtol`` (relative, default 2%) of the published one -- wide enough for
      printed roundings (99% -> 0.01, 68.38% -> 0.3162 vs 10^-0.5) and a pruner's small miss of its
      target, narrow enough to keep every grid of the papers (steps of >= 25%) apart.

    Our accuracy column is ``ours_metric`` or the one :data:`OURS_METRIC` pairs with the published metric,
    times ``scale`` (our fractions -> percent).  The spread is the sample standard deviation over seeds
    (NaN for one seed).  Several rows of one seed in a match (e.g. two option settings) are ambiguous
    and raise ``ValueError``: filter ``ours`` first.  ``keep_unmatched`` keeps the published rows we have
    not run (ours NaN, ``n_seeds`` 0).
    """
    published = load_published(work) if published is None else published
    degree_col, density_col = _degree_column(ours), _density_column(ours)
    rows = []
    for _, paper in published.iterrows():
        sel = ours[(ours["method"] == paper["method"]) & (ours["model"] == paper["model"])
                   & (ours["dataset"] == paper["dataset"])]
        if pd.notna(paper["degree"]):
            sel = sel[sel[degree_col] == paper["degree"]] if degree_col else sel.iloc[0:0]
        elif pd.notna(paper["density"]):
            if degree_col:
                sel = sel[sel[degree_col].isna()]
            sel = sel[(sel[density_col] - paper["density"]).abs() <= rtol * paper["density"]]
        else:
            sel = sel.iloc[0:0]  # neither density nor degree printed: nothing to match on
        column = ours_metric or OURS_METRIC[paper["metric"]]
        if len(sel) and column not in sel.columns:
            raise ValueError(f"our results table has no {column!r} column (published metric {paper['metric']!r})")
        if sel["seed"].duplicated().any():
            raise ValueError(f"ambiguous match for {paper['work']} {paper['method']} {paper['model']} "
                             f"{paper['dataset']} density={paper['density']} degree={paper['degree']}: several rows "
                             f"per seed ({len(sel)} rows); filter our table (e.g. on its opt_* columns) first")
        if not len(sel) and not keep_unmatched:
            continue
        acc = sel[column].astype(float) * scale if len(sel) else pd.Series(dtype=float)
        mean = float(acc.mean()) if len(acc) else math.nan
        spread = float(acc.std(ddof=1)) if len(acc) > 1 else math.nan
        rows.append({
            "work": paper["work"], "table_or_figure": paper["table_or_figure"], "method": paper["method"],
            "model": paper["model"], "dataset": paper["dataset"], "density": paper["density"],
            "degree": paper["degree"], "metric": paper["metric"], "paper": paper["value"],
            "paper_spread": paper["spread"], "ours_mean": mean, "ours_spread": spread, "n_seeds": len(acc),
            "delta": mean - paper["value"], "ours_metric": column, "derived": paper["derived"],
            "ours": _pm(mean, spread),
        })
    columns = ["work", "table_or_figure", "method", "model", "dataset", "density", "degree", "metric", "paper",
               "paper_spread", "ours_mean", "ours_spread", "n_seeds", "delta", "ours_metric", "derived", "ours"]
    return pd.DataFrame(rows, columns=columns)


def paper_table(table: pd.DataFrame, work, *, dataset=None, exclude: Sequence[str] = (),
                keep_unmatched: bool = False, levels_run_only: bool = False) -> pd.DataFrame:
    """A stage's paper-vs-ours table, the one function every notebook calls: :func:`paper_vs_ours` of the
    runs of each method's faithful default (``label`` equal to ``method`` where labels are given: a
    variant is not what the paper ran) under the static regime, less the methods in ``exclude``, against
    ``work``'s published rows on ``dataset`` (default: the datasets we ran).

    ``keep_unmatched`` keeps published rows we have not run ("not run"); ``levels_run_only`` narrows
    those to our grid's levels: the published degrees we ran when our runs have degrees (``opt_degree``),
    else the published densities within 2% of one of our target densities."""
    import numpy as np

    ours = table
    if "label" in ours.columns:
        ours = ours[ours["label"] == ours["method"]]
    if "regime" in ours.columns:
        ours = ours[ours["regime"].fillna("static") == "static"]
    if len(exclude):
        ours = ours[~ours["method"].isin(list(exclude))]
    published = load_published(work, dataset=dataset if dataset is not None else sorted(set(ours["dataset"])))
    if levels_run_only:
        if "opt_degree" in ours.columns and ours["opt_degree"].notna().any():
            degrees = set(pd.to_numeric(ours["opt_degree"], errors="coerce").dropna().astype(int))
            published = published[published["degree"].isna() | published["degree"].isin(degrees)]
        else:
            targets = ours[_density_column(ours)].astype(float).unique()
            near = published["density"].apply(lambda d: bool(np.any(np.abs(targets - d) <= 0.02 * d)))
            published = published[near & published["degree"].isna()]
    return paper_vs_ours(ours, published, keep_unmatched=keep_unmatched)


def _pm(mean: float, spread: float) -> str:
    if math.isnan(mean):
        return "not run"
    return f"{mean:.2f}" if math.isnan(spread) else f"{mean:.2f} ± {spread:.2f}"


def format_table(table: pd.DataFrame, columns: Sequence[str] = ("method", "model", "dataset", "density", "degree",
                 "paper", "ours", "n_seeds", "delta")) -> str:
    """Plain-text rendering of :func:`paper_vs_ours` for a notebook's output."""
    shown = table.loc[:, list(columns)].copy()
    if "delta" in shown:
        shown["delta"] = shown["delta"].map(lambda v: "" if pd.isna(v) else f"{v:+.2f}")
    return shown.to_string(index=False)
