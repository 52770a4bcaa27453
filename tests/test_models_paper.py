"""The paper-scale models: MobileNet v1/v2, ResNet-101/152, the torchvision-layout ResNets, WRN-40-k.

Big models are built on the ``meta`` device (shapes only, no memory, no arithmetic), so building,
tracing and counting ResNet-152 or WRN-40-14 costs a fraction of a second; narrow or small variants
run a real forward and backward pass."""
from __future__ import annotations

import functools
import operator

import pytest
import torch
import torch.fx
import torchvision
from torch import nn

from pai.graph import INPUT, build_graph
from pai.masks import prunable_parameters
from pai.models import WIDTH_MODELS, create_model, model_names, parse_name
from pai.models.mobilenet import InvertedResidual
from pai.models.resnet import BasicBlock, Bottleneck
from pai.models.wrn import WideBasicBlock

torch.set_num_threads(1)

NEW = ["mobilenet-v1", "mobilenet-v2", "resnet101", "resnet152", "wrn-40-2", "wrn-40-4", "wrn-40-14",
       *(f"resnet{d}-tv" for d in (18, 34, 50, 101, 152))]
SHAPES = [(3, 32), (3, 64), (1, 28)]  # CIFAR, Tiny-ImageNet, Fashion-MNIST
SHORTCUTS = {"resnet18": 3, "resnet34": 3, "resnet50": 4, "resnet101": 4, "resnet152": 4, "wrn": 3, "mobilenet": 0}
TORCHVISION_TOTALS = {  # torchvision.models.resnet*(num_classes=1000) parameter counts
    "resnet18": 11_689_512, "resnet34": 21_797_672, "resnet50": 25_557_032,
    "resnet101": 44_549_160, "resnet152": 60_192_808,
}


def _meta(name, channels=3, size=32, num_classes=10):
    with torch.device("meta"):
        return create_model(name, num_classes=num_classes, in_channels=channels, image_size=size)


@functools.lru_cache(maxsize=None)
def _meta_shared(name, channels):
    """One meta-device build per (model, channels): the builders do not depend on the image size."""
    return _meta(name, channels, 32, num_classes=200)


def _residual_blocks(model):
    return sum(isinstance(m, (BasicBlock, Bottleneck, WideBasicBlock)) or
               (isinstance(m, InvertedResidual) and m.residual) for m in model.modules())


def _n_params(model):
    return sum(p.numel() for p in model.parameters())


def test_registered_with_width_options():
    assert set(NEW) <= set(model_names())
    for name in ("mobilenet-v1", "mobilenet-v2", "resnet101", "resnet152-tv"):
        assert name in WIDTH_MODELS
    assert parse_name("resnet18-tv-w0.5") == ("resnet18-tv", 0.5)
    narrow = create_model("mobilenet-v2-w0.5", num_classes=10, in_channels=3, image_size=32)
    assert narrow.fc.in_features == 640 and narrow.features[0][0].out_channels == 16
    with pytest.raises(ValueError, match="no width option"):
        create_model("wrn-40-2-w0.5")


@pytest.mark.parametrize("channels,size", SHAPES)
@pytest.mark.parametrize("name", NEW)
def test_builds_and_traces_through_the_layer_graph(name, channels, size):
    model = _meta_shared(name, channels)
    grouped = name.startswith("mobilenet")
    graph = build_graph(model, (channels, size, size), allow_grouped=grouped)  # shape-propagates a forward pass
    assert graph.names == list(prunable_parameters(model))
    assert [tuple(p.shape) for p in prunable_parameters(model).values()] == [l.shape for l in graph]
    for layer in graph:
        assert layer.preds and layer.succs, layer.name
        for e in layer.preds:
            if e.src != INPUT:
                assert graph[e.src].out_units * e.flatten == layer.in_units, layer.name
    family = next(k for k in SHORTCUTS if name.startswith(k))
    assert sum(l.is_shortcut for l in graph) == SHORTCUTS[family]
    assert graph.first_layers() == [0] and graph.last_layers() == [len(graph) - 1]
    assert graph[len(graph) - 1].out_units == 200
    if (channels, size) != (3, 32):
        return
    traced = torch.fx.symbolic_trace(model)  # one residual ``+`` per residual block
    adds = sum(n.op == "call_function" and n.target in (operator.add, torch.add) for n in traced.graph.nodes)
    assert adds == _residual_blocks(model)
    if grouped:  # listed with their groups (block-diagonal channel graph), with or without allow_grouped
        assert sum(l.groups > 1 for l in graph) == (13 if name == "mobilenet-v1" else 17)
        assert [l.groups for l in build_graph(model, (channels, size, size))] == [l.groups for l in graph]


