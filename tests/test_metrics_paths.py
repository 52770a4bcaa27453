"""pai.metrics.paths: path counts, dead weights, effective nodes and the path-kernel trace."""
from __future__ import annotations

import copy
import itertools
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from pai.masks import ones_mask, prunable_parameters
from pai.metrics.paths import (dead_weights, effective_mask, effective_nodes, effective_paths, layer_width,
                               path_kernel_trace)
from pai.models import create_model

torch.set_num_threads(1)


class Chain(nn.Module):
    def __init__(self, widths, bias=False):
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(a, b, bias=bias) for a, b in zip(widths[:-1], widths[1:]))
        self.input_shape = (widths[0],)

    def forward(self, x):
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = F.relu(x)
        return x


class TinyRes(nn.Module):
    """x -> fc1 -> relu -> (+ x) -> fc2: 2*2*1 paths through fc1 plus 2*1 along the skip."""

    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(2, 2, bias=False), nn.Linear(2, 1, bias=False)
        self.input_shape = (2,)

    def forward(self, x):
        return self.fc2(F.relu(self.fc1(x)) + x)


def _names(model):
    return list(prunable_parameters(model))


def test_dense_chain_counts_product_of_widths():
    net = Chain([4, 3, 5, 2])
    assert effective_paths(net, ones_mask(net), log10=False) == 120.0
    assert effective_paths(net, ones_mask(net)) == pytest.approx(math.log10(120), abs=1e-12)


def test_deep_chain_neither_overflows_nor_underflows():
    net = Chain([64] * 201)  # 64**201 ~ 1e363 paths: past float64
    mask = ones_mask(net)
    assert effective_paths(net, mask) == pytest.approx(201 * math.log10(64), rel=1e-12)
    assert effective_paths(net, mask, log10=False) == math.inf
    c, L = 2.0 ** -10, 200  # exact in float32, the parameters' dtype
    with torch.no_grad():
        for p in net.parameters():
            p.fill_(c)
    # R = 64**(L+1) c**(2L); Tr = sum_paths sum_{e in p} prod_{e' != e} c**2 = 64**(L+1) L c**(2(L-1))
    expect = (L + 1) * math.log10(64) + math.log10(L) + 2 * (L - 1) * math.log10(c)
    assert path_kernel_trace(net, mask) == pytest.approx(expect, rel=1e-10)


def test_cut_layer_kills_every_path_and_weight():
    net = Chain([4, 3, 5, 2])
    mask = ones_mask(net)
    mask["layers.1.weight"][:] = False
    assert effective_paths(net, mask) == -math.inf and effective_paths(net, mask, log10=False) == 0.0
    dead = dead_weights(net, mask)
    assert all(torch.equal(dead[k], mask[k]) for k in mask)
    assert path_kernel_trace(net, mask) == -math.inf
    assert effective_nodes(net, mask)["total"] == 0


def test_identity_skip_paths_are_counted():
    net = TinyRes()
    assert effective_paths(net, ones_mask(net), log10=False) == 6.0
    mask = ones_mask(net)
    mask["fc1.weight"][:] = False  # only the skip survives: 2 paths
    assert effective_paths(net, mask, log10=False) == 2.0
    assert dead_weights(net, mask)["fc2.weight"].sum() == 0


def _sum_pool_copy(model, mask):
    """Literal NPB copynet: float64, weights = mask, no bias, BN = identity, average pool = sum."""
    net = copy.deepcopy(model).double().eval()
    for name, module in list(net.named_modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, nn.BatchNorm2d):
                setattr(module, child_name, nn.Identity())
            elif isinstance(child, nn.AdaptiveAvgPool2d):
                setattr(module, child_name, _SumPool())
    params = dict(net.named_parameters())
    with torch.no_grad():
        for k, m in mask.items():
            params[k].copy_(m.double())
        for k, p in params.items():
            if k not in mask:
                p.zero_()
    return net


class _SumPool(nn.Module):
    def forward(self, x):
        return x.sum(dim=(2, 3), keepdim=True)


@pytest.mark.parametrize("name,density", [("resnet20", 1.0), ("resnet20", 0.3), ("vgg11", 0.2), ("lenet5", 0.5)])
def test_count_matches_literal_copynet(name, density):
    torch.manual_seed(0)
    shape = (1, 16) if name == "lenet5" else (3, 8)
    model = create_model(name, num_classes=10, in_channels=shape[0], image_size=shape[1])
    g = torch.Generator().manual_seed(1)
    mask = {k: torch.rand(p.shape, generator=g) < density for k, p in prunable_parameters(model).items()}
    with torch.no_grad():
        ref = float(_sum_pool_copy(model, mask)(torch.ones(1, *shape, shape[1], dtype=torch.float64)).sum())
    assert effective_paths(model, mask) == pytest.approx(math.log10(ref), rel=1e-12)


