"""X-Net (ECCV 2018) and RReg (CVPRW 2023): regular channel graphs, whole kernels, degree-density bound."""
import pytest
import torch

from pai.masks import num_kept, num_total, prunable_parameters
from pai.models import create_model
from pai.pruners import prune
from pai.pruners.allocation import target_layer_densities
from pai.pruners.expanders import (_layer_generator, biregular, expansion_estimate, neighbourhood_ratios, random_subsets,
                                   simple_bipartite)
from pai.seed import torch_generator

SHAPES = {"lenet-300-100": (1, 28), "lenet5": (1, 28), "resnet20": (3, 32), "vgg16": (3, 32)}


def model_of(name):
    torch.manual_seed(0)
    c, s = SHAPES[name]
    return create_model(name, num_classes=10, in_channels=c, image_size=s)


def channel_graph(m: torch.Tensor) -> torch.Tensor:
    """(in x out) biadjacency of a mask; asserts each kernel is fully kept or fully pruned."""
    k = m.reshape(m.shape[0], m.shape[1], -1)
    assert torch.equal(k.all(-1), k.any(-1)), "a kernel is partly kept"
    return k.any(-1).t()


@pytest.mark.parametrize("name", ["resnet20", "lenet5"])
def test_xnet_is_left_regular(name):
    mask = prune(model_of(name), "xnet", 0.1, seed=0, degree=3)
    for k, m in mask.items():
        adj = channel_graph(m)
        assert (adj.sum(1) == min(3, adj.shape[1])).all(), k


def test_xnet_smaller_side_variant():
    mask = prune(model_of("lenet5"), "xnet", 0.1, seed=0, degree=4, variant="smaller_side")
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
    mask = prune(model_of(name), "rreg", 0.1, seed=1, degree=degree)
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
        adj = biregular(n_left, n_right, d, torch_generator(seed))
        large = adj.sum(1) if n_left > n_right else adj.sum(0)
        small = adj.sum(0) if n_left > n_right else adj.sum(1)
        assert (large == d).all() and int(small.max() - small.min()) <= 1
        assert int(adj.sum()) == d * max(n_left, n_right)


def test_simple_bipartite_rejects_unequal_sums():
    with pytest.raises(ValueError, match="degree sums"):
        simple_bipartite(torch.tensor([1, 1]), torch.tensor([1]), torch_generator(0))


def test_determinism_and_seeds():
    model = model_of("resnet20")
    for method in ("xnet", "rreg"):
        a, b = prune(model, method, 0.1, seed=4), prune(model, method, 0.1, seed=4)
        c = prune(model, method, 0.1, seed=5)
        assert all(torch.equal(a[k], b[k]) for k in a)
        assert any(not torch.equal(a[k], c[k]) for k in a)


def test_layers_of_one_shape_get_different_graphs():
    mask = prune(model_of("resnet20"), "rreg", 0.1, seed=0, degree=3)
    assert not torch.equal(mask["layer1.0.conv1.weight"], mask["layer1.0.conv2.weight"])


@pytest.mark.parametrize("method", ["xnet", "rreg"])
@pytest.mark.parametrize("name,density,allocation", [("vgg16", 0.05, None), ("resnet20", 0.2, "erk"),
                                                     ("lenet5", 0.1, "er"), ("lenet-300-100", 0.03, None)])
def test_density_bound(method, name, density, allocation):
    """Each layer keeps n_reg * d_l kernels, d_l = clamp(round(p_l n_other), 1, n_other): within
    n_reg * max(1/2, 1 - p_l n_other) kernels of p_l N_l (n_reg / 2 unless d_l is raised to 1)."""
    model = model_of(name)
    mask = prune(model, method, density, seed=0, allocation=allocation)
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
    mask = prune(model, "rreg", 0.2, seed=0, dense_first=True, dense_last=True)
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


def test_expansion_of_the_complete_graph_is_maximal():
    g = torch_generator(0)
    subsets = (random_subsets(12, 200, g), random_subsets(20, 200, g))
    assert all(1 <= int(s.sum()) <= n // 2 for side, n in zip(subsets, (12, 20)) for s in side)
    full = torch.ones(12, 20, dtype=torch.bool)
    assert torch.allclose(neighbourhood_ratios(full, subsets[0]), 20 / subsets[0].sum(1).float())
    best = expansion_estimate(full, subsets=subsets)
    for seed in range(3):
        sparse = biregular(12, 20, 3, torch_generator(seed))
        assert expansion_estimate(sparse, subsets=subsets) < best


def test_best_of_k_keeps_the_candidate_with_the_largest_expansion():
    model = model_of("lenet5")
    mask = prune(model, "rreg", 0.1, seed=3, degree=2, n_graphs=6, expansion_samples=100)
    g = _layer_generator(3, 1)  # conv2 (6 -> 16) is layer 1; replay its draws
    subsets = (random_subsets(6, 100, g), random_subsets(16, 100, g))
    cands = [biregular(6, 16, 2, g) for _ in range(6)]
    scores = [expansion_estimate(c, subsets=subsets) for c in cands]
    assert len({round(s, 9) for s in scores}) > 1  # the candidates differ, so the choice matters
    assert torch.equal(channel_graph(mask["conv2.weight"]), cands[max(range(6), key=scores.__getitem__)])


def test_random_graph_matches_xnet_edge_count_with_random_placement():
    import pai
    from pai.models import create_model

    torch.manual_seed(0)
    model = create_model("lenet5", num_classes=10, in_channels=1, image_size=28)
    xn = pai.prune(model, "xnet", 0.05, seed=0)
    rg = pai.prune(model, "random-graph", 0.05, seed=0)
    for k in xn:
        kernels = lambda m: (m.reshape(m.shape[0], m.shape[1], -1).any(-1))  # noqa: E731
        assert int(kernels(rg[k]).sum()) == int(kernels(xn[k]).sum()), k
        # whole kernels only
        flat = rg[k].reshape(rg[k].shape[0], rg[k].shape[1], -1)
        assert bool((flat.all(-1) | ~flat.any(-1)).all())
    assert not all(torch.equal(rg[k], xn[k]) for k in xn)
    assert all(torch.equal(a, b) for a, b in zip(rg.values(), pai.prune(model, "random-graph", 0.05, seed=0).values()))


def test_unreachable_density_warns_and_reachable_does_not():
    import warnings

    torch.manual_seed(0)
    model = create_model("resnet20", num_classes=10, in_channels=3, image_size=32)
    for method in ("xnet", "rreg", "random-graph"):
        with pytest.warns(UserWarning, match="density kept"):
            prune(model, method, 0.001, seed=0)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            prune(model, method, 0.3, seed=0)
