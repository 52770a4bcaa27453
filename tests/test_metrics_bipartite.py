"""pai.metrics.bipartite: the two layer encodings, isolated nodes, the sparse form."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from pai.metrics.bipartite import biadjacency, degrees, drop_isolated, unrolled_csr

torch.set_num_threads(1)


def _conv(seed=0, shape=(4, 3, 2, 2), density=0.4):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(shape, generator=g, dtype=torch.float64)
    m = torch.rand(shape, generator=g) < density
    return w, m


def test_linear_encodings_agree():
    w, m = _conv(shape=(5, 7))
    for weighted in (False, True):
        a = biadjacency(w, m, "channel", weighted)
        b = biadjacency(w, m, "unrolled", weighted)
        assert a.shape == (7, 5) and torch.equal(a, b)
    assert torch.equal(biadjacency(w, m, "unrolled"), m.T)
    assert torch.allclose(biadjacency(w, m, "unrolled", weighted=True), (w * m).abs().T)


def test_conv_unrolled_is_channel_major_taps():
    w, m = _conv()
    B = biadjacency(w, m, "unrolled")
    assert B.shape == (3 * 2 * 2, 4) and B.dtype == torch.bool
    c, u, v, o = 2, 1, 0, 3
    assert B[c * 4 + u * 2 + v, o] == m[o, c, u, v]
    assert int(B.sum()) == int(m.sum())  # one edge per kept weight


def test_conv_channel_edge_is_nonempty_kernel_and_weight_is_l1():
    w, m = _conv()
    B = biadjacency(w, m, "channel")
    W = biadjacency(w, m, "channel", weighted=True)
    assert B.shape == (3, 4)
    for i in range(3):
        for o in range(4):
            assert bool(B[i, o]) == bool(m[o, i].any())
            assert W[i, o].item() == pytest.approx((w[o, i] * m[o, i]).abs().sum().item())


def test_mask_defaults_to_nonzero_weights_and_bad_input():
    w, m = _conv()
    assert torch.equal(biadjacency(w * m, None, "unrolled"), m.reshape(4, -1).T)
    with pytest.raises(ValueError, match="encoding"):
        biadjacency(w, m, "rolled")
    with pytest.raises(ValueError, match="shape"):
        biadjacency(w, m[:2])
    with pytest.raises(ValueError, match="weighted"):
        biadjacency(None, m, weighted=True)


def test_drop_isolated_and_degrees():
    B = torch.tensor([[1, 0, 0], [0, 0, 0], [1, 0, 1]], dtype=torch.bool)
    sub, rows, cols = drop_isolated(B)
    assert rows.tolist() == [0, 2] and cols.tolist() == [0, 2]
    assert sub.tolist() == [[True, False], [True, True]]
    left, right = degrees(B)
    assert left.tolist() == [1, 0, 2] and right.tolist() == [2, 0, 1]
    sub_sp, rows_sp, _ = drop_isolated(unrolled_csr(None, B.T))
    assert rows_sp.tolist() == [0, 2] and np.array_equal(sub_sp.toarray(), sub.numpy().astype(float))


def test_unrolled_csr_matches_dense_and_keeps_zero_weights_as_edges():
    w, m = _conv(seed=3, shape=(6, 5, 3, 3), density=0.3)
    w = w.clone()
    idx = torch.nonzero(m)[:2]
    w[tuple(idx.T)] = 0.0  # kept but exactly zero
    S = unrolled_csr(w, m)
    assert S.shape == (45, 6) and S.nnz == int(m.sum())
    assert np.allclose(S.toarray(), biadjacency(w, m, "unrolled", weighted=True).numpy())
    S_ch = unrolled_csr(w, m, encoding="channel")
    assert np.allclose(S_ch.toarray(), biadjacency(w, m, "channel", weighted=True).numpy())
