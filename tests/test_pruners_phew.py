"""PHEW (Patil & Dovrolis, ICML 2021): the official walk rules on hand-made nets (hop frequencies
proportional to |w| by the official transition probabilities, forward/backward alternation, round-robin
starts, the downsampling jump), the official count, the exact-count and graph-walk options, determinism."""
import warnings

import pytest
import torch
from torch import nn

from pai.graph import INPUT, OUTPUT, build_graph
from pai.masks import kept_layer_densities, num_kept, num_total, prunable_parameters
from pai.models import create_model
from pai.pruners import prune
from pai.pruners.phew import WALKS

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
        mask = prune(model, "phew", density, seed=3, walk="graph", exact_count=True)
    assert num_kept(mask) == round(density * num_total(mask))
    assert path_violations(build_graph(model), mask) == 0
    assert all(m.any() for m in mask.values())  # every layer lies on the kept paths


def test_kernel_conserved_keeps_whole_kernels_but_the_last_few():
    model = model_of("resnet20")
    mask = prune(model, "phew", 0.05, seed=0, kernel_conserved=True, walk="graph", exact_count=True)
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
    assert 0 <= num_kept(dense) - int(0.08 * num_total(dense)) < len(dense)
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
        mask = prune(net, "phew", 1 / 8, seed=0, input_shape=(2, 1, 1), exact_count=True)
    assert num_kept(mask) == 1


def test_density_one_and_bad_options():
    model = model_of("lenet5")
    assert num_kept(prune(model, "phew", 1.0, seed=0)) == num_total(prune(model, "phew", 1.0, seed=0))
    with pytest.raises(ValueError, match="weighting"):
        prune(model, "phew", 0.1, seed=0, weighting="cubic")
    with pytest.raises(ValueError, match="no option .kernel_conserve.*valid: walk"):
        prune(model, "phew", 0.1, seed=0, kernel_conserve=True)


def test_unreachable_target_is_a_clear_error():
    # a zero weight in a row and a column that both carry weight is never drawn in either direction
    net = nn.Sequential(nn.Flatten(), nn.Linear(3, 4, bias=False))
    with torch.no_grad():
        net[1].weight[1, 1] = net[1].weight[2, 2] = 0.0
    assert num_kept(prune(net, "phew", 10 / 12, seed=0, input_shape=(3, 1, 1))) == 10
    with pytest.raises(RuntimeError, match="no new weight"):
        prune(net, "phew", 11 / 12, seed=0, input_shape=(3, 1, 1))


# ---- the official rules on hand-made nets (ShreyasMalakarjunPatil/PHEW, Prune/phew_utils.py) ----
SEEDS = range(300)


def frequency(net, density, input_shape, layer, index, walk="official"):
    """Fraction of seeds whose mask keeps ``layer``'s weight ``index``."""
    return sum(bool(prune(net, "phew", density, seed=s, input_shape=input_shape, walk=walk)[layer][index])
               for s in SEEDS) / len(SEEDS)


def close(freq, p, n=len(SEEDS)):
    return abs(freq - p) <= 4.5 * (p * (1 - p) / n) ** 0.5 + 1e-9


def single_linear(weight):
    net = nn.Sequential(nn.Flatten(), nn.Linear(weight.shape[1], weight.shape[0], bias=False))
    with torch.no_grad():
        net[1].weight.copy_(weight)
    return net


def single_conv(weight):
    net = nn.Sequential(nn.Conv2d(weight.shape[1], weight.shape[0], weight.shape[2], bias=False), nn.Flatten())
    with torch.no_grad():
        net[0].weight.copy_(weight)
    return net


def test_forward_hop_is_proportional_to_the_weight_over_the_next_units_mlp():
    # one walk (target 1): the first forward walk starts at input feature 0 of the flattened 1-channel
    # image and moves to output i with probability |W[i, 0]| / sum_i' |W[i', 0]| (Q_f, normalised over
    # the next hop, not over the layer: the heavy column 1 is never used)
    w = torch.tensor([[1.0, 50.0, 0.0, 0.0], [3.0, 50.0, 0.0, 0.0]])
    net = single_linear(w)
    shape, d = (1, 2, 2), 1.5 / 8
    assert close(frequency(net, d, shape, "1.weight", (1, 0)), 0.75)
    assert close(frequency(net, d, shape, "1.weight", (0, 0)), 0.25)
    assert all(not prune(net, "phew", d, seed=s, input_shape=shape)["1.weight"][:, 1:].any() for s in range(20))


