"""Wide residual networks WRN-d-k: Zagoruyko & Komodakis, "Wide Residual Networks", BMVC 2016.

Follows the authors' code (szagoruyko/wide-residual-networks, ``pytorch/resnet.py``) and the
common port xternalz/WideResNet-pytorch used by the PaI/DST literature (RigL, ITOP, PAGS/PEGS):

* a 3x3 stem conv with 16 filters, then three groups of n = (d - 4) / 6 *pre-activation* wide
  basic blocks (BN-ReLU-conv3x3-BN-ReLU-conv3x3, Fig. 1c / "B(3,3)") with 16k, 32k, 64k filters,
  strides 1, 2, 2; a final BN-ReLU, global average pool and ``Linear(64k, C)``;
* when a block changes shape, the shortcut is a 1x1 conv (no BN: the input is already normalised)
  applied to the *pre-activated* input, as in the official code; otherwise the identity on the raw
  input;
* no dropout (the paper's default for the CIFAR results without dropout; ``dropout`` argument of
  :class:`WideResNet` re-enables it between the two convs).

Deviations: ``AdaptiveAvgPool2d(1)`` instead of ``avg_pool2d(8)`` so 28x28 and 8x8 inputs work
(identical at 32 px); the projection conv sits inside ``nn.Sequential`` under ``shortcut`` so all
residual models of ``pai`` expose ``shortcut.0`` as their projection.
"""
from __future__ import annotations

from typing import List

import torch
import torch.nn.functional as F
from torch import nn

from pai.models import init_weights, register_model


class WideBasicBlock(nn.Module):
    """Pre-activation wide basic block; the projection (if any) sees ``relu(bn1(x))``."""

    def __init__(self, in_planes: int, planes: int, stride: int, dropout: float = 0.0):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = nn.Conv2d(in_planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=1, padding=1, bias=False)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.projects = stride != 1 or in_planes != planes
        if self.projects:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, planes, kernel_size=1, stride=stride, bias=False))
        else:
            self.shortcut = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        o = F.relu(self.bn1(x))
        out = self.conv1(o)
        out = self.conv2(self.dropout(F.relu(self.bn2(out))))
        # ``projects`` is fixed at construction, so fx traces a single branch
        return out + self.shortcut(o if self.projects else x)


class WideResNet(nn.Module):
    """WRN-depth-k: ``conv1``, groups ``layer1..layer3``, ``bn``, global pool, ``fc``."""

    def __init__(self, depth: int, widen: int, num_classes: int, in_channels: int,
                 dropout: float = 0.0):
        super().__init__()
        if depth < 10 or (depth - 4) % 6:
            raise ValueError(f"WRN depth must be 6n+4 with n >= 1 (10, 16, 22, 28, 40), got {depth}")
        if widen < 1:
            raise ValueError(f"WRN widening factor must be >= 1, got {widen}")
        n = (depth - 4) // 6
        widths = [16, 16 * widen, 32 * widen, 64 * widen]
        self.conv1 = nn.Conv2d(in_channels, widths[0], kernel_size=3, stride=1, padding=1, bias=False)
        planes_in = widths[0]
        groups = []
        for width, stride in zip(widths[1:], (1, 2, 2)):
            blocks: List[nn.Module] = []
            for j in range(n):
                blocks.append(WideBasicBlock(planes_in, width, stride if j == 0 else 1, dropout))
                planes_in = width
            groups.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = groups
        self.bn = nn.BatchNorm2d(planes_in)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(planes_in, num_classes)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(x)
        out = self.layer3(self.layer2(self.layer1(out)))
        out = F.relu(self.bn(out))
        return self.fc(torch.flatten(self.pool(out), 1))


def _builder(depth: int, widen: int):
    def build(num_classes: int, in_channels: int, image_size: int) -> nn.Module:
        return WideResNet(depth, widen, num_classes, in_channels)

    build.__name__ = f"wrn_{depth}_{widen}"
    return build


# WRN-28-k: the CIFAR nets of the paper (Table 4) and of RReg's Tiny-ImageNet table (k = 4, 10);
# WRN-40-k: the paper's WRN-40-4 (Table 4), WRN-40-2 (common in the DST literature) and RReg's WRN-40-14.
for _depth, _widen in ((28, 2), (28, 4), (28, 10), (40, 2), (40, 4), (40, 14)):
    register_model(f"wrn-{_depth}-{_widen}")(_builder(_depth, _widen))
