"""PHEW (Patil & Dovrolis, ICML 2021): exact counts, complete paths, magnitude bias, determinism."""
import warnings

import pytest
import torch
from torch import nn

from pai.graph import INPUT, OUTPUT, build_graph
from pai.masks import kept_layer_densities, num_kept, num_total, prunable_parameters
from pai.models import create_model
from pai.pruners import prune

SHAPES = {"lenet-300-100": (1, 28), "lenet5": (1, 28), "resnet20": (3, 32), "vgg16": (3, 32)}


def model_of(name, seed=0):
    torch.manual_seed(seed)
    c, s = SHAPES[name]
    return create_model(name, num_classes=10, in_channels=c, image_size=s)


def path_violations(graph, mask) -> int:
    """Kept kernels (i -> j) not on an input->output path of kept kernels, in the channel-level graph:
    ``i`` must be reachable from the input and ``j`` must reach the output, through the graph's edges
    (identity shortcuts pass channels through; a flatten edge maps channel c to its features)."""
    kern = {l.index: mask[l.name].reshape(l.out_units, l.in_units, -1).any(-1) for l in graph}
    reach_in, reach_out = {}, {}
    for l in graph:
        r = torch.zeros(l.in_units, dtype=torch.bool)
        for e in l.preds:
            r |= torch.ones_like(r) if e.src == INPUT else reach_out[e.src].repeat_interleave(e.flatten)
        reach_in[l.index], reach_out[l.index] = r, (kern[l.index] & r[None, :]).any(1)
    co_in, co_out = {}, {}
    for l in reversed(graph.layers):
        c = torch.zeros(l.out_units, dtype=torch.bool)
        for e in l.succs:
            c |= torch.ones_like(c) if e.dst == OUTPUT else co_in[e.dst].view(l.out_units, e.flatten).any(1)
        co_out[l.index], co_in[l.index] = c, (kern[l.index] & c[:, None]).any(0)
    return sum(int((kern[i] & ~(reach_in[i][None, :] & co_out[i][:, None])).sum()) for i in kern)


def test_checker_detects_a_dangling_kernel():
    model = model_of("lenet5")
    g = build_graph(model)
    mask = {k: torch.zeros_like(p, dtype=torch.bool) for k, p in prunable_parameters(model).items()}
    mask["conv2.weight"][3, 2, 0, 0] = True  # input channel 2 is unreachable, output 3 is a dead end
    assert path_violations(g, mask) == 1
    mask["conv1.weight"][2, 0, 1, 1] = True
    mask["fc1.weight"][7, 3 * 25 + 4] = True  # a feature of channel 3
    mask["fc2.weight"][5, 7] = True
    mask["fc.weight"][0, 5] = True
    assert path_violations(g, mask) == 0


CASES = [(n, d) for n in ("lenet-300-100", "lenet5", "resnet20") for d in (0.003, 0.05, 0.3)]


@pytest.mark.parametrize("name,density", CASES + [("vgg16", 0.002), ("vgg16", 0.02)])
def test_exact_count_and_complete_paths(name, density):
    model = model_of(name)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the path-preserving trim must suffice on real models
        mask = prune(model, "phew", density, seed=3)
    assert num_kept(mask) == round(density * num_total(mask))
    assert path_violations(build_graph(model), mask) == 0
    assert all(m.any() for m in mask.values())  # every layer lies on the kept paths


def test_kernel_conserved_keeps_whole_kernels_but_the_last_few():
    model = model_of("resnet20")
    mask = prune(model, "phew", 0.05, seed=0, kernel_conserved=True)
    assert num_kept(mask) == round(0.05 * num_total(mask))
    per_kernel = [m.flatten(2).sum(-1) if m.dim() == 4 else m.long() for m in mask.values()]
    partial = sum(int(((k > 0) & (k < m[0, 0].numel())).sum()) for k, m in zip(per_kernel, mask.values()))
    assert partial <= len(mask)  # only the trim of the last walk splits kernels
    assert path_violations(build_graph(model), mask) == 0


def test_determinism_and_seeds():
    model = model_of("resnet20")
    a, b = prune(model, "phew", 0.02, seed=5), prune(model, "phew", 0.02, seed=5)
    c = prune(model, "phew", 0.02, seed=6)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a)