def test_backward_hop_is_proportional_to_the_weight_over_the_previous_units_mlp():
    # walk 0 (forward from input 0) must keep W[0, 0] (column 0 has one nonzero); walk 1 (backward from
    # class 0) then moves to input j with probability |W[0, j]| / sum_j' |W[0, j']| and reaches the target
    w = torch.tensor([[1e-9, 1.0, 3.0], [0.0, 7.0, 7.0]])
    net = single_linear(w)
    shape, d = (3, 1, 1), 2.5 / 6
    assert close(frequency(net, d, shape, "1.weight", (0, 2)), 0.75)
    assert close(frequency(net, d, shape, "1.weight", (0, 1)), 0.25)


def test_conv_hop_by_kernel_norm_then_position_by_magnitude():
    # forward from input channel 0: output i with probability K[i, 0] / sum_i' K[i', 0] (kernel L1 norms),
    # then one position of that kernel with probability |w| / K[i, 0]
    w = torch.zeros(2, 2, 2, 2)
    w[0, 0] = torch.tensor([[1.0, 0.0], [0.0, 1.0]])  # K = 2
    w[1, 0] = torch.tensor([[3.0, 0.0], [0.0, 1.0]])  # K = 4 (mass 6 in column 0)
    w[:, 1] = 100.0
    net, shape, d = single_conv(w), (2, 2, 2), 1.5 / 16
    assert close(frequency(net, d, shape, "0.weight", (1, 0, 0, 0)), 4 / 6 * 3 / 4)
    assert close(frequency(net, d, shape, "0.weight", (1, 0, 1, 1)), 4 / 6 * 1 / 4)
    assert close(frequency(net, d, shape, "0.weight", (0, 0, 0, 0)), 2 / 6 * 1 / 2)


def test_conv_backward_hop_by_kernel_norm():
    w = torch.zeros(2, 3, 1, 1)
    w[0, :, 0, 0] = torch.tensor([1e-9, 1.0, 3.0])  # walk 0 keeps (0, 0); walk 1 from class 0 picks j
    w[1, 1:, 0, 0] = 7.0
    net, shape, d = single_conv(w), (3, 1, 1), 2.5 / 6
    assert close(frequency(net, d, shape, "0.weight", (0, 2, 0, 0)), 0.75)


def _two_layer_bijection(conv: bool):
    """in(4) -> hidden(4) -> 4 classes, every transition forced: input u -> hidden s(u) -> class t(s(u)),
    and class c -> hidden t^-1(c) -> input s^-1(t^-1(c)) = 3 - c, so a walk is identified by its input."""
    s, t = [2, 0, 3, 1], [2, 0, 3, 1]
    inv = {t[s[u]]: u for u in range(4)}
    assert all(inv[c] == 3 - c for c in range(4))
    w1, w2 = torch.zeros(4, 4), torch.zeros(4, 4)
    for u in range(4):
        w1[s[u], u] = 1.0 + u
        w2[t[s[u]], s[u]] = 2.0 + u
    if conv:
        net = nn.Sequential(nn.Conv2d(4, 4, 1, bias=False), nn.ReLU(), nn.Flatten(), nn.Linear(4, 4, bias=False))
        with torch.no_grad():
            net[0].weight.copy_(w1[:, :, None, None])
            net[3].weight.copy_(w2)
        return net, (4, 1, 1), ("0.weight", "3.weight"), s
    net = nn.Sequential(nn.Flatten(), nn.Linear(4, 4, bias=False), nn.ReLU(), nn.Linear(4, 4, bias=False))
    with torch.no_grad():
        net[1].weight.copy_(w1)
        net[3].weight.copy_(w2)
    return net, (1, 2, 2), ("1.weight", "3.weight"), s  # a 1-channel image: round robin over its pixels


@pytest.mark.parametrize("conv", [True, False], ids=["conv", "mlp"])
def test_walks_alternate_and_start_round_robin(conv):
    # walks: F0 (input 0), B0 (class 0 -> input 3), F1 (input 1), B1 (class 1 -> input 2), F2 (input 2), ...
    # each new walk adds a new path of 2 weights, so a target of 2k keeps the paths of the first k walks
    net, shape, (l1, _), s = _two_layer_bijection(conv)
    expected = {1: {0}, 2: {0, 3}, 3: {0, 3, 1}, 4: {0, 1, 2, 3}}
    for walks, inputs in expected.items():
        for seed in range(3):
            mask = prune(net, "phew", (2 * walks + 0.5) / 32, seed=seed, input_shape=shape)
            kept = {int(u) for u in torch.nonzero(mask[l1].reshape(4, 4).any(0)).flatten()}
            assert kept == inputs, (walks, seed)
            assert sum(int(m.sum()) for m in mask.values()) == 2 * walks


