"""Top singular values, spectral gaps and sampled vertex expansion of a bipartite layer graph.

Everything takes a biadjacency ``B`` (inputs x outputs; a dense tensor/array or a scipy sparse
matrix, see :mod:`pai.metrics.bipartite`).  The nonzero eigenvalues of the graph's adjacency
``[[0, B], [B^T, 0]]`` are ``+-sigma_i(B)``, so the ``mu_0`` and ``mu_hat`` that the official
Ramanujan code reads off ``eigsh(A, k=3)`` are ``sigma_1(B)`` and ``sigma_2(B)``.  Singular values
come from :mod:`pai.metrics.linalg` (the Gram route); the Ramanujan metrics and the NeurIPS full-spectrum
coordinate live in :mod:`pai.metrics.ramanujan` and :mod:`pai.metrics.fullspectrum` and are
re-exported here, so every spectral quantity imports from this module.
"""
from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp

from pai.utils.seed import numpy_generator
from pai.metrics.fullspectrum import (  # noqa: F401  (re-exported)
    FullSpectrum, full_spectrum, full_spectrum_distance, full_spectrum_norm, full_spectrum_summary, moving_distance,
    network_full_spectrum)
from pai.metrics.linalg import Matrix, as_csr, top_singular_values, top_sv_csr  # noqa: F401  (re-exported)
from pai.metrics.ramanujan import (  # noqa: F401  (re-exported)
    iterative_ramanujan_gap, iterative_weighted_spectral_gap, narc, ramanujan_gap, weighted_spectral_gap)


def spectral_gap(B: Matrix, normalized: bool = False) -> float:
    """``sigma_1 - sigma_2`` of ``B``; ``normalized``: ``1 - sigma_2(N) / sigma_1(N)``.

    ``N = D_L^{-1/2} B D_R^{-1/2}`` with ``D`` the (weighted) degrees after dropping isolated
    nodes: the normalised biadjacency of the random walk, whose ``sigma_1`` is 1 on every graph
    without isolated nodes (Chung, "Spectral graph theory", 1997, Sec. 1.2), so the normalised gap
    is the walk's spectral gap in [0, 1] and comparable across layer sizes.  NaN for an empty graph.
    """
    S = as_csr(B)
    if not normalized:
        s = top_sv_csr(S, 2)
        return float(s[0] - s[1])
    S = abs(S)
    dl = np.asarray(S.sum(1)).ravel()
    dr = np.asarray(S.sum(0)).ravel()
    rows, cols = np.nonzero(dl > 0)[0], np.nonzero(dr > 0)[0]
    if len(rows) == 0:
        return float("nan")
    N = sp.diags(dl[rows] ** -0.5) @ S[rows][:, cols] @ sp.diags(dr[cols] ** -0.5)
    s = top_sv_csr(sp.csr_matrix(N), 2)
    return float(1.0 - s[1] / s[0])


def vertex_expansion(B: Matrix, samples: int = 1000, seed: int = 0, reduce: str = "mean") -> float:
    """Monte-Carlo vertex expansion of the bipartite graph ``B`` (RReg, Stewart et al., CVPRW 2023).

    As the official RReg estimate (``ExpandersPruning`` ``graph_utils``): per sample draw
    ``k_L ~ U{1..ceil(n_L/2)-1}``, ``k_R ~ U{1..ceil(n_R/2)-1}`` and uniform subsets ``S_L``, ``S_R``
    of those sizes; ``reduce="mean"`` returns the mean over samples of
    ``(|N(S_L)|/|S_L| + |N(S_R)|/|S_R|) / 2`` (the official figure), ``reduce="min"`` the smallest
    ratio seen on either side -- a sampled (upper) estimate of the expansion constant
    ``alpha = min_{|S| <= n/2} |N(S)|/|S|``.  All nodes count (RReg builds graphs on the full layer).
    NaN when a side has fewer than 3 nodes (no admissible subset size; the official code raises).  The
    same estimator scores RReg's candidate graphs (:func:`pai.pruners.expanders.best_expander`).  Vectorised: one sort of
    ``samples x n`` random keys and one sparse product per side; seeded (numpy Generator), so
    repeatable; the official code loops over samples in Python with unseeded ``random``.
    """
    if reduce not in ("mean", "min"):
        raise ValueError(f"reduce must be 'mean' or 'min', got {reduce!r}")
    S = as_csr(B)
    S.data = (S.data != 0).astype(np.float64)
    rng = numpy_generator(seed)
    ratios = []
    for A in (S, S.T.tocsr()):  # left side, then right side
        n = A.shape[0]
        hi = math.ceil(n / 2) - 1
        if hi < 1:
            return float("nan")
        k = rng.integers(1, hi + 1, size=samples)
        keys = rng.random((samples, n))
        # row s keeps its k[s] smallest keys: a uniform k-subset (numpy's sort is ~10x torch's here)
        thr = np.take_along_axis(np.sort(keys, axis=1), (k - 1)[:, None], axis=1)
        chosen = (keys <= thr).astype(np.float64)
        reached = np.count_nonzero(A.T @ chosen.T, axis=0)  # |N(S)| per sample
        ratios.append(reached / k)
    if reduce == "min":
        return float(min(r.min() for r in ratios))
    return float(((ratios[0] + ratios[1]) / 2).mean())


__all__ = [  # the spectral API in one place (the Ramanujan ones are re-exported from their module)
    "Matrix", "as_csr", "top_singular_values", "top_sv_csr", "spectral_gap", "vertex_expansion",
    "ramanujan_gap", "iterative_ramanujan_gap", "weighted_spectral_gap", "iterative_weighted_spectral_gap", "narc",
    "FullSpectrum", "full_spectrum", "full_spectrum_norm", "full_spectrum_distance", "moving_distance",
    "network_full_spectrum",
    "full_spectrum_summary",
]
