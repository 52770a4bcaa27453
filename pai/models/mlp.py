"""LeNet-300-100: the fully connected network of LeCun et al., "Gradient-based learning applied to
document recognition", Proc. IEEE 1998 (784-300-100-10), as used by SNIP (Lee et al., ICLR 2019),
the Lottery Ticket Hypothesis (Frankle & Carbin, ICLR 2019; OpenLTH ``mnist_lenet_300_100``) and
SynFlow (Tanaka et al., NeurIPS 2020; ``Models/mlp.py``).

ReLU hidden units, biases on every layer, no batch norm (as OpenLTH).  Deviation: the input
width is ``in_channels * image_size**2`` rather than a hard-coded 784, so the same network runs
on 8x8 digits or 3x32x32 CIFAR (the original is 28x28 MNIST only).
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from pai.models import init_weights, register_model


class MLP(nn.Module):
    """Flatten, then ``Linear + ReLU`` per hidden width, then a linear classifier ``fc``."""

    def __init__(self, in_features: int, hidden: Sequence[int], num_classes: int):
        super().__init__()
        widths = [in_features, *hidden]
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.fc = nn.Linear(widths[-1], num_classes)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.flatten(x, 1)
        for layer in self.hidden:  # a fixed ModuleList: fx unrolls it
            x = F.relu(layer(x))
        return self.fc(x)


@register_model("lenet-300-100")
def lenet_300_100(num_classes: int, in_channels: int, image_size: int) -> nn.Module:
    return MLP(in_channels * image_size * image_size, (300, 100), num_classes)