def test_effective_mask_equals_npb_gradient_criterion():
    """NPB: a kept weight is effective iff d sum(f(ones)) / dw != 0 in the all-ones float64 copy."""
    torch.manual_seed(0)
    model = create_model("resnet20", num_classes=10, in_channels=3, image_size=8)
    g = torch.Generator().manual_seed(4)
    mask = {k: torch.rand(p.shape, generator=g) < 0.08 for k, p in prunable_parameters(model).items()}
    net = _sum_pool_copy(model, mask)
    net(torch.ones(1, 3, 8, 8, dtype=torch.float64)).sum().backward()
    params = dict(net.named_parameters())
    alive = effective_mask(model, mask)
    dead = dead_weights(model, mask)
    assert sum(int(d.sum()) for d in dead.values()) > 0  # the case is not trivial
    for k in mask:
        assert torch.equal(alive[k], (params[k].grad != 0) & mask[k]), k


def test_dead_weights_and_effective_nodes_by_hand():
    net = Chain([3, 4, 2])
    mask = ones_mask(net)
    mask["layers.0.weight"][0, :] = False  # hidden unit 0: no input -> its outgoing weights die
    mask["layers.1.weight"][:, 1] = False  # hidden unit 1: no output -> its incoming weights die
    dead = dead_weights(net, mask)
    assert dead["layers.0.weight"].sum() == 3 and dead["layers.0.weight"][1].all()
    assert dead["layers.1.weight"].sum() == 2 and dead["layers.1.weight"][:, 0].all()
    alive = effective_mask(net, mask)
    assert all(torch.equal(alive[k] | dead[k], mask[k]) and not (alive[k] & dead[k]).any() for k in mask)
    nodes = effective_nodes(net, mask)
    assert nodes["layers"]["layers.0.weight"] == {"in": 3, "out": 2}
    assert nodes["layers"]["layers.1.weight"] == {"in": 2, "out": 2}
    assert nodes["total"] == 3 + 2 + 2 and nodes["params"] == 3 * 2 + 2 * 2


def test_path_kernel_trace_brute_force():
    torch.manual_seed(3)
    widths = [3, 4, 3, 2]
    net = Chain(widths)
    mask = {k: torch.rand(p.shape) < 0.7 for k, p in prunable_parameters(net).items()}
    W = [(p.detach().double() ** 2) * mask[k] for k, p in prunable_parameters(net).items()]
    tr = 0.0
    for path in itertools.product(*[range(w) for w in widths]):
        edges = [W[l][path[l + 1], path[l]] for l in range(len(W))]
        for i in range(len(edges)):
            tr += float(math.prod(e for j, e in enumerate(edges) if j != i)) if edges[i] > 0 else 0.0
    assert path_kernel_trace(net, mask, log=False) == pytest.approx(tr, rel=1e-12)
    assert path_kernel_trace(net, mask) == pytest.approx(math.log10(tr), rel=1e-12)


def test_path_kernel_trace_matches_phew_literal_on_cnn():
    """PHEW: square every parameter of a copy, eval mode, masked forward on ones, sum of weight grads."""
    torch.manual_seed(0)
    model = create_model("resnet20", num_classes=10, in_channels=3, image_size=8)
    for m in model.modules():  # non-trivial BN statistics and affine parameters
        if isinstance(m, nn.BatchNorm2d):
            m.running_var.uniform_(0.5, 2.0)
            m.running_mean.uniform_(-0.1, 0.1)
            nn.init.uniform_(m.weight, 0.5, 1.5)
            nn.init.uniform_(m.bias, -0.2, 0.2)
    g = torch.Generator().manual_seed(2)
    mask = {k: torch.rand(p.shape, generator=g) < 0.5 for k, p in prunable_parameters(model).items()}
    net = copy.deepcopy(model).double().eval()
    with torch.no_grad():
        for k, p in net.named_parameters():
            p.copy_(p ** 2 * (mask[k] if k in mask else 1))
    net(torch.ones(1, 3, 8, 8, dtype=torch.float64)).sum().backward()
    ref = sum(float((p.grad * mask[k]).sum()) for k, p in net.named_parameters() if k in mask)
    assert path_kernel_trace(model, mask, log=False) == pytest.approx(ref, rel=1e-10)


def test_layer_width_and_errors():
    net = Chain([4, 3, 2])
    mask = ones_mask(net)
    mask["layers.0.weight"][1, :] = False
    mask["layers.0.weight"][:, 2] = False
    w = layer_width(mask)
    assert w["layers.0.weight"] == {"out": 2, "in": 3, "out_total": 3, "in_total": 4}
    assert w["layers.1.weight"]["out"] == 2

    class Sig(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 2)
            self.input_shape = (3,)

        def forward(self, x):
            return self.fc(torch.sigmoid(x))

    class Square(Sig):
        def forward(self, x):
            return self.fc(x * x)

    # an elementwise activation passes as ReLU does; a product of two flows has no path meaning
    assert effective_paths(Sig(), ones_mask(Sig()), log10=False) == 6
    with pytest.raises(ValueError, match="multiplies two flows"):
        effective_paths(Square(), ones_mask(Square()))
    with pytest.raises(ValueError, match="input_shape"):
        effective_paths(nn.Sequential(nn.Linear(2, 2)), {"0.weight": torch.ones(2, 2, dtype=torch.bool)})
    with pytest.raises(ValueError, match="layers.1.weight"):
        effective_paths(net, {"layers.0.weight": mask["layers.0.weight"]})
