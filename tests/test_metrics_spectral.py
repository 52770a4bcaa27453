"""pai.metrics.spectral / linalg: singular values, gaps and expansion against closed forms."""
from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from pai.metrics import linalg
from pai.metrics.spectral import (ramanujan_gap, spectral_gap, top_singular_values, vertex_expansion,
                                  weighted_spectral_gap)

torch.set_num_threads(1)


def regular_bipartite(n: int, d: int, seed: int = 0) -> np.ndarray:
    """Simple d-regular bipartite graph on n + n nodes: union of d disjoint random perfect matchings."""
    rng = np.random.default_rng(seed)
    B = np.zeros((n, n))
    for _ in range(d):
        while True:  # reject a matching that reuses an edge, so the graph stays simple
            perm = rng.permutation(n)
            if not B[np.arange(n), perm].any():
                B[np.arange(n), perm] = 1
                break
    return B


@pytest.mark.parametrize("m,n", [(27, 64), (5, 3), (1, 7), (40, 40)])
def test_complete_bipartite_closed_form(m, n):
    B = torch.ones(m, n, dtype=torch.bool)
    s = top_singular_values(B, k=3)
    assert s[0].item() == pytest.approx(math.sqrt(m * n), rel=1e-12)
    assert s[1].item() == 0.0 and s[2].item() == 0.0
    assert spectral_gap(B) == pytest.approx(math.sqrt(m * n), rel=1e-12)
    assert spectral_gap(B, normalized=True) == pytest.approx(1.0, abs=1e-12)
    if m >= 3 and n >= 3:
        ub = math.sqrt(m - 1) + math.sqrt(n - 1)  # d_L = n, d_R = m
        assert ramanujan_gap(B, normalized=False) == pytest.approx(ub, rel=1e-12)
        assert ramanujan_gap(B, normalized=True) == pytest.approx(1.0, rel=1e-12)


def test_iclr_dense_first_layer_fixture():
    """ICLR'23 CSV, dense VGG features.0 (27x64): t1m = 41.569, t2m ~ 0, rm_ub = 13.036."""
    B = torch.ones(27, 64)
    s1, s2 = top_singular_values(B).tolist()
    assert s1 == pytest.approx(41.569, abs=1e-3) and s2 == 0.0
    assert ramanujan_gap(B, normalized=False) == pytest.approx(13.036, abs=1e-3)


@pytest.mark.parametrize("d", [3, 4, 6])
def test_random_regular_bipartite_is_nearly_ramanujan(d):
    B = regular_bipartite(300, d, seed=d)
    s1, s2 = top_singular_values(B).tolist()
    assert s1 == pytest.approx(d, rel=1e-12)
    assert abs(s2 - 2 * math.sqrt(d - 1)) / (2 * math.sqrt(d - 1)) < 0.05
    assert abs(ramanujan_gap(B, normalized=True)) < 0.05  # Delta_r ~ 0
    assert spectral_gap(B, normalized=True) == pytest.approx(1 - s2 / d, rel=1e-9)


@pytest.mark.parametrize("shape,density", [((60, 20), 0.2), ((20, 60), 0.1), ((300, 120), 0.03), ((7, 3), 0.6)])
def test_singular_values_match_svd(shape, density):
    g = torch.Generator().manual_seed(1)
    B = (torch.rand(shape, generator=g) < density) * torch.rand(shape, generator=g, dtype=torch.float64)
    ref = torch.linalg.svdvals(B)[:3]
    for inp in (B, B.numpy(), sp.csr_matrix(B.numpy())):
        assert torch.allclose(top_singular_values(inp, k=3), ref, rtol=1e-9, atol=1e-9)
    assert weighted_spectral_gap(B) == pytest.approx((ref[0] - ref[1]).item(), rel=1e-9)


def test_huge_layer_route_agrees(monkeypatch):
    """Past DENSE_LIMIT, ARPACK svds on B itself gives the dense answer, deterministically."""
    B = sp.random(400, 150, density=0.05, random_state=2, format="csr")
    ref = np.linalg.svd(B.toarray(), compute_uv=False)[:2]
    monkeypatch.setattr(linalg, "DENSE_LIMIT", 50)
    got = linalg.top_sv_csr(B, 2)
    assert np.allclose(got, ref, rtol=1e-8) and np.array_equal(got, linalg.top_sv_csr(B, 2))


def test_repeated_top_singular_value_is_seen():
    """Two identical components: sigma_2 = sigma_1 (a single-vector Krylov method could miss it)."""
    block = regular_bipartite(40, 3, seed=5)
    B = sp.block_diag([block, block]).tocsr()
    s1, s2 = linalg.top_sv_csr(B, 2)
    assert s1 == pytest.approx(3.0) and s2 == pytest.approx(3.0)


def test_empty_and_tiny_graphs():
    assert top_singular_values(torch.zeros(5, 4), k=2).tolist() == [0.0, 0.0]
    assert top_singular_values(torch.zeros(0, 4), k=2).tolist() == [0.0, 0.0]
    assert math.isnan(spectral_gap(torch.zeros(3, 3), normalized=True))
    assert top_singular_values(torch.tensor([[2.0]]), k=2).tolist() == [2.0, 0.0]
    with pytest.raises(ValueError):
        top_singular_values(torch.ones(3), k=2)


def test_vertex_expansion_closed_forms_and_determinism():
    perfect_matching = np.eye(50)
    assert vertex_expansion(perfect_matching, samples=200, seed=0) == 1.0
    assert vertex_expansion(perfect_matching, samples=200, seed=0, reduce="min") == 1.0
    K = np.ones((10, 6))  # any S on the left reaches all 6, any S on the right all 10
    exp_l = np.mean(6 / np.arange(1, 5))  # k_L ~ U{1..ceil(10/2)-1}
    exp_r = np.mean(10 / np.arange(1, 3))  # k_R ~ U{1..ceil(6/2)-1}
    est = vertex_expansion(K, samples=20000, seed=1)
    assert est == pytest.approx((exp_l + exp_r) / 2, rel=0.02)
    assert vertex_expansion(K, samples=100, seed=3) == vertex_expansion(K, samples=100, seed=3)
    assert vertex_expansion(K, samples=100, seed=3) != vertex_expansion(K, samples=100, seed=4)
    assert math.isnan(vertex_expansion(np.ones((2, 5))))
    with pytest.raises(ValueError, match="reduce"):
        vertex_expansion(K, reduce="max")
