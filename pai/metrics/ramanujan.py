"""Ramanujan-graph metrics of a layer: Delta_r, IMDB, NaRC and the weighted spectral gap lambda.

* Hoang, Liu, Marculescu & Wang, "Revisiting pruning at initialization through the lens of
  Ramanujan graph", ICLR 2023 (code ``VITA-Group/ramanujan-on-pai``, ``lib/graphs/scores.py``).
* Hoang, Kundu, Liu & Wang, "Don't just prune by magnitude! Your mask topology is a secret
  weapon", NeurIPS 2023 (dev code ``ScottHoang/dst-ram-pruning``, ``sparselearning/ramanujan.py``).

Definitions (graph = unrolled biadjacency, isolated nodes dropped; ``mu_hat = sigma_2(B)``):

* degree Ramanujan gap: ``ub = sqrt(d_L - 1) + sqrt(d_R - 1)`` (the bi-regular bound with the mean
  degrees), ``Delta_r = ub - mu_hat``; normalised ``Delta_r / ub`` (the ICLR figures' "Delta r").
  ``bound="spectral"`` gives ICLR's ``Delta_s = 2 sqrt(mu_0 - 1) - mu_hat``.
* iterative (IMDB): group left nodes by degree ``d``; each class induces a d-left-regular
  subgraph (class rows x all outputs, isolated outputs dropped) scored like a layer; the layer
  value is the mean over valid classes.
* weighted spectral gap (NeurIPS): ``lambda = sigma_1(|W*M|) - sigma_2(|W*M|)``.

Two rule sets (``rule=``), read from the two official codes:

========  ==============================  ===============================  ==========  ===========
rule      layer valid iff                 class valid iff                  class size  class factor
========  ==============================  ===============================  ==========  ===========
iclr      d_L >= 3 and d_R >= 3           d >= 3 and d_R >= 3              >= 3        1
neurips   d_out >= 3 and d_in > 1 [*]     d >= 3 and d_R > 1               >= 2        c_d
========  ==============================  ===============================  ==========  ===========

[*] the dev code transposes the full graph once, so its "left" side is the outputs there.
``c_d = max(n_d, m_d) / (n_d + m_d - 1)`` is the dev code's Cheeger-like factor (``n_d`` class
rows, ``m_d`` outputs they touch).  IMDB is normalised under ``iclr`` (``irm_norm``) and not
under ``neurips``.  Every function returns NaN for an invalid layer and for a layer without a
valid class -- never 0, which would read as "exactly on the Ramanujan bound".  Only
:func:`pai.metrics.fullspectrum.full_spectrum` maps NaN to ``invalid`` (0.0 by default, as the
dev code's ``inf -> 0``).
Validity and classes use the mask; a kept weight that is exactly zero stays an edge (``mask != 0``).
"""
from __future__ import annotations

import math
from typing import NamedTuple, Optional, Sequence

import numpy as np
import scipy.sparse as sp

from pai.metrics.linalg import Matrix, as_csr, block_top_sv_lower_bounds, top_sv_csr

RULES = ("iclr", "neurips")
MIN_CLASS = {"iclr": 3, "neurips": 2}
NAN = float("nan")


def _check_rule(rule: str) -> str:
    if rule not in RULES:
        raise ValueError(f"unknown rule {rule!r}; valid: {', '.join(RULES)}")
    return rule


def _valid(d_left: float, d_right: float, rule: str, whole_layer: bool) -> bool:
    if rule == "iclr":
        return d_left >= 3 and d_right >= 3
    if whole_layer:  # dev code: outputs (here the right side) >= 3, inputs > 1
        return d_right >= 3 and d_left > 1
    return d_left >= 3 and d_right > 1


class Graph(NamedTuple):
    n_left: int  # non-isolated nodes
    n_right: int
    edges: int
    d_left: float  # mean degrees over non-isolated nodes
    d_right: float

    @property
    def ub(self) -> float:
        """Bi-regular Ramanujan bound ``sqrt(d_L - 1) + sqrt(d_R - 1)`` (NaN below degree 1)."""
        if self.d_left < 1 or self.d_right < 1:
            return NAN
        return math.sqrt(self.d_left - 1) + math.sqrt(self.d_right - 1)

    @property
    def cheeger(self) -> float:
        return max(self.n_left, self.n_right) / max(self.n_left + self.n_right - 1, 1)

    def valid(self, rule: str, whole_layer: bool) -> bool:
        return _valid(self.d_left, self.d_right, rule, whole_layer)


