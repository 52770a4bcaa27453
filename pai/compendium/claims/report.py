"""The scoreboard as text: ``figures/CLAIMS.md`` and ``CLAIMS.json`` for the pipeline, and the summary a
notebook's last cell prints (:func:`report`)."""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Dict, List, Sequence

from pai.metrics.stats import COLLAPSE_MARGIN
from pai.compendium.claims.engine import CLAIMS, COMBINE, LEVEL, RULE, UNDEFINED_RULE, VERDICTS, ClaimResult, evaluate
from pai.compendium.claims.tables import STAGES, load_runs, load_stage

COLLAPSE = (f"a run is collapsed when its final test accuracy is at most chance × {1 + COLLAPSE_MARGIN:g} (0.15 "
            "on ten classes). Accuracy comparisons exclude pairs where both runs collapsed, and keep and count "
            "pairs where one did (that method's loss; the effect without them is in the notes). Correlations "
            "exclude collapsed runs.")
INTERVALS = ("paired comparisons: Student t over (model, density, seed) pairs - with 3 seeds a percentile "
             "bootstrap cannot reach past the data and undercovers; it is listed in the notes. Correlations: "
             "Fisher z of the within-density partial correlation (one indicator per model and density, so "
             "density alone cannot produce the relation). Differences of two correlations: paired bootstrap "
             "over runs. 'Low density' / 'high sparsity': the sparsest half of each model's levels.")


def _num(v, unit: str = "") -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "—"
    return f"{v:+.3g}" + (f" {unit}" if unit else "")


def _effect_of(ev) -> str:
    if ev is None or not math.isfinite(ev.estimate):
        return "—"
    unit = {"percentage points": "pp", "percentage points of runs": "pp"}.get(ev.unit, "")
    span = f" [{ev.low:.3g}, {ev.high:.3g}]" if math.isfinite(ev.low) and math.isfinite(ev.high) else ""
    return f"{_num(ev.estimate, unit)}{span}"


def _effect(r: ClaimResult) -> str:
    return _effect_of(r.evidence)


def _name(r: ClaimResult) -> str:
    v = r.evidence.variant if r.evidence else None
    return f"{r.title} — variant: {v}" if v else r.title


def summary_table(results: Sequence[ClaimResult]) -> List[str]:
    """Per claim: one row per model (stratum) with n, effect, 95% interval and verdict, then the combined
    verdict (rule: :data:`pai.compendium.claims.engine.COMBINE`)."""
    lines = ["| claim | paper | model | n | effect [95% interval] | verdict |", "|---|---|---|---|---|---|"]
    for r in results:
        head = f"{_name(r)} (`{r.id}`)"
        for s in r.strata:
            lines.append(f"| {head} | {r.paper or '—' if head else ''} | {s.stratum} | {s.evidence.n} | "
                         f"{_effect_of(s.evidence)} | {s.verdict} |")
            head = ""
        if r.strata:
            lines.append(f"| | | **combined** | | | **{r.verdict}** ({r.reason.split(': ')[0]}) |")
        else:
            lines.append(f"| {head} | {r.paper or '—'} | — | 0 | — | **{r.verdict}** ({r.reason}) |")
    return lines


def _details(r: ClaimResult) -> List[str]:
    ev = r.evidence
    lines = [f"### {_name(r)}", "", f"- **Claim** ({r.work}): {r.statement}",
             f"- **Paper**: {r.paper or 'no number — ' + r.paper_reason}. Source: {r.source}."]
    if ev is not None:
        seeds = ", ".join(map(str, ev.seeds)) or "—"
        lines += [f"- **Our test**: models {', '.join(ev.models)}; densities (or degrees) "
                  f"{', '.join(f'{d:g}' for d in ev.densities)}; seeds {seeds}; n = {ev.n} "
                  f"(stages: {', '.join(ev.stages)}).",
                  f"- **Effect** ({ev.interval}): {ev.effect}, {ev.unit}."]
        for s in r.strata:
            lines.append(f"  - {s.stratum}: {_num(s.evidence.estimate)} [{_num(s.evidence.low)}, "
                         f"{_num(s.evidence.high)}], n = {s.evidence.n} — **{s.verdict}** ({s.reason})")
            if len(r.strata) > 1:  # one model: its notes are the pooled ones below
                lines += [f"    - {note}" for note in s.evidence.notes]
        if len(r.strata) > 1:
            lines.append(f"  - pooled over the models (reported, not the verdict): {_num(ev.estimate)} "
                         f"[{_num(ev.low)}, {_num(ev.high)}], n = {ev.n}")
        lines += [f"- {note}" for note in ev.notes]
    lines += [f"- **Verdict: {r.verdict}** — {r.reason}.", f"- Reads: {r.needs}.", ""]
    return lines


