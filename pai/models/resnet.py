"""Residual networks for small images: the CIFAR family (ResNet-20/32/56) and the ImageNet family
(ResNet-18/34/50/101/152) with a CIFAR stem or, as ``resnet18-tv`` ... ``resnet152-tv``, torchvision's.

He, Zhang, Ren & Sun, "Deep residual learning for image recognition", CVPR 2016.

* ``resnet20/32/56``: Sec. 4.2 of the paper -- a 3x3 stem with 16 filters, three stages of
  n = (depth - 2) / 6 basic blocks with 16/32/64 filters, global average pool, ``Linear(64, C)``.
  Follows the lottery ResNet of OpenLTH (``cifar_resnet``) and SynFlow (``Models/lottery_resnet.py``):
  a 1x1 projection conv + BN on the shortcut whenever stride or width change (the paper's
  "option B"; the paper's CIFAR runs used parameter-free option A).  The pruning papers count these
  shortcut convs as prunable (resnet20, C=10: 270,896 conv/linear weights).
* ``resnet18/34/50/101/152``: the ImageNet stages of He et al. Table 1 -- [2,2,2,2], [3,4,6,3] basic
  blocks, [3,4,6,3], [3,4,23,3], [3,8,36,3] Bottlenecks (x4 expansion) -- with widths 64..512 and the
  CIFAR stem of kuangliu/pytorch-cifar used by the PaI papers (SNIP/GraSP/ERK code bases): 3x3
  stride-1 conv, no max-pool.  The Bottleneck strides in its 3x3 conv (torchvision "v1.5").
* ``resnet18-tv`` ... ``resnet152-tv``: the same stages behind torchvision's ImageNet stem, a 7x7
  stride-2 conv and a 3x3 stride-2 max-pool (``stem="imagenet"``).  The RReg code
  (SamsungLabs/ExpandersPruning, ``models/resnet/resnet.py``, adapted from torchvision) builds its
  ResNets this way even for 32x32 CIFAR images, which then reach the last stage at 1x1.  With 1000
  classes the parameter shapes are torchvision's (``resnet101``: 44,549,160 parameters).
  Initialisation stays :func:`pai.models.init_weights` (torchvision: fan-out Kaiming for convs,
  PyTorch's default for the classifier).

Deviations from the reference code, none of which changes a 32x32 forward pass:
``AdaptiveAvgPool2d(1)`` replaces ``avg_pool2d(out, out.size(3))`` (data-dependent, not
fx-traceable) and ``avg_pool2d(out, 4)`` (32 px only); SynFlow's shortcut conv hard-codes
stride 2, here it takes the block's stride.
"""
from __future__ import annotations

from typing import List, Sequence, Type, Union

import torch
import torch.nn.functional as F
from torch import nn

from pai.models import init_weights, register_width_model, scaled


def _shortcut(in_planes: int, out_planes: int, stride: int) -> nn.Module:
    """Projection (1x1 conv + BN) when the shape changes, identity otherwise ("option B")."""
    if stride == 1 and in_planes == out_planes:
        return nn.Identity()
    return nn.Sequential(nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False),
                         nn.BatchNorm2d(out_planes))


