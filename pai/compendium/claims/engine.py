"""The claim registry and the one verdict rule.

A claim is a function of the stage tables returning :class:`Evidence`: an effect oriented so that a
positive value is what the paper claims, with its 95% interval and the test it came from.  The rule
(:func:`decide`) is the same for every claim:

- **holds** when the interval's lower bound is above 0 (it excludes 0 in the claimed direction);
- **contradicted** when its upper bound is below 0 (it excludes 0 in the other direction);
- **inconclusive** otherwise: the interval contains 0, or the data cannot give an interval (a table or
  column is missing, too few pairs, every pair collapsed) - then with that reason.

The rule is applied per model (stratum) first: models can differ a hundredfold in one effect, and one
interval over all of them is wide for that reason rather than for noise.  The per-model verdicts are then
combined by one rule (:func:`combine`, :data:`COMBINE`).  A model whose quantity is undefined (NaN; an
invalid layer) for more than :data:`UNDEFINED_SHARE` of its units is **undefined at this density**, with
the reason, and never holds nor is contradicted.

No minimum effect size: a claim of the form "A ≥ B" holds as soon as the data exclude "A < B", and
the effect with its interval is printed beside the verdict so its size can be judged.  Intervals are
95% per claim, without a multiplicity correction over the scoreboard.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence

LEVEL = 0.95
STAGES = ("expander_sweep", "full_spectrum", "phew_path_kernel", "node_path_balance")  # scoreboard order
HOLDS, CONTRADICTED, INCONCLUSIVE = "holds", "contradicted", "inconclusive"
UNDEFINED = "undefined at this density"
VERDICTS = (HOLDS, CONTRADICTED, INCONCLUSIVE, UNDEFINED)
UNDEFINED_SHARE = 0.5  # more than this share of a model's units without a defined quantity: no verdict
RULE = ("holds if the 95% interval of the effect (oriented so that positive is the paper's direction) "
        "lies above 0; contradicted if it lies below 0; inconclusive otherwise, or when the data give no "
        "interval (the reason is stated). No minimum effect size; no multiplicity correction.")
UNDEFINED_RULE = (f"A model's verdict is '{UNDEFINED}' when the claim's quantity is undefined for more than "
                  f"{UNDEFINED_SHARE:.0%} of its units (a run's NaN value; for the full-spectrum moving distance, a "
                  "layer whose Ramanujan gap is invalid at either end); it then neither holds nor is contradicted, "
                  "and the reason is stated.")
COMBINE = ("Each claim is decided per model (stratum) by the rule above, then combined: holds if it holds on at "
           "least one model and is contradicted on none; contradicted if it is contradicted on at least one and "
           f"holds on none; {UNDEFINED} if it is undefined on every model; inconclusive otherwise (models "
           "disagree, or none is decided).")


class MissingData(Exception):
    """The tables cannot give this claim an effect (the message says what is missing)."""


@dataclass
class Evidence:
    """What a claim function measured.  ``estimate``/``low``/``high`` are in ``unit``; ``n`` counts the
    pairs (comparisons) or runs (correlations) used, ``n_min`` the fewest the interval needs."""
    effect: str
    estimate: float
    low: float
    high: float
    n: int
    interval: str
    unit: str = ""
    n_min: int = 3
    models: List[str] = field(default_factory=list)
    densities: List[float] = field(default_factory=list)
    seeds: List[int] = field(default_factory=list)
    stages: List[str] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)
    variant: Optional[str] = None  # None: the faithful methods; else which variant labels this row used
    stratum: Optional[str] = None  # the model (or stratum) this evidence is about; None: pooled over them
    strata: List["Evidence"] = field(default_factory=list)  # per model; the verdict combines theirs
    undefined: str = ""  # why the quantity is undefined here (then no verdict but UNDEFINED)
    undefined_share: float = 0.0  # share of the units whose quantity is undefined


@dataclass(frozen=True)
class Claim:
    id: str
    title: str  # a few words for the scoreboard's table
    stage: str  # the notebook that prints it
    work: str
    statement: str
    paper: Optional[str]  # the paper's number, when the source states one
    source: str
    paper_reason: str = ""  # why there is no number, when there is none
    needs: str = ""  # tables and columns read (the module docstring lists them all)
    fn: Callable = None


@dataclass
class StratumResult:
    """One model's (stratum's) verdict of a claim."""
    stratum: str
    verdict: str
    reason: str
    evidence: Evidence

    def to_dict(self) -> Dict[str, Any]:
        ev = self.evidence
        out = {"stratum": self.stratum, "verdict": self.verdict, "reason": self.reason, "n": int(ev.n),
               "interval": ev.interval, "unit": ev.unit, "undefined_share": _finite(ev.undefined_share),
               "densities": [float(d) for d in ev.densities], "seeds": list(ev.seeds), "notes": list(ev.notes)}
        for k in ("estimate", "low", "high"):
            out[k] = _finite(getattr(ev, k))
            if out[k] is None:
                out[f"{k}_reason"] = self.reason
        return out


def _finite(v) -> Optional[float]:
    return float(v) if v is not None and math.isfinite(float(v)) else None


@dataclass
class ClaimResult:
    id: str
    title: str
    stage: str
    work: str
    statement: str
    paper: Optional[str]
    paper_reason: str
    source: str
    needs: str
    verdict: str
    reason: str
    evidence: Optional[Evidence]
    strata: List[StratumResult] = field(default_factory=list)
    rule: str = COMBINE

    def to_dict(self) -> Dict[str, Any]:
        """Strict-JSON-ready: non-finite numbers become null, each with the reason beside it.  ``estimate``,
        ``low``, ``high`` and ``n`` are pooled over the models (for reference); ``strata`` holds each model's
        numbers and verdict, which ``verdict`` combines by ``rule``."""
        strata = [s.to_dict() for s in self.strata]
        out = asdict(self)
        out["strata"] = strata
        ev = out.pop("evidence") or {}
        ev.pop("strata", None)
        out.update({k: ev.get(k) for k in ("effect", "unit", "estimate", "low", "high", "interval", "variant")})
        out.update({k: ev.get(k) or [] for k in ("models", "densities", "seeds", "stages", "notes")})
        out["n"] = int(ev.get("n") or 0)
        if not ev:
            out["effect_reason"] = self.reason
        for k in ("estimate", "low", "high"):
            v = out[k]
            if v is None or not math.isfinite(float(v)):
                out[k] = None
                out[f"{k}_reason"] = self.reason
        if out["paper"] is None:
            out["paper_reason"] = self.paper_reason or "the source states no number"
        out["densities"] = [float(d) for d in out["densities"] or []]
        return out


CLAIMS: Dict[str, Claim] = {}


def register_claim(id: str, *, title: str, stage: str, work: str, statement: str, source: str,
                   paper: Optional[str] = None, paper_reason: str = "", needs: str = ""):
    """Decorator: ``fn(tables) -> Evidence | list[Evidence]`` becomes the claim ``id``."""
    def wrap(fn):
        if id in CLAIMS:
            raise ValueError(f"claim {id!r} registered twice")
        if paper is None and not paper_reason:
            raise ValueError(f"claim {id!r}: give the paper's number or why there is none")
        CLAIMS[id] = Claim(id, title, stage, work, statement, paper, source, paper_reason, needs, fn)
        return fn
    return wrap


def decide(ev: Evidence) -> tuple:
    """The verdict rule (module docstring): ``(verdict, reason)``."""
    if ev.undefined:
        return UNDEFINED, ev.undefined
    if ev.n < ev.n_min:
        unit = ("pair" if "pair" in ev.interval else "observation") + ("" if ev.n == 1 else "s")
        return INCONCLUSIVE, f"only {ev.n} {unit} (the interval needs {ev.n_min})"
    if not (math.isfinite(ev.low) and math.isfinite(ev.high)):
        return INCONCLUSIVE, "no interval could be computed (no variation left to estimate it from)"
    span = f"95% interval [{ev.low:.3g}, {ev.high:.3g}]"
    if ev.low > 0:
        return HOLDS, f"{span} lies above 0"
    if ev.high < 0:
        return CONTRADICTED, f"{span} lies below 0"
    return INCONCLUSIVE, f"{span} contains 0"


def combine(verdicts: Sequence[str]) -> tuple:
    """The per-model verdicts combined (:data:`COMBINE`): ``(verdict, reason)``."""
    m = len(verdicts)
    held, against, undefined = (sum(v == k for v in verdicts) for k in (HOLDS, CONTRADICTED, UNDEFINED))
    models = f"{m} model{'' if m == 1 else 's'}"
    if m == 0:
        return INCONCLUSIVE, "no model to decide on"
    if undefined == m:
        return UNDEFINED, f"undefined on {'the' if m == 1 else 'all'} {models}"
    rest = f" ({undefined} undefined)" if undefined else ""
    if held and not against:
        return HOLDS, f"holds on {held} of {models}, contradicted on none{rest}"
    if against and not held:
        return CONTRADICTED, f"contradicted on {against} of {models}, holds on none{rest}"
    if held and against:
        return INCONCLUSIVE, f"models disagree: holds on {held}, contradicted on {against} of {models}{rest}"
    return INCONCLUSIVE, f"decided on none of {models}{rest}"


def _result(claim: Claim, verdict: str, reason: str, ev: Optional[Evidence],
            strata: Sequence[StratumResult] = ()) -> ClaimResult:
    return ClaimResult(claim.id, claim.title, claim.stage, claim.work, claim.statement, claim.paper, claim.paper_reason,
                       claim.source, claim.needs, verdict, reason, ev, list(strata))


def _decided(claim: Claim, ev: Evidence) -> ClaimResult:
    """Each model's verdict (a claim without per-model evidence is one stratum), then the combined one."""
    strata = ev.strata or [ev]
    results = [StratumResult(s.stratum or ", ".join(s.models) or "all", *decide(s), s) for s in strata]
    verdict, reason = combine([r.verdict for r in results])
    if len(results) == 1:
        reason = f"{reason}: {results[0].reason}"
    return _result(claim, verdict, reason, ev, results)


