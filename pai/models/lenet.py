"""LeNet-5: LeCun et al., "Gradient-based learning applied to document recognition", Proc. IEEE
1998, in the modern ReLU + max-pool form used by the PaI literature (e.g. SNIP, Lee et al.,
ICLR 2019; SynFlow's ``Models/LeNet5_relu.py``).

conv 6@5x5 (padding 2) - ReLU - maxpool 2 - conv 16@5x5 - ReLU - maxpool 2 - fc 120 - fc 84 - fc C.
Deviations from 1998: ReLU instead of scaled tanh, max- instead of trainable average pooling,
full C3 connectivity (no connection table) and a linear output instead of RBF units.  The padding
of 2 on the first conv lets 28x28 inputs reach the 5x5x16 map that 32x32 gave in the paper; the
first FC's width follows the image size (400 at 28 px, 576 at 32 px).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from pai.models import init_weights, register_model

MIN_IMAGE_SIZE = 16


def _feature_size(image_size: int) -> int:
    """Side of the map after conv(pad 2) - pool - conv(5, no pad) - pool (floor pooling)."""
    return (image_size // 2 - 4) // 2


class LeNet5(nn.Module):
    def __init__(self, num_classes: int, in_channels: int, image_size: int):
        super().__init__()
        if image_size < MIN_IMAGE_SIZE:
            raise ValueError(
                f"lenet5 needs image_size >= {MIN_IMAGE_SIZE} (two 5x5 convs and two 2x2 pools), "
                f"got {image_size}; use 'lenet-300-100' for tiny inputs such as 8x8 digits")
        side = _feature_size(image_size)
        self.conv1 = nn.Conv2d(in_channels, 6, kernel_size=5, padding=2)
        self.pool1 = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(6, 16, kernel_size=5)
        self.pool2 = nn.MaxPool2d(2)  # one module per call site keeps fx node targets unique
        self.fc1 = nn.Linear(16 * side * side, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc = nn.Linear(84, num_classes)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool1(F.relu(self.conv1(x)))
        x = self.pool2(F.relu(self.conv2(x)))
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc(x)


@register_model("lenet5")
def lenet5(num_classes: int, in_channels: int, image_size: int) -> nn.Module:
    return LeNet5(num_classes, in_channels, image_size)
