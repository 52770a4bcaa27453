"""Networks pai did not build: every graph/path metric and the graph-walking pruners (PHEW, NPB) on
torchvision's classification networks at 3x32x32 with random weights, each ok or a pinned one-line
refusal; grouped convolutions as block-diagonal bipartite graphs; elementwise activations, squeeze-and-
excitation gates, concatenation and channel shuffles in path counting."""
import math
import re
import warnings

import pytest
import torch
from torch import nn

from pai.graph import INPUT, OUTPUT, build_graph
from pai.masks import num_kept, ones_mask, prunable_parameters
from pai.metrics import (biadjacency, channel_spectral_gap, effective_mask, effective_nodes, effective_paths,
                         full_spectrum_summary, network_full_spectrum, network_metrics, path_kernel_trace,
                         unrolled_csr)
from pai.metrics.bipartite import layer_groups
from pai.pruners import prune

torchvision = pytest.importorskip("torchvision")

SHAPE = (3, 32, 32)
DENSITY = 0.02
slow = pytest.mark.slow
# the CI set runs in about a minute on one core; the heavy nets (more weights or layers) are marked slow
NETS = [
    "resnet18", "mobilenet_v2", "mobilenet_v3_small", "shufflenet_v2_x0_5", "squeezenet1_0", "regnet_y_400mf",
    pytest.param("resnet50", marks=slow), pytest.param("vgg11_bn", marks=slow),
    pytest.param("densenet121", marks=slow), pytest.param("efficientnet_b0", marks=slow),
    pytest.param("convnext_tiny", marks=slow),
]
# (network, what) -> the one-line refusal it gives; every metric and pruner runs on all eleven today
REFUSALS: dict = {}


def zoo(name: str) -> nn.Module:
    torch.manual_seed(0)
    model = getattr(torchvision.models, name)(num_classes=10)
    model.input_shape = SHAPE
    return model


def outcome(net: str, what: str, fn):
    """``fn()``, or the refusal pinned in REFUSALS (a one-line ValueError naming the layer type)."""
    if (net, what) not in REFUSALS:
        return fn()
    with pytest.raises(ValueError) as err:
        fn()
    assert "\n" not in str(err.value) and re.search(REFUSALS[net, what], str(err.value))
    return None


def unit_map(edge, n_in: int) -> torch.Tensor:
    return edge.unit_map(n_in)


