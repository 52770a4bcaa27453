"""pai.models: every registered architecture builds, trains a step, fx-traces, and matches the
published parameter counts."""
from __future__ import annotations

import math
import operator

import pytest
import torch
import torch.fx
from torch import nn

from pai.masks import prunable_parameters
from pai.models import MODELS, create_model, model_names
from pai.models.resnet import BasicBlock, Bottleneck
from pai.models.wrn import WideBasicBlock

torch.set_num_threads(1)

EXPECTED = {
    "lenet-300-100", "lenet5", "vgg11", "vgg16", "vgg19", "resnet20", "resnet32", "resnet56",
    "resnet18", "resnet34", "resnet50", "wrn-28-2", "wrn-28-4", "wrn-28-10",
}
SHAPES = [(1, 28), (3, 32)]  # Fashion-MNIST, CIFAR
RESIDUAL = (BasicBlock, Bottleneck, WideBasicBlock)


def _build(name, channels, size, num_classes=10, seed=0):
    torch.manual_seed(seed)
    return create_model(name, num_classes=num_classes, in_channels=channels, image_size=size)


def _conv_linear_weights(model):
    return sum(m.weight.numel() for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear)))


def test_registry_lists_every_architecture():
    assert EXPECTED <= set(model_names())
    assert model_names() == sorted(model_names())
    assert all(name in MODELS for name in EXPECTED)


def test_unknown_name_raises_keyerror_listing_valid_names():
    with pytest.raises(KeyError) as err:
        create_model("resnet21")
    msg = str(err.value)
    assert "resnet21" in msg and "resnet20" in msg and "wrn-28-10" in msg


@pytest.mark.parametrize("bad", [{"num_classes": 0}, {"in_channels": -1}, {"image_size": 2.5}])
def test_bad_dimensions_raise_valueerror(bad):
    kwargs = {"num_classes": 10, "in_channels": 1, "image_size": 28, **bad}
    with pytest.raises(ValueError, match=next(iter(bad))):
        create_model("lenet5", **kwargs)


@pytest.mark.parametrize("channels,size", SHAPES)
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_forward_backward_and_fx(name, channels, size):
    model = _build(name, channels, size, num_classes=7)
    assert model.input_shape == (channels, size, size)
    assert model.num_classes == 7 and model.arch == name

    x = torch.randn(2, channels, size, size, generator=torch.Generator().manual_seed(1))
    out = model(x)
    assert out.shape == (2, 7)
    out.square().mean().backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None, f"{name}: no gradient reached {pname}"
        assert torch.isfinite(p.grad).all(), f"{name}: non-finite gradient in {pname}"
    assert any(p.grad.abs().sum() > 0 for p in prunable_parameters(model).values())

    traced = torch.fx.symbolic_trace(model)
    model.eval()
    traced.eval()
    with torch.no_grad():
        torch.testing.assert_close(traced(x), model(x))
    # one residual ``+`` per block, no more, no less
    n_adds = sum(1 for n in traced.graph.nodes
                 if n.op == "call_function" and n.target in (operator.add, torch.add))
    assert n_adds == sum(isinstance(m, RESIDUAL) for m in model.modules())


@pytest.mark.parametrize("name", sorted(EXPECTED - {"lenet5"}))
def test_digits_8x8(name):
    model = _build(name, 1, 8)
    out = model(torch.randn(2, 1, 8, 8))
    assert out.shape == (2, 10)
    out.sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())


def test_lenet5_refuses_tiny_images():
    with pytest.raises(ValueError, match="image_size >= 16"):
        create_model("lenet5", in_channels=1, image_size=8)
    assert create_model("lenet5", image_size=16)(torch.randn(2, 1, 16, 16)).shape == (2, 10)


@pytest.mark.parametrize("name,channels,size,classes,total", [
    ("lenet-300-100", 1, 28, 10, 266_610),   # 784*300+300 + 300*100+100 + 100*10+10
    ("lenet5", 1, 28, 10, 61_706),           # fc1 sees 16*5*5 = 400 features at 28 px
    ("vgg16", 3, 32, 10, 14_728_266),        # OpenLTH/SynFlow vgg16_bn
    ("resnet18", 3, 32, 10, 11_173_962),     # kuangliu/pytorch-cifar ResNet18
    ("resnet50", 3, 32, 10, 23_520_842),     # kuangliu/pytorch-cifar ResNet50
    ("wrn-28-10", 3, 32, 10, 36_479_194),    # Zagoruyko & Komodakis Table: 36.5M
    ("wrn-28-2", 3, 32, 10, 1_467_610),
])
def test_parameter_counts(name, channels, size, classes, total):
    model = create_model(name, num_classes=classes, in_channels=channels, image_size=size)
    assert sum(p.numel() for p in model.parameters()) == total


def test_resnet20_prunable_weights_include_shortcuts_and_fc():
    model = create_model("resnet20", num_classes=10, in_channels=3, image_size=32)
    # stem 432 + 3 stages of convs + two 1x1 shortcuts (512, 2048) + fc 640
    assert _conv_linear_weights(model) == 270_896
    assert sum(p.numel() for p in prunable_parameters(model).values()) == 270_896
    shortcuts = [m.shortcut for m in model.modules() if isinstance(m, BasicBlock)]
    assert sum(isinstance(s, nn.Sequential) for s in shortcuts) == 2
    assert sum(isinstance(s, nn.Identity) for s in shortcuts) == 7