PAPER_COLUMNS = ("method", "model", "dataset", "density", "degree", "paper", "ours", "n_seeds", "delta")


def paper_tables(tables: Dict) -> List[str]:
    """Markdown of every stage's ``paper_vs_ours`` table (``pai.compendium.published.paper_vs_ours``, saved by a
    notebook under a paper profile as ``runs/<stage>/tables/paper_vs_ours.csv``)."""
    lines = []
    for stage, named in tables.items():
        table = named.get("paper_vs_ours")
        if table is None or table.empty:
            continue
        cols = [c for c in PAPER_COLUMNS if c in table.columns]
        lines += [f"### {stage.replace('_', ' ')}", "", "| " + " | ".join(cols) + " |",
                  "|" + "---|" * len(cols)]
        for row in table[cols].to_dict("records"):
            cells = ["" if (isinstance(v, float) and not math.isfinite(v)) else
                     (f"{v:+.2f}" if k == "delta" else (f"{v:g}" if isinstance(v, float) else str(v)))
                     for k, v in row.items()]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    if lines:
        lines = ["## Paper vs ours", "", "The papers' published numbers (`pai/compendium/published.csv`) beside ours "
                 "(mean ± sample standard deviation over seeds; delta = ours − paper, percentage points).",
                 ""] + lines
    return lines


def markdown(results: Sequence[ClaimResult], tables: Dict | None = None) -> str:
    counts = {v: sum(r.verdict == v for r in results) for v in VERDICTS}
    lines = ["# Claims scoreboard", "",
             "Computed by `python -m pai.claims` (a `dvc repro` stage) from the result tables "
             "`runs/<stage>/*.csv`; no verdict here is written by hand.", "",
             f"**Verdict rule.** {RULE}", "", f"**Per model, then combined.** {COMBINE}", "",
             f"**Undefined quantities.** {UNDEFINED_RULE}", "", f"**Collapsed runs.** {COLLAPSE}", "",
             f"**Intervals.** {INTERVALS}", "", f"{len(results)} rows: " + ", ".join(
                 f"{counts[v]} {'hold' if v == 'holds' else v}" for v in VERDICTS) + ".", ""]
    for stage in dict.fromkeys(r.stage for r in results):
        lines += [f"## {stage.replace('_', ' ')}", ""] + summary_table([r for r in results if r.stage == stage])
        lines.append("")
    lines += paper_tables(tables or {})
    lines += ["## Details", ""]
    for r in results:
        lines += _details(r)
    return "\n".join(lines)


def to_json(results: Sequence[ClaimResult]) -> str:
    """Strict JSON (``allow_nan=False``): a missing number is null with its ``*_reason`` beside it."""
    doc = {"rule": RULE, "combine": COMBINE, "undefined": UNDEFINED_RULE, "level": LEVEL, "collapse": COLLAPSE,
           "intervals": INTERVALS,
           "claims": [r.to_dict() for r in results]}
    return json.dumps(doc, indent=2, allow_nan=False, ensure_ascii=False) + "\n"


def _as_tables(stage: str, source) -> Dict:
    if isinstance(source, (str, Path)):
        return {stage: load_stage(source)}
    if source and all(isinstance(v, dict) for v in source.values()):
        return source
    return {stage: dict(source or {})}


def report(stage: str, source, *, show: bool = True) -> List[ClaimResult]:
    """Evaluate and print the claims ``stage``'s notebook tests, from ``source``: its output folder
    (``runs/<stage>``, every ``*.csv`` read) or its tables (``{"results": table, "geometry": geo}``).
    Only this stage's tables are used (a pooled claim also pools the other stages in CLAIMS.md)."""
    if stage not in {c.stage for c in CLAIMS.values()}:
        raise KeyError(f"no claims for stage {stage!r}; valid: {', '.join(sorted({c.stage for c in CLAIMS.values()}))}")
    results = evaluate(_as_tables(stage, source), stages=[stage])
    if show:
        print("\n".join([f"Claims tested by this notebook (rule: {RULE} {COMBINE})", ""] + summary_table(results)
                        + [""]))
        for r in results:
            print(f"- {_name(r)}: {r.verdict} — {r.reason}")
    return results


def write(out: str | Path, runs: str | Path = "runs", stages: Sequence[str] = STAGES) -> List[ClaimResult]:
    """Write ``out`` (markdown) and the JSON beside it from ``runs/<stage>/*.csv``."""
    from pai.utils.io import save_text

    tables = load_runs(runs, stages)
    results = evaluate(tables)
    out = Path(out)
    save_text(markdown(results, tables), out)
    save_text(to_json(results), out.with_suffix(".json"))
    return results