def channel_violations(graph, mask) -> int:
    """Kept kernels not on an input->output path of kept kernels in the channel graph, reading grouped
    convs block-diagonally and every edge through its unit map (concatenation, chunk, shuffle)."""
    kern = {}
    for l in graph:
        local = mask[l.name].reshape(l.out_units, l.in_units // l.groups, -1).any(-1)
        kern[l.index] = biadjacency(None, local[:, :, None, None], "channel", groups=l.groups).T
    reach_in, reach_out = {}, {}
    for l in graph:
        r = torch.zeros(l.in_units, dtype=torch.bool)
        for e in l.preds:
            if e.src == INPUT:
                r[:] = True
            else:
                m = unit_map(e, l.in_units)
                r[m >= 0] |= reach_out[e.src][m[m >= 0]]
        reach_in[l.index], reach_out[l.index] = r, (kern[l.index] & r[None, :]).any(1)
    co_in, co_out = {}, {}
    for l in reversed(graph.layers):
        c = torch.zeros(l.out_units, dtype=torch.bool)
        for e in l.succs:
            if e.dst == OUTPUT:
                c[:] = True
            else:
                m = unit_map(e, graph[e.dst].in_units)
                hit = torch.zeros(l.out_units, dtype=torch.int64)
                hit.index_add_(0, m[m >= 0], co_in[e.dst][m >= 0].long())
                c |= hit > 0
        co_out[l.index], co_in[l.index] = c, (kern[l.index] & c[:, None]).any(0)
    return sum(int((kern[i] & ~(reach_in[i][None, :] & co_out[i][:, None])).sum()) for i in kern)


# ---- the zoo ----------------------------------------------------------------------------------

@pytest.mark.parametrize("net", NETS)
def test_zoo_metrics_and_path_pruners(net):
    model = zoo(net)
    params = prunable_parameters(model)
    total = sum(p.numel() for p in params.values())
    graph = build_graph(model)
    assert graph.names == list(params)
    assert [tuple(p.shape) for p in params.values()] == [l.shape for l in graph]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # degenerate-mask warnings (a layer of 8 weights may keep none)
        phew = outcome(net, "phew", lambda: prune(model, "phew", DENSITY, seed=0, walk="graph"))
        npb = outcome(net, "npb", lambda: prune(model, "npb", DENSITY, seed=0, solver="fast", finetune=False,
                                                chunk_size=None))
    if phew is not None:
        assert num_kept(phew) >= int(DENSITY * total)  # the official count: walks until int(d N)
        assert channel_violations(graph, phew) == 0  # PHEW keeps whole input->output walks
    if npb is not None:
        assert abs(num_kept(npb) - round(DENSITY * total)) <= len(params)
    mask = phew if phew is not None else npb
    summary = outcome(net, "metrics", lambda: network_metrics(model, mask, expansion_samples=20))
    if summary is not None:
        assert summary["layers"] == len(params) and summary["valid_layers"] >= 0
        assert 0 < summary["log10_paths"] < math.inf
        assert 0 < summary["effective_nodes"] and 0 < summary["effective_params"] <= num_kept(mask)
        assert math.isfinite(summary["log10_path_kernel_trace"])
        assert not math.isnan(summary["expansion"])
    fs = outcome(net, "full_spectrum", lambda: full_spectrum_summary(network_full_spectrum(model, mask)))
    if fs is not None:
        assert fs["norm"] >= 0
    gap = outcome(net, "channel_gap", lambda: channel_spectral_gap(mask, layer_groups(model)))
    if gap is not None:
        assert gap >= 0


# ---- grouped convolutions ---------------------------------------------------------------------

def test_grouped_conv_bipartite_graph_is_block_diagonal():
    torch.manual_seed(0)
    groups, c_in, c_out, kh, kw = 2, 4, 6, 1, 2
    weight = torch.randn(c_out, c_in // groups, kh, kw)
    mask = torch.rand(weight.shape) > 0.3
    kk, in_pg, out_pg = kh * kw, c_in // groups, c_out // groups
    expected, expected_ch = set(), set()
    for j in range(c_out):
        g = j // out_pg
        for c in range(in_pg):
            for t in range(kk):
                if mask[j, c, t // kw, t % kw]:
                    expected.add(((g * in_pg + c) * kk + t, j))
                    expected_ch.add((g * in_pg + c, j))
    S = unrolled_csr(weight, mask, groups=groups)
    assert S.shape == (c_in * kk, c_out)
    assert set(zip(*S.nonzero())) == expected
    B = biadjacency(weight, mask, "unrolled", groups=groups)
    assert {tuple(x) for x in torch.nonzero(B).tolist()} == expected
    C = biadjacency(None, mask, "channel", groups=groups)
    assert C.shape == (c_in, c_out) and {tuple(x) for x in torch.nonzero(C).tolist()} == expected_ch
    assert set(zip(*unrolled_csr(weight, mask, "channel", groups=groups).nonzero())) == expected_ch
    # a depthwise conv: a matching in the channel graph
    dw = torch.ones(5, 1, 3, 3, dtype=torch.bool)
    assert torch.equal(biadjacency(None, dw, "channel", groups=5), torch.eye(5, dtype=torch.bool))
    with pytest.raises(ValueError, match="groups=4"):
        biadjacency(None, dw, "channel", groups=4)


class Grouped(nn.Module):
    def __init__(self, groups: int):
        super().__init__()
        self.conv1 = nn.Conv2d(2, 4, 3, padding=1)
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1, groups=groups)
        self.fc = nn.Linear(4, 3)
        self.input_shape = (2, 5, 5)

    def forward(self, x):
        x = torch.relu(self.conv2(torch.relu(self.conv1(x))))
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


def test_grouped_conv_paths_and_graph_are_the_block_diagonal_dense_conv():
    grouped, dense = Grouped(2), Grouped(1)
    mask = ones_mask(grouped)
    mask["conv2.weight"][0, 1] = False
    block = torch.zeros(4, 4, 3, 3, dtype=torch.bool)  # the same connections as a dense conv's mask
    for j in range(4):
        block[j, (j // 2) * 2:(j // 2) * 2 + 2] = mask["conv2.weight"][j]
    dmask = dict(mask, **{"conv2.weight": block})
    assert effective_paths(grouped, mask, log10=False) == effective_paths(dense, dmask, log10=False)
    assert effective_nodes(grouped, mask)["total"] == effective_nodes(dense, dmask)["total"]
    layer = build_graph(grouped)["conv2.weight"]
    assert layer.groups == 2 and layer.shape == (4, 2, 3, 3)
    rows = {r["layer"]: r for r in __import__("pai").metrics.layer_metrics(grouped, mask, include=["spectral"])}
    drows = {r["layer"]: r for r in __import__("pai").metrics.layer_metrics(dense, dmask, include=["spectral"])}
    assert rows["conv2.weight"]["sigma1"] == pytest.approx(drows["conv2.weight"]["sigma1"])
    assert rows["conv2.weight"]["d_left"] == drows["conv2.weight"]["d_left"]


# ---- activations, gates, concatenation, shuffle -----------------------------------------------

class Act(nn.Module):
    def __init__(self, act: nn.Module):
        super().__init__()
        self.conv1 = nn.Conv2d(2, 8, 3, padding=1)
        self.act = act
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
        self.fc = nn.Linear(8 * 16, 3)
        self.input_shape = (2, 4, 4)

    def forward(self, x):
        return self.fc(torch.flatten(self.act(self.conv2(self.act(self.conv1(x)))), 1))


@pytest.mark.parametrize("act", [nn.ReLU6(), nn.SiLU(), nn.GELU(), nn.Hardswish(), nn.Sigmoid()],
                         ids=lambda a: type(a).__name__)
def test_elementwise_activations_count_paths_as_relu(act):
    torch.manual_seed(0)
    ref = Act(nn.ReLU())
    net = Act(act)
    net.load_state_dict(ref.state_dict())
    torch.manual_seed(1)
    mask = {k: torch.rand(v.shape) > 0.4 for k, v in ones_mask(ref).items()}
    n = effective_paths(ref, mask, log10=False)
    assert n > 6 * 8 * 16  # far above ReLU6's cap: a literal ReLU6 would clamp the counts
    assert effective_paths(net, mask, log10=False) == n
    alive, ref_alive = effective_mask(net, mask), effective_mask(ref, mask)
    assert all(torch.equal(alive[k], ref_alive[k]) for k in mask)
    assert path_kernel_trace(net, mask) == path_kernel_trace(ref, mask)
    from pai.pruners.npb import PathNet

    layer = build_graph(ref)["fc.weight"]
    assert (PathNet(net, net.input_shape).input_paths(layer) == PathNet(ref, ref.input_shape).input_paths(layer)).all()


class SE(nn.Module):
    """conv -> squeeze-and-excitation (torchvision's block) -> conv -> fc."""

    def __init__(self, gate: bool = True):
        super().__init__()
        from torchvision.ops import SqueezeExcitation

        self.conv1 = nn.Conv2d(2, 8, 3, padding=1)
        self.se = SqueezeExcitation(8, 4) if gate else nn.Identity()
        self.conv2 = nn.Conv2d(8, 4, 3, padding=1)
        self.fc = nn.Linear(4, 3)
        self.input_shape = (2, 4, 4)

    def forward(self, x):
        x = self.conv2(self.se(torch.relu(self.conv1(x))))
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(torch.relu(x), 1), 1))


def test_squeeze_excitation_gate_passes_paths_and_its_branch_is_a_side_branch():
    torch.manual_seed(0)
    net, plain = SE(), SE(gate=False)
    mask = ones_mask(net)
    pmask = {k: v for k, v in mask.items() if not k.startswith("se.")}
    assert effective_paths(net, mask, log10=False) == effective_paths(plain, pmask, log10=False)
    g = build_graph(net)
    conv2 = g["conv2.weight"]
    assert {(g[e.src].name, e.gate) for e in conv2.preds} == {("conv1.weight", False), ("se.fc2.weight", True)}
    alive = effective_mask(net, mask)
    assert alive["se.fc1.weight"].all() and alive["se.fc2.weight"].all()  # on input -> gate paths
    mask["conv2.weight"][:] = False  # nothing the gate scales reaches the output: the branch is dead too
    alive = effective_mask(net, mask)
    assert not alive["se.fc1.weight"].any() and not alive["se.fc2.weight"].any()


class Shuffle(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(1, 2, 1)
        self.b = nn.Conv2d(1, 4, 1)
        self.c = nn.Conv2d(3, 2, 1)
        self.input_shape = (1, 2, 2)

    def forward(self, x):
        y = torch.cat([self.a(x), self.b(x)], 1)  # units a0 a1 b0 b1 b2 b3
        n, c, h, w = y.size()
        y = y.view(n, 2, c // 2, h, w).transpose(1, 2).contiguous().view(n, c, h, w)  # a0 b1 a1 b2 b0 b3
        _, z = y.chunk(2, dim=1)  # b2 b0 b3
        return self.c(z).mean([2, 3])


def test_concat_chunk_and_channel_shuffle_map_units():
    net = Shuffle()
    g = build_graph(net)
    maps = {g[e.src].name: e.units.tolist() for e in g["c.weight"].preds}
    assert maps == {"b.weight": [2, 0, 3]}
    mask = ones_mask(net)
    assert effective_paths(net, mask, log10=False) == 3 * 2 * 4  # 3 paths per pixel into c, 2 outputs, 4 pixels
    mask["b.weight"][1] = False  # b1 is dropped by the chunk anyway; b0 is not
    assert effective_paths(net, mask, log10=False) == 3 * 2 * 4
    mask["b.weight"][0] = False
    assert effective_paths(net, mask, log10=False) == 2 * 2 * 4
    alive = effective_mask(net, ones_mask(net))
    assert not alive["a.weight"].any() and alive["b.weight"][:, 0, 0, 0].tolist() == [True, False, True, True]


class SpaceToDepth(nn.Module):
    def __init__(self, channels_last: bool):
        super().__init__()
        self.a = nn.Conv2d(1, 2, 1)
        self.b = nn.Conv2d(8, 2, 1)
        self.channels_last = channels_last
        self.input_shape = (1, 4, 4)

    def forward(self, x):
        y = self.a(x)
        if self.channels_last:
            y = y.permute(0, 2, 3, 1)
        return self.b(y.reshape(1, 8, 2, 2)).flatten(1)


def test_a_view_that_mixes_positions_into_channels_is_refused_in_one_line():
    # (2, 4, 4) -> (8, 2, 2): each new channel is one row of one old channel, a map c' -> c' // 4
    (edge,) = build_graph(SpaceToDepth(False))["b.weight"].preds
    assert edge.units.tolist() == [0, 0, 0, 0, 1, 1, 1, 1]
    # channels last first: a new channel holds both old channels at different positions
    with pytest.raises(ValueError, match=r"^layer 'b.weight' reads units .* space-to-depth view\): no channel-level "
                                         r"layer graph$"):
        build_graph(SpaceToDepth(True))


def test_a_module_without_path_meaning_is_refused_in_one_line():
    class Soft(Act):  # softmax couples the channels: not elementwise
        def __init__(self):
            super().__init__(nn.Softmax(dim=1))

    net = Soft()
    with pytest.raises(ValueError, match=r"^flow: unsupported module Softmax at 'act': no path interpretation known"):
        effective_paths(net, ones_mask(net))