class BasicBlock(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN, plus shortcut, then ReLU (post-activation, He et al. Fig. 2)."""

    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = _shortcut(in_planes, planes, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class Bottleneck(nn.Module):
    """1x1 reduce - 3x3 (strided) - 1x1 expand (x4), each with BN; He et al. Fig. 5 right."""

    expansion = 4

    def __init__(self, in_planes: int, planes: int, stride: int = 1):
        super().__init__()
        out_planes = planes * self.expansion
        self.conv1 = nn.Conv2d(in_planes, planes, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out_planes, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_planes)
        self.shortcut = _shortcut(in_planes, out_planes, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return F.relu(out + self.shortcut(x))


Block = Type[Union[BasicBlock, Bottleneck]]


STEMS = ("cifar", "imagenet")


class ResNet(nn.Module):
    """Stem ``conv1``/``bn1`` (+ ``maxpool``), stages ``layer1..layerK``, global pool, ``fc``.

    Stage ``i`` has ``num_blocks[i]`` blocks of width ``widths[i]``; every stage after the first
    halves the resolution in its first block.  ``stem="cifar"``: a 3x3 stride-1 conv;
    ``stem="imagenet"``: torchvision's 7x7 stride-2 conv and 3x3 stride-2 max-pool.
    """

    def __init__(self, block: Block, num_blocks: Sequence[int], widths: Sequence[int],
                 num_classes: int, in_channels: int, stem: str = "cifar"):
        super().__init__()
        if len(num_blocks) != len(widths):
            raise ValueError(f"num_blocks {list(num_blocks)} and widths {list(widths)} differ in length")
        if stem not in STEMS:
            raise ValueError(f"stem must be one of {STEMS}, got {stem!r}")
        if stem == "cifar":
            self.conv1 = nn.Conv2d(in_channels, widths[0], kernel_size=3, stride=1, padding=1, bias=False)
        else:
            self.conv1 = nn.Conv2d(in_channels, widths[0], kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1) if stem == "imagenet" else None
        planes_in = widths[0]
        for i, (n, width) in enumerate(zip(num_blocks, widths)):
            blocks: List[nn.Module] = []
            for j in range(n):
                stride = 2 if (i > 0 and j == 0) else 1
                blocks.append(block(planes_in, width, stride))
                planes_in = width * block.expansion
            self.add_module(f"layer{i + 1}", nn.Sequential(*blocks))
        self.num_stages = len(num_blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(planes_in, num_classes)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        if self.maxpool is not None:  # fixed at construction: fx traces one branch
            out = self.maxpool(out)
        for i in range(self.num_stages):  # static count: fx unrolls it
            out = getattr(self, f"layer{i + 1}")(out)
        out = torch.flatten(self.pool(out), 1)
        return self.fc(out)


def cifar_resnet(depth: int, num_classes: int, in_channels: int, width: int = 16) -> ResNet:
    """He et al. Sec. 4.2: depth = 6n + 2, stages of n basic blocks with width, 2x, 4x filters."""
    if depth < 8 or (depth - 2) % 6:
        raise ValueError(f"CIFAR ResNet depth must be 6n+2 with n >= 1 (20, 32, 44, 56, 110), got {depth}")
    n = (depth - 2) // 6
    return ResNet(BasicBlock, [n] * 3, [width, 2 * width, 4 * width], num_classes, in_channels)


_CIFAR_DEPTHS = (20, 32, 56)
_IMAGENET_PLANS = {
    "resnet18": (BasicBlock, [2, 2, 2, 2]),
    "resnet34": (BasicBlock, [3, 4, 6, 3]),
    "resnet50": (Bottleneck, [3, 4, 6, 3]),
    "resnet101": (Bottleneck, [3, 4, 23, 3]),
    "resnet152": (Bottleneck, [3, 8, 36, 3]),
}
TORCHVISION_SUFFIX = "-tv"


def _cifar_builder(depth: int):
    def build(num_classes: int, in_channels: int, image_size: int, width: float = 1.0) -> nn.Module:
        return cifar_resnet(depth, num_classes, in_channels, width=scaled(16, width))

    build.__name__ = f"resnet{depth}"
    return build


def _imagenet_builder(name: str, stem: str = "cifar"):
    block, num_blocks = _IMAGENET_PLANS[name]

    def build(num_classes: int, in_channels: int, image_size: int, width: float = 1.0) -> nn.Module:
        return ResNet(block, num_blocks, [scaled(c, width) for c in (64, 128, 256, 512)], num_classes, in_channels,
                      stem=stem)

    build.__name__ = name + ("_tv" if stem == "imagenet" else "")
    return build


for _depth in _CIFAR_DEPTHS:
    register_width_model(f"resnet{_depth}")(_cifar_builder(_depth))
for _name in _IMAGENET_PLANS:
    register_width_model(_name)(_imagenet_builder(_name))
    register_width_model(_name + TORCHVISION_SUFFIX)(_imagenet_builder(_name, stem="imagenet"))