@pytest.mark.parametrize("name", ["mobilenet-v1", "mobilenet-v2", "resnet18-tv", "wrn-40-2", "resnet101-w0.125",
                                  "resnet152-tv-w0.0625"])
@pytest.mark.parametrize("channels,size", [(3, 32), (3, 64)])
def test_forward_backward_and_fx_on_real_tensors(name, channels, size):
    torch.manual_seed(0)
    model = create_model(name, num_classes=7, in_channels=channels, image_size=size)
    x = torch.randn(2, channels, size, size, generator=torch.Generator().manual_seed(1))
    out = model(x)
    assert out.shape == (2, 7)
    out.square().mean().backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), pname
    traced = torch.fx.symbolic_trace(model)
    model.eval()
    traced.eval()
    with torch.no_grad():
        torch.testing.assert_close(traced(x), model(x))


@pytest.mark.parametrize("depth", [18, 34, 50, 101, 152])
def test_torchvision_layout_matches_torchvision(depth):
    name = f"resnet{depth}"
    ours = _meta(f"{name}-tv", 3, 224, num_classes=1000)
    with torch.device("meta"):
        theirs = getattr(torchvision.models, name)(weights=None)
    assert [tuple(p.shape) for p in ours.parameters()] == [tuple(p.shape) for p in theirs.parameters()]
    assert _n_params(ours) == TORCHVISION_TOTALS[name]
    # the CIFAR-stem variant differs only in the stem: 3x3x3x64 instead of 7x7x3x64 weights
    assert _n_params(_meta(name, 3, 32, num_classes=1000)) == TORCHVISION_TOTALS[name] - 7 * 7 * 3 * 64 + 3 * 3 * 3 * 64


def test_resnet101_conv_linear_weights_and_cifar_counts():
    conv_linear = lambda m: sum(x.weight.numel() for x in m.modules() if isinstance(x, (nn.Conv2d, nn.Linear)))
    assert conv_linear(_meta("resnet101-tv", 3, 224, num_classes=1000)) == 44_442_816
    # 10 classes: torchvision's count - 2048 * 990 fc weights - 990 biases, with the 3x3 stem
    assert _n_params(_meta("resnet101", 3, 32)) == 44_549_160 - 2048 * 990 - 990 - 9408 + 1728 == 42_512_970
    assert _n_params(_meta("resnet152", 3, 32)) == 60_192_808 - 2048 * 990 - 990 - 9408 + 1728


def test_torchvision_stem_reaches_the_last_stage_at_1x1_on_cifar():
    # RReg's CIFAR ResNets: 32 -> 16 (7x7/2) -> 8 (max-pool) -> 8, 4, 2, 1
    graph = build_graph(_meta("resnet18-tv", 3, 32))
    assert graph["conv1.weight"].kernel == (7, 7) and graph["conv1.weight"].out_spatial == (16, 16)
    assert graph["layer1.0.conv1.weight"].in_spatial == (8, 8)
    assert graph["layer4.1.conv2.weight"].out_spatial == (1, 1)
    assert build_graph(_meta("resnet18", 3, 32))["layer4.1.conv2.weight"].out_spatial == (4, 4)


def test_mobilenet_parameter_counts():
    # Howard et al. 2017 Table 1 "4.2M" = 4,231,976 trainable parameters of Keras' MobileNet(alpha=1)
    assert _n_params(_meta("mobilenet-v1", 3, 224, num_classes=1000)) == 4_231_976
    ours = _meta("mobilenet-v2", 3, 224, num_classes=1000)
    with torch.device("meta"):
        theirs = torchvision.models.mobilenet_v2(weights=None)
    assert [tuple(p.shape) for p in ours.parameters()] == [tuple(p.shape) for p in theirs.parameters()]
    assert _n_params(ours) == 3_504_872


@pytest.mark.parametrize("name,millions", [("wrn-40-4", 8.9), ("wrn-40-2", 2.2), ("wrn-28-10", 36.5)])
def test_wrn_parameter_counts_match_the_paper(name, millions):
    # Zagoruyko & Komodakis 2016, Table 4 / Sec. 3 (CIFAR-10)
    assert round(_n_params(_meta(name)) / 1e6, 1) == millions


def test_wrn_40_14_widths():
    model = _meta("wrn-40-14", 3, 64, num_classes=200)
    assert [model.layer1[0].conv1.out_channels, model.layer2[0].conv1.out_channels,
            model.layer3[0].conv1.out_channels] == [224, 448, 896]
    assert len(model.layer1) == len(model.layer2) == len(model.layer3) == 6 and model.fc.in_features == 896