@pytest.mark.parametrize("name", ["resnet20", "resnet50", "wrn-28-2"])
def test_shortcut_is_projection_exactly_when_shape_changes(name):
    model = create_model(name, in_channels=3, image_size=32)
    blocks = [m for m in model.modules() if isinstance(m, RESIDUAL)]
    assert blocks
    for block in blocks:
        conv_in = block.conv1.in_channels
        conv_out = block.conv3.out_channels if isinstance(block, Bottleneck) else block.conv2.out_channels
        strided = any(c.stride != (1, 1) for c in (block.conv1, block.conv2))
        if strided or conv_in != conv_out:
            assert isinstance(block.shortcut, nn.Sequential)
            proj = block.shortcut[0]
            assert isinstance(proj, nn.Conv2d) and proj.kernel_size == (1, 1) and proj.bias is None
            assert (proj.in_channels, proj.out_channels) == (conv_in, conv_out)
            assert proj.stride == ((2, 2) if strided else (1, 1))
            assert isinstance(block.shortcut[-1], nn.BatchNorm2d) != isinstance(block, WideBasicBlock)
        else:
            assert isinstance(block.shortcut, nn.Identity)


@pytest.mark.parametrize("name,conv_bias", [
    ("lenet5", True), ("vgg11", True), ("resnet20", False), ("resnet50", False), ("wrn-28-2", False),
])
def test_conv_conventions(name, conv_bias):
    model = create_model(name, in_channels=3, image_size=32)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert all(c.groups == 1 for c in convs)
    assert all((c.bias is not None) == conv_bias for c in convs)
    assert all(m.bias is not None for m in model.modules() if isinstance(m, nn.Linear))


def test_init_is_kaiming_normal_fan_in_with_zero_bias_and_unit_bn():
    model = _build("resnet20", 3, 32)
    widest = model.layer3[1].conv2  # 64*64*9 = 36,864 weights: std estimate good to ~0.5 %
    expected = math.sqrt(2.0 / (64 * 9))
    assert abs(widest.weight.std().item() / expected - 1) < 0.03
    assert abs(widest.weight.mean().item()) < 0.05 * expected
    mlp = _build("lenet-300-100", 1, 28)
    assert abs(mlp.hidden[0].weight.std().item() / math.sqrt(2.0 / 784) - 1) < 0.03
    for m in list(model.modules()) + list(mlp.modules()):
        if isinstance(m, (nn.Conv2d, nn.Linear)) and m.bias is not None:
            assert torch.all(m.bias == 0)
        if isinstance(m, nn.BatchNorm2d):
            assert torch.all(m.weight == 1) and torch.all(m.bias == 0)


def test_same_seed_same_weights_bit_for_bit():
    a, b, c = _build("vgg11", 1, 28, seed=3), _build("vgg11", 1, 28, seed=3), _build("vgg11", 1, 28, seed=4)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not torch.equal(sa["features.0.weight"], sc["features.0.weight"])


def test_input_size_changes_only_the_layers_it_must():
    # MLP/LeNet input widths follow the image, conv nets do not depend on it at all
    assert create_model("lenet-300-100", in_channels=3, image_size=32).hidden[0].in_features == 3072
    assert create_model("lenet5", in_channels=3, image_size=32).fc1.in_features == 16 * 6 * 6
    for name in ("vgg11", "resnet20", "wrn-28-2"):
        small = create_model(name, in_channels=1, image_size=28)
        big = create_model(name, in_channels=1, image_size=32)
        assert [p.shape for p in small.parameters()] == [p.shape for p in big.parameters()]


@pytest.mark.parametrize("name,base", [("vgg11-w0.25", "vgg11"), ("resnet20-w0.25", "resnet20"),
                                       ("resnet18-w0.125", "resnet18")])
def test_width_multiplier_scales_every_layer_and_keeps_depth(name, base):
    from pai.graph import build_graph

    narrow = create_model(name, num_classes=10, in_channels=1, image_size=28)
    full = create_model(base, num_classes=10, in_channels=1, image_size=28)
    factor = float(name.rsplit("-w", 1)[1])
    n_layers = [len(prunable_parameters(m)) for m in (narrow, full)]
    assert n_layers[0] == n_layers[1]  # same depth, same layer graph
    for (k, a), (_, b) in zip(prunable_parameters(narrow).items(), prunable_parameters(full).items()):
        assert a.shape[0] == max(1, round(b.shape[0] * factor)) or k.endswith("fc.weight")
    assert len(build_graph(narrow).layers) == len(build_graph(full).layers)
    assert narrow(torch.zeros(2, 1, 28, 28)).shape == (2, 10)


def test_width_multiplier_errors_name_the_fix():
    with pytest.raises(ValueError, match="no width option"):
        create_model("lenet5-w0.5")
    with pytest.raises(ValueError, match="width factor"):
        create_model("vgg11-w0")
    with pytest.raises(KeyError, match="valid names"):
        create_model("vgg12-w0.5")
