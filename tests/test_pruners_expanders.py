"""X-Net (ECCV 2018), RReg and Random (CVPRW 2023): regular channel graphs, whole kernels, the official
first/last-layer rule shared by the three methods, the official RReg graph and expansion estimate, the
exact-degree and fixed-count options, the degree-density bound."""
import pytest
import torch

from pai.masks import num_kept, num_total, prunable_parameters
from pai.models import create_model
from pai.pruners import prune
from pai.pruners.allocation import target_layer_densities
from pai.metrics import vertex_expansion
from pai.pruners.expanders import (_layer_generator, biregular, candidate_seed, configuration_graph, dense_layer_rule,
                                   simple_bipartite)
from pai.utils.seed import torch_generator

SHAPES = {"lenet-300-100": (1, 28), "lenet5": (1, 28), "resnet20": (3, 32), "vgg16": (3, 32)}


def model_of(name):
    torch.manual_seed(0)
    c, s = SHAPES[name]
    return create_model(name, num_classes=10, in_channels=c, image_size=s)


ALL_SPARSE = {"dense_first": False, "dense_last": False}  # the graph rules on every layer


def channel_graph(m: torch.Tensor) -> torch.Tensor:
    """(in x out) biadjacency of a mask; asserts each kernel is fully kept or fully pruned."""
    k = m.reshape(m.shape[0], m.shape[1], -1)
    assert torch.equal(k.all(-1), k.any(-1)), "a kernel is partly kept"
    return k.any(-1).t()


@pytest.mark.parametrize("name", ["resnet20", "lenet5"])
def test_xnet_is_left_regular(name):
    mask = prune(model_of(name), "xnet", 0.1, seed=0, degree=3, **ALL_SPARSE)
    for k, m in mask.items():
        adj = channel_graph(m)
        assert (adj.sum(1) == min(3, adj.shape[1])).all(), k


def test_xnet_smaller_side_variant():
    mask = prune(model_of("lenet5"), "xnet", 0.1, seed=0, degree=4, variant="smaller_side", **ALL_SPARSE)
    for k, m in mask.items():
        adj = channel_graph(m)
        n_in, n_out = adj.shape  # the smaller side (inputs on a tie) is regular
        if n_in > n_out:
            assert (adj.sum(0) == min(4, n_in)).all(), k
        else:
            assert (adj.sum(1) == min(4, n_out)).all(), k
    with pytest.raises(ValueError, match="variant"):
        prune(model_of("lenet5"), "xnet", 0.1, seed=0, variant="left")


@pytest.mark.parametrize("name,degree", [("resnet20", 3), ("vgg16", 3), ("lenet5", 5), ("resnet20", 12)])
def test_rreg_degrees_and_simple_graph(name, degree):
    mask = prune(model_of(name), "rreg", 0.1, seed=1, degree=degree, n_graphs=1, exact_degrees=True, **ALL_SPARSE)
    for k, m in mask.items():
        adj = channel_graph(m)
        n_in, n_out = adj.shape
        if degree >= min(n_in, n_out):
            assert adj.all(), k  # saturated: complete bipartite
            continue
        large, small = (adj.sum(1), adj.sum(0)) if n_in > n_out else (adj.sum(0), adj.sum(1))
        assert (large == degree).all(), k
        base = degree * len(large) // len(small)
        assert ((small == base) | (small == base + 1)).all(), k
        assert int(small.sum()) == degree * len(large), k  # no edge lost to a collapsed duplicate


@pytest.mark.parametrize("n_left,n_right,d", [(6, 9, 4), (10, 10, 7), (16, 24, 3), (7, 5, 4)])
def test_biregular_repairs_parallel_edges_exactly(n_left, n_right, d):
    # dense and small: the configuration model draws many parallel edges that must be switched away
    for seed in range(5):
        adj = biregular(n_left, n_right, d, torch_generator(seed), exact=True)
        large = adj.sum(1) if n_left > n_right else adj.sum(0)
        small = adj.sum(0) if n_left > n_right else adj.sum(1)
        assert (large == d).all() and int(small.max() - small.min()) <= 1
        assert int(adj.sum()) == d * max(n_left, n_right)


def test_simple_bipartite_rejects_unequal_sums():
    with pytest.raises(ValueError, match="degree sums"):
        simple_bipartite(torch.tensor([1, 1]), torch.tensor([1]), torch_generator(0))


def test_determinism_and_seeds():
    model = model_of("resnet20")
    for method in ("xnet", "rreg", "random-graph"):
        opts = {"n_graphs": 3} if method == "rreg" else {}
        a, b = prune(model, method, 0.1, seed=4, **opts), prune(model, method, 0.1, seed=4, **opts)
        c = prune(model, method, 0.1, seed=5, **opts)
        assert all(torch.equal(a[k], b[k]) for k in a)
        assert any(not torch.equal(a[k], c[k]) for k in a)


def test_layers_of_one_shape_get_different_graphs():
    mask = prune(model_of("resnet20"), "rreg", 0.1, seed=0, degree=3, n_graphs=2)
    assert not torch.equal(mask["layer1.0.conv1.weight"], mask["layer1.0.conv2.weight"])


