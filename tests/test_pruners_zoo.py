"""Every pruning method on networks pai did not build: eleven torchvision classification networks
(10 classes, random weights) at 3x32x32, through the one contract (``data`` as an ``(x, y)``
pair of a few random images, the input shape inferred from it).  Each runs, or refuses in one line
naming the layer type and why; options are the cheap ones (few iterations, candidates, graphs)."""
import warnings

import pytest
import torch

from pai import masks as M
from pai.pruners import get, names, prune

torchvision = pytest.importorskip("torchvision")

NETS = ("resnet18", "resnet50", "vgg11_bn", "mobilenet_v2", "mobilenet_v3_small", "shufflenet_v2_x0_5", "squeezenet1_0",
        "densenet121", "efficientnet_b0", "regnet_y_400mf", "convnext_tiny")
# vgg11_bn: 129 M weights (two 4096-wide classifier layers), minutes per method on one core; the others:
# deep or wide enough that sixteen methods take minutes -- the CI set is the other six
SLOW_NETS = {"vgg11_bn", "resnet50", "densenet121", "efficientnet_b0", "convnext_tiny"}
DENSITY = 0.1
CHEAP = {  # linearize: MobileNetV2's ReLU6 saturates SynFlow's all-ones flow; float64: no underflow at depth 53
    "synflow": dict(iterations=2, dtype=torch.float64, linearize=True),
    "synflow-l2": dict(iterations=2, dtype=torch.float64, linearize=True),
    "rreg": dict(n_graphs=2, expansion_samples=10),
    "pags": dict(candidates=1),
    "pegs": dict(candidates=1, pretrain_iterations=1, pretrain_batch_size=4),
}
_CACHE = {}


def net(name):
    if name not in _CACHE:  # pai.prune leaves a model as it came, so one copy serves every method
        _CACHE.clear()
        torch.manual_seed(0)
        _CACHE[name] = getattr(torchvision.models, name)(num_classes=10, weights=None)
    return _CACHE[name]


def cases():
    for n in NETS:
        for m in names():
            yield pytest.param(n, m, id=f"{n}-{m}", marks=[pytest.mark.slow] if n in SLOW_NETS else [])


@pytest.mark.parametrize("net_name, method", list(cases()))
def test_every_method_runs_on_torchvision_networks_or_refuses_in_one_line(net_name, method):
    model = net(net_name)
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(8, 3, 32, 32, generator=g), torch.arange(8) % 10
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # degenerate masks (magnitude leaves MobileNet layers empty) are allowed
            out = prune(model, method, DENSITY, seed=0, data=(x, y), **CHEAP.get(method, {}))
    except (ValueError, NotImplementedError, TypeError) as e:
        text = str(e)
        types = {type(m).__name__ for m in model.modules()} | {"grouped convolution", "depthwise"}
        assert "\n" not in text and any(t in text for t in types), f"not a one-line refusal naming a layer type: {text}"
        return
    mask = out[0] if isinstance(out, tuple) else out
    params = M.prunable_parameters(model)
    assert set(mask) == set(params) and all(mask[k].shape == p.shape for k, p in params.items())
    kept = M.density(mask)
    if not get(method).density_free or not get(method).density_free(CHEAP.get(method, {})):
        assert 0 < kept <= 1.5 * DENSITY  # (rreg keeps small layers denser: one edge per node at least)
