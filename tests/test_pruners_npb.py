"""NPB (Pham et al., NeurIPS 2023): the per-layer objective, the fast solver against the exact MILP,
the path-counting forward, and the pruner's budgets, determinism and structure."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from pai.graph import build_graph
from pai.masks import masks_equal
from pai.models import create_model
from pai.pruners import get, prune
from pai.pruners.allocation import layer_budgets
from pai.pruners.npb import PathNet
from pai.pruners.npb_solver import (fix_budget, materialize, max_path, npb_objective, refill, solve_fast,
                                   solve_milp)

torch.set_num_threads(1)


class TinyCNN(nn.Module):
    """conv-BN-relu, functional sum-able avg pool, conv, mean over H,W, linear."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 12, 3, padding=1, bias=False)
        self.fc = nn.Linear(12, 5)
        self.input_shape = (3, 8, 8)

    def forward(self, x):
        x = F.avg_pool2d(F.relu(self.bn1(self.conv1(x))), 2)
        return self.fc(F.relu(self.conv2(x)).mean((2, 3)))


class PoolNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(2)
        self.fc = nn.Linear(8, 3)
        self.input_shape = (1, 4, 4)

    def forward(self, x):
        return self.fc(torch.flatten(F.avg_pool2d(self.bn(self.conv(x)), 2), 1))


def _kept(mask):
    return {k: int(v.sum()) for k, v in mask.items()}


# ---- the objective and the solvers ---------------------------------------------------------

def test_objective_by_hand():
    M = np.array([[1, 0], [0, 2]])
    P = np.array([2.0, 1.0])
    # rows [1, 2], cols [1, 2]: A = 4/4; maxpath = 3 weights on the top row = 6; B = 4/6; R = 2/3
    assert npb_objective(M, P, 2, 3, 0.5, 1.0) == pytest.approx(0.5 + 0.5 * 4 / 6 + 2 / 3)
    # official quirk: less than one full channel of budget -> maxpath sums all channels (12 + 6)
    assert max_path(P, 2, 2, 3, official=True) == pytest.approx(18.0)
    assert npb_objective(M, P, 2, 3, 0.5, 1.0, official_maxpath=True) == pytest.approx(
        0.5 + 0.5 * 4 / 18 + 2 / 3)
    # paper node term: a row/column counts only if it carries paths (row 1 has P = 0)
    assert npb_objective(M, np.array([2.0, 0.0]), 2, 3, 1.0, 0.0, node_term="paper") == pytest.approx(2 / 4)


def test_official_normaliser_when_min_out_node_is_zero():
    # optimize_layerwise: min_out_node = int(n / (c_out K)), remainder = n - min_out_node c_out K,
    # max_path = sum(sort(P)[-min_out_node:]) c_out K + remainder * sort(P)[-(min_out_node + 1)].
    # P = [1, 2, 3], c_out = 2, K = 2 (4 weights fill a channel):
    P = np.array([2.0, 3.0, 1.0])
    # n = 3: min_out_node = 0, and sort(P)[-0:] is all of P: (1+2+3)*4 + 3*3 = 33; the formula's
    # meaning, the best sum P_i x_i with 3 weights, is 3*3 = 9
    assert max_path(P, 2, 2, 3, official=True) == 33.0
    assert max_path(P, 2, 2, 3) == 9.0
    # n = 6: min_out_node = 1, remainder 2: 3*4 + 2*2 = 16 for both
    assert max_path(P, 2, 2, 6, official=True) == max_path(P, 2, 2, 6) == 16.0
    # n = 12 fills every channel: the official sort(P)[-4] raises IndexError and the code falls back
    # to the full sum, 6*4 = 24
    assert max_path(P, 2, 2, 12, official=True) == max_path(P, 2, 2, 12) == 24.0
    # the path term of 3 weights on the P = 3 channel: 9/33 officially, 9/9 = 1 with path_norm="max"
    M = np.array([[0, 0], [2, 1], [0, 0]])
    assert npb_objective(M, P, 2, 3, 0.0, 0.0, official_maxpath=True) == pytest.approx(9 / 33)
    assert npb_objective(M, P, 2, 3, 0.0, 0.0) == pytest.approx(1.0)


def _random_instance(rng):
    c_in, c_out = (int(v) for v in rng.integers(1, 13, 2))
    K = int(rng.choice([1, 9]))  # 1x1 and 3x3 kernels
    n = int(round(float(rng.choice([0.01, 0.05, 0.1, 0.3, 0.7])) * c_in * c_out * K))
    kind = rng.integers(3)
    P = (rng.random(c_in) if kind == 0 else np.exp(rng.normal(0, 3, c_in)) if kind == 1
         else rng.integers(0, 4, c_in).astype(float))  # ties and dead channels
    alpha, beta = [(0.01, 1.0), (0.99, 0.001), (0.5, 0.0), (0.3, 0.3)][rng.integers(4)]
    node_term = "count" if rng.random() < 0.75 else "paper"
    if node_term == "paper":  # path counts of the all-ones forward are integers
        P = np.round(P * 5)
    return P, c_out, K, n, alpha, beta, node_term