def graph_stats(S: sp.csr_matrix) -> Graph:
    e = S.nnz
    n_l = int(np.count_nonzero(np.diff(S.indptr)))
    n_r = int(np.count_nonzero(np.bincount(S.indices, minlength=S.shape[1])))
    return Graph(n_l, n_r, e, e / n_l if n_l else 0.0, e / n_r if n_r else 0.0)


class ClassSpectrum(NamedTuple):
    degree: int
    graph: Graph
    s2_bin: float
    s1_abs: float
    s2_abs: float


class LayerSpectrum(NamedTuple):
    """Everything the Ramanujan metrics read: degrees, sigma_1/2 of the mask and of |W*M|, classes."""
    shape: tuple  # (n_in, n_out) of the biadjacency, isolated nodes included
    graph: Graph
    s1_bin: float
    s2_bin: float
    s1_abs: float
    s2_abs: float
    classes: tuple  # ClassSpectrum per degree class valid under the neurips rule (a superset of iclr's)


def _binary(S: sp.csr_matrix) -> sp.csr_matrix:
    B = S.copy()
    B.data = np.ones_like(B.data)
    return B


def layer_spectrum(S: sp.csr_matrix, weighted: bool = True, only_valid: Optional[str] = None,
                   classes: bool = True, whole: bool = True) -> LayerSpectrum:
    """Spectra of one layer from its sparse biadjacency ``S`` (pattern = mask, values ``|w*m|``).

    ``only_valid=rule`` skips every eigen-solve the rule would discard (NaN there): what makes a
    PAGS candidate cheap.  Classes are those valid under ``neurips`` (they contain ``iclr``'s).
    ``whole=False`` skips the whole layer's solves (its sigmas are NaN): with ``weighted=False`` that
    leaves exactly what IMDB_r reads, the same values as the full call.
    """
    S = sp.csr_matrix(S)
    P = _binary(S)
    g = graph_stats(S)
    nan2 = (NAN, NAN)
    full = whole and (only_valid is None or g.valid(only_valid, True))
    s_bin = tuple(top_sv_csr(P, 2)) if full and g.edges else ((0.0, 0.0) if full else nan2)
    s_abs = tuple(top_sv_csr(abs(S), 2)) if full and weighted and g.edges else nan2
    out = []
    if classes and g.edges:
        for d, sub, gs in _degree_classes(S, only_valid):
            b2 = top_sv_csr(_binary(sub), 2)[1]
            a1, a2 = top_sv_csr(abs(sub), 2) if weighted else nan2
            out.append(ClassSpectrum(d, gs, float(b2), float(a1), float(a2)))
    return LayerSpectrum(tuple(S.shape), g, float(s_bin[0]), float(s_bin[1]),
                         float(s_abs[0]), float(s_abs[1]), tuple(out))


def _degree_classes(S: sp.csr_matrix, only_valid: Optional[str]):
    """``(d, rows of S with left degree d, their Graph)`` for every class valid under ``neurips`` (and
    ``only_valid``), in increasing ``d``."""
    deg = np.diff(S.indptr)
    order = np.argsort(deg, kind="stable")
    values, starts, counts = np.unique(deg[order], return_index=True, return_counts=True)
    for d, s, c in zip(values.tolist(), starts.tolist(), counts.tolist()):
        if d < 3 or c < MIN_CLASS["neurips"]:
            continue
        sub = S[order[s:s + c]]
        gs = graph_stats(sub)
        if not gs.valid("neurips", False) or (only_valid and not _class_ok(gs, c, only_valid)):
            continue
        yield d, sub, gs


IMDB_BOUND_MARGIN = 1e-9  # relative slack of imdb_upper_bound, far above any rounding of either path