@pytest.mark.parametrize("method", ["xnet", "rreg"])
@pytest.mark.parametrize("name,density,allocation", [("vgg16", 0.05, None), ("resnet20", 0.2, "erk"),
                                                     ("lenet5", 0.1, "er"), ("lenet-300-100", 0.03, None)])
def test_density_bound(method, name, density, allocation):
    """Each layer keeps n_reg * d_l kernels, d_l = clamp(round(p_l n_other), 1, n_other): within
    n_reg * max(1/2, 1 - p_l n_other) kernels of p_l N_l (n_reg / 2 unless d_l is raised to 1)."""
    model = model_of(name)
    opts = {"exact_degrees": True, "n_graphs": 1} if method == "rreg" else {}
    mask = prune(model, method, density, seed=0, allocation=allocation, **opts, **ALL_SPARSE)
    params = prunable_parameters(model)
    dens = target_layer_densities(params, density, allocation or "uniform")
    slack = 0
    for k, p in params.items():
        n_out, n_in, kk = p.shape[0], p.shape[1], p[0, 0].numel()
        n_reg, n_other = (n_in, n_out) if method == "xnet" else (max(n_in, n_out), min(n_in, n_out))
        bound = n_reg * kk * max(0.5, 1 - dens[k] * n_other)
        assert abs(int(mask[k].sum()) - dens[k] * p.numel()) <= bound + 1e-6, k
        slack += bound
    assert abs(num_kept(mask) - density * num_total(mask)) <= slack


def test_dense_first_and_last_count_towards_the_budget():
    model = model_of("resnet20")
    mask = prune(model, "rreg", 0.2, seed=0, dense_first=True, dense_last=True, exact_degrees=True, n_graphs=1)
    assert mask["conv1.weight"].all() and mask["fc.weight"].all()
    assert not mask["layer2.1.conv1.weight"].all()
    assert abs(num_kept(mask) / num_total(mask) - 0.2) < 0.01
    with pytest.raises(ValueError, match="too low"):
        prune(model_of("lenet5"), "xnet", 0.001, seed=0, dense_last=True, dense_first=True)


def test_degree_options_are_validated():
    model = model_of("lenet5")
    for bad in (0, -2, 2.5, True):
        with pytest.raises(ValueError, match="degree"):
            prune(model, "rreg", 0.1, seed=0, degree=bad)
    with pytest.raises(ValueError, match="either degree"):
        prune(model, "xnet", 0.1, seed=0, degree=3, allocation="erk")
    with pytest.raises(ValueError, match="allocation"):
        prune(model, "xnet", 0.1, seed=0, allocation="kernel")
    with pytest.raises(ValueError, match="n_graphs"):
        prune(model, "rreg", 0.1, seed=0, n_graphs=0)



# ---- the official vertex-expansion estimate (ExpandersPruning graph_utils.test_expansion) ----
def harmonic(n):
    return sum(1 / k for k in range(1, n + 1))


def test_expansion_of_the_complete_graph_pins_the_official_subset_sizes():
    # complete 12 x 20: |N(S)| is the whole other side, so the estimate is
    # (20 E[1/k_L] + 12 E[1/k_R]) / 2 with k ~ U{1..ceil(n/2)-1}: k_L in 1..5, k_R in 1..9.
    # The floor(n/2) law (k_L in 1..6, k_R in 1..10) would give 5.84 instead of 6.45.
    full = torch.ones(12, 20, dtype=torch.bool)
    expected = (20 * harmonic(5) / 5 + 12 * harmonic(9) / 9) / 2
    assert vertex_expansion(full, 20000, seed=0) == pytest.approx(expected, rel=0.02)
    assert vertex_expansion(full, 20000, seed=0, reduce="min") == pytest.approx(12 / 9)
    sparse = biregular(12, 20, 3, torch_generator(0))
    assert vertex_expansion(sparse, 2000, seed=0) < 0.8 * expected


def test_expansion_of_a_matching_is_one_and_tiny_sides_are_nan():
    assert vertex_expansion(torch.eye(9, dtype=torch.bool), 500, seed=1) == pytest.approx(1.0)
    assert vertex_expansion(torch.ones(2, 9, dtype=torch.bool), 100) != vertex_expansion(
        torch.ones(2, 9, dtype=torch.bool), 100)  # NaN: no admissible |S| on a 2-node side


def test_best_of_k_keeps_the_candidate_with_the_largest_expansion():
    model = model_of("lenet5")
    mask = prune(model, "rreg", 0.1, seed=3, degree=2, n_graphs=6, expansion_samples=100)
    g = _layer_generator(3, 1)  # conv2 (6 -> 16) is layer 1; replay its draws
    cands = [biregular(6, 16, 2, g) for _ in range(6)]
    scores = [vertex_expansion(c, 100, seed=candidate_seed(3, 1, i)) for i, c in enumerate(cands)]
    assert len({round(s, 9) for s in scores}) > 1  # the candidates differ, so the choice matters
    assert torch.equal(channel_graph(mask["conv2.weight"]), cands[max(range(6), key=scores.__getitem__)])