def test_fast_solver_matches_milp_on_small_layers():
    rng = np.random.default_rng(0)
    for _ in range(150):
        P, c_out, K, n, alpha, beta, node_term = _random_instance(rng)
        kw = dict(node_term=node_term, official_maxpath=bool(rng.random() < 0.2))
        Mf = solve_fast(P, c_out, K, n, alpha, beta, **kw)
        Mm = solve_milp(P, c_out, K, n, alpha, beta, mip_rel_gap=1e-9, **kw)
        assert Mf.sum() == n == Mm.sum() and Mf.min() >= 0 and Mf.max(initial=0) <= K
        f = npb_objective(Mf, P, K, n, alpha, beta, **kw)
        m = npb_objective(Mm, P, K, n, alpha, beta, **kw)
        assert f >= 0.99 * m
        assert f >= m - 1e-9  # in fact exact
        assert f <= m + 1e-6  # HiGHS stops within its feasibility/gap tolerances


def test_fast_solver_structure():
    # beta = 1, budget below one weight per kernel: one weight per kernel on the highest-P rows,
    # every output channel covered
    P = np.array([1.0, 5.0, 3.0, 0.0])
    M = solve_fast(P, 6, 9, 10, 0.01, 1.0)
    assert M.max() == 1 and M.sum() == 10
    assert M[1].sum() == 6 and M[2].sum() == 4 and M[[0, 3]].sum() == 0
    assert (M.sum(0) >= 1).all()
    # a dominant row: stacking weights on it beats opening kernels on a nearly dead row
    M = solve_fast(np.array([1.0, 1e-3]), 3, 9, 54, 0.01, 1.0)
    assert M[0].sum() == 27 and M[1].sum() == 27  # fills the top row's 27 slots, then row 2
    M = solve_fast(np.array([1.0, 1e-3]), 3, 9, 30, 0.01, 1.0)
    assert M[0].sum() == 27 and M[1].sum() == 3


def test_fix_budget_fills_and_trims():
    P = np.array([3.0, 1.0])
    M = fix_budget(np.array([[0.9999, 0.0], [0.0, 0.0]]), P, 3, 3)
    assert M.sum() == 3 and M[0, 1] >= 1  # rounded, then empty kernels of the top row first
    M = fix_budget(np.array([[3.0, 3.0], [3.0, 3.0]]), P, 3, 10)
    assert M.sum() == 10 and M[0].sum() == 6


# ---- the path-counting forward and materialisation -----------------------------------------

def test_pathnet_counts_paths_with_bn_bypassed_and_sum_pool():
    net = PoolNet()
    graph = build_graph(net)
    # conv 3x3 pad 1 on ones(4x4): corners 4, edges 6, inside 9; each 2x2 window sums to 25
    paths = PathNet(net, net.input_shape)
    assert paths.input_paths(graph[0]).tolist() == [16.0]
    assert paths.input_paths(graph[1]).tolist() == [25.0] * 8
    mask = torch.zeros(2, 1, 3, 3, dtype=torch.bool)
    mask[0, 0, 1, 1] = True  # only the centre tap of channel 0: one path per pixel
    paths.set_mask(graph[0], mask)
    assert paths.input_paths(graph[1]).tolist() == [4.0] * 4 + [0.0] * 4


def test_pathnet_mean_and_bias():
    net = TinyCNN()
    graph = build_graph(net)
    x1 = F.conv2d(torch.ones(1, 3, 8, 8), torch.ones(8, 3, 3, 3), padding=1)  # BN bypassed
    x2 = F.avg_pool2d(x1, 2, divisor_override=1)  # the pool sums
    x3 = F.conv2d(x2, torch.ones(12, 8, 3, 3), padding=1)
    clean = PathNet(net, net.input_shape)
    assert clean.input_paths(graph[1]).tolist() == x2.sum((0, 2, 3)).tolist() == [1452.0] * 8
    assert clean.input_paths(graph[2]).tolist() == x3.sum((0, 2, 3)).tolist()  # mean -> sum
    faithful = PathNet(net, net.input_shape, bias=1.0)  # conv1's bias adds one path per pixel
    assert (faithful.input_paths(graph[2]) > clean.input_paths(graph[2])).all()