def imdb_upper_bound(S: sp.csr_matrix, rule: str = "neurips", normalized: Optional[bool] = None,
                     exact_up_to: int = 64, steps: Sequence[int] = (12, 24), below: Optional[float] = None) -> float:
    """A number ``>=`` :func:`imdb` of ``layer_spectrum(S)`` (NaN when that is NaN), without the large solves.
    Long on purpose: the exact small classes, the two Lanczos passes and the bound's assembly share state.

    Each valid class's ``sigma_2`` enters IMDB with a minus sign, so a lower bound of it bounds IMDB from
    above.  Classes of at most ``exact_up_to`` rows get their eigenvalues from one batched dense solve of
    their row Grams; larger ones the Rayleigh-Ritz bound of :func:`pai.metrics.linalg.top_sv_lower_bounds`,
    valid whatever the convergence, with ``steps[0]`` Lanczos vectors, then (unless the bound is already
    under ``below``) ``steps[1]`` ... for a tighter one.  Every eigenvalue is lowered by ``1e-10 lambda_1``
    and the result raised by ``IMDB_BOUND_MARGIN`` relative to the class terms' sizes, far above the
    rounding of either computation.  The classes and their validity are those of :func:`layer_spectrum`,
    computed for all classes at once.  Used to reject a PAGS candidate layer whose IMDB_r cannot reach
    the current best's without computing it.
    """
    normalized = (rule == "iclr") if normalized is None else normalized
    _check_rule(rule)
    S = sp.csr_matrix(S)
    if not S.nnz:
        return NAN
    S = _binary(S)
    n_rows, n_cols = S.shape
    deg = np.diff(S.indptr)
    order = np.argsort(deg, kind="stable")
    values, starts, counts = np.unique(deg[order], return_index=True, return_counts=True)
    keep = (values >= 3) & (counts >= MIN_CLASS["neurips"])
    values, starts, counts = values[keep], starts[keep], counts[keep]
    if not len(values):
        return NAN
    # touched outputs per class, for all classes at once (graph_stats of each class's rows)
    row_class = np.full(n_rows, -1, dtype=np.int64)
    for ci, (st, c) in enumerate(zip(starts.tolist(), counts.tolist())):
        row_class[order[st:st + c]] = ci
    nz_class = np.repeat(row_class, deg)
    sel = nz_class >= 0
    touched = np.unique(nz_class[sel] * n_cols + S.indices[sel]) // n_cols
    n_right = np.bincount(touched, minlength=len(values))
    classes = []  # (ub, factor, rows)
    for ci, (d, st, c) in enumerate(zip(values.tolist(), starts.tolist(), counts.tolist())):
        e, nr = c * d, int(n_right[ci])
        gs = Graph(c, nr, e, e / c, e / nr if nr else 0.0)
        if not gs.valid("neurips", False) or not _class_ok(gs, c, rule):
            continue
        classes.append((gs.ub, gs.cheeger if rule == "neurips" else 1.0, order[st:st + c]))
    if not classes:
        return NAN
    small = [i for i, cl in enumerate(classes) if len(cl[2]) <= exact_up_to]
    low = {}
    if small:  # one padded stack of dense row Grams (extra zero eigenvalues do not touch the top two)
        width = max(len(classes[i][2]) for i in small)
        D = np.zeros((len(small), width, n_cols))
        for b, i in enumerate(small):
            D[b, :len(classes[i][2])] = S[classes[i][2]].toarray()
        lam = np.linalg.eigvalsh(D @ D.transpose(0, 2, 1))[:, ::-1]
        lam2 = lam[:, 1] - 1e-10 * np.maximum(lam[:, 0], 0.0) if width > 1 else np.zeros(len(small))
        for b, i in enumerate(small):
            low[i] = float(np.sqrt(max(lam2[b], 0.0)))
    subs = {i: S[cl[2]] for i, cl in enumerate(classes) if i not in low}
    bound = NAN
    for m in steps:
        if subs:
            lows = block_top_sv_lower_bounds(list(subs.values()), n_cols, 2, m)[:, 1]
            low.update(zip(subs, lows.tolist()))
        vals, size = [], 0.0
        for i, (ub, factor, _) in enumerate(classes):
            vals.append(((ub - low[i]) / ub if normalized else ub - low[i]) * factor)
            size += (abs(ub) + abs(low[i])) * factor / (ub if normalized else 1.0)
        bound = float(np.mean(vals)) + IMDB_BOUND_MARGIN * (1.0 + size / len(vals))
        if below is not None and bound < below or not subs:
            break
    return bound


def _class_ok(g: Graph, count: int, rule: str) -> bool:
    return count >= MIN_CLASS[rule] and g.valid(rule, False)


# ---- metrics read off a LayerSpectrum -------------------------------------------------------

def delta_r(ls: LayerSpectrum, rule: str = "iclr", normalized: bool = True) -> float:
    if not ls.graph.valid(_check_rule(rule), True):
        return NAN
    ub = ls.graph.ub
    return (ub - ls.s2_bin) / ub if normalized else ub - ls.s2_bin


def imdb(ls: LayerSpectrum, rule: str = "iclr", normalized: Optional[bool] = None) -> float:
    normalized = (rule == "iclr") if normalized is None else normalized
    vals = []
    for c in ls.classes:
        if not _class_ok(c.graph, c.graph.n_left, _check_rule(rule)):
            continue
        ub = c.graph.ub
        v = (ub - c.s2_bin) / ub if normalized else ub - c.s2_bin
        vals.append(v * (c.graph.cheeger if rule == "neurips" else 1.0))
    return float(np.mean(vals)) if vals else NAN


