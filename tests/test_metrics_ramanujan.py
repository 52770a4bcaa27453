"""pai.metrics.ramanujan / fullspectrum against a literal re-statement of the two official codes.

The reference below rebuilds the (n_in + n_out)^2 adjacency, drops isolated nodes, reads
mu_0 / mu_hat as the 1st / 3rd largest |eigenvalue| (as ``eigsh(k=3)`` does in both codes) and
loops over degree classes -- slow and literal, so the fast Gram/class code can be checked on it.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from pai.metrics import ramanujan as R
from pai.metrics.bipartite import biadjacency
from pai.metrics.fullspectrum import (FullSpectrum, full_spectrum, full_spectrum_distance, full_spectrum_norm,
                                      full_spectrum_summary, network_full_spectrum)

torch.set_num_threads(1)
NAN = float("nan")


def _ref_graph(B):
    B = B[B.sum(1) > 0][:, B.sum(0) > 0]
    nl, nr = B.shape
    if B.size == 0:
        return B, 0.0, 0.0, (0.0, 0.0)
    A = np.zeros((nl + nr, nl + nr))
    A[:nl, nl:], A[nl:, :nl] = B, B.T
    ev = np.sort(np.abs(np.linalg.eigvalsh(A)))[::-1]
    e = (B != 0).sum()
    return B, e / nl, e / nr, (ev[0], ev[2] if len(ev) > 2 else 0.0)


def ref_layer(B_bin, B_abs, rule):
    """(Delta_r full, lambda full, iterative Delta_r, iterative lambda) as the official loops do."""
    def ok(dl, dr, whole):
        if rule == "iclr":
            return dl >= 3 and dr >= 3
        return (dr >= 3 and dl > 1) if whole else (dl >= 3 and dr > 1)

    Bb, dl, dr, (_, mu) = _ref_graph(B_bin)
    valid = ok(dl, dr, True)
    ub = math.sqrt(dl - 1) + math.sqrt(dr - 1) if valid else NAN
    gap = ((ub - mu) / ub if rule == "iclr" else ub - mu) if valid else NAN
    _, _, _, (w0, w1) = _ref_graph(B_abs)
    lam = (w0 - w1) if valid else NAN
    deg = B_bin.sum(1)
    gaps, lams = [], []
    for d in np.unique(deg):
        rows = deg == d
        if d == 0 or rows.sum() < (3 if rule == "iclr" else 2):
            continue
        sb, sdl, sdr, (_, smu) = _ref_graph(B_bin[rows])
        if not ok(sdl, sdr, False):
            continue
        sub_ub = math.sqrt(sdl - 1) + math.sqrt(sdr - 1)
        _, _, _, (sw0, sw1) = _ref_graph(B_abs[rows])
        c = max(sb.shape) / (sum(sb.shape) - 1) if rule == "neurips" else 1.0
        gaps.append(c * ((sub_ub - smu) / sub_ub if rule == "iclr" else sub_ub - smu))
        lams.append(c * (sw0 - sw1))
    return gap, lam, (np.mean(gaps) if gaps else NAN), (np.mean(lams) if lams else NAN)


def _layer(shape, density, seed):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(shape, generator=g, dtype=torch.float64)
    m = torch.rand(shape, generator=g) < density
    return w, m


CASES = [((32, 16, 3, 3), 0.05, 0), ((32, 16, 3, 3), 0.2, 1), ((24, 40), 0.15, 2), ((16, 8, 3, 3), 0.5, 3),
         ((64, 8, 1, 1), 0.4, 4), ((10, 30), 0.05, 5)]


@pytest.mark.parametrize("shape,density,seed", CASES)
@pytest.mark.parametrize("rule", ["iclr", "neurips"])
def test_matches_literal_official_computation(shape, density, seed, rule):
    w, m = _layer(shape, density, seed)
    Bb = biadjacency(w, m, "unrolled").numpy().astype(float)
    Ba = biadjacency(w, m, "unrolled", weighted=True).numpy()
    ref = ref_layer(Bb, Ba, rule)
    got = (R.ramanujan_gap(Bb, rule=rule, normalized=(rule == "iclr")),
           R.weighted_spectral_gap(Ba, rule=rule, B_bin=Bb),
           R.iterative_ramanujan_gap(Bb, rule=rule),
           R.iterative_weighted_spectral_gap(Ba, Bb, rule=rule))
    for a, b in zip(got, ref):
        assert (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b, rel=1e-8, abs=1e-9), (got, ref)
    if rule == "neurips":
        fs = full_spectrum(w, m)
        assert tuple(fs) == pytest.approx(tuple(0.0 if math.isnan(r) else r for r in ref), rel=1e-8, abs=1e-9)


def test_invalid_layers_are_nan_never_zero():
    star = np.zeros((20, 5))
    star[:, 0] = 1  # left degree 1: d_L < 3
    assert math.isnan(R.ramanujan_gap(star))
    assert math.isnan(R.iterative_ramanujan_gap(star))
    assert math.isnan(R.narc(star))
    assert math.isnan(R.ramanujan_gap(np.zeros((4, 4))))
    assert math.isnan(R.ramanujan_gap(np.ones((2, 9))))  # < 3 nodes on a side
    assert math.isnan(R.weighted_spectral_gap(star, rule="iclr"))
    assert R.weighted_spectral_gap(star) == pytest.approx(math.sqrt(20))  # no rule: always defined
    fs = full_spectrum(torch.zeros(4, 6), torch.zeros(4, 6, dtype=torch.bool))
    assert tuple(fs) == (0.0, 0.0, 0.0, 0.0)
    assert all(math.isnan(v) for v in full_spectrum(torch.zeros(4, 6), torch.zeros(4, 6, dtype=torch.bool),
                                                     invalid=NAN))


def test_iclr_narc_fixture_and_rule_differences():
    """NaRC of the dense 27x64 VGG stem is -0.976 in the ICLR CSVs (E_dir = 2|E| quirk)."""
    assert R.narc(np.ones((27, 64))) == pytest.approx((math.sqrt(27 * 64) - 1728) / 1728, rel=1e-9)
    assert R.narc(np.ones((27, 64))) == pytest.approx(-0.976, abs=1e-3)
    B = np.zeros((6, 4))
    B[:, :2] = 1  # d_L = 2 (< 3): iclr invalid; outputs used have degree 6, inputs 2 > 1: neurips valid
    assert math.isnan(R.ramanujan_gap(B, rule="iclr"))
    assert not math.isnan(R.ramanujan_gap(B, rule="neurips", normalized=False))
    with pytest.raises(ValueError, match="rule"):
        R.ramanujan_gap(B, rule="cvpr")


def test_spectral_bound_variant():
    B = np.ones((9, 9))  # mu_0 = 9, mu_hat = 0: Delta_s = 2 sqrt(8)
    assert R.ramanujan_gap(B, normalized=False, bound="spectral") == pytest.approx(2 * math.sqrt(8))
    with pytest.raises(ValueError, match="bound"):
        R.ramanujan_gap(B, bound="other")


def test_norm_distance_and_summary():
    a, b = FullSpectrum(3.0, 4.0, 0.0, 0.0), FullSpectrum(0.0, 0.0, 0.0, 1.0)
    assert full_spectrum_norm(a) == 5.0 == a.norm()
    assert full_spectrum_distance(a, b) == pytest.approx(math.sqrt(9 + 16 + 1))
    net1, net2 = {"x": a, "y": b}, {"x": b, "y": b}
    assert full_spectrum_distance(net1, net2) == pytest.approx(math.sqrt(26))
    assert full_spectrum_norm(net1) == pytest.approx(3.0)  # mean of 5 and 1
    summary = full_spectrum_summary(net1)
    assert summary["delta_r"] == 1.5 and summary["norm"] == 3.0
    with pytest.raises(ValueError):
        full_spectrum_distance(net1, {"x": a})


def test_network_full_spectrum_and_distance_at_init_vs_trained():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 16, 3), nn.ReLU(), nn.Flatten(), nn.Linear(16 * 4 * 4, 10))
    mask = {"0.weight": torch.rand(16, 3, 3, 3) < 0.5, "3.weight": torch.rand(10, 256) < 0.3}
    c0 = network_full_spectrum(net, mask)
    assert list(c0) == ["0.weight", "3.weight"] and all(isinstance(c, FullSpectrum) for c in c0.values())
    theta0 = {k: p.detach().clone() for k, p in net.named_parameters() if k in mask}
    with torch.no_grad():
        net[0].weight.mul_(2.0)
    c1 = network_full_spectrum(net, mask)
    anchor = network_full_spectrum(net, mask, weights=theta0)
    assert full_spectrum_distance(c0, anchor) == 0.0
    d = full_spectrum_distance(c1, anchor)
    assert d > 0 and c1["0.weight"].delta_r == c0["0.weight"].delta_r  # structure does not move
    with pytest.raises(ValueError, match="3.weight"):
        network_full_spectrum(net, {"0.weight": mask["0.weight"]})
    with pytest.raises(KeyError, match="nope"):
        network_full_spectrum(net, mask, layers=["nope"])
