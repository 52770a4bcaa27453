"""Model registry and the architectures of the PaI literature.

``create_model(name, num_classes, in_channels, image_size)`` builds a freshly initialised model
from a registered builder ``fn(num_classes, in_channels, image_size) -> nn.Module`` and tags it
with ``input_shape``, ``num_classes`` and ``arch`` so that pruners and the layer graph
(``pai/graph.py``) can make a dummy input without being told the data set again.

Architectures (one file each, the paper and reference code in each module docstring):

* ``mlp.py``    ``lenet-300-100``                       LeCun et al. 1998
* ``lenet.py``  ``lenet5``                              LeCun et al. 1998 (ReLU/max-pool variant)
* ``vgg.py``    ``vgg11``, ``vgg16``, ``vgg19``         Simonyan & Zisserman 2015, OpenLTH/SynFlow CIFAR form
* ``resnet.py`` ``resnet20/32/56``, ``resnet18/34/50/101/152`` He et al. 2016 (CIFAR and ImageNet families),
                ``resnet18-tv`` ... ``resnet152-tv``    the same with torchvision's 7x7/2 stem + max-pool (RReg code)
* ``mobilenet.py`` ``mobilenet-v1``, ``mobilenet-v2``   Howard et al. 2017, Sandler et al. 2018 (CIFAR forms)
* ``wrn.py``    ``wrn-28-{2,4,10}``, ``wrn-40-{2,4,14}`` Zagoruyko & Komodakis, BMVC 2016

VGG, ResNet and MobileNet names take a width-multiplier suffix, ``vgg11-w0.25``, ``resnet20-w0.25``,
``resnet18-tv-w0.5`` (:func:`parse_name`).

Every model is ``torch.fx.symbolic_trace``-able, its prunable layers are plain ``nn.Conv2d`` /
``nn.Linear`` modules, and residual blocks keep their projection (or ``nn.Identity``) in an
attribute named ``shortcut``.  Randomness comes from torch's global generator: seed it
(``pai.utils.seed.seed_everything``) before ``create_model`` for a bit-identical initialisation.
"""
from __future__ import annotations

import re
from typing import Sequence

from torch import nn

from pai.utils.registry import Registry
from pai.utils.seed import seed_everything

MODELS = Registry("model")
register_model = MODELS.register


def init_weights(model: nn.Module) -> nn.Module:
    """Kaiming-normal (fan_in, ReLU gain) conv/linear weights, zero biases, BN (1, 0).

    He et al., "Delving deep into rectifiers", ICCV 2015, Eq. 10.  Applied to the classifier
    too, as OpenLTH and SynFlow do (``kaiming_normal_`` on every Conv2d/Linear); PyTorch's own
    default (Kaiming-uniform with a=sqrt(5)) would give each layer a different scale and bias
    the magnitude-based pruners.
    """
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    return model


def _check_dims(name: str, num_classes: int, in_channels: int, image_size: int) -> None:
    for label, value in (("num_classes", num_classes), ("in_channels", in_channels),
                         ("image_size", image_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"create_model({name!r}): {label} must be a positive int, got {value!r}")


WIDTH_SUFFIX = re.compile(r"^(?P<base>.+)-w(?P<factor>\d+(?:\.\d+)?)$")


def parse_name(name: str) -> tuple[str, float]:
    """``"resnet20-w0.25"`` -> ``("resnet20", 0.25)``; a name without ``-w<factor>`` has width 1.

    The factor multiplies every layer's channel count (rounded, at least 1), as a width multiplier
    does in MobileNet (Howard et al. 2017) or WRN's k (Zagoruyko & Komodakis 2016).  Only builders
    that take ``width=`` (``WIDTH_MODELS``) accept it: the CPU profile trains narrow deep nets,
    which keep the depth the pruning claims are about at a fraction of the FLOPs (width w cuts
    conv FLOPs about w^2-fold)."""
    match = WIDTH_SUFFIX.match(name)
    if match is None or match["base"] not in MODELS:
        return name, 1.0
    factor = float(match["factor"])
    if match["base"] not in WIDTH_MODELS:
        raise ValueError(f"model {match['base']!r} has no width option; width multipliers exist for: "
                         f"{', '.join(sorted(WIDTH_MODELS))}")
    if not 0 < factor <= 16:
        raise ValueError(f"width factor in {name!r} must be in (0, 16], got {factor:g}")
    return match["base"], factor


def scaled(channels: int, width: float) -> int:
    """A channel count times a width multiplier, rounded, never below 1."""
    return max(1, int(round(channels * width)))


def create_model(name: str, num_classes: int = 10, in_channels: int = 1, image_size: int = 28) -> nn.Module:
    """Build the registered architecture ``name`` (``KeyError`` listing valid names if unknown).

    ``name`` may end in ``-w<factor>`` (e.g. ``vgg11-w0.25``) for a width multiplier: :func:`parse_name`."""
    base, width = parse_name(name)
    builder = MODELS.get(base)
    _check_dims(name, num_classes, in_channels, image_size)
    model = builder(num_classes, in_channels, image_size, **({"width": width} if width != 1.0 else {}))
    model.input_shape = (in_channels, image_size, image_size)
    model.num_classes = num_classes
    model.arch = name
    return model


def initial_model(name: str, shape: Sequence[int], seed: int) -> nn.Module:
    """The initialisation every run with this seed starts from: ``seed_everything(seed)``, then
    ``create_model(name, *shape)`` (``shape``: a ``pai.data.DataShape`` or ``(classes, channels, size)``).

    The trainer, the run pipeline, the prune CLI and the notebooks' readers all build through here, so
    a mask chosen on this model belongs to the network a run with the same seed trains."""
    seed_everything(seed)
    return create_model(name, *shape)


def model_names() -> list[str]:
    return MODELS.names()


# Registered names whose builder takes ``width=`` (filled by the model files).
WIDTH_MODELS: set[str] = set()


def register_width_model(name: str):
    """``register_model`` for a builder ``fn(num_classes, in_channels, image_size, width=1.0)``."""
    WIDTH_MODELS.add(name)
    return register_model(name)


# Imported last: each file registers its builders with ``register_model`` defined above.
from pai.models import lenet, mlp, mobilenet, resnet, vgg, wrn  # noqa: E402,F401

__all__ = ["MODELS", "register_model", "register_width_model", "create_model", "initial_model", "model_names",
           "parse_name", "init_weights"]