def lam(ls: LayerSpectrum, rule: Optional[str] = "neurips") -> float:
    if rule is not None and not ls.graph.valid(_check_rule(rule), True):
        return NAN
    return ls.s1_abs - ls.s2_abs


def imdb_lambda(ls: LayerSpectrum, rule: str = "neurips") -> float:
    vals = [(c.s1_abs - c.s2_abs) * (c.graph.cheeger if rule == "neurips" else 1.0)
            for c in ls.classes if _class_ok(c.graph, c.graph.n_left, _check_rule(rule))]
    return float(np.mean(vals)) if vals else NAN


# ---- the same on a biadjacency matrix -------------------------------------------------------

def _pattern_with_values(B_abs: Matrix, B_bin: Optional[Matrix]) -> sp.csr_matrix:
    W = abs(as_csr(B_abs))
    if B_bin is None:
        W.eliminate_zeros()
        return W
    P = _binary(as_csr(B_bin))
    P.eliminate_zeros()
    P.sort_indices()
    rows = np.repeat(np.arange(P.shape[0]), np.diff(P.indptr))
    vals = np.asarray(W[rows, P.indices]).ravel()  # explicit zeros stay edges of the mask
    return sp.csr_matrix((vals, P.indices.copy(), P.indptr.copy()), shape=P.shape)


def ramanujan_gap(B_bin: Matrix, normalized: bool = True, rule: str = "iclr", bound: str = "degree") -> float:
    """Delta_r of one layer graph (``bound="spectral"``: ICLR's ``Delta_s``); NaN if invalid."""
    if bound not in ("degree", "spectral"):
        raise ValueError(f"bound must be 'degree' or 'spectral', got {bound!r}")
    ls = layer_spectrum(_pattern_with_values(B_bin, None), weighted=False, only_valid=_check_rule(rule),
                        classes=False)
    if bound == "degree":
        return delta_r(ls, rule, normalized)
    if not ls.graph.valid(rule, True):
        return NAN
    ub = 2 * math.sqrt(max(ls.s1_bin - 1, 0.0))
    return (ub - ls.s2_bin) / ub if normalized else ub - ls.s2_bin


def iterative_ramanujan_gap(B_bin: Matrix, normalized: Optional[bool] = None, rule: str = "iclr") -> float:
    """IMDB: mean gap over the valid degree classes (iclr: ``Delta_r/ub``; neurips: raw ``c_d Delta_r``)."""
    ls = layer_spectrum(_pattern_with_values(B_bin, None), weighted=False, only_valid=_check_rule(rule))
    return imdb(ls, rule, normalized)


def weighted_spectral_gap(B_abs: Matrix, rule: Optional[str] = None, B_bin: Optional[Matrix] = None) -> float:
    """NeurIPS'23 ``lambda = sigma_1(|W*M|) - sigma_2(|W*M|)``; with ``rule``, NaN if the pattern is invalid."""
    ls = layer_spectrum(_pattern_with_values(B_abs, B_bin), only_valid=rule, classes=False)
    return lam(ls, rule)


def iterative_weighted_spectral_gap(B_abs: Matrix, B_bin: Optional[Matrix] = None, rule: str = "neurips") -> float:
    """Mean of ``c_d * lambda_d`` over the degree classes (classes from ``B_bin``, default ``B_abs != 0``)."""
    ls = layer_spectrum(_pattern_with_values(B_abs, B_bin), only_valid=_check_rule(rule))
    return imdb_lambda(ls, rule)


def narc(B_bin: Matrix) -> float:
    """ICLR'23 "normalized random coefficient" (``scores.random_bound``); NaN if invalid (iclr rule).

    ``[(mu_hat^2/4 + 1) sqrt(n_L n_R) - |E_dir - (d_L/n_out) n_L n_R|] / (n_in n_out)`` with the
    official quirk ``E_dir = 2|E|`` (PyG stores both directions) kept so the CSV values reproduce.
    """
    ls = layer_spectrum(_pattern_with_values(B_bin, None), weighted=False, only_valid="iclr", classes=False)
    return narc_of(ls)


def narc_of(ls: LayerSpectrum) -> float:
    g = ls.graph
    if not g.valid("iclr", True):
        return NAN
    n_in, n_out = ls.shape
    lhs = (ls.s2_bin ** 2 / 4 + 1) * math.sqrt(g.n_left * g.n_right)
    rhs = abs(2 * g.edges - g.d_left / n_out * g.n_left * g.n_right)
    return (lhs - rhs) / (n_in * n_out)