# ---- the official RReg graph: configuration model into a simple graph ----
def test_configuration_graph_collapses_parallel_edges():
    one = configuration_graph(torch.tensor([3]), torch.tensor([3]), torch_generator(0))
    assert one.tolist() == [[True]]  # three stubs each side, one pair: one edge
    # 7 x 5 with d = 4 on the larger side: 28 stubs into 35 pairs, parallel edges are common
    edges = [int(biregular(7, 5, 4, torch_generator(s)).sum()) for s in range(20)]
    assert max(edges) <= 28 and min(edges) < 28
    for s in range(20):
        adj = biregular(7, 5, 4, torch_generator(s))
        assert (adj.sum(1) <= 4).all()
        assert (adj.sum(0) <= torch.tensor([6, 6, 6, 5, 5])).all()  # 28 = 5*5 + 3: +1 on the first 3 nodes


def test_random_graph_keeps_each_kernel_with_probability_d_over_n_out():
    model = model_of("resnet20")
    name, (n_out, n_in) = "layer2.1.conv1.weight", (32, 32)
    counts = torch.tensor([float(channel_graph(prune(model, "random-graph", 1.0, seed=s, degree=4)[name]).sum())
                           for s in range(40)])
    mean, var = n_in * n_out * 4 / 32, n_in * n_out * (4 / 32) * (28 / 32)  # binomial(1024, 1/8)
    assert abs(float(counts.mean()) - mean) < 4 * (var / 40) ** 0.5
    assert float(counts.var()) > 0.3 * var  # independent pairs, not a fixed count
    fixed = {int(channel_graph(prune(model, "random-graph", 1.0, seed=s, degree=4, fixed_count=True)[name]).sum())
             for s in range(5)}
    assert fixed == {n_in * 4}


def test_fixed_count_random_graph_matches_xnet_edge_count_with_random_placement():
    model = model_of("lenet5")
    xn = prune(model, "xnet", 0.05, seed=0)
    rg = prune(model, "random-graph", 0.05, seed=0, fixed_count=True)
    for k in xn:
        assert int(channel_graph(rg[k]).sum()) == int(channel_graph(xn[k]).sum()), k  # whole kernels too


# ---- one first/last-layer rule for the three methods (official ExpandersPruning model files) ----
RULES = {  # model: (first layer dense, last layer dense), written from the official code / our stated rule
    "resnet20": (True, True),  # official ResNet: stem conv and fc dense
    "resnet18": (True, True),
    "wrn-28-2": (True, True),
    "vgg16": (False, True),  # official VGG16-bn: the last Linear dense, the stem sparse
    "lenet5": (True, True),  # no official rule: conv stem and classifier dense
    "lenet-300-100": (False, True),  # no official rule: linear input layer sparse, classifier dense
}


def _model(name):
    torch.manual_seed(0)
    c, s = SHAPES.get(name, (3, 32))
    return create_model(name, num_classes=10, in_channels=c, image_size=s)


@pytest.mark.parametrize("name", list(RULES))
def test_first_and_last_layers_follow_one_rule_for_the_three_methods(name):
    model = _model(name)
    first, last = RULES[name]
    assert dense_layer_rule(model) == (first, last)
    names = list(prunable_parameters(model))
    for method in ("xnet", "rreg", "random-graph"):
        opts = {"n_graphs": 1} if method == "rreg" else {}
        mask = prune(model, method, 0.2, seed=0, **opts)
        assert bool(mask[names[0]].all()) == first, (method, names[0])
        assert bool(mask[names[-1]].all()) == last, (method, names[-1])
        assert not any(mask[k].all() for k in names[1:-1] if mask[k].numel() > 4096), method  # the rest sparse
        override = prune(model, method, 0.2, seed=0, **ALL_SPARSE, **opts)
        saturated = method == "rreg" and min(override[names[0]].shape[:2]) == 1  # RReg: a 1-channel side is complete
        assert bool(override[names[0]].all()) == saturated and not override[names[-1]].all(), method


def test_vgg_stem_under_the_official_rule_at_degree_3():
    # the official VGG16-bn sparsifies the 3 -> 64 stem: X-Net keeps 3 * 3 kernels; RReg puts 64 stubs on each
    # input and 3 on each output, 192 stubs into 192 pairs, so collapsed parallel edges leave about 136
    # (measured with the official graph_utils.rreg_graph: 136.4 over 20 draws); exact degrees: complete
    model = _model("vgg16")
    stem = list(prunable_parameters(model))[0]
    assert int(channel_graph(prune(model, "xnet", 1.0, seed=0, degree=3)[stem]).sum()) == 9
    kept = [int(channel_graph(prune(model, "rreg", 1.0, seed=s, degree=3, n_graphs=1)[stem]).sum()) for s in range(8)]
    assert 120 < sum(kept) / len(kept) < 150
    assert bool(prune(model, "rreg", 1.0, seed=0, degree=3, n_graphs=1, exact_degrees=True)[stem].all())
