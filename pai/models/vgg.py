"""VGG-11/16/19 with batch norm in the CIFAR form of the lottery-ticket literature.

Simonyan & Zisserman, "Very deep convolutional networks for large-scale image recognition",
ICLR 2015 (configurations A, D, E), as adapted to CIFAR-10 by Frankle & Carbin (ICLR 2019;
OpenLTH ``cifar_vgg``) and used by SynFlow (Tanaka et al., NeurIPS 2020; ``Models/lottery_vgg.py``,
the ``vgg*_bn`` builders): every conv is 3x3, padding 1, *with* bias, followed by BatchNorm and
ReLU; the three-FC ImageNet head is replaced by one ``Linear(512, C)``.

Deviations from the official code, both chosen so that 28x28 (Fashion-MNIST) and 8x8 inputs work
while 32x32 CIFAR computes exactly the same function:

* ``'M'`` is ``MaxPool2d(2, ceil_mode=True)``: 28 -> 14 -> 7 -> 4 -> 2 instead of failing at 7/2;
* the final ``AvgPool2d(2)`` (which assumes a 2x2 map, i.e. 32 px) is ``AdaptiveAvgPool2d(1)``.
"""
from __future__ import annotations

from typing import List, Sequence, Union

import torch
from torch import nn

from pai.models import init_weights, register_width_model, scaled

# OpenLTH/SynFlow plans: four 'M', the last conv group is pooled by the head.
PLANS = {
    "vgg11": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512],
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512],
    "vgg19": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M",
              512, 512, 512, 512, "M", 512, 512, 512, 512],
}


class VGG(nn.Module):
    """``features`` (flat Sequential of conv-BN-ReLU and pools) -> global average -> ``fc``."""

    def __init__(self, plan: Sequence[Union[int, str]], num_classes: int, in_channels: int):
        super().__init__()
        layers: List[nn.Module] = []
        channels = in_channels
        for spec in plan:
            if spec == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2, ceil_mode=True))
            else:
                layers += [nn.Conv2d(channels, spec, kernel_size=3, padding=1, bias=True),
                           nn.BatchNorm2d(spec), nn.ReLU()]
                channels = spec
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, num_classes)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.features(x))
        return self.fc(torch.flatten(x, 1))


def _builder(name: str):
    def build(num_classes: int, in_channels: int, image_size: int, width: float = 1.0) -> nn.Module:
        plan = [c if c == "M" else scaled(c, width) for c in PLANS[name]]
        return VGG(plan, num_classes, in_channels)

    build.__name__ = name.replace("-", "_")
    build.__doc__ = f"{name} with BatchNorm (OpenLTH/SynFlow lottery VGG); any image size >= 1."
    return build


for _name in PLANS:
    register_width_model(_name)(_builder(_name))