def test_nested_masks_grow():
    model = model_of("lenet5")
    sparse = prune(model, "phew", 0.02, seed=1)
    dense = prune(model, "phew", 0.08, seed=2, nested_from=sparse)
    assert num_kept(dense) == round(0.08 * num_total(dense))
    assert all(bool((dense[k] | ~sparse[k]).all()) for k in sparse)
    assert path_violations(build_graph(model), dense) == 0
    with pytest.raises(ValueError, match="nested_from"):
        prune(model, "phew", 0.01, seed=1, nested_from=sparse)


def test_small_layers_fill_first_as_in_the_paper():
    # each walk adds <= 1 weight per layer, so the stem and classifier are far denser than the middle
    d = kept_layer_densities(prune(model_of("resnet20"), "phew", 0.01, seed=0))
    assert d["conv1.weight"] > 10 * d["layer3.1.conv1.weight"]
    assert d["fc.weight"] > 10 * d["layer3.1.conv1.weight"]
    # the projection shortcut takes half the walks through a downsampling block
    assert 0 < d["layer2.0.conv2.weight"] < d["layer2.1.conv2.weight"]


def test_walks_follow_the_magnitudes():
    # Linear(3 -> 4) -> Linear(4 -> 2): only unit 2 of the hidden layer carries weight, so every
    # forward walk must go 0/1/2 -> 2 -> class and every backward walk class -> 2 -> input.
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(3, 4, bias=False), nn.ReLU(), nn.Linear(4, 2, bias=False))
    with torch.no_grad():
        net[1].weight.zero_()
        net[1].weight[2] = torch.tensor([1.0, 2.0, 3.0])
        net[3].weight.zero_()
        net[3].weight[:, 2] = torch.tensor([1.0, 5.0])
    mask = prune(net, "phew", 5 / 20, seed=0, input_shape=(3, 1, 1))
    assert torch.equal(mask["1.weight"], net[1].weight != 0)
    assert torch.equal(mask["3.weight"], net[3].weight != 0)


def test_one_weight_per_kernel_drawn_by_magnitude():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(2, 3, 3, bias=False), nn.ReLU(), nn.Flatten(), nn.Linear(3, 2))
    with torch.no_grad():
        net[0].weight.zero_()
        net[0].weight[:, :, 1, 2] = torch.rand(3, 2) + 0.5  # one non-zero position per kernel
    mask = prune(net, "phew", 10 / 60, seed=0, input_shape=(2, 3, 3))
    assert num_kept(mask) == 10 and mask["0.weight"].any()
    assert not (mask["0.weight"] & (net[0].weight == 0)).any()


def test_magnitude_bias_against_uniform_walks():
    model, layer = model_of("resnet20"), "layer3.1.conv1.weight"
    w = prunable_parameters(model)[layer].detach().abs()
    biased = prune(model, "phew", 0.05, seed=0)[layer]
    uniform = prune(model, "phew", 0.05, seed=0, weighting="uniform")[layer]
    assert w[biased].mean() > 1.3 * w.mean()
    assert abs(float(w[uniform].mean() / w.mean()) - 1) < 0.1


def test_tiny_net_falls_back_with_a_warning():
    # two linear layers, one weight to keep: the first walk adds two and no trim keeps a full path
    net = nn.Sequential(nn.Flatten(), nn.Linear(2, 2, bias=False), nn.Linear(2, 2, bias=False))
    with pytest.warns(UserWarning, match="incomplete"):
        mask = prune(net, "phew", 1 / 8, seed=0, input_shape=(2, 1, 1))
    assert num_kept(mask) == 1


def test_density_one_and_bad_options():
    model = model_of("lenet5")
    assert num_kept(prune(model, "phew", 1.0, seed=0)) == num_total(prune(model, "phew", 1.0, seed=0))
    with pytest.raises(ValueError, match="weighting"):
        prune(model, "phew", 0.1, seed=0, weighting="cubic")
    with pytest.raises(ValueError, match="unknown option"):
        prune(model, "phew", 0.1, seed=0, kernel_conserve=True)


def test_unreachable_target_is_a_clear_error():
    # a zero weight in a row and a column that both carry weight is never drawn in either direction
    net = nn.Sequential(nn.Flatten(), nn.Linear(3, 4, bias=False))
    with torch.no_grad():
        net[1].weight[1, 1] = net[1].weight[2, 2] = 0.0
    assert num_kept(prune(net, "phew", 10 / 12, seed=0, input_shape=(3, 1, 1))) == 10
    with pytest.raises(RuntimeError, match="no new weight"):
        prune(net, "phew", 11 / 12, seed=0, input_shape=(3, 1, 1))
