"""MobileNets in the CIFAR form: ``mobilenet-v1`` and ``mobilenet-v2``.

* ``mobilenet-v1``: Howard et al., "MobileNets: efficient convolutional neural networks for mobile
  vision applications", arXiv 1704.04861, 2017, Table 1: a 3x3 conv with 32 filters, then 13
  depthwise-separable blocks (3x3 depthwise conv-BN-ReLU, 1x1 pointwise conv-BN-ReLU) widening
  64 -> 1024, global average pool, ``Linear(1024, C)``.  This is the MobileNet of X-Net (Prabhu et al.,
  ECCV 2018, ``drimpossible/Deep-Expander-Networks`` ``models/mobilenet.py``), which RReg builds on.
  CIFAR form as kuangliu/pytorch-cifar ``models/mobilenet.py``: the stem has stride 1 (ImageNet: 2), so
  a 32x32 image reaches the last blocks at 2x2; ReLU, as the paper (X-Net: ReLU6).  With 1000 classes
  the parameter count is the paper's 4.2M (4,231,976, Keras ``MobileNet`` trainable parameters).
* ``mobilenet-v2``: Sandler et al., "MobileNetV2: inverted residuals and linear bottlenecks", CVPR 2018,
  Table 2: a 3x3 conv with 32 filters, 17 inverted-residual blocks (1x1 expansion by t, 3x3 depthwise,
  linear 1x1 projection; identity shortcut when stride 1 and the width is unchanged), a 1x1 conv to
  1280, global average pool, ``Linear(1280, C)``; ReLU6.  Layer shapes are torchvision's
  ``mobilenet_v2`` (3,504,872 parameters with 1000 classes); CIFAR form as kuangliu/pytorch-cifar
  ``models/mobilenetv2.py``: stem stride 1 and stride 1 in the second stage (ImageNet: 2 and 2), total
  stride 8.  Unlike kuangliu's, no projection shortcut is added where the width changes at stride 1
  (the paper and torchvision have none), and no dropout before the classifier (torchvision: 0.2).

Which MobileNet the RReg paper (Stewart et al., CVPRW 2023) trained on Tiny-ImageNet is not in its
released code.  Its Tiny-ImageNet table gives 19.33% of the parameters kept at degree 3; RReg's degree
rule with dense stem, depthwise convs and classifier keeps about 16% of ``mobilenet-v2`` (200 classes)
and 8.5% of ``mobilenet-v1``, so v2 is the closer match.

Depthwise convs are ``nn.Conv2d`` with ``groups = channels``: prunable like any conv, but a
channel-level graph sees them as a matching, not a bipartite layer -- channel-graph pruners (X-Net,
RReg) should keep them dense, as X-Net's MobileNet does; :func:`pai.graph.build_graph` lists them with
their ``groups`` (a block-diagonal channel graph).

``width=`` (the ``-w<factor>`` suffix) is the paper's width multiplier alpha; here it scales every
layer, the last ones included (the papers keep 1024 / 1280 for alpha < 1), rounded as
:func:`pai.models.scaled` (torchvision rounds v2 widths to multiples of 8).
"""
from __future__ import annotations

from typing import List

import torch
from torch import nn

from pai.models import init_weights, register_width_model, scaled

# Howard et al. Table 1 after the stem: (pointwise output width, depthwise stride); CIFAR strides.
V1_PLAN = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
           (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1)]
# Sandler et al. Table 2: (expansion t, width c, repeats n, first stride s); CIFAR: s = 1 in stage 2.
V2_PLAN = [(1, 16, 1, 1), (6, 24, 2, 1), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]


def _conv_bn(cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1, act=nn.ReLU) -> List[nn.Module]:
    layers = [nn.Conv2d(cin, cout, kernel, stride, padding=kernel // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]
    return layers + ([act()] if act is not None else [])


class MobileNetV1(nn.Module):
    """``features`` (stem + depthwise-separable blocks, one flat Sequential) -> pool -> ``fc``."""

    def __init__(self, num_classes: int, in_channels: int, width: float = 1.0):
        super().__init__()
        channels = scaled(32, width)
        layers = _conv_bn(in_channels, channels, 3)
        for out, stride in V1_PLAN:
            out = scaled(out, width)
            layers += _conv_bn(channels, channels, 3, stride, groups=channels)  # depthwise
            layers += _conv_bn(channels, out, 1)  # pointwise
            channels = out
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, num_classes)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.features(x)), 1))


class InvertedResidual(nn.Module):
    """1x1 expand (t > 1) - 3x3 depthwise - linear 1x1 project, + identity when shapes match."""

    def __init__(self, cin: int, cout: int, stride: int, expansion: int):
        super().__init__()
        hidden = cin * expansion
        layers = _conv_bn(cin, hidden, 1, act=nn.ReLU6) if expansion != 1 else []
        layers += _conv_bn(hidden, hidden, 3, stride, groups=hidden, act=nn.ReLU6)
        layers += _conv_bn(hidden, cout, 1, act=None)  # linear bottleneck
        self.conv = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout
        self.shortcut = nn.Identity() if self.residual else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv(x)
        # ``residual`` is fixed at construction, so fx traces a single branch
        return out + self.shortcut(x) if self.residual else out


class MobileNetV2(nn.Module):
    """``features`` (stem, inverted residuals, 1x1 conv to 1280) -> pool -> ``fc``."""

    def __init__(self, num_classes: int, in_channels: int, width: float = 1.0):
        super().__init__()
        channels = scaled(32, width)
        layers: List[nn.Module] = [nn.Sequential(*_conv_bn(in_channels, channels, 3, act=nn.ReLU6))]
        for t, c, n, s in V2_PLAN:
            for i in range(n):
                layers.append(InvertedResidual(channels, scaled(c, width), s if i == 0 else 1, t))
                channels = scaled(c, width)
        last = scaled(1280, width)
        layers.append(nn.Sequential(*_conv_bn(channels, last, 1, act=nn.ReLU6)))
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(last, num_classes)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.features(x)), 1))


@register_width_model("mobilenet-v1")
def mobilenet_v1(num_classes: int, in_channels: int, image_size: int, width: float = 1.0) -> nn.Module:
    """Howard et al. 2017 in the CIFAR form (stem stride 1); any image size >= 1."""
    return MobileNetV1(num_classes, in_channels, width)


@register_width_model("mobilenet-v2")
def mobilenet_v2(num_classes: int, in_channels: int, image_size: int, width: float = 1.0) -> nn.Module:
    """Sandler et al. 2018 in the CIFAR form (total stride 8); any image size >= 1."""
    return MobileNetV2(num_classes, in_channels, width)