def test_mlp_forward_walks_start_round_robin_over_pixels():
    # backward walks always end at pixel 0 (its weights dominate every row); forward walk k starts at
    # pixel k, so the pixels carrying kept weights are a prefix 0 .. m of the flattened image
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(64, 8, bias=False), nn.ReLU(), nn.Linear(8, 2, bias=False))
    with torch.no_grad():
        net[1].weight.uniform_(0.5, 1.0)
        net[1].weight[:, 0] = 1e9
    for seed in range(3):
        mask = prune(net, "phew", 0.2, seed=seed, input_shape=(1, 8, 8))
        cols = torch.nonzero(mask["1.weight"].any(0)).flatten().tolist()
        assert len(cols) > 10 and cols == list(range(len(cols))), cols


class _ProjectionNet(nn.Module):
    """stem -> identity block (a1, a2) -> projection block (b1, b2 | 1x1 shortcut) -> fc, 1x1 maps."""

    def __init__(self):
        super().__init__()
        conv = lambda k=1: nn.Conv2d(2, 2, k, bias=False)  # noqa: E731
        self.stem, self.a1, self.a2, self.b1, self.b2 = conv(), conv(), conv(), conv(), conv()
        self.shortcut = conv()
        self.fc = nn.Linear(2, 2, bias=False)

    def forward(self, x):
        x = torch.relu(self.stem(x))
        x = torch.relu(x + self.a2(torch.relu(self.a1(x))))
        x = torch.relu(self.shortcut(x) + self.b2(torch.relu(self.b1(x))))
        return self.fc(torch.flatten(x, 1))


def test_official_forward_jump_at_a_projection_block():
    # official: before a2 (the conv whose output feeds the projection block) the first forward walk jumps
    # with probability 1/2 into the shortcut, skipping a2, b1, b2; a walk through a2 never takes the shortcut.
    # graph: a2 always, then the shortcut or b1 with probability 1/2.  Target 4: exactly the first walk.
    torch.manual_seed(0)
    net = _ProjectionNet()
    g = build_graph(net, (2, 1, 1))
    assert g["shortcut.weight"].is_shortcut
    for walk, p_a2 in (("official", 0.5), ("graph", 1.0)):
        hits = {"a2": 0, "shortcut": 0, "both": 0}
        for seed in SEEDS:
            m = prune(net, "phew", 4.5 / 28, seed=seed, input_shape=(2, 1, 1), walk=walk)
            a2, sc = bool(m["a2.weight"].any()), bool(m["shortcut.weight"].any())
            hits["a2"] += a2
            hits["shortcut"] += sc
            hits["both"] += a2 and sc
            if walk == "official":
                assert a2 != sc and bool(m["b1.weight"].any()) == a2  # a jump skips a2 and the branch
        assert close(hits["a2"] / len(SEEDS), p_a2)
        assert close(hits["shortcut"] / len(SEEDS), 0.5)
        assert hits["both"] == (0 if walk == "official" else hits["shortcut"])


def test_official_jump_thins_the_conv_before_downsampling_on_resnet20():
    # measured against the official code on the same weights: layer1.2.conv2 keeps ~110 weights at density
    # 0.01 where its neighbours keep ~146; the graph walk keeps ~142 in both
    model = model_of("resnet20")
    counts = {w: [prune(model, "phew", 0.01, seed=s, walk=w) for s in range(4)] for w in WALKS}
    ratio = {w: sum(int(m["layer1.2.conv2.weight"].sum()) for m in ms) /
             sum(int(m["layer1.2.conv1.weight"].sum()) for m in ms) for w, ms in counts.items()}
    assert 0.65 < ratio["official"] < 0.85 and 0.93 < ratio["graph"] < 1.07
    for m in counts["official"]:
        assert 0 <= num_kept(m) - int(0.01 * num_total(m)) < len(m)  # the official loop's overshoot


def test_walk_option_is_validated():
    with pytest.raises(ValueError, match="walk"):
        prune(model_of("lenet5"), "phew", 0.1, seed=0, walk="residual")