def test_materialize_counts_random_and_magnitude():
    g = torch.Generator().manual_seed(0)
    M = np.array([[0, 9], [4, 1]])  # (c_in=2, c_out=2)
    mask = materialize(M, (2, 2, 3, 3), g)
    assert mask.reshape(2, 2, 9).sum(-1).T.tolist() == M.tolist()
    w = torch.randn(2, 2, 3, 3)
    mask = materialize(M, (2, 2, 3, 3), g, weight=w).reshape(2, 2, 9)
    a = w.abs().reshape(2, 2, 9)
    kept, cut = a[0, 1][mask[0, 1]], a[0, 1][~mask[0, 1]]
    assert kept.numel() == 4 and kept.min() >= cut.max()
    assert materialize(np.array([[1, 0, 1]]), (3, 1), g).reshape(-1).tolist() == [True, False, True]


def test_refill_moves_dead_weights_to_the_most_effective_live_group():
    fc = build_graph(PoolNet())[1]  # linear 8 -> 3: groups are input features
    live = torch.zeros(3, 8, dtype=torch.bool)
    live[:, :4] = True  # inputs 4..7 carry no path
    mask = torch.zeros(3, 8, dtype=torch.bool)
    mask[0, 2] = mask[1, 2] = mask[0, 1] = True  # effective: input 2 twice, input 1 once
    mask[0, 6] = mask[2, 7] = True  # two dead weights
    out = refill(fc, mask, live, torch.Generator().manual_seed(0))
    assert int(out.sum()) == 5 and not (out & ~live).any()
    assert out[:, 2].all()  # the group with most effective weights is filled first
    assert out[:, 1].sum() == 2  # then the next one, partly
    # no live room left: the dead weights stay (the count never changes)
    full = live.clone()
    full[0, 6] = True
    out = refill(fc, full, live, torch.Generator().manual_seed(0))
    assert torch.equal(out, full)


def _effective(model, mask):
    graph = build_graph(model)
    paths = PathNet(model, graph.input_shape)
    for layer in graph:
        paths.set_mask(layer, mask[layer.name])
    return sum(int((v & mask[k]).sum()) for k, v in paths.live(list(graph)).items())


OLD_DEFAULTS = dict(path_norm="max", path_bias=0.0, linear_beta=None, max_p=None, chunk_size=None, solver="fast")


@pytest.mark.parametrize("options", [{}, OLD_DEFAULTS])
def test_finetune_puts_the_budget_on_paths(options):
    model = create_model("resnet20", 10, 3, 32)
    budgets = layer_budgets(model, 0.01)
    total = sum(budgets.values())
    bare = prune(model, "npb", 0.01, seed=0, finetune=False, **options)
    tuned = prune(model, "npb", 0.01, seed=0, **options)
    assert _kept(bare) == budgets == _kept(tuned)
    assert _effective(model, bare) < 0.9 * total  # greedy Alg. 1 leaves dead ends (86% / 38% effective)
    # liveness recomputed layer by layer: the official defaults end with no dead weight (measured 0
    # of 2,709), the path-maximising options with a handful (5) where a layer runs out of live room
    assert _effective(model, tuned) == total if not options else _effective(model, tuned) > 0.99 * total


# ---- the pruner ------------------------------------------------------------------------------

@pytest.mark.parametrize("name,shape,density", [("resnet20", (3, 32), 0.01), ("resnet20", (3, 32), 0.1),
                                                ("lenet-300-100", (1, 28), 0.05), ("lenet5", (1, 28), 0.02)])
def test_exact_budgets_and_covered_outputs(name, shape, density):
    torch.manual_seed(0)
    model = create_model(name, 10, *shape)
    budgets = layer_budgets(model, density)
    assert _kept(prune(model, "npb", density, seed=0, solver="fast")) == budgets
    # bare Alg. 1: the node term covers every output channel where the budget allows (the fine-tune
    # pass may then empty channels that lead nowhere)
    mask = prune(model, "npb", density, seed=0, finetune=False, solver="fast")
    assert _kept(mask) == budgets
    for k, m in mask.items():
        if budgets[k] >= m.shape[0]:
            assert m.reshape(m.shape[0], -1).any(1).all(), k


def test_tiny_cnn_options_and_determinism():
    net = TinyCNN()
    budgets = layer_budgets(net, 0.2)
    a = prune(net, "npb", 0.2, seed=3)
    assert masks_equal(a, prune(net, "npb", 0.2, seed=3))
    assert not masks_equal(a, prune(net, "npb", 0.2, seed=4))  # positions inside kernels are drawn
    for opts in (dict(solver="milp"), dict(solver="fast"), dict(chunk_size=4, chunk_above=0),
                 dict(node_term="paper"), OLD_DEFAULTS, dict(path_norm="max"), dict(path_bias=0.0),
                 dict(linear_beta=None), dict(scale_weight=True), dict(max_p=2, max_p_decay=True),
                 dict(max_p=None)):
        stats = {}
        m = prune(net, "npb", 0.2, seed=0, stats=stats, **opts)
        assert _kept(m) == budgets, opts
        assert set(stats) == set(budgets)
    stats = {}
    prune(net, "npb", 0.2, seed=0, stats=stats, chunk_size=4, chunk_above=0)
    assert stats["conv2.weight"]["chunks"] == 3 and stats["conv1.weight"]["chunks"] == 1  # first: never