def evaluate(tables: Dict[str, Dict[str, Any]], *, stages: Optional[Sequence[str]] = None,
             strict: bool = False) -> List[ClaimResult]:
    """Every registered claim (those printed by ``stages``, if given) on ``tables`` =
    ``{stage: {table name: DataFrame}}`` (:func:`pai.compendium.claims.tables.load_runs`).  Each claim gives at
    least one result: a claim without its data is inconclusive with the reason.  An unexpected error
    in a claim is reported the same way (``strict=True`` raises it instead, for tests)."""
    out: List[ClaimResult] = []
    order = {s: i for i, s in enumerate(STAGES)}
    for claim in sorted(CLAIMS.values(), key=lambda c: order.get(c.stage, len(order))):  # stable: in-stage order kept
        if stages is not None and claim.stage not in stages:
            continue
        try:
            found = claim.fn(tables)
        except MissingData as e:
            out.append(_result(claim, INCONCLUSIVE, f"missing data: {e}", None))
            continue
        except Exception as e:  # the scoreboard is still written; the reason names the failure
            if strict:
                raise
            out.append(_result(claim, INCONCLUSIVE, f"error: {type(e).__name__}: {e}", None))
            continue
        for ev in (found if isinstance(found, list) else [found]):
            out.append(_decided(claim, ev))
    return out