@pytest.mark.parametrize("name,shape,density", [("resnet20", (3, 32), 0.01), ("resnet20", (3, 32), 0.1),
                                                ("lenet5", (1, 28), 0.05)])
def test_fast_solver_reaches_the_milp_optimum_on_every_real_layer(name, shape, density):
    # every chunk problem the default pruner solved (its own P_in, budget, K and beta from a real
    # network: a different P_in per case) is solved again by both solvers: the same optimal value
    torch.manual_seed(0)
    model = create_model(name, 10, *shape)
    stats = {}
    prune(model, "npb", density, seed=0, stats=stats)
    problems = [q for v in stats.values() for q in v["problems"] if q["P"].size * q["c_out"] <= 2048]
    assert len(problems) >= 4 and len({q["P"].tobytes() for q in problems}) >= 4
    for q in problems:
        kw = dict(node_term=q["node_term"], official_maxpath=q["official_maxpath"])
        args = (q["P"], q["c_out"], q["K"], q["n"], q["alpha"], q["beta"])
        f = npb_objective(solve_fast(*args, **kw), q["P"], q["K"], q["n"], q["alpha"], q["beta"], **kw)
        m = npb_objective(solve_milp(*args, mip_rel_gap=1e-9, **kw), q["P"], q["K"], q["n"], q["alpha"],
                          q["beta"], **kw)
        # never worse than HiGHS, and within HiGHS's own integrality/feasibility tolerance of it (on
        # one ResNet-20 @ 0.1 chunk HiGHS stops 3e-6 below the greedy's value)
        assert m - 1e-9 <= f <= m + 1e-5 * abs(m)


def test_auto_solver_uses_highs_on_resnet20_and_fast_on_wide_chunks():
    stats = {}
    prune(create_model("resnet20", 10, 3, 32), "npb", 0.01, seed=0, stats=stats)
    assert {q["solver"] for v in stats.values() for q in v["problems"]} == {"milp"}
    stats = {}
    prune(create_model("lenet5", 10, 1, 28), "npb", 0.05, seed=0, stats=stats)
    used = {k: {q["solver"] for q in v["problems"]} for k, v in stats.items()}
    assert used["fc1.weight"] == {"fast"} and used["conv2.weight"] == {"milp"}  # 400x10 vs 16x6 kernels


def test_resnet20_max_p_schedule_and_shortcuts():
    model = create_model("resnet20", 10, 3, 32)
    stats = {}
    prune(model, "npb", 0.05, seed=0, stats=stats, max_p=9, max_p_decay=True, solver="fast")
    graph = build_graph(model)
    ks = [stats[l.name]["K"] for l in graph]
    # official schedule: 9 until the first shortcut, then 7, then 5; shortcuts and fc have K = 1
    assert ks == [9] * 9 + [1] + [7] * 6 + [1] + [5] * 4 + [1]
    # nets without shortcuts (official VGG rule): -2 at every resolution drop after the first
    stats = {}
    prune(create_model("vgg11", 10, 1, 28), "npb", 0.05, seed=0, stats=stats, max_p=9, max_p_decay=True,
          solver="fast")
    assert [v["K"] for v in stats.values()] == [9, 9, 7, 7, 5, 5, 3, 3, 1]


def test_model_unchanged_and_errors():
    net = TinyCNN().train()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    threads = torch.get_num_threads()
    get("npb")(net, 0.1, seed=0, threads=threads + 1)  # the raw pruner, without prune()'s wrapper
    assert net.training and all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert torch.get_num_threads() == threads
    with pytest.raises(ValueError, match="auto, milp, fast"):
        prune(net, "npb", 0.1, solver="cvxpy")
    with pytest.raises(ValueError, match="count, paper"):
        prune(net, "npb", 0.1, node_term="weighted")
    with pytest.raises(ValueError, match="official, max"):
        prune(net, "npb", 0.1, path_norm="paper")
    with pytest.raises(ValueError, match="max_p"):
        prune(net, "npb", 0.1, max_p=0)
    with pytest.raises(ValueError, match="budget"):
        solve_fast(np.ones(2), 2, 1, 5, 0.01, 1.0)
